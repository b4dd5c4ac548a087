//! The transform of the APIs whose answers are relayed as the node sent them (OpenAI's chat,
//! completions, embeddings and Responses APIs; Anthropic's Messages API): same content type, same
//! bytes. What differs per [`Dialect`]:
//!
//! - where an SSE answer is complete (OpenAI's `data: [DONE]`, the Responses API's final
//!   `response.completed` / `.incomplete` / `.failed` event, Anthropic's `message_stop`): a client
//!   that leaves right after it has its whole answer;
//! - the error event that ends a stream whose node failed mid-answer, in the API's own shape;
//! - Anthropic only: an error answer of the node (OpenAI-shaped, from the node or llama-server) is
//!   rewritten into Anthropic's `{"type":"error","error":{...}}`, so its SDK reads the message.

use axum::body::Bytes;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue};
use llm_router_protocol::{anthropic, openai::ErrorResponse};
use serde_json::Value;

use super::relay::{ErrorFrame, Transform};

/// The end of an OpenAI SSE answer.
const SSE_DONE: &[u8] = b"data: [DONE]";
/// Largest error body rewritten into Anthropic's shape; a longer one is passed on as it is.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Which API's conventions an answer follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Chat completions, completions, embeddings.
    OpenAi,
    /// OpenAI's Responses API.
    Responses,
    /// Anthropic's Messages API.
    Anthropic,
}

impl Dialect {
    /// Event lines that end a complete SSE answer (none: the `[DONE]` data line). Each starts a
    /// line: a JSON data line holds no raw newline, so text inside the answer cannot match.
    fn final_events(self) -> &'static [&'static [u8]] {
        match self {
            Dialect::OpenAi => &[],
            Dialect::Responses => &[
                b"\nevent: response.completed",
                b"\nevent: response.incomplete",
                b"\nevent: response.failed",
            ],
            Dialect::Anthropic => &[b"\nevent: message_stop"],
        }
    }
}

/// Passes the node's bytes on unchanged (but for Anthropic error answers).
#[derive(Debug)]
pub struct Identity {
    dialect: Dialect,
    is_sse: bool,
    /// The last bytes passed on (an end marker may be split across chunks).
    tail: Vec<u8>,
    /// A final event's name was seen; the answer is complete at the blank line closing it.
    final_event: bool,
    done: bool,
    /// An Anthropic error answer, held until its end to be rewritten.
    error_body: Option<Vec<u8>>,
    /// The node's status (what an Anthropic error's type follows).
    status: u16,
}

impl Identity {
    /// The transform for `response` in OpenAI's dialect and the content headers the client gets.
    pub fn of(response: &reqwest::Response) -> (HeaderMap, Identity) {
        Self::for_dialect(response, Dialect::OpenAi)
    }

