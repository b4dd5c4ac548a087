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

use super::answer::{Rec, close, local, native, translated_whole};
use super::error::OllamaResult;
use super::intake::accept;
use super::target::Route;
use crate::api::{ClientAddr, tenant};
use crate::auth::KeyScope;
use crate::dispatch::Tenant;
use crate::proxy::ollama::{request, response};
use crate::state::AppState;
use crate::store::Api;

const EMBED: &str = "/api/embed";
const EMBEDDINGS: &str = "/api/embeddings";
/// Where a translated embedding request goes.
const OPENAI_EMBEDDINGS: &str = "/v1/embeddings";

#[tracing::instrument(skip_all, name = "ollama_embed")]
pub async fn embed(
    State(state): State<AppState>,
    scope: KeyScope,
    ClientAddr(client): ClientAddr,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let tenant = tenant(&scope, client.as_deref());
    let mut recording = Some(state.recorder.start(Api::Ollama, EMBED, client));
    let result = handle_embed(&state, &scope, tenant, body, &mut recording).await;
    close(result, recording)
}

async fn handle_embed(
    state: &AppState,
    scope: &KeyScope,
    tenant: Tenant,
    body: Result<Bytes, BytesRejection>,
    recording: &mut Rec,
) -> OllamaResult<Response> {
    let started = Instant::now();
    let accepted = accept::<EmbedRequest>(state, scope, tenant, body, recording)?;
    let input = match accepted.request.input.clone() {
        Some(input) if !input.is_empty() => input,
        // Nothing to embed: Ollama answers with no vectors.
        _ => {
            accepted.target.check_known(&accepted.snapshot)?;
            let answer = EmbedResponse {
                model: accepted.requested,
                embeddings: Vec::new(),
                total_duration: 0,
                load_duration: 0,
                prompt_eval_count: 0,
            };
            return Ok(local(&answer, recording));
        }
    };
    if accepted.target.route == Route::Native {
        return native(state, EMBED, accepted, recording).await;
    }
    let model = accepted.target.model;
    let requested = accepted.requested;
    let body = request::embed(accepted.request, &model, input);
    translated_whole(
        state,
        OPENAI_EMBEDDINGS,
        &model,
        &accepted.tenant,
        body,
        recording,
        |answer: Value| response::embed(answer, &requested, started),
    )
    .await
}

#[tracing::instrument(skip_all, name = "ollama_embeddings")]
pub async fn embeddings(
    State(state): State<AppState>,
    scope: KeyScope,
    ClientAddr(client): ClientAddr,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let tenant = tenant(&scope, client.as_deref());
    let mut recording = Some(state.recorder.start(Api::Ollama, EMBEDDINGS, client));
    let result = handle_embeddings(&state, &scope, tenant, body, &mut recording).await;
    close(result, recording)
}

async fn handle_embeddings(
    state: &AppState,
    scope: &KeyScope,
    tenant: Tenant,
    body: Result<Bytes, BytesRejection>,
    recording: &mut Rec,
) -> OllamaResult<Response> {
    let accepted = accept::<EmbeddingsRequest>(state, scope, tenant, body, recording)?;
    let prompt = match accepted.request.prompt.clone() {
        Some(prompt) if !prompt.is_empty() => prompt,
        _ => {
            accepted.target.check_known(&accepted.snapshot)?;
            let answer = EmbeddingsResponse {
                embedding: Value::Array(Vec::new()),
            };
            return Ok(local(&answer, recording));
        }
    };
    if accepted.target.route == Route::Native {
        return native(state, EMBEDDINGS, accepted, recording).await;
    }
    let model = accepted.target.model;
    let body = request::embeddings(accepted.request, &model, prompt);
    translated_whole(
        state,
        OPENAI_EMBEDDINGS,
        &model,
        &accepted.tenant,
        body,
        recording,
        response::embeddings,
    )
    .await
}
