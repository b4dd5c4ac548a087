//! Relaying a node's answer to the client without buffering: one stream for every API, with a
//! per-API [`Transform`] (the bytes as they are for OpenAI, NDJSON lines for Ollama).
//!
//! The slot's [`Lease`] rides on the response body, so it is held until the node's answer has been
//! read to its end or the client went away; the request's [`Recording`] sees the bytes the client
//! gets and is closed when the answer ends. A node that breaks off mid-answer is reported once
//! ([`report_failure`]) and the client gets the API's last error frame.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use futures_util::Stream;

use crate::dispatch::{Dispatched, Lease, Phase, Upstream, report_failure};
use crate::history::Recording;
use crate::registry::{Node, Registry};
use crate::store::Routing;

/// Response header naming the node that served the request.
pub const NODE_HEADER: HeaderName = HeaderName::from_static("x-llm-router-node");
/// Response header with the milliseconds the request waited for a slot.
pub const QUEUE_MS_HEADER: HeaderName = HeaderName::from_static("x-llm-router-queue-ms");
/// Response header naming the balancing policy that chose the node.
pub const POLICY_HEADER: HeaderName = HeaderName::from_static("x-llm-router-policy");
/// Response header: why the policy chose this node, when it says (`cache_aware`).
pub const REASON_HEADER: HeaderName = HeaderName::from_static("x-llm-router-reason");
/// Response header: nodes that had the model ready when this one was chosen.
pub const CANDIDATES_HEADER: HeaderName = HeaderName::from_static("x-llm-router-candidates");
/// Response header: nodes tried, this one included (more than 1 after a failover).
pub const ATTEMPTS_HEADER: HeaderName = HeaderName::from_static("x-llm-router-attempts");
/// Response header: prompt tokens the policy expected the node to reuse (`cache_aware`).
pub const PREDICTED_CACHED_HEADER: HeaderName =
    HeaderName::from_static("x-llm-router-predicted-cached-tokens");

/// Turns the bytes of a node's answer into the bytes the client gets, chunk by chunk.
pub trait Transform: Send + Unpin + 'static {
    /// Handles a chunk of the node's body; returns what the client gets now (possibly nothing).
    fn feed(&mut self, chunk: Bytes) -> Bytes;
    /// The node's body ended normally; returns the last bytes for the client.
    fn finish(&mut self) -> Bytes;
    /// True once the answer is complete: the rest of the node's body is not read.
    fn is_finished(&self) -> bool {
        false
    }
    /// True once the answer is complete as its API defines it (an SSE stream's `[DONE]`), though
    /// the node's body is read to its end: a client leaving now has its whole answer.
    fn complete(&self) -> bool {
        false
    }
    /// Why the answer ended with an error the transform wrote itself, if it did.
    fn failure(&self) -> Option<String> {
        None
    }
    /// True when the client's bytes are a translation of the node's, so the node's own counts
    /// (llama.cpp `timings`: what it reused from its cache) are read from the node's bytes.
    fn translates(&self) -> bool {
        false
    }
    /// The node's connection broke mid-answer with `error`: how the client learns it.
    fn error_frame(&self, error: &reqwest::Error) -> ErrorFrame;
}

/// The end of an answer whose node broke off.
#[derive(Debug)]
pub struct ErrorFrame {
    /// The last bytes the client gets; `None` ends the body with a transport error instead.
    pub bytes: Option<Bytes>,
    /// True when `bytes` are part of the answer as the API defines it (an Ollama error line) and
    /// the history keeps them; false for a notice the router adds (OpenAI's SSE error event).
    pub part_of_answer: bool,
    /// Why the answer broke, as the history records it.
    pub reason: String,
}

/// The headers every relayed answer carries: the node that served it, the time waited for it and
/// how it was chosen.
pub fn router_headers(node: &Node, queued: Duration, routing: &Routing) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let name = HeaderValue::from_str(&node.machine_name)
        .or_else(|_| HeaderValue::from_str(&node.id))
        .unwrap_or(HeaderValue::from_static("unknown"));
    headers.insert(NODE_HEADER, name);
    headers.insert(QUEUE_MS_HEADER, queue_ms(queued));
    if let Ok(policy) = HeaderValue::from_str(&routing.policy) {
        headers.insert(POLICY_HEADER, policy);
    }
    if let Some(reason) = routing
        .reason
        .as_deref()
        .and_then(|r| HeaderValue::from_str(r).ok())
    {
        headers.insert(REASON_HEADER, reason);
    }
    headers.insert(CANDIDATES_HEADER, HeaderValue::from(routing.candidates));
    headers.insert(ATTEMPTS_HEADER, HeaderValue::from(routing.attempts));
    if let Some(tokens) = routing.predicted_cached_tokens {
        headers.insert(PREDICTED_CACHED_HEADER, HeaderValue::from(tokens));
    }
    headers
}

