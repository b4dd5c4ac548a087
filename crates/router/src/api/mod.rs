//! HTTP routes, one module per endpoint group.

pub mod agents;
pub(crate) mod extract;
pub mod history;
pub mod ollama;
pub mod openai;
mod ops;

use axum::Router;
use axum::routing::{get, post};

pub use extract::{ApiJson, ClientAddr};

use crate::error::ApiError;
use crate::state::AppState;

/// Every route of the router, without state or layers.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(ops::health))
        .route("/metrics", get(ops::metrics))
        .route("/api/requests", get(history::list))
        .route("/api/requests/export", get(history::export))
        .route("/api/requests/{id}", get(history::get))
        .route("/api/stats", get(history::stats))
        .route(
            "/api/agents/{id}/metrics/history",
            get(agents::fleet::metrics_history),
        )
        .route("/v1/models", get(openai::models::list))
        .route("/v1/models/{*id}", get(openai::models::get))
        .route(
            "/v1/chat/completions",
            post(openai::inference::chat_completions),
        )
        .route("/v1/completions", post(openai::inference::completions))
        .route("/v1/embeddings", post(openai::inference::embeddings))
        .route("/api/agents/register", post(agents::register::register))
        .route("/api/health", post(agents::heartbeat::heartbeat))
        .route("/api/agents", get(agents::fleet::list))
        .route(
            "/api/agents/{id}/metrics",
            post(agents::heartbeat::push_metrics),
        )
        .route("/api/queue", get(agents::fleet::queue))
        .route(
            "/api/agents/{id}",
            get(agents::fleet::get).delete(agents::fleet::delete),
        )
        .merge(ollama::routes())
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
}

/// Handler result: a value or an [`ApiError`] rendered in OpenAI's shape.
pub type ApiResult<T> = Result<T, ApiError>;
