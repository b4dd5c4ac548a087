//! `GET /` / `HEAD /` and `GET /api/version`: what Ollama clients probe before anything else.

use axum::Json;
use llm_router_protocol::ollama::VersionResponse;

/// The Ollama release whose API the router speaks (chat, generate, embed, tags, ps, show, tools,
/// structured outputs, thinking). Clients compare it to decide which features to use.
pub const OLLAMA_API_VERSION: &str = "0.9.0";

/// `GET /` and `HEAD /`, answered as Ollama answers them.
pub async fn root() -> &'static str {
    "Ollama is running"
}

/// `GET /api/version`.
pub async fn version() -> Json<VersionResponse> {
    Json(VersionResponse {
        version: OLLAMA_API_VERSION.to_owned(),
    })
}
