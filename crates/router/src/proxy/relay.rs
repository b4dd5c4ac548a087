//! Relaying a node's answer to the client without buffering.

use axum::body::Body;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use futures_util::StreamExt;

use crate::registry::{InFlightGuard, Node};

/// Response header naming the node that served the request.
pub const NODE_HEADER: HeaderName = HeaderName::from_static("x-llm-router-node");

/// Turns the node's response into the client's: same status, content type and bytes, each chunk
/// passed on as soon as it arrives. `guard` lives as long as the body, so the node's in-flight
/// count drops when the stream ends or the client goes away.
pub fn relay(upstream: reqwest::Response, node: &Node, guard: InFlightGuard) -> Response {
    let status = upstream.status();
    let mut headers = axum::http::HeaderMap::new();
    for name in [CONTENT_TYPE, CACHE_CONTROL] {
        if let Some(value) = upstream.headers().get(&name) {
            headers.insert(name, value.clone());
        }
    }
    let node_name = HeaderValue::from_str(&node.machine_name)
        .or_else(|_| HeaderValue::from_str(&node.id))
        .unwrap_or(HeaderValue::from_static("unknown"));
    headers.insert(NODE_HEADER, node_name);

    let stream = upstream.bytes_stream().map(move |chunk| {
        let _held = &guard;
        chunk
    });
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}
