//! Token counts read from the answer as it streams past, without holding the whole body.
//!
//! The tap keeps the first bytes (for the opt-in body capture and for non-streamed JSON answers,
//! which are small) and the last bytes (where streams put their usage). At the end the counts are
//! read from whichever shape the answer had: OpenAI `usage`, llama.cpp `timings`, Ollama's
//! `prompt_eval_count` / `eval_count`, the Responses API's `usage.input_tokens/output_tokens`
//! (in its final `response.completed` event when streamed), or Anthropic's `usage` (split over
//! `message_start`, which has the input tokens, and `message_delta`, the output tokens).

use serde::Deserialize;

/// Bytes kept from the start of a body.
const HEAD_BYTES: usize = 64 * 1024;
/// Bytes kept from the end of a streamed body.
const TAIL_BYTES: usize = 16 * 1024;

#[derive(Debug)]
pub struct UsageTap {
    /// Bytes kept from the start (`HEAD_BYTES`, or none for a tap that only reads counts).
    head_limit: usize,
    /// The first bytes of the body.
    head: Vec<u8>,
    /// Bytes after the head, of which the last `TAIL_BYTES` at least are kept.
    tail: Vec<u8>,
    /// True once bytes were dropped from the front of `tail`.
    tail_trimmed: bool,
}

/// Prompt and completion tokens, each when known, and what the node said of its cache and speed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// The whole prompt, the cached part included.
    pub prompt_tokens: Option<u32>,
    pub completion_tokens: Option<u32>,
    /// Prompt tokens reused from the node's cache (llama.cpp `timings.cache_n`, OpenAI
    /// `usage.prompt_tokens_details.cached_tokens`).
    pub cached_tokens: Option<u32>,
    /// Prompt tokens computed, and milliseconds it took (llama.cpp `timings`).
    pub prompt_computed: Option<(u64, f64)>,
    /// Tokens generated, and milliseconds it took (llama.cpp `timings`).
    pub generated: Option<(u64, f64)>,
}

impl Default for UsageTap {
    fn default() -> Self {
        UsageTap {
            head_limit: HEAD_BYTES,
            head: Vec::new(),
            tail: Vec::new(),
            tail_trimmed: false,
        }
    }
}

impl UsageTap {
    /// A tap keeping only the end of a stream, where its counts are (for the node's own bytes
    /// when the client gets a translation).
    pub fn counts_only() -> Self {
        UsageTap {
            head_limit: 0,
            ..UsageTap::default()
        }
    }

    pub fn observe(&mut self, mut chunk: &[u8]) {
        if self.head.len() < self.head_limit {
            let take = chunk.len().min(self.head_limit - self.head.len());
            self.head.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
        }
        if chunk.is_empty() {
            return;
        }
        self.tail.extend_from_slice(chunk);
        if self.tail.len() > 2 * TAIL_BYTES {
            self.tail.drain(..self.tail.len() - TAIL_BYTES);
            self.tail_trimmed = true;
        }
    }

    /// The first `max` bytes of the body, as text.
    pub fn head_text(&self, max: usize) -> String {
        String::from_utf8_lossy(&self.head[..self.head.len().min(max)]).into_owned()
    }

    pub fn usage(&self) -> Usage {
        // A body that fit in the head may be a whole JSON answer.
        if self.tail.is_empty()
            && let Ok(counts) = serde_json::from_slice::<Counts>(&self.head)
        {
            return counts.usage();
        }
        // A stream: the last event or line that carries counts.
        let joined;
        let bytes: &[u8] = if self.tail_trimmed {
            // The last `TAIL_BYTES` only: how much more the tail holds depends on how the body
            // was chunked, and the counts must not.
            &self.tail[self.tail.len().saturating_sub(TAIL_BYTES)..]
        } else if self.tail.is_empty() {
            &self.head
        } else {
            joined = [self.head.as_slice(), self.tail.as_slice()].concat();
            &joined
        };
        let mut usage = last_counts(bytes, |u| {
            u.prompt_tokens.is_some() || u.completion_tokens.is_some()
        })
        .unwrap_or_default();
        if usage.completion_tokens.is_some() && usage.prompt_tokens.is_none() {
            // Anthropic's stream: the output tokens at its end, the input tokens in its first
            // event (in the kept tail, or in the head when the tail was trimmed).
            let prompt = last_counts(bytes, |u| u.prompt_tokens.is_some())
                .or_else(|| last_counts(&self.head, |u| u.prompt_tokens.is_some()));
            if let Some(prompt) = prompt {
                usage.prompt_tokens = prompt.prompt_tokens;
                usage.cached_tokens = usage.cached_tokens.or(prompt.cached_tokens);
            }
        }
        usage
    }
}

