//! The stateful stream transformer: an OpenAI SSE stream (chat or text completion chunks) in, an
//! Ollama NDJSON stream out, one line per piece of answer as soon as it arrives, then a final line
//! with `done: true`, `done_reason` and the statistics.

use std::time::Instant;

use serde_json::Value;

use super::Endpoint;
use super::render::{Done, Output, Piece, done_reason, error_line, tool_call};
use super::sse::SseBuffer;
use super::stats::Stats;

/// Turns the bytes of a node's answer into NDJSON lines for the client.
pub trait LineSource: Send {
    /// Handles a chunk of the node's body; appends complete lines to `out`.
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>);
    /// The node's body ended normally; appends the last lines.
    fn finish(&mut self, out: &mut Vec<u8>);
    /// True once the answer is complete: nothing more will be written.
    fn is_finished(&self) -> bool;
    /// Why the answer ended with an error line, if it did.
    fn failure(&self) -> Option<String> {
        None
    }
    /// True when the lines are a translation of the node's answer (whose own counts, such as
    /// llama.cpp's `timings`, the client's lines no longer carry).
    fn translates(&self) -> bool {
        false
    }
}

/// Most tool calls one answer may make: fragments with a higher `index` are ignored.
const MAX_TOOL_CALLS: usize = 128;

/// A tool call being streamed in fragments (OpenAI sends the arguments piece by piece).
#[derive(Debug, Default)]
struct PendingToolCall {
    name: String,
    arguments: String,
}

/// OpenAI SSE → Ollama NDJSON.
#[derive(Debug)]
pub struct Transcoder {
    endpoint: Endpoint,
    output: Output,
    sse: SseBuffer,
    stats: Stats,
    finish_reason: Option<String>,
    tool_calls: Vec<PendingToolCall>,
    finished: bool,
    failure: Option<String>,
}

impl Transcoder {
    /// `started` is when the router received the request (for `total_duration`).
    pub fn new(endpoint: Endpoint, output: Output, started: Instant) -> Self {
        Transcoder {
            endpoint,
            output,
            sse: SseBuffer::default(),
            stats: Stats::new(started),
            finish_reason: None,
            tool_calls: Vec::new(),
            finished: false,
            failure: None,
        }
    }

    fn event(&mut self, data: &str, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        if data.trim() == "[DONE]" {
            self.done(out);
            return;
        }
        let Ok(chunk) = serde_json::from_str::<Value>(data) else {
            tracing::debug!(data, "ignoring a stream event that is not JSON");
            return;
        };
        if let Some(error) = chunk.get("error") {
            self.fail(error_text(error), out);
            return;
        }
        self.stats.absorb(&chunk);
        let Some(choice) = chunk["choices"].get(0) else {
            return;
        };
        if let Some(reason) = choice["finish_reason"].as_str() {
            self.finish_reason = Some(reason.to_owned());
        }
        let piece = match self.endpoint {
            Endpoint::Completions => Piece {
                text: choice["text"].as_str().unwrap_or_default().to_owned(),
                ..Piece::default()
            },
            Endpoint::ChatCompletions => {
                let delta = &choice["delta"];
                self.collect_tool_calls(&delta["tool_calls"]);
                Piece {
                    text: delta["content"].as_str().unwrap_or_default().to_owned(),
                    thinking: delta["reasoning_content"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    tool_calls: Vec::new(),
                }
            }
        };
        if !piece.is_empty() {
            self.stats.piece();
            out.extend(self.output.line(piece, None));
        }
    }

    fn collect_tool_calls(&mut self, fragments: &Value) {
        let Some(fragments) = fragments.as_array() else {
            return;
        };
        for (position, fragment) in fragments.iter().enumerate() {
            let index = fragment["index"]
                .as_u64()
                .and_then(|i| usize::try_from(i).ok())
                .unwrap_or(position);
            if index >= MAX_TOOL_CALLS {
                // A node's number, not an allocation size: one far out of range is dropped.
                tracing::debug!(
                    index,
                    "ignoring a tool call fragment with an index out of range"
                );
                continue;
            }
            if self.tool_calls.len() <= index {
                self.tool_calls
                    .resize_with(index + 1, PendingToolCall::default);
            }
            let call = &mut self.tool_calls[index];
            let function = &fragment["function"];
            if let Some(name) = function["name"].as_str() {
                call.name.push_str(name);
            }
            if let Some(arguments) = function["arguments"].as_str() {
                call.arguments.push_str(arguments);
            }
        }
    }

    /// Ends the stream with an error line.
    fn fail(&mut self, message: String, out: &mut Vec<u8>) {
        out.extend(error_line(message.clone()));
        self.failure = Some(message);
        self.finished = true;
    }

    /// Writes the tool calls (if any) and the final line.
    fn done(&mut self, out: &mut Vec<u8>) {
        let calls: Vec<_> = std::mem::take(&mut self.tool_calls)
            .into_iter()
            .filter(|c| !c.name.is_empty())
            .map(|c| tool_call(c.name, &c.arguments))
            .collect();
        if !calls.is_empty() {
            let piece = Piece {
                tool_calls: calls,
                ..Piece::default()
            };
            out.extend(self.output.line(piece, None));
        }
        let done = Done {
            reason: done_reason(self.finish_reason.as_deref()),
            metrics: self.stats.metrics(Instant::now()),
        };
        out.extend(self.output.line(Piece::default(), Some(done)));
        self.finished = true;
    }
}

impl LineSource for Transcoder {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        for data in self.sse.push(chunk) {
            self.event(&data, out);
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if let Some(data) = self.sse.finish() {
            self.event(&data, out);
        }
        if self.finished {
            return;
        }
        if self.finish_reason.is_some() {
            // The node ended the stream after its last chunk without `[DONE]`.
            self.done(out);
        } else {
            self.fail(
                "the node ended the stream before the answer was complete".to_owned(),
                out,
            );
        }
    }

