//! Inference routes: forwarded by `model` to the runtime serving it, streamed back unbuffered.
//! OpenAI routes (`/v1/...`) work on every runtime; Ollama routes (`/api/chat`, ...) only on an
//! Ollama runtime, which gets them untouched (the router sends them only to Ollama nodes).
//! The agent APIs — OpenAI's Responses API and Anthropic's Messages API — are served by the
//! runtimes themselves (llama-server; Ollama from 0.13.3 and 0.14): forwarded like the OpenAI
//! routes. A runtime that does not know the route (an older Ollama answers a plain-text 404) gets
//! the client a 404 naming this node, its runtime and the API.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::Response;
use futures_util::StreamExt;
use llm_router_protocol::ollama::LOAD_TIME_OPTIONS;
use serde_json::Value;

use super::NodeApiError;
use super::capabilities;
use crate::runtime::ModelRuntime;
use crate::state::NodeState;

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

pub async fn responses(
    State(state): State<NodeState>,
    body: Bytes,
) -> Result<Response, NodeApiError> {
    forward(&state, "/v1/responses", body).await
}

pub async fn responses_input_tokens(
    State(state): State<NodeState>,
    body: Bytes,
) -> Result<Response, NodeApiError> {
    forward(&state, "/v1/responses/input_tokens", body).await
}

pub async fn messages(
    State(state): State<NodeState>,
    body: Bytes,
) -> Result<Response, NodeApiError> {
    forward(&state, "/v1/messages", body).await
}

pub async fn count_tokens(
    State(state): State<NodeState>,
    body: Bytes,
) -> Result<Response, NodeApiError> {
    forward(&state, "/v1/messages/count_tokens", body).await
}

pub async fn ollama_chat(
    State(state): State<NodeState>,
    body: Bytes,
) -> Result<Response, NodeApiError> {
    forward_native(&state, "/api/chat", body).await
}

pub async fn ollama_generate(
    State(state): State<NodeState>,
    body: Bytes,
) -> Result<Response, NodeApiError> {
    forward_native(&state, "/api/generate", body).await
}

pub async fn ollama_embed(
    State(state): State<NodeState>,
    body: Bytes,
) -> Result<Response, NodeApiError> {
    forward_native(&state, "/api/embed", body).await
}

pub async fn ollama_embeddings(
    State(state): State<NodeState>,
    body: Bytes,
) -> Result<Response, NodeApiError> {
    forward_native(&state, "/api/embeddings", body).await
}

async fn forward(state: &NodeState, path: &str, body: Bytes) -> Result<Response, NodeApiError> {
    let (runtime, port, request) = route(state, &body)?;
    capabilities::check(path, &request, &runtime)?;
    let body = for_runtime(state, &runtime, request, body);
    relay(state, port, path, body).await
}

/// Ollama's own API, passed through to an Ollama runtime.
async fn forward_native(
    state: &NodeState,
    path: &str,
    body: Bytes,
) -> Result<Response, NodeApiError> {
    if !state.backend.speaks_ollama() {
        return Err(NodeApiError::InvalidRequest(format!(
            "this node's runtime ({}) speaks the OpenAI API only; send {path} requests as /v1 requests",
            state.backend.name()
        )));
    }
    let (runtime, port, mut request) = route(state, &body)?;
    let body = if keep_loaded(&mut request) {
        let name = state.backend.runtime_model(&runtime.spec);
        request["model"] = Value::String(name);
        Bytes::from(serde_json::to_vec(&request).unwrap_or_default())
    } else {
        for_runtime(state, &runtime, request, body)
    };
    relay(state, port, path, body).await
}

/// Removes what a client could use to unload or reload the node's model (`keep_alive`, the
/// [`LOAD_TIME_OPTIONS`]): the node keeps its models loaded with its own settings. True when it
/// removed any.
fn keep_loaded(request: &mut Value) -> bool {
    let mut changed = false;
    if let Some(map) = request.as_object_mut() {
        changed |= map.remove("keep_alive").is_some();
        if let Some(options) = map.get_mut("options").and_then(Value::as_object_mut) {
            for key in LOAD_TIME_OPTIONS {
                changed |= options.remove(*key).is_some();
            }
        }
    }
    if changed {
        tracing::debug!(
            "keep_alive and load-time options removed: the node keeps its models loaded"
        );
    }
    changed
}

/// The model's runtime and its port, and the parsed request.
fn route(state: &NodeState, body: &[u8]) -> Result<(Arc<ModelRuntime>, u16, Value), NodeApiError> {
    let request: Value =
        serde_json::from_slice(body).map_err(|e| NodeApiError::InvalidRequest(e.to_string()))?;
    let model = request["model"]
        .as_str()
        .ok_or_else(|| NodeApiError::InvalidRequest("'model' must be a string".to_owned()))?;
    let runtime = state
        .model(model)
        .ok_or_else(|| NodeApiError::ModelNotFound(model.to_owned()))?;
    let port = runtime
        .ready_port()
        .ok_or_else(|| NodeApiError::ModelNotReady(model.to_owned()))?;
    Ok((runtime, port, request))
}

/// The body with `model` set to the runtime's name for it (an Ollama model such as
/// `gemma3:270m` behind the node's `gemma3-270m`); the exact bytes received when the names match.
fn for_runtime(
    state: &NodeState,
    runtime: &ModelRuntime,
    mut request: Value,
    body: Bytes,
) -> Bytes {
    let name = state.backend.runtime_model(&runtime.spec);
    if request["model"].as_str() == Some(name.as_str()) {
        return body;
    }
    request["model"] = Value::String(name);
    Bytes::from(serde_json::to_vec(&request).unwrap_or_default())
}

async fn relay(
    state: &NodeState,
    port: u16,
    path: &str,
    body: Bytes,
) -> Result<Response, NodeApiError> {
    let guard = state.counters.start();
    let upstream = state
        .http
        .post(format!("http://127.0.0.1:{port}{path}"))
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| NodeApiError::Runtime(e.to_string()))?;
    if unknown_route(&upstream) {
        return Err(NodeApiError::ApiNotServed {
            node: state.machine_name.to_string(),
            runtime: state.backend.name(),
            path: path.to_owned(),
        });
    }

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

/// True when the runtime answered 404 without a JSON body: it has no such route (a model it does
/// not know gets a JSON error).
fn unknown_route(upstream: &reqwest::Response) -> bool {
    upstream.status() == reqwest::StatusCode::NOT_FOUND
        && !upstream
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn native_requests_cannot_unload_or_reload_the_model() {
        let mut request = json!({
            "model": "m", "keep_alive": 0,
            "options": {"num_ctx": 65536, "num_gpu": 0, "temperature": 0.2}
        });
        assert!(keep_loaded(&mut request));
        assert_eq!(
            request,
            json!({"model": "m", "options": {"temperature": 0.2}})
        );
        let mut plain = json!({"model": "m", "options": {"seed": 1}});
        assert!(!keep_loaded(&mut plain));
    }

    #[test]
    fn native_requests_lose_every_load_time_option_the_router_ignores() {
        let mut request = json!({
            "model": "m",
            "options": {"num_gqa": 8, "rope_frequency_base": 1e6, "rope_frequency_scale": 0.5}
        });
        assert!(keep_loaded(&mut request));
        assert_eq!(request, json!({"model": "m", "options": {}}));
    }
}