/// The counts of the last SSE event or NDJSON line of `bytes` whose counts pass `wanted`.
fn last_counts(bytes: &[u8], wanted: impl Fn(&Usage) -> bool) -> Option<Usage> {
    bytes
        .split(|&b| b == b'\n')
        .rev()
        .filter_map(|line| {
            let line = line.strip_prefix(b"data:").unwrap_or(line).trim_ascii();
            line.starts_with(b"{")
                .then(|| serde_json::from_slice::<Counts>(line).ok())
                .flatten()
        })
        .map(|c| c.usage())
        .find(wanted)
}

impl Usage {
    /// The counts of a whole JSON answer (none when it is not one).
    pub fn of_answer(body: &[u8]) -> Usage {
        serde_json::from_slice::<Counts>(body)
            .map(|c| c.usage())
            .unwrap_or_default()
    }

    /// Fills what this usage lacks of the node's cache and speed figures from `node`'s (what the
    /// node itself said, when the client got a translation without them).
    pub fn or_node(self, node: Usage) -> Usage {
        Usage {
            cached_tokens: self.cached_tokens.or(node.cached_tokens),
            prompt_computed: self.prompt_computed.or(node.prompt_computed),
            generated: self.generated.or(node.generated),
            ..self
        }
    }
}

/// The count-carrying fields of an answer, whatever its API; every other field is skipped.
#[derive(Debug, Default, Deserialize)]
struct Counts {
    #[serde(default)]
    usage: Option<OpenAiUsage>,
    #[serde(default)]
    timings: Option<Timings>,
    #[serde(default)]
    prompt_eval_count: Option<u64>,
    #[serde(default)]
    eval_count: Option<u64>,
    /// A Responses API event carrying the response (`response.completed`); Ollama's
    /// `/api/generate` lines have a text `response`, skipped.
    #[serde(default)]
    response: Option<Nested>,
    /// Anthropic's `message_start` event; Ollama's `/api/chat` lines have a `message` without
    /// usage.
    #[serde(default)]
    message: Option<Nested>,
}

/// An object inside an event that may carry the usage; any other value is skipped.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Nested {
    Object {
        #[serde(default)]
        usage: Option<OpenAiUsage>,
    },
    Other(serde::de::IgnoredAny),
}

impl Nested {
    fn usage(&self) -> Option<&OpenAiUsage> {
        match self {
            Nested::Object { usage } => usage.as_ref(),
            Nested::Other(_) => None,
        }
    }
}

/// `usage` in any of its shapes: OpenAI chat (`prompt_tokens`, `completion_tokens`), OpenAI
/// Responses (`input_tokens` with the cached ones in `input_tokens_details`, `output_tokens`),
/// Anthropic (`input_tokens` *without* the `cache_read_input_tokens` and
/// `cache_creation_input_tokens`, `output_tokens`).
#[derive(Debug, Default, Deserialize)]
struct OpenAiUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    #[serde(default)]
    input_tokens_details: Option<PromptDetails>,
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
}

impl OpenAiUsage {
    /// Prompt tokens (the cached ones included), completion tokens, cached tokens.
    fn counts(&self) -> (Option<u64>, Option<u64>, Option<u64>) {
        let anthropic =
            self.cache_read_input_tokens.is_some() || self.cache_creation_input_tokens.is_some();
        let prompt = self.prompt_tokens.or_else(|| {
            self.input_tokens.map(|n| {
                if anthropic {
                    n.saturating_add(self.cache_read_input_tokens.unwrap_or(0))
                        .saturating_add(self.cache_creation_input_tokens.unwrap_or(0))
                } else {
                    n
                }
            })
        });
        let cached = self
            .prompt_tokens_details
            .as_ref()
            .or(self.input_tokens_details.as_ref())
            .and_then(|d| d.cached_tokens)
            .or(self.cache_read_input_tokens);
        (
            prompt,
            self.completion_tokens.or(self.output_tokens),
            cached,
        )
    }
}

