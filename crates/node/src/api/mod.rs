//! The node API the router calls. Everything but `GET /health` needs the API token the node
//! registered with (the router sends it as `Authorization: Bearer`): inference and pulls come
//! from the node's router only.

mod auth;
mod capabilities;
mod error;
mod health;
mod inference;
mod logs;
mod pull;
mod pull_ollama;
mod tags;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};

pub use error::NodeApiError;

use crate::state::NodeState;

/// Largest request body the node accepts (the router enforces its own, smaller limit first).
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

pub fn router(state: NodeState) -> Router {
    let token = state.api_token.clone();
    Router::new()
        .route("/v1/models", get(health::models))
        .route("/v1/chat/completions", post(inference::chat_completions))
        .route("/v1/completions", post(inference::completions))
        .route("/v1/embeddings", post(inference::embeddings))
        .route("/v1/responses", post(inference::responses))
        .route(
            "/v1/responses/input_tokens",
            post(inference::responses_input_tokens),
        )
        .route("/v1/messages", post(inference::messages))
        .route("/v1/messages/count_tokens", post(inference::count_tokens))
        .route("/api/tags", get(tags::tags))
        .route("/api/chat", post(inference::ollama_chat))
        .route("/api/generate", post(inference::ollama_generate))
        .route("/api/embed", post(inference::ollama_embed))
        .route("/api/embeddings", post(inference::ollama_embeddings))
        .route("/pull", post(pull::pull))
        .route("/api/logs", get(logs::logs))
        .route_layer(from_fn_with_state(token, auth::require_router))
        .route("/health", get(health::health))
        .fallback(error::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