    /// The transform for `response` in `dialect` and the content headers the client gets.
    pub fn for_dialect(response: &reqwest::Response, dialect: Dialect) -> (HeaderMap, Identity) {
        let mut headers = HeaderMap::new();
        for name in [CONTENT_TYPE, CACHE_CONTROL] {
            if let Some(value) = response.headers().get(&name) {
                headers.insert(name, value.clone());
            }
        }
        let is_sse = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let rewrite = dialect == Dialect::Anthropic && !response.status().is_success() && !is_sse;
        if rewrite {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let mut identity = Identity::new(dialect, is_sse, rewrite.then(Vec::new));
        identity.status = response.status().as_u16();
        (headers, identity)
    }

    fn new(dialect: Dialect, is_sse: bool, error_body: Option<Vec<u8>>) -> Self {
        Identity {
            dialect,
            is_sse,
            tail: Vec::new(),
            final_event: false,
            done: false,
            error_body,
            status: 200,
        }
    }

    /// Follows the end of an SSE answer through `chunk`.
    fn watch(&mut self, chunk: &[u8]) {
        let keep = 64;
        let start = self.tail.len();
        self.tail.extend_from_slice(chunk);
        match self.dialect {
            Dialect::OpenAi => {
                self.done = self.tail.trim_ascii_end().ends_with(SSE_DONE);
            }
            dialect => {
                // Search where the new bytes may complete a marker (a marker straddles at most
                // `keep` bytes of the old tail).
                let from = start.saturating_sub(keep);
                let window = &self.tail[from..];
                if !self.final_event
                    && let Some(at) = dialect
                        .final_events()
                        .iter()
                        .filter_map(|m| find(window, m))
                        .min()
                {
                    self.final_event = true;
                    // Only what follows the marker may close its event.
                    self.tail.drain(..from + at);
                }
                if self.final_event && find(&self.tail, b"\n\n").is_some() {
                    self.done = true;
                }
            }
        }
        let excess = self.tail.len().saturating_sub(keep);
        self.tail.drain(..excess);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl Transform for Identity {
    fn feed(&mut self, chunk: Bytes) -> Bytes {
        if let Some(body) = self.error_body.as_mut() {
            if body.len() + chunk.len() <= MAX_ERROR_BODY {
                body.extend_from_slice(&chunk);
                return Bytes::new();
            }
            // Too long to be an error body the router understands: passed on as it is.
            let mut all = std::mem::take(body);
            all.extend_from_slice(&chunk);
            self.error_body = None;
            return Bytes::from(all);
        }
        if self.is_sse && !self.done {
            self.watch(&chunk);
        }
        chunk
    }

    fn complete(&self) -> bool {
        self.done
    }

    fn finish(&mut self) -> Bytes {
        match self.error_body.take() {
            Some(body) => Bytes::from(anthropic_error(&body, self.status)),
            None => Bytes::new(),
        }
    }

    fn error_frame(&self, error: &reqwest::Error) -> ErrorFrame {
        let message = format!("the node serving this request failed mid-stream: {error}");
        ErrorFrame {
            bytes: self.is_sse.then(|| sse_error_event(self.dialect, message)),
            part_of_answer: false,
            reason: format!("the node failed mid-stream: {error}"),
        }
    }
}

/// A node's error answer (OpenAI's `{"error": {"message", ...}}`, or any text) of `status` in
/// Anthropic's shape. The status stays; the type follows it.
fn anthropic_error(body: &[u8], status: u16) -> Vec<u8> {
    let parsed = serde_json::from_slice::<Value>(body).ok();
    let already = parsed
        .as_ref()
        .is_some_and(|v| v["type"] == "error" && v["error"]["type"].is_string());
    if already {
        return body.to_vec();
    }
    let message = parsed
        .as_ref()
        .and_then(|v| v["error"]["message"].as_str().or(v["error"].as_str()))
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    let kind = anthropic::ErrorResponse::kind_for_status(status);
    serde_json::to_vec(&anthropic::ErrorResponse::new(kind, message)).unwrap_or_default()
}

/// The error event that ends a stream whose node failed, in `dialect`'s shape: OpenAI's
/// `data: {"error": {...}}`, the Responses API's `error` event, Anthropic's `error` event.
fn sse_error_event(dialect: Dialect, message: String) -> Bytes {
    let text = match dialect {
        Dialect::OpenAi => {
            let body = ErrorResponse::new(message, "server_error", Some("upstream_disconnected"));
            let json = serde_json::to_string(&body).unwrap_or_else(|_| "{}".to_owned());
            format!("data: {json}\n\n")
        }
        Dialect::Responses => {
            let body = serde_json::json!({
                "type": "error", "code": "upstream_disconnected", "message": message, "param": null,
            });
            format!("event: error\ndata: {body}\n\n")
        }
        Dialect::Anthropic => {
            let body = anthropic::ErrorResponse::new("api_error", message);
            let json = serde_json::to_string(&body).unwrap_or_else(|_| "{}".to_owned());
            format!("event: error\ndata: {json}\n\n")
        }
    };
    Bytes::from(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sse() -> Identity {
        Identity::new(Dialect::OpenAi, true, None)
    }

    #[test]
    fn an_sse_answer_is_finished_at_its_done_event_even_split_across_chunks() {
        let mut t = sse();
        t.feed(Bytes::from_static(b"data: {\"choices\":[]}\n\n"));
        assert!(!t.complete());
        t.feed(Bytes::from_static(b"data: [DO"));
        assert!(!t.complete());
        t.feed(Bytes::from_static(b"NE]\n\n"));
        assert!(t.complete());
        let mut whole = sse();
        whole.feed(Bytes::from_static(b"data: {}\n\ndata: [DONE]\n\n"));
        assert!(whole.complete());
        // `[DONE]` inside content is not the end.
        let mut inside = sse();
        inside.feed(Bytes::from_static(b"data: {\"x\":\"[DONE]\"}\n\n"));
        assert!(!inside.complete());
    }

    #[test]
    fn responses_and_anthropic_streams_are_finished_once_their_final_event_closes() {
        let mut r = Identity::new(Dialect::Responses, true, None);
        r.feed(Bytes::from_static(
            b"event: x\ndata: {}\n\nevent: response.output_text.delta\ndata: {\"delta\":\"event: response.completed\"}\n\n",
        ));
        assert!(!r.complete(), "the answer's text is not an event line");
        let mut r = Identity::new(Dialect::Responses, true, None);
        r.feed(Bytes::from_static(
            b"event: response.created\ndata: {}\n\nevent: respon",
        ));
        assert!(!r.complete());
        r.feed(Bytes::from_static(
            b"se.completed\ndata: {\"type\":\"response.comp",
        ));
        assert!(!r.complete(), "the final event's data has not ended");
        r.feed(Bytes::from_static(b"leted\"}\n\n"));
        assert!(r.complete());
        let mut a = Identity::new(Dialect::Anthropic, true, None);
        a.feed(Bytes::from_static(b"event: message_start\ndata: {}\n\n"));
        a.feed(Bytes::from_static(b"event: message_delta\ndata: {}\n\n"));
        assert!(!a.complete());
        a.feed(Bytes::from_static(
            b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        ));
        assert!(a.complete());
    }

    #[test]
    fn anthropic_error_answers_are_rewritten_into_its_shape() {
        let mut t = Identity::new(Dialect::Anthropic, false, Some(Vec::new()));
        t.status = 400;
        assert!(
            t.feed(Bytes::from_static(
                br#"{"error":{"code":400,"message":"Field 'max_tokens': bad","#
            ))
            .is_empty()
        );
        t.feed(Bytes::from_static(br#""type":"invalid_request_error"}}"#));
        let out: Value = serde_json::from_slice(&t.finish()).unwrap();
        assert_eq!(
            out,
            serde_json::json!({"type": "error", "error": {
                "type": "invalid_request_error", "message": "Field 'max_tokens': bad"}})
        );
        // The node's own 404 for a model it does not serve.
        let node = br#"{"error":{"message":"the model 'x' is not served by this node","type":"invalid_request_error","param":null,"code":"model_not_found"}}"#;
        let out: Value = serde_json::from_slice(&anthropic_error(node, 404)).unwrap();
        assert_eq!(out["error"]["type"], "not_found_error");
        let overloaded: Value = serde_json::from_slice(&anthropic_error(node, 503)).unwrap();
        assert_eq!(overloaded["error"]["type"], "overloaded_error");
        // Plain text, and a body already in Anthropic's shape.
        let out: Value =
            serde_json::from_slice(&anthropic_error(b"404 page not found", 404)).unwrap();
        assert_eq!(out["error"]["message"], "404 page not found");
        let own = br#"{"type":"error","error":{"type":"overloaded_error","message":"m"}}"#;
        assert_eq!(anthropic_error(own, 503), own.to_vec());
        // A huge body is passed on as it is.
        let mut big = Identity::new(Dialect::Anthropic, false, Some(Vec::new()));
        let out = big.feed(Bytes::from(vec![b'x'; MAX_ERROR_BODY + 1]));
        assert_eq!(out.len(), MAX_ERROR_BODY + 1);
        assert!(big.finish().is_empty());
    }

    #[test]
    fn mid_stream_errors_take_each_api_shape() {
        let r = sse_error_event(Dialect::Responses, "gone".into());
        assert!(r.starts_with(b"event: error\ndata: {"));
        let a = sse_error_event(Dialect::Anthropic, "gone".into());
        let json: Value = serde_json::from_slice(&a["event: error\ndata: ".len()..]).unwrap();
        assert_eq!(json["error"]["type"], "api_error");
        assert!(sse_error_event(Dialect::OpenAi, "gone".into()).starts_with(b"data: {\"error\""));
    }
}
