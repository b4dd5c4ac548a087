//! The Ollama API: `/api/chat`, `/api/generate` (NDJSON streams by default, as Ollama), `/api/embed`,
//! `/api/embeddings`, `/api/tags`, `/api/ps`, `/api/show`, `/api/version` and `/`; model management
//! (`/api/pull`, ...) answers 501. Every error on these routes is Ollama-shaped
//! (`{"error": "..."}`), including a wrong method.

mod answer;
mod embed;
pub mod error;
mod generation;
mod intake;
mod manage;
mod meta;
mod models;
mod node_info;
mod target;

use axum::Router;
use axum::routing::{MethodRouter, delete, get, post};

pub use error::OllamaError;

use crate::state::AppState;

/// The Ollama routes anyone may call: `/` and `/api/version` (what clients probe first).
pub fn open_routes() -> Router<AppState> {
    Router::new()
        .route("/", ollama(get(meta::root)))
        .route("/api/version", ollama(get(meta::version)))
}

/// The Ollama routes that need an API key.
pub fn inference_routes() -> Router<AppState> {
    Router::new()
        .route("/api/tags", ollama(get(models::tags)))
        .route("/api/ps", ollama(get(models::ps)))
        .route("/api/show", ollama(post(models::show)))
        .route("/api/chat", ollama(post(generation::chat)))
        .route("/api/generate", ollama(post(generation::generate)))
        .route("/api/embed", ollama(post(embed::embed)))
        .route("/api/embeddings", ollama(post(embed::embeddings)))
        .route("/api/pull", ollama(post(manage::unsupported)))
        .route("/api/push", ollama(post(manage::unsupported)))
        .route("/api/create", ollama(post(manage::unsupported)))
        .route("/api/copy", ollama(post(manage::unsupported)))
        .route("/api/delete", ollama(delete(manage::unsupported)))
        .route(
            "/api/blobs/{digest}",
            ollama(post(manage::unsupported).head(manage::unsupported)),
        )
}

/// `route` answering a wrong method with an Ollama-shaped 405.
fn ollama(route: MethodRouter<AppState>) -> MethodRouter<AppState> {
    route.fallback(error::method_not_allowed)
}
