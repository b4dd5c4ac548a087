//! Relaying a node's answer to an Ollama client: streamed answers line by line as they are
//! produced (never buffered), whole answers read and handed back for translation. The slot's
//! [`Lease`] is held until the node's answer has been read to its end or the client went away;
//! the request's [`Recording`] sees the bytes the client gets and is closed when the answer ends.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use futures_util::Stream;
use llm_router_protocol::ollama::ErrorResponse;
use serde_json::Value;

use super::render::error_line;
use super::response::error_message;
use super::transcoder::LineSource;
use crate::history::Recording;
use crate::proxy::{NODE_HEADER, QUEUE_MS_HEADER, Upstream, queue_ms};
use crate::queue::Lease;
use crate::registry::Registry;

/// Content type of Ollama's streamed answers.
pub const NDJSON: &str = "application/x-ndjson";

/// Headers naming the node and the time waited for it.
fn router_headers(lease: &Lease, queued: Duration) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let node = lease.node();
    let name = HeaderValue::from_str(&node.machine_name)
        .or_else(|_| HeaderValue::from_str(&node.id))
        .unwrap_or(HeaderValue::from_static("unknown"));
    headers.insert(NODE_HEADER, name);
    headers.insert(QUEUE_MS_HEADER, queue_ms(queued));
    headers
}

/// Marks the node of `lease` as failed (its connection broke mid-answer).
fn report_failure(lease: &Lease, registry: &Registry, error: &dyn std::fmt::Display) {
    let node = lease.node();
    node.counters.record_failure();
    tracing::warn!(node = %node.machine_name, %error, "node failed mid-answer");
    if let Some(t) = registry.report_failure(&node.id) {
        tracing::warn!(node = %t.machine_name, to = t.to.as_str(), "node marked suspect");
    }
}

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
        queued,
        sent_at,
        ..
    } = upstream;
    let status = response.status();
    let mut recording = recording;
    if let Some(r) = recording.as_mut() {
        r.answered(lease.node(), status, queued, sent_at);
    }
    let body = response.bytes().await.unwrap_or_default();
    let headers = router_headers(&lease, queued);
    drop(lease);
    let message = error_message(&body);
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
        queued,
        sent_at,
        ..
    } = upstream;
    if let Some(r) = recording.as_mut() {
        r.answered(lease.node(), response.status(), queued, sent_at);
    }
    let headers = router_headers(&lease, queued);
    let failure = match response.bytes().await {
        Ok(body) => {
            drop(lease);
            match serde_json::from_slice(&body) {
                Ok(value) => return Ok((headers, value)),
                Err(e) => format!("the node's answer is not JSON: {e}"),
            }
        }
        Err(e) => {
            report_failure(&lease, registry, &e);
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
    source: impl LineSource + 'static,
    recording: Option<Recording>,
) -> Response {
    let Upstream {
        response,
        lease,
        queued,
        sent_at,
        ..
    } = upstream;
    let status = response.status();
    let mut recording = recording;
    if let Some(r) = recording.as_mut() {
        r.answered(lease.node(), status, queued, sent_at);
    }
    let mut headers = router_headers(&lease, queued);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(NDJSON));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let stream = NdjsonStream {
        inner: Box::pin(response.bytes_stream()),
        source: Box::new(source),
        lease: Some(lease),
        recording,
        registry,
        done: false,
    };
    let mut out = Response::new(Body::from_stream(stream));
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    out
}

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// The node's body, transformed line by line, holding the lease until it ends.
struct NdjsonStream {
    inner: ByteStream,
    source: Box<dyn LineSource>,
    lease: Option<Lease>,
    recording: Option<Recording>,
    registry: Arc<Registry>,
    done: bool,
}

impl NdjsonStream {
    /// The answer is over: free the slot and close the recording.
    fn end(&mut self, broke: Option<String>) {
        self.done = true;
        self.lease = None;
        if let Some(mut recording) = self.recording.take() {
            match broke.or_else(|| self.source.failure()) {
                Some(error) => recording.broke(error),
                None => recording.completed(),
            }
        }
    }
}

impl Stream for NdjsonStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            let mut out = Vec::new();
            let mut broke = None;
            let finished = match self.inner.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    self.source.feed(&chunk, &mut out);
                    self.source.is_finished()
                }
                Poll::Ready(None) => {
                    self.source.finish(&mut out);
                    true
                }
                Poll::Ready(Some(Err(e))) => {
                    if let Some(lease) = &self.lease {
                        report_failure(lease, &self.registry, &e);
                    }
                    let message = format!("the node serving this request failed mid-stream: {e}");
                    out = error_line(message.clone());
                    broke = Some(message);
                    true
                }
            };
            if let Some(recording) = self.recording.as_mut() {
                recording.observe(&out);
            }
            if finished {
                self.end(broke);
            }
            if !out.is_empty() {
                return Poll::Ready(Some(Ok(Bytes::from(out))));
            }
        }
    }
}
