//! Ollama's model management routes (`/api/pull`, `/api/push`, `/api/create`, `/api/copy`,
//! `/api/delete`, `/api/blobs/...`): the fleet's models are placed on nodes by their operators
//! and the router's model distribution, not by Ollama clients, so these answer a clear 501 in
//! Ollama's shape instead of a 404 in OpenAI's.

use axum::http::{StatusCode, Uri};
use axum::response::Response;

use crate::proxy::ollama::relay::error_response;

pub async fn unsupported(uri: Uri) -> Response {
    error_response(
        StatusCode::NOT_IMPLEMENTED,
        format!(
            "{} is not available through llm-router: models are served by the nodes they are \
             configured on (llm-node --models) and placed by the router's model distribution",
            uri.path()
        ),
    )
}
