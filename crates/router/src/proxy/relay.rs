//! Relaying a node's answer to the client without buffering.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;
use futures_util::Stream;
use llm_router_protocol::openai::ErrorResponse;

use super::Upstream;
use crate::history::Recording;
use crate::queue::Lease;
use crate::registry::Registry;

/// Response header naming the node that served the request.
pub const NODE_HEADER: HeaderName = HeaderName::from_static("x-llm-router-node");
/// Response header with the milliseconds the request waited for a slot.
pub const QUEUE_MS_HEADER: HeaderName = HeaderName::from_static("x-llm-router-queue-ms");

/// Turns the node's response into the client's: same status, content type and bytes, each chunk
/// passed on as soon as it arrives. The lease lives as long as the body, so the slot frees when
/// the stream ends or the client goes away. If the node fails mid-stream, an SSE stream ends
/// with a well-formed `error` event (and no `[DONE]`) and the node is marked suspect.
pub fn relay(upstream: Upstream, mut recording: Recording, registry: Arc<Registry>) -> Response {
    let Upstream {
        response: upstream,
        lease,
        queued,
        sent_at,
    } = upstream;
    let status = upstream.status();
    recording.answered(lease.node(), status, queued, sent_at);
    let mut headers = HeaderMap::new();
    for name in [CONTENT_TYPE, CACHE_CONTROL] {
        if let Some(value) = upstream.headers().get(&name) {
            headers.insert(name, value.clone());
        }
    }
    let node = lease.node();
    let node_name = HeaderValue::from_str(&node.machine_name)
        .or_else(|_| HeaderValue::from_str(&node.id))
        .unwrap_or(HeaderValue::from_static("unknown"));
    headers.insert(NODE_HEADER, node_name);
    headers.insert(
        QUEUE_MS_HEADER,
        HeaderValue::from(queued.as_millis() as u64),
    );
    let is_sse = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));

    let stream = RelayStream {
        inner: Box::pin(upstream.bytes_stream()),
        is_sse,
        done: false,
        lease: Some(lease),
        recording: Some(recording),
        registry,
    };
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// `x-llm-router-queue-ms` value.
pub fn queue_ms(queued: Duration) -> HeaderValue {
    HeaderValue::from(u64::try_from(queued.as_millis()).unwrap_or(u64::MAX))
}

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// The node's body, holding the lease until it ends.
struct RelayStream {
    inner: ByteStream,
    is_sse: bool,
    done: bool,
    lease: Option<Lease>,
    recording: Option<Recording>,
    registry: Arc<Registry>,
}

impl Stream for RelayStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.inner.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                if let Some(recording) = &mut self.recording {
                    recording.observe(&chunk);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(None) => {
                self.done = true;
                self.lease = None;
                if let Some(mut recording) = self.recording.take() {
                    recording.completed();
                }
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                self.done = true;
                let lease = self.lease.take();
                if let Some(lease) = &lease {
                    let node = lease.node();
                    node.counters.record_failure();
                    tracing::warn!(node = %node.machine_name, error = %e, "node failed mid-stream");
                    self.registry.report_failure(&node.id);
                }
                drop(lease);
                if let Some(mut recording) = self.recording.take() {
                    recording.broke(format!("the node failed mid-stream: {e}"));
                }
                if self.is_sse {
                    Poll::Ready(Some(Ok(sse_error_event(&e))))
                } else {
                    Poll::Ready(Some(Err(std::io::Error::other(e))))
                }
            }
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
