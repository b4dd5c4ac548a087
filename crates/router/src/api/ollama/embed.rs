//! `POST /api/embed` and the older `POST /api/embeddings`.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::Response;
use llm_router_protocol::ollama::{
    EmbedRequest, EmbedResponse, EmbeddingsRequest, EmbeddingsResponse,
};
use serde_json::Value;

use super::error::OllamaResult;
use super::generation::{Rec, close, local, native, note, whole};
use super::target::{Route, Target, native_body, parse, required_model};
use crate::api::ClientAddr;
use crate::api::extract::body_rejection;
use crate::auth::KeyScope;
use crate::proxy;
use crate::proxy::ollama::relay::upstream_error;
use crate::proxy::ollama::{request, response};
use crate::state::AppState;
use crate::store::Api;

const EMBEDDINGS: &str = "/v1/embeddings";

#[tracing::instrument(skip_all, name = "ollama_embed")]
pub async fn embed(
    State(state): State<AppState>,
    scope: KeyScope,
    ClientAddr(client): ClientAddr,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut recording = Some(state.recorder.start(Api::Ollama, "/api/embed", client));
    let result = handle_embed(&state, &scope, body, &mut recording).await;
    close(result, recording)
}

async fn handle_embed(
    state: &AppState,
    scope: &KeyScope,
    body: Result<Bytes, BytesRejection>,
    recording: &mut Rec,
) -> OllamaResult<Response> {
    let started = Instant::now();
    let request: EmbedRequest = parse(&body)?;
    let body = body.map_err(|e| body_rejection(&e))?;
    let requested = required_model(request.model.as_deref())?;
    scope.check(&requested)?;
    let snapshot = state.registry.snapshot();
    let target = Target::of(&snapshot, &requested);
    note(recording, &target.model, false, &body);
    let input = match request.input.clone() {
        Some(input) if !input.is_empty() => input,
        // Nothing to embed: Ollama answers with no vectors.
        _ => {
            target.check_known(&snapshot)?;
            let answer = EmbedResponse {
                model: requested,
                embeddings: Vec::new(),
                total_duration: 0,
                load_duration: 0,
                prompt_eval_count: 0,
            };
            return Ok(local(&answer, recording));
        }
    };
    if target.route == Route::Native {
        let body = native_body(body, &requested, &target.model);
        return native(state, "/api/embed", &target.model, body, false, recording).await;
    }
    let body = request::embed(request, &target.model, input);
    let upstream = proxy::dispatch(state, EMBEDDINGS, &target.model, body).await?;
    if !upstream.response.status().is_success() {
        return Ok(upstream_error(upstream, recording.take()).await);
    }
    whole(state, upstream, recording, |answer: Value| {
        response::embed(answer, &requested, started)
    })
    .await
}

#[tracing::instrument(skip_all, name = "ollama_embeddings")]
pub async fn embeddings(
    State(state): State<AppState>,
    scope: KeyScope,
    ClientAddr(client): ClientAddr,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut recording = Some(state.recorder.start(Api::Ollama, "/api/embeddings", client));
    let result = handle_embeddings(&state, &scope, body, &mut recording).await;
    close(result, recording)
}

async fn handle_embeddings(
    state: &AppState,
    scope: &KeyScope,
    body: Result<Bytes, BytesRejection>,
    recording: &mut Rec,
) -> OllamaResult<Response> {
    let request: EmbeddingsRequest = parse(&body)?;
    let body = body.map_err(|e| body_rejection(&e))?;
    let requested = required_model(request.model.as_deref())?;
    scope.check(&requested)?;
    let snapshot = state.registry.snapshot();
    let target = Target::of(&snapshot, &requested);
    note(recording, &target.model, false, &body);
    let prompt = match request.prompt.clone() {
        Some(prompt) if !prompt.is_empty() => prompt,
        _ => {
            target.check_known(&snapshot)?;
            let answer = EmbeddingsResponse {
                embedding: Value::Array(Vec::new()),
            };
            return Ok(local(&answer, recording));
        }
    };
    if target.route == Route::Native {
        let body = native_body(body, &requested, &target.model);
        return native(
            state,
            "/api/embeddings",
            &target.model,
            body,
            false,
            recording,
        )
        .await;
    }
    let body = request::embeddings(request, &target.model, prompt);
    let upstream = proxy::dispatch(state, EMBEDDINGS, &target.model, body).await?;
    if !upstream.response.status().is_success() {
        return Ok(upstream_error(upstream, recording.take()).await);
    }
    whole(state, upstream, recording, response::embeddings).await
}