/// A node answered with `status`: the recording learns which node and how it was chosen; returns
/// the [`router_headers`] for the client.
pub fn answered(
    lease: &Lease,
    status: StatusCode,
    dispatched: Dispatched,
    recording: Option<&mut Recording>,
) -> HeaderMap {
    let headers = router_headers(lease.node(), dispatched.queued, &dispatched.routing);
    if let Some(r) = recording {
        r.answered(lease.node(), status, dispatched.queued, dispatched.sent_at);
        r.routed(dispatched.routing, dispatched.prompt);
    }
    headers
}

/// `x-llm-router-queue-ms` value.
pub fn queue_ms(queued: Duration) -> HeaderValue {
    HeaderValue::from(u64::try_from(queued.as_millis()).unwrap_or(u64::MAX))
}

/// Streams the node's answer through `transform` with the node's status, `headers` (the API's
/// content headers) and the [`router_headers`]. Each chunk is passed on as soon as it is
/// transformed.
pub fn relay(
    upstream: Upstream,
    headers: HeaderMap,
    transform: impl Transform,
    recording: Option<Recording>,
    registry: Arc<Registry>,
) -> Response {
    let Upstream {
        response,
        lease,
        dispatched,
    } = upstream;
    let status = response.status();
    let mut recording = recording;
    let mut headers = headers;
    headers.extend(answered(&lease, status, dispatched, recording.as_mut()));
    let stream = RelayStream {
        inner: Box::pin(response.bytes_stream()),
        transform,
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

/// The node's body through a transform, holding the lease until it ends.
struct RelayStream<T> {
    inner: ByteStream,
    transform: T,
    lease: Option<Lease>,
    recording: Option<Recording>,
    registry: Arc<Registry>,
    done: bool,
}

impl<T: Transform> RelayStream<T> {
    fn observe(&mut self, bytes: &[u8]) {
        if let Some(recording) = self.recording.as_mut() {
            recording.observe(bytes);
        }
    }

    /// The answer is over: free the slot and close the recording.
    fn end(&mut self, broke: Option<String>) {
        self.done = true;
        self.lease = None;
        if let Some(mut recording) = self.recording.take() {
            match broke.or_else(|| self.transform.failure()) {
                Some(error) => recording.broke(error),
                None => recording.completed(),
            }
        }
    }

    /// The node's connection broke: report the node, end the answer with the API's error frame.
    fn broke(&mut self, error: reqwest::Error) -> Result<Bytes, std::io::Error> {
        if let Some(lease) = &self.lease {
            report_failure(&self.registry, lease.node(), Phase::MidStream, &error);
        }
        let frame = self.transform.error_frame(&error);
        if frame.part_of_answer
            && let Some(bytes) = &frame.bytes
        {
            self.observe(bytes);
        }
        self.end(Some(frame.reason));
        frame.bytes.ok_or_else(|| std::io::Error::other(error))
    }
}

impl<T: Transform> Stream for RelayStream<T> {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            let out = match ready!(this.inner.as_mut().poll_next(cx)) {
                Some(Ok(chunk)) => {
                    if let Some(lease) = this.lease.as_mut() {
                        lease.prompt_done();
                    }
                    if this.transform.translates()
                        && let Some(recording) = this.recording.as_mut()
                    {
                        recording.observe_node(&chunk);
                    }
                    let out = this.transform.feed(chunk);
                    this.observe(&out);
                    if this.transform.complete()
                        && let Some(recording) = this.recording.as_mut()
                    {
                        recording.completed();
                    }
                    if this.transform.is_finished() {
                        this.end(None);
                    }
                    out
                }
                None => {
                    let out = this.transform.finish();
                    if !out.is_empty() {
                        this.observe(&out);
                    }
                    this.end(None);
                    out
                }
                Some(Err(e)) => return Poll::Ready(Some(this.broke(e))),
            };
            if !out.is_empty() {
                return Poll::Ready(Some(Ok(out)));
            }
        }
    }
}
