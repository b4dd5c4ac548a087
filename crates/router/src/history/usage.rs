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
            &self.tail
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
}