#[derive(Debug, Default, Deserialize)]
struct PromptDetails {
    cached_tokens: Option<u64>,
}

/// llama.cpp's `timings`: `prompt_n` tokens computed (besides `cache_n` reused) in `prompt_ms`,
/// `predicted_n` generated in `predicted_ms`.
#[derive(Debug, Default, Deserialize)]
struct Timings {
    prompt_n: Option<u64>,
    prompt_ms: Option<f64>,
    cache_n: Option<u64>,
    predicted_n: Option<u64>,
    predicted_ms: Option<f64>,
}

fn to_u32(v: Option<u64>) -> Option<u32> {
    v.and_then(|n| u32::try_from(n).ok())
}

impl Counts {
    fn usage(&self) -> Usage {
        let timings = self.timings.as_ref();
        let with = |n: Option<u64>, ms: Option<f64>| n.zip(ms.filter(|ms| ms.is_finite()));
        let mut usage = Usage {
            cached_tokens: to_u32(timings.and_then(|t| t.cache_n)),
            prompt_computed: timings.and_then(|t| with(t.prompt_n, t.prompt_ms)),
            generated: timings.and_then(|t| with(t.predicted_n, t.predicted_ms)),
            ..Usage::default()
        };
        let nested = [&self.response, &self.message]
            .into_iter()
            .flatten()
            .find_map(Nested::usage);
        if let Some(u) = self.usage.as_ref().or(nested) {
            let (prompt, completion, cached) = u.counts();
            usage.prompt_tokens = to_u32(prompt);
            usage.completion_tokens = to_u32(completion);
            if let Some(cached) = cached {
                usage.cached_tokens = to_u32(Some(cached));
            }
        } else if let Some(t) = timings {
            // `prompt_n` counts only the tokens computed: the prompt is those and the reused ones.
            usage.prompt_tokens =
                to_u32(t.prompt_n.map(|n| n.saturating_add(t.cache_n.unwrap_or(0))));
            usage.completion_tokens = to_u32(t.predicted_n);
        } else {
            usage.prompt_tokens = to_u32(self.prompt_eval_count);
            usage.completion_tokens = to_u32(self.eval_count);
        }
        usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tap(chunks: &[&str]) -> UsageTap {
        let mut t = UsageTap::default();
        for c in chunks {
            t.observe(c.as_bytes());
        }
        t
    }

    #[test]
    fn reads_usage_of_a_json_answer() {
        let t = tap(&[
            r#"{"id":"x","usage":{"prompt_tokens":5,"#,
            r#""completion_tokens":9}}"#,
        ]);
        assert_eq!(
            t.usage(),
            Usage {
                prompt_tokens: Some(5),
                completion_tokens: Some(9),
                ..Usage::default()
            }
        );
    }

    #[test]
    fn reads_the_last_counts_of_an_sse_stream() {
        let t = tap(&[
            "data: {\"choices\":[]}\n\n",
            "data: {\"choices\":[],\"timings\":{\"prompt_n\":3,\"predicted_n\":8}}\n\n",
            "data: [DONE]\n\n",
        ]);
        assert_eq!(t.usage().completion_tokens, Some(8));
        let t = tap(&[
            "data: {\"choices\":[],\"usage\":null}\n\n",
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":4}}\n\n",
            "data: [DONE]\n\n",
        ]);
        assert_eq!(t.usage().prompt_tokens, Some(2));
    }

    #[test]
    fn reads_what_llama_cpp_says_of_its_cache_and_speed() {
        // The last chunk of a llama-server stream: usage and timings.
        let t = tap(&[
            "data: {\"choices\":[]}\n\n",
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":352,\"completion_tokens\":8,",
            "\"prompt_tokens_details\":{\"cached_tokens\":334}},\"timings\":{\"cache_n\":334,",
            "\"prompt_n\":18,\"prompt_ms\":90.0,\"predicted_n\":8,\"predicted_ms\":400.0}}\n\n",
            "data: [DONE]\n\n",
        ]);
        assert_eq!(
            t.usage(),
            Usage {
                prompt_tokens: Some(352),
                completion_tokens: Some(8),
                cached_tokens: Some(334),
                prompt_computed: Some((18, 90.0)),
                generated: Some((8, 400.0)),
            }
        );
        // Timings alone: the prompt is the computed and the reused tokens.
        let t = tap(&[r#"{"timings":{"cache_n":300,"prompt_n":20,"predicted_n":4}}"#]);
        let u = t.usage();
        assert_eq!((u.prompt_tokens, u.cached_tokens), (Some(320), Some(300)));
        assert_eq!(u.prompt_computed, None, "no time, no speed");
    }

    #[test]
    fn a_counts_only_tap_reads_the_end_of_a_long_stream_and_fills_a_translation() {
        let mut node = UsageTap::counts_only();
        for _ in 0..100 {
            node.observe(format!("data: {{\"x\":\"{}\"}}\n\n", "y".repeat(1000)).as_bytes());
        }
        node.observe(b"data: {\"timings\":{\"cache_n\":90,\"prompt_n\":10,\"prompt_ms\":5.0}}\n\n");
        assert!(node.head.is_empty() && node.tail.len() <= 2 * TAIL_BYTES);
        let client = tap(&["{\"done\":true,\"prompt_eval_count\":100,\"eval_count\":3}\n"]).usage();
        let merged = client.or_node(node.usage());
        assert_eq!(merged.prompt_tokens, Some(100));
        assert_eq!(merged.cached_tokens, Some(90));
        assert_eq!(merged.prompt_computed, Some((10, 5.0)));
        assert_eq!(
            Usage::of_answer(br#"{"timings":{"cache_n":7,"prompt_n":1}}"#).cached_tokens,
            Some(7)
        );
    }

    #[test]
    fn reads_the_responses_api_usage_whole_and_streamed() {
        // llama-server's answers, as measured.
        let whole = tap(&[
            r#"{"object":"response","output":[],"status":"completed","usage":{"input_tokens":11,"#,
            r#""output_tokens":8,"total_tokens":19,"input_tokens_details":{"cached_tokens":0}}}"#,
        ]);
        let u = whole.usage();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.cached_tokens),
            (Some(11), Some(8), Some(0))
        );
        let streamed = tap(&[
            "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"status\":\"in_progress\"}}\n\n",
            "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"a\"}\n\n",
            "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"usage\":",
            "{\"input_tokens\":11,\"output_tokens\":4,\"input_tokens_details\":{\"cached_tokens\":6}}},",
            "\"timings\":{\"cache_n\":6,\"prompt_n\":5,\"prompt_ms\":70.0,\"predicted_n\":4,\"predicted_ms\":80.0}}\n\n",
        ]);
        assert_eq!(
            streamed.usage(),
            Usage {
                prompt_tokens: Some(11),
                completion_tokens: Some(4),
                cached_tokens: Some(6),
                prompt_computed: Some((5, 70.0)),
                generated: Some((4, 80.0)),
            }
        );
    }

    #[test]
    fn reads_anthropic_usage_whole_and_from_its_first_and_last_events() {
        // Anthropic counts the cached input apart from `input_tokens`.
        let whole = tap(&[
            r#"{"type":"message","content":[],"usage":{"cache_read_input_tokens":6,"#,
            r#""input_tokens":5,"output_tokens":6}}"#,
        ]);
        let u = whole.usage();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.cached_tokens),
            (Some(11), Some(6), Some(6))
        );
        let start = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"cache_read_input_tokens\":2,\"input_tokens\":12,\"output_tokens\":0}}}\n\n";
        let delta = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"x\"}}\n\n";
        let end = "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":3}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        let short = tap(&[start, delta, end]);
        let u = short.usage();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.cached_tokens),
            (Some(14), Some(3), Some(2))
        );
        // A long stream: `message_start` is only in the head.
        let mut long = UsageTap::default();
        long.observe(start.as_bytes());
        for _ in 0..200 {
            long.observe(format!("data: {{\"x\":\"{}\"}}\n\n", "y".repeat(1000)).as_bytes());
        }
        long.observe(end.as_bytes());
        assert!(long.tail_trimmed);
        let u = long.usage();
        assert_eq!((u.prompt_tokens, u.completion_tokens), (Some(14), Some(3)));
    }

    #[test]
    fn reads_ollama_counts_from_ndjson() {
        let generate = tap(&[
            "{\"response\":\"a\",\"done\":false}\n",
            "{\"response\":\"\",\"done\":true,\"prompt_eval_count\":6,\"eval_count\":12}\n",
        ]);
        assert_eq!(generate.usage().completion_tokens, Some(12));
        let t = tap(&[
            "{\"response\":\"a\",\"done\":false}\n",
            "{\"done\":true,\"prompt_eval_count\":6,\"eval_count\":12}\n",
        ]);
        assert_eq!(
            t.usage(),
            Usage {
                prompt_tokens: Some(6),
                completion_tokens: Some(12),
                ..Usage::default()
            }
        );
    }

    #[test]
    fn counts_straddling_head_and_tail_are_found() {
        let mut t = UsageTap::default();
        t.observe("x".repeat(HEAD_BYTES - 10).as_bytes());
        t.observe(b"\ndata: {\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":5}}\n\n");
        assert_eq!(t.usage().completion_tokens, Some(5));
    }

    #[test]
    fn long_streams_keep_a_bounded_tail() {
        let mut t = UsageTap::default();
        let line = format!("data: {{\"x\":\"{}\"}}\n\n", "y".repeat(1000));
        for _ in 0..500 {
            t.observe(line.as_bytes());
        }
        t.observe(b"data: {\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\n\n");
        assert!(t.tail.len() <= 2 * TAIL_BYTES && t.head.len() <= HEAD_BYTES);
        assert!(t.tail_trimmed);
        assert_eq!(t.usage().completion_tokens, Some(2));
    }

    #[test]
    fn counts_do_not_depend_on_how_the_body_was_chunked() {
        // Found by proptest: a trimmed tail kept 16 to 32 KiB depending on the chunks, so a
        // count line 16 KiB from the end was read or not depending on the network.
        let pad = |n: usize| format!("data: {{\"x\":\"{}\"}}\n\n", "y".repeat(n));
        let mut body = "x".repeat(HEAD_BYTES).into_bytes();
        body.extend(pad(40_000).as_bytes());
        body.extend(b"data: {\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":5}}\n\n");
        let first = body.len();
        body.extend(pad(TAIL_BYTES - 40).as_bytes());
        let mut whole = UsageTap::default();
        whole.observe(&body);
        let mut chunked = UsageTap::default();
        chunked.observe(&body[..HEAD_BYTES]);
        chunked.observe(&body[HEAD_BYTES..first]);
        chunked.observe(&body[first..]);
        assert_eq!(chunked.usage(), whole.usage());
    }

    mod props {
        use super::*;
        use llm_router_testkit::prop::{config, cut, cuts};
        use proptest::prelude::*;
        use proptest::sample::Index;

        fn usage_of(body: &[u8], cuts: &[Index]) -> Usage {
            let mut tap = UsageTap::default();
            for piece in cut(body, cuts) {
                tap.observe(piece);
            }
            tap.usage()
        }

        /// One line of an answer: SSE or NDJSON, with or without counts, some long enough to
        /// push earlier lines out of the kept tail.
        fn line() -> impl Strategy<Value = String> {
            prop_oneof![
                3 => (0usize..24_000).prop_map(|n| format!("data: {{\"x\":\"{}\"}}\n\n", "y".repeat(n))),
                1 => (any::<u32>(), any::<u32>()).prop_map(|(p, c)| format!(
                    "data: {{\"usage\":{{\"prompt_tokens\":{p},\"completion_tokens\":{c}}}}}\n\n")),
                1 => (any::<u32>(), any::<u32>()).prop_map(|(p, c)| format!(
                    "{{\"done\":true,\"prompt_eval_count\":{p},\"eval_count\":{c}}}\n")),
                1 => Just("data: [DONE]\n\n".to_owned()),
            ]
        }

        proptest! {
            #![proptest_config(config(128))]

            #[test]
            fn counts_do_not_depend_on_chunk_boundaries(
                lines in prop::collection::vec(line(), 0..16),
                c in cuts(24),
            ) {
                let body = lines.concat().into_bytes();
                prop_assert_eq!(usage_of(&body, &c), usage_of(&body, &[]));
            }

            #[test]
            fn arbitrary_bytes_never_panic(
                bytes in prop::collection::vec(any::<u8>(), 0..2048),
                c in cuts(8),
            ) {
                let _ = usage_of(&bytes, &c);
                let mut tap = UsageTap::default();
                tap.observe(&bytes);
                let _ = tap.head_text(bytes.len() / 2);
            }
        }
    }
}
