//! Relaying a node's answer to an Ollama client: streamed answers through the shared relay
//! ([`crate::proxy::relay`]) as NDJSON lines, one write per node chunk (never buffered); whole
//! answers read (at most [`MAX_ANSWER_BYTES`]; beyond, a 502 naming the node) and handed back for
//! translation. The request's [`Recording`] sees the bytes the
//! client gets and is closed when the answer ends.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use llm_router_protocol::ollama::ErrorResponse;
use serde_json::Value;

use super::render::error_line;
use super::response::error_message;
use super::transcoder::LineSource;
use crate::dispatch::{Phase, Upstream, report_failure};
use crate::history::Recording;
use crate::proxy::{ErrorFrame, Transform, answered, relay};
use crate::registry::{
    AnswerError, MAX_ANSWER_BYTES, MAX_SMALL_ANSWER_BYTES, Registry, read_answer,
};
use llm_router_common::text::{MAX_ERROR, capped};

/// Content type of Ollama's streamed answers.
pub const NDJSON: &str = "application/x-ndjson";

/// `{"error": message}` with `status` (and `Retry-After` on 503).
pub fn error_response(status: StatusCode, message: impl Into<String>) -> Response {
    let mut response = json_response(status, HeaderMap::new(), &ErrorResponse::new(message));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// `value` as a JSON response with `status` and `headers`.
pub fn json_response(
    status: StatusCode,
    headers: HeaderMap,
    value: &impl serde::Serialize,
) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    bytes_response(status, headers, Bytes::from(body))
}

fn bytes_response(status: StatusCode, headers: HeaderMap, body: Bytes) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// `value` as the whole answer of a recorded request.
pub fn recorded_json(
    headers: HeaderMap,
    value: &impl serde::Serialize,
    recording: Option<Recording>,
) -> Response {
    let body = Bytes::from(serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec()));
    if let Some(mut recording) = recording {
        recording.observe(&body);
        recording.completed();
    }
    bytes_response(StatusCode::OK, headers, body)
}

/// A node's error answer (any non-2xx) as an Ollama error with the node's status.
pub async fn upstream_error(upstream: Upstream, recording: Option<Recording>) -> Response {
    let Upstream {
        response,
        lease,
        dispatched,
    } = upstream;
    let status = response.status();
    let mut recording = recording;
    let headers = answered(&lease, status, dispatched, recording.as_mut());
    let node = lease.node().machine_name.clone();
    let message = match read_answer(response, MAX_SMALL_ANSWER_BYTES).await {
        Ok(body) => capped(&error_message(&body), MAX_ERROR).into_owned(),
        Err(AnswerError::TooLarge(max)) => {
            format!("node '{node}' answered with an error body larger than {max} bytes")
        }
        Err(AnswerError::Failed(e)) => format!("node '{node}' answered {status}: {e}"),
    };
    drop(lease);
    let mut out = error_response(status, message.clone());
    out.headers_mut().extend(headers);
    if let Some(mut r) = recording {
        r.broke(message);
    }
    out
}

/// Reads a node's whole JSON answer. `Err` is the response to send instead (the node's answer
/// broke off or was not JSON), the recording then closed.
pub async fn read_json(
    upstream: Upstream,
    registry: &Registry,
    recording: &mut Option<Recording>,
) -> Result<(HeaderMap, Value), Response> {
    let Upstream {
        response,
        lease,
        dispatched,
    } = upstream;
    let headers = answered(&lease, response.status(), dispatched, recording.as_mut());
    let failure = match read_answer(response, MAX_ANSWER_BYTES).await {
        Ok(body) => {
            drop(lease);
            if let Some(r) = recording.as_mut() {
                r.node_answer(&body);
            }
            match serde_json::from_slice(&body) {
                Ok(value) => return Ok((headers, value)),
                Err(e) => format!("the node's answer is not JSON: {e}"),
            }
        }
        Err(AnswerError::TooLarge(max)) => {
            let node = &lease.node().machine_name;
            tracing::warn!(node = %node, max, "a non-streamed answer over the cap was refused");
            format!(
                "node '{node}' sent a non-streamed answer larger than {max} bytes, more than the \
                 router buffers (ask with \"stream\": true for a longer answer)"
            )
        }
        Err(AnswerError::Failed(e)) => {
            report_failure(registry, lease.node(), Phase::MidAnswer, &e);
            format!("the node serving this request failed mid-answer: {e}")
        }
    };
    if let Some(mut r) = recording.take() {
        r.broke(failure.clone());
    }
    let mut out = error_response(StatusCode::BAD_GATEWAY, failure);
    out.headers_mut().extend(headers);
    Err(out)
}

/// Streams the node's answer through `source`, one NDJSON write per node chunk. If the node fails
/// mid-stream, the client gets a last `{"error": ...}` line and a clean end, and the node is
/// marked suspect.
pub fn ndjson(
    upstream: Upstream,
    registry: Arc<Registry>,
    source: impl LineSource + Unpin + 'static,
    recording: Option<Recording>,
) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(NDJSON));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    relay(upstream, headers, Lines(source), recording, registry)
}

/// The Ollama API's transform: a [`LineSource`] writing whole NDJSON lines.
struct Lines<S>(S);

impl<S: LineSource + Unpin + 'static> Transform for Lines<S> {
    fn feed(&mut self, chunk: Bytes) -> Bytes {
        let mut out = Vec::new();
        self.0.feed(&chunk, &mut out);
        Bytes::from(out)
    }

    fn finish(&mut self) -> Bytes {
        let mut out = Vec::new();
        self.0.finish(&mut out);
        Bytes::from(out)
    }

    fn is_finished(&self) -> bool {
        self.0.is_finished()
    }

    fn translates(&self) -> bool {
        self.0.translates()
    }

    fn failure(&self) -> Option<String> {
        self.0.failure()
    }

    fn error_frame(&self, error: &reqwest::Error) -> ErrorFrame {
        let reason = format!("the node serving this request failed mid-stream: {error}");
        ErrorFrame {
            bytes: Some(Bytes::from(error_line(reason.clone()))),
            part_of_answer: true,
            reason,
        }
    }
}
