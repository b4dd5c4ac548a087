//! Token counts read from the answer as it streams past, without holding the whole body.
//!
//! The tap keeps the first bytes (for the opt-in body capture and for non-streamed JSON answers,
//! which are small) and the last bytes (where streams put their usage). At the end the counts are
//! read from whichever shape the answer had: OpenAI `usage`, llama.cpp `timings`, or Ollama's
//! `prompt_eval_count` / `eval_count`.

use serde_json::Value;

/// Bytes kept from the start of a body.
const HEAD_BYTES: usize = 64 * 1024;
/// Bytes kept from the end of a streamed body.
const TAIL_BYTES: usize = 16 * 1024;

#[derive(Debug, Default)]
pub struct UsageTap {
    head: Vec<u8>,
    tail: Vec<u8>,
    total: usize,
}

/// Prompt and completion tokens, each when known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: Option<u32>,
    pub completion_tokens: Option<u32>,
}

impl UsageTap {
    pub fn observe(&mut self, chunk: &[u8]) {
        self.total += chunk.len();
        if self.head.len() < HEAD_BYTES {
            let take = chunk.len().min(HEAD_BYTES - self.head.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        self.tail.extend_from_slice(chunk);
        if self.tail.len() > 2 * TAIL_BYTES {
            self.tail.drain(..self.tail.len() - TAIL_BYTES);
        }
    }

    /// The first `max` bytes of the body, as text.
    pub fn head_text(&self, max: usize) -> String {
        String::from_utf8_lossy(&self.head[..self.head.len().min(max)]).into_owned()
    }

    pub fn usage(&self) -> Usage {
        // A body that fit in the head is whole: a non-streamed JSON answer.
        if self.total == self.head.len()
            && let Ok(value) = serde_json::from_slice::<Value>(&self.head)
        {
            return usage_of(&value);
        }
        // A stream: the last event or line that carries counts.
        let text = String::from_utf8_lossy(&self.tail);
        text.lines()
            .rev()
            .filter_map(|line| {
                let json = line.strip_prefix("data:").unwrap_or(line).trim();
                json.starts_with('{')
                    .then(|| serde_json::from_str::<Value>(json).ok())
                    .flatten()
            })
            .map(|v| usage_of(&v))
            .find(|u| u.prompt_tokens.is_some() || u.completion_tokens.is_some())
            .unwrap_or_default()
    }
}

fn count(v: &Value, key: &str) -> Option<u32> {
    v.get(key)?.as_u64().and_then(|n| u32::try_from(n).ok())
}

fn usage_of(v: &Value) -> Usage {
    if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
        return Usage {
            prompt_tokens: count(u, "prompt_tokens"),
            completion_tokens: count(u, "completion_tokens"),
        };
    }
    if let Some(t) = v.get("timings").filter(|t| t.is_object()) {
        return Usage {
            prompt_tokens: count(t, "prompt_n"),
            completion_tokens: count(t, "predicted_n"),
        };
    }
    Usage {
        prompt_tokens: count(v, "prompt_eval_count"),
        completion_tokens: count(v, "eval_count"),
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
    fn long_streams_keep_a_bounded_tail() {
        let mut t = UsageTap::default();
        let line = format!("data: {{\"x\":\"{}\"}}\n\n", "y".repeat(1000));
        for _ in 0..500 {
            t.observe(line.as_bytes());
        }
        t.observe(b"data: {\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\n\n");
        assert!(t.tail.len() <= 2 * TAIL_BYTES && t.head.len() <= HEAD_BYTES);
        assert_eq!(t.usage().completion_tokens, Some(2));
    }
}
