//! Anthropic's Messages API (`POST /v1/messages`, `/v1/messages/count_tokens`), which Claude Code
//! and the Anthropic SDKs speak: routed like the OpenAI routes and forwarded whole to a node,
//! whose runtime serves it itself (llama-server; Ollama from 0.14). The key may come as
//! `x-api-key` (what the SDKs send) or `Authorization: Bearer`; every error, the router's own and
//! the node's, has Anthropic's shape `{"type":"error","error":{"type","message"}}`.

mod error;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::Response;
use llm_router_protocol::anthropic::{CountTokensView, MessagesView};

pub use error::AnthropicError;

use crate::api::ClientAddr;
use crate::api::openai::inference::{Route, forward};
use crate::auth::KeyScope;
use crate::proxy::Dialect;
use crate::state::AppState;
use crate::store::Api;

pub const MESSAGES: &str = "/v1/messages";
pub const COUNT_TOKENS: &str = "/v1/messages/count_tokens";

const fn route(path: &'static str) -> Route {
    Route {
        path,
        api: Api::Anthropic,
        dialect: Dialect::Anthropic,
    }
}

#[tracing::instrument(skip_all, name = "messages")]
pub async fn messages(
    State(state): State<AppState>,
    scope: KeyScope,
    client: ClientAddr,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AnthropicError> {
    Ok(forward::<MessagesView>(&state, route(MESSAGES), &scope, client, body).await?)
}

#[tracing::instrument(skip_all, name = "count_tokens")]
pub async fn count_tokens(
    State(state): State<AppState>,
    scope: KeyScope,
    client: ClientAddr,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AnthropicError> {
    Ok(forward::<CountTokensView>(&state, route(COUNT_TOKENS), &scope, client, body).await?)
}
