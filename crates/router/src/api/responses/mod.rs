//! OpenAI's Responses API (`POST /v1/responses`, `/v1/responses/input_tokens`), which coding
//! agents such as Codex CLI speak: routed like the chat completions (model from the body,
//! balancing, the wait queue, failover before the first byte) and forwarded whole to a node,
//! whose runtime serves it itself (llama-server; Ollama from 0.13.3). Errors in OpenAI's shape.
//!
//! The router keeps no responses: `store` and `previous_response_id` reach the node, which keeps
//! (or not) what it serves; a follow-up may land on another node, so stateless use (the whole
//! `input` each time, as Codex sends it) is what works across a fleet.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::Response;
use llm_router_protocol::responses::{InputTokensView, ResponsesView};

use crate::api::openai::inference::{Route, forward};
use crate::api::{ApiResult, ClientAddr};
use crate::auth::KeyScope;
use crate::proxy::Dialect;
use crate::state::AppState;
use crate::store::Api;

pub const RESPONSES: &str = "/v1/responses";
pub const INPUT_TOKENS: &str = "/v1/responses/input_tokens";

const fn route(path: &'static str) -> Route {
    Route {
        path,
        api: Api::Openai,
        dialect: Dialect::Responses,
    }
}

#[tracing::instrument(skip_all, name = "responses")]
pub async fn create(
    State(state): State<AppState>,
    scope: KeyScope,
    client: ClientAddr,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    forward::<ResponsesView>(&state, route(RESPONSES), &scope, client, body).await
}

#[tracing::instrument(skip_all, name = "responses_input_tokens")]
pub async fn input_tokens(
    State(state): State<AppState>,
    scope: KeyScope,
    client: ClientAddr,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    forward::<InputTokensView>(&state, route(INPUT_TOKENS), &scope, client, body).await
}
