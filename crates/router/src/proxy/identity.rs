//! The OpenAI API's transform: the node's answer as it is — same content type, same bytes. If the
//! node fails mid-stream, an SSE stream ends with a well-formed `error` event (and no `[DONE]`);
//! any other body ends with a transport error.

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use llm_router_protocol::openai::ErrorResponse;

use super::relay::{ErrorFrame, Transform};

/// Passes the node's bytes on unchanged.
#[derive(Debug)]
pub struct Identity {
    is_sse: bool,
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
        (headers, Identity { is_sse })
    }
}

impl Transform for Identity {
    fn feed(&mut self, chunk: Bytes) -> Bytes {
        chunk
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