    fn is_finished(&self) -> bool {
        self.finished
    }

    fn failure(&self) -> Option<String> {
        self.failure.clone()
    }

    fn translates(&self) -> bool {
        true
    }
}

/// The message of an `error` value: OpenAI's `{"message": ...}` object, or a plain string.
pub fn error_text(error: &Value) -> String {
    match error {
        Value::String(text) => text.clone(),
        other => other["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| other.to_string()),
    }
}

/// A node's answer that is already Ollama NDJSON (an Ollama runtime answering natively): passed on
/// line by line. Only whole lines are passed, so a failure mid-line cannot leave half a JSON
/// object before the error line.
#[derive(Debug, Default)]
pub struct Passthrough {
    partial: Vec<u8>,
    finished: bool,
}

impl LineSource for Passthrough {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        match chunk.iter().rposition(|&b| b == b'\n') {
            Some(end) => {
                out.append(&mut self.partial);
                out.extend_from_slice(&chunk[..=end]);
                self.partial.extend_from_slice(&chunk[end + 1..]);
            }
            None => self.partial.extend_from_slice(chunk),
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.partial.iter().all(u8::is_ascii_whitespace) {
            out.append(&mut self.partial);
            out.push(b'\n');
        }
        self.finished = true;
    }

    fn is_finished(&self) -> bool {
        self.finished
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::ollama::Shape;
    use serde_json::json;

    fn transcoder(endpoint: Endpoint, shape: Shape) -> Transcoder {
        Transcoder::new(
            endpoint,
            Output {
                shape,
                model: "m".into(),
            },
            Instant::now(),
        )
    }

    fn sse(chunks: &[Value]) -> String {
        let mut body: String = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
        body.push_str("data: [DONE]\n\n");
        body
    }

    fn lines(out: &[u8]) -> Vec<Value> {
        std::str::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn run(t: &mut Transcoder, body: &str) -> Vec<Value> {
        let mut out = Vec::new();
        // Byte by byte: the transformer must not care where chunks end.
        for b in body.as_bytes() {
            t.feed(std::slice::from_ref(b), &mut out);
        }
        t.finish(&mut out);
        lines(&out)
    }

    #[test]
    fn chat_chunks_become_message_lines_then_a_done_line_with_statistics() {
        let mut t = transcoder(Endpoint::ChatCompletions, Shape::Chat);
        let out = run(
            &mut t,
            &sse(&[
                json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": null}}]}),
                json!({"choices": [{"index": 0, "delta": {"content": "Hel"}}]}),
                json!({"choices": [{"index": 0, "delta": {"content": "lo"}}]}),
                json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}),
                json!({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 2},
                       "timings": {"prompt_ms": 1.5, "predicted_ms": 20.0}}),
            ]),
        );
        assert_eq!(out.len(), 3, "{out:?}");
        assert_eq!(
            out[0]["message"],
            json!({"role": "assistant", "content": "Hel"})
        );
        assert_eq!(out[0]["done"], false);
        assert!(out[0].get("done_reason").is_none());
        assert_eq!(out[1]["message"]["content"], "lo");
        let last = &out[2];
        assert_eq!(last["done"], true);
        assert_eq!(last["done_reason"], "length");
        assert_eq!(last["message"]["content"], "");
        assert_eq!(last["prompt_eval_count"], 7);
        assert_eq!(last["eval_count"], 2);
        assert_eq!(last["prompt_eval_duration"], 1_500_000);
        assert_eq!(last["eval_duration"], 20_000_000);
        assert!(last["total_duration"].as_u64().unwrap() > 0);
        assert_eq!(last["load_duration"], 0);
        assert!(t.is_finished());
    }

    #[test]
    fn completion_chunks_become_generate_lines() {
        let mut t = transcoder(Endpoint::Completions, Shape::Generate);
        let out = run(
            &mut t,
            &sse(&[
                json!({"choices": [{"index": 0, "text": " the", "finish_reason": null}]}),
                json!({"choices": [{"index": 0, "text": " capital", "finish_reason": null}]}),
                json!({"choices": [{"index": 0, "text": "", "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 6, "completion_tokens": 2}}),
            ]),
        );
        let text: String = out
            .iter()
            .map(|l| l["response"].as_str().unwrap())
            .collect();
        assert_eq!(text, " the capital");
        assert_eq!(out.last().unwrap()["done_reason"], "stop");
        assert_eq!(out.last().unwrap()["eval_count"], 2);
        assert!(out.iter().all(|l| l.get("message").is_none()));
    }

    #[test]
    fn streamed_tool_call_fragments_are_joined_into_one_ollama_tool_call() {
        let mut t = transcoder(Endpoint::ChatCompletions, Shape::Chat);
        let out = run(
            &mut t,
            &sse(&[
                json!({"choices": [{"index": 0, "delta": {"tool_calls": [
                    {"index": 0, "id": "c1", "type": "function",
                     "function": {"name": "weather", "arguments": "{\"ci"}}]}}]}),
                json!({"choices": [{"index": 0, "delta": {"tool_calls": [
                    {"index": 0, "function": {"arguments": "ty\":\"Paris\"}"}}]}}]}),
                json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
            ]),
        );
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(
            out[0]["message"]["tool_calls"],
            json!([{"function": {"name": "weather", "arguments": {"city": "Paris"}}}])
        );
        assert_eq!(out[1]["done_reason"], "stop");
    }

    #[test]
    fn reasoning_becomes_thinking() {
        let mut t = transcoder(Endpoint::ChatCompletions, Shape::Chat);
        let out = run(
            &mut t,
            &sse(&[
                json!({"choices": [{"index": 0, "delta": {"reasoning_content": "hmm"}}]}),
                json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
            ]),
        );
        assert_eq!(out[0]["message"]["thinking"], "hmm");
    }

    #[test]
    fn an_error_event_becomes_an_error_line_and_ends_the_stream() {
        let mut t = transcoder(Endpoint::ChatCompletions, Shape::Chat);
        let out = run(
            &mut t,
            "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n\
             data: {\"error\":{\"message\":\"context full\",\"type\":\"server_error\"}}\n\n",
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[1], json!({"error": "context full"}));
    }

    #[test]
    fn a_stream_cut_before_the_end_ends_with_an_error_line() {
        let mut t = transcoder(Endpoint::Completions, Shape::Generate);
        let out = run(
            &mut t,
            "data: {\"choices\":[{\"text\":\"a\",\"finish_reason\":null}]}\n\n",
        );
        assert_eq!(out.len(), 2);
        assert!(
            out[1]["error"]
                .as_str()
                .unwrap()
                .contains("before the answer")
        );
    }

    #[test]
    fn a_stream_without_done_marker_still_ends_with_a_done_line() {
        let mut t = transcoder(Endpoint::Completions, Shape::Generate);
        let out = run(
            &mut t,
            "data: {\"choices\":[{\"text\":\"a\",\"finish_reason\":\"stop\"}]}\n\n",
        );
        assert_eq!(out.last().unwrap()["done"], true);
    }

    #[test]
    fn a_huge_tool_call_index_is_ignored_not_allocated() {
        // Found by proptest: `index` was used as a length, so a node sending u32::MAX aborted the
        // router (a 200 GB allocation) and u64::MAX overflowed.
        for index in [u64::from(u32::MAX), u64::MAX] {
            let mut t = transcoder(Endpoint::ChatCompletions, Shape::Chat);
            let out = run(
                &mut t,
                &sse(&[
                    json!({"choices": [{"delta": {"tool_calls": [
                        {"index": index, "function": {"name": "f", "arguments": "{}"}}]}}]}),
                    json!({"choices": [{"delta": {}, "finish_reason": "stop"}]}),
                ]),
            );
            assert_eq!(out.len(), 1, "{out:?}");
            assert_eq!(out[0]["done"], true);
        }
    }

    #[test]
    fn passthrough_only_passes_whole_lines() {
        let mut p = Passthrough::default();
        let mut out = Vec::new();
        p.feed(b"{\"a\":1}\n{\"b\"", &mut out);
        assert_eq!(out, b"{\"a\":1}\n");
        p.feed(b":2}\n", &mut out);
        assert_eq!(out, b"{\"a\":1}\n{\"b\":2}\n");
        p.feed(b"{\"c\":3}", &mut out);
        p.finish(&mut out);
        assert_eq!(out, b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n");
    }
}
