//! The OpenAI API's transform: the node's answer as it is — same content type, same bytes. If the
//! node fails mid-stream, an SSE stream ends with a well-formed `error` event (and no `[DONE]`);
//! any other body ends with a transport error. An SSE answer is complete at its `data: [DONE]`
//! event: a client that leaves right after it has its whole answer.

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use llm_router_protocol::openai::ErrorResponse;

use super::relay::{ErrorFrame, Transform};

/// The end of an SSE answer.
const SSE_DONE: &[u8] = b"data: [DONE]";

/// Passes the node's bytes on unchanged.
#[derive(Debug)]
pub struct Identity {
    is_sse: bool,
    /// The last bytes passed on (an SSE answer's end may be split across chunks).
    tail: Vec<u8>,
    done: bool,
}

impl Identity {
    /// The transform for `response` and the content headers the client gets from it.
    pub fn of(response: &reqwest::Response) -> (HeaderMap, Identity) {
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
        (
            headers,
            Identity {
                is_sse,
                tail: Vec::new(),
                done: false,
            },
        )
    }
}

impl Transform for Identity {
    fn feed(&mut self, chunk: Bytes) -> Bytes {
        if self.is_sse {
            self.tail
                .extend_from_slice(&chunk[chunk.len().saturating_sub(2 * SSE_DONE.len())..]);
            self.tail
                .drain(..self.tail.len().saturating_sub(2 * SSE_DONE.len()));
            self.done = self.tail.trim_ascii_end().ends_with(SSE_DONE);
        }
        chunk
    }

    fn complete(&self) -> bool {
        self.done
    }

    fn finish(&mut self) -> Bytes {
        Bytes::new()
    }

    fn error_frame(&self, error: &reqwest::Error) -> ErrorFrame {
        ErrorFrame {
            bytes: self.is_sse.then(|| sse_error_event(error)),
            part_of_answer: false,
            reason: format!("the node failed mid-stream: {error}"),
        }
    }
}

/// `data: {"error": {...}}` — how OpenAI-compatible servers report a failure inside a stream.
fn sse_error_event(e: &reqwest::Error) -> Bytes {
    let body = ErrorResponse::new(
        format!("the node serving this request failed mid-stream: {e}"),
        "server_error",
        Some("upstream_disconnected"),
    );
    let json = serde_json::to_string(&body).unwrap_or_else(|_| "{}".to_owned());
    Bytes::from(format!("data: {json}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sse() -> Identity {
        Identity {
            is_sse: true,
            tail: Vec::new(),
            done: false,
        }
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
}
