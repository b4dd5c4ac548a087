//! Token counts read from the answer as it streams past, without holding the whole body.
//!
//! The tap keeps the first bytes (for the opt-in body capture and for non-streamed JSON answers,
//! which are small) and the last bytes (where streams put their usage). At the end the counts are
//! read from whichever shape the answer had: OpenAI `usage`, llama.cpp `timings`, or Ollama's
//! `prompt_eval_count` / `eval_count`.

use serde::Deserialize;

/// Bytes kept from the start of a body.
const HEAD_BYTES: usize = 64 * 1024;
/// Bytes kept from the end of a streamed body.
const TAIL_BYTES: usize = 16 * 1024;

#[derive(Debug, Default)]
pub struct UsageTap {
    /// The first bytes of the body.
    head: Vec<u8>,
    /// Bytes after the head, of which the last `TAIL_BYTES` at least are kept.
    tail: Vec<u8>,
    /// True once bytes were dropped from the front of `tail`.
    tail_trimmed: bool,
}

/// Prompt and completion tokens, each when known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: Option<u32>,
    pub completion_tokens: Option<u32>,
}

impl UsageTap {
    pub fn observe(&mut self, mut chunk: &[u8]) {
        if self.head.len() < HEAD_BYTES {
            let take = chunk.len().min(HEAD_BYTES - self.head.len());
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
            .find(|u| u.prompt_tokens.is_some() || u.completion_tokens.is_some())
            .unwrap_or_default()
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
}

#[derive(Debug, Default, Deserialize)]
struct OpenAiUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
struct Timings {
    prompt_n: Option<u64>,
    predicted_n: Option<u64>,
}

fn to_u32(v: Option<u64>) -> Option<u32> {
    v.and_then(|n| u32::try_from(n).ok())
}

impl Counts {
    fn usage(&self) -> Usage {
        if let Some(u) = &self.usage {
            return Usage {
                prompt_tokens: to_u32(u.prompt_tokens),
                completion_tokens: to_u32(u.completion_tokens),
            };
        }
        if let Some(t) = &self.timings {
            return Usage {
                prompt_tokens: to_u32(t.prompt_n),
                completion_tokens: to_u32(t.predicted_n),
            };
        }
        Usage {
            prompt_tokens: to_u32(self.prompt_eval_count),
            completion_tokens: to_u32(self.eval_count),
        }
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
                completion_tokens: Some(9)
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
    fn reads_ollama_counts_from_ndjson() {
        let t = tap(&[
            "{\"response\":\"a\",\"done\":false}\n",
            "{\"done\":true,\"prompt_eval_count\":6,\"eval_count\":12}\n",
        ]);
        assert_eq!(
            t.usage(),
            Usage {
                prompt_tokens: Some(6),
                completion_tokens: Some(12)
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
