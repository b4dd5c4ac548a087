//! The node API the router calls.

mod error;
mod health;
mod inference;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

pub use error::NodeApiError;

use crate::state::NodeState;

/// Largest request body the node accepts (the router enforces its own, smaller limit first).
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

pub fn router(state: NodeState) -> Router {
    Router::new()
        .route("/health", get(health::health))
        .route("/v1/models", get(health::models))
        .route("/v1/chat/completions", post(inference::chat_completions))
        .route("/v1/completions", post(inference::completions))
        .route("/v1/embeddings", post(inference::embeddings))
        .fallback(error::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
