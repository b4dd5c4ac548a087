//! Inference routes: forwarded by `model` to the runtime serving it, streamed back unbuffered.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::Response;
use futures_util::StreamExt;
use serde::Deserialize;

use super::NodeApiError;
use crate::state::NodeState;

#[derive(Deserialize)]
struct ModelField {
    model: String,
}

pub async fn chat_completions(
    State(state): State<NodeState>,
    body: Bytes,
) -> Result<Response, NodeApiError> {
    forward(&state, "/v1/chat/completions", body).await
}

pub async fn completions(
    State(state): State<NodeState>,
    body: Bytes,
) -> Result<Response, NodeApiError> {
    forward(&state, "/v1/completions", body).await
}

pub async fn embeddings(
    State(state): State<NodeState>,
    body: Bytes,
) -> Result<Response, NodeApiError> {
    forward(&state, "/v1/embeddings", body).await
}

async fn forward(state: &NodeState, path: &str, body: Bytes) -> Result<Response, NodeApiError> {
    let ModelField { model } =
        serde_json::from_slice(&body).map_err(|e| NodeApiError::InvalidRequest(e.to_string()))?;
    let runtime = state
        .model(&model)
        .ok_or_else(|| NodeApiError::ModelNotFound(model.clone()))?;
    let port = runtime
        .ready_port()
        .ok_or_else(|| NodeApiError::ModelNotReady(model.clone()))?;
    let guard = state.counters.start();
    let upstream = state
        .http
        .post(format!("http://127.0.0.1:{port}{path}"))
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| NodeApiError::Runtime(e.to_string()))?;

    let mut response = Response::builder().status(upstream.status());
    for name in [CONTENT_TYPE, CACHE_CONTROL] {
        if let Some(value) = upstream.headers().get(&name) {
            response = response.header(name, value.clone());
        }
    }
    let stream = upstream.bytes_stream().map(move |chunk| {
        let _held = &guard;
        chunk
    });
    response
        .body(Body::from_stream(stream))
        .map_err(|e| NodeApiError::Runtime(e.to_string()))
}
