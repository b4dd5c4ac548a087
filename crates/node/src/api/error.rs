//! Node API errors, in OpenAI's shape.

use axum::http::StatusCode;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use llm_router_protocol::openai::ErrorResponse;

#[derive(Debug, thiserror::Error)]
pub enum NodeApiError {
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("the model '{0}' is not served by this node")]
    ModelNotFound(String),
    #[error("the model '{0}' is not ready on this node")]
    ModelNotReady(String),
    #[error("the model '{model}' does not support {what} on this node")]
    NotCapable { model: String, what: &'static str },
    #[error("the runtime did not answer: {0}")]
    Runtime(String),
    #[error("no route for {0}")]
    RouteNotFound(String),
    #[error("node '{node}': its runtime ({runtime}) does not serve {path}; a newer version does")]
    ApiNotServed {
        node: String,
        runtime: &'static str,
        path: String,
    },
    #[error(
        "this node serves its router only: send the API token it registered with as 'Authorization: Bearer <token>'"
    )]
    Unauthorized,
    #[error("not enough free disk: {needed} bytes needed, {available} available")]
    DiskFull { needed: u64, available: u64 },
    #[error("storage error: {0}")]
    Storage(String),
}

impl NodeApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidRequest(_) | Self::NotCapable { .. } => StatusCode::BAD_REQUEST,
            Self::ModelNotFound(_) | Self::RouteNotFound(_) | Self::ApiNotServed { .. } => {
                StatusCode::NOT_FOUND
            }
            Self::ModelNotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Runtime(_) => StatusCode::BAD_GATEWAY,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::DiskFull { .. } => StatusCode::INSUFFICIENT_STORAGE,
            Self::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::ModelNotFound(_) => "model_not_found",
            Self::ModelNotReady(_) => "model_not_ready",
            Self::NotCapable { .. } => "model_not_capable",
            Self::Runtime(_) => "runtime_error",
            Self::RouteNotFound(_) => "not_found",
            Self::ApiNotServed { .. } => "api_not_served",
            Self::Unauthorized => "unauthorized",
            Self::DiskFull { .. } => "insufficient_storage",
            Self::Storage(_) => "storage_error",
        }
    }
}

impl IntoResponse for NodeApiError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let kind = if status.is_client_error() {
            "invalid_request_error"
        } else {
            "server_error"
        };
        let body = ErrorResponse::new(self.to_string(), kind, Some(self.code()));
        (status, axum::Json(body)).into_response()
    }
}

pub async fn not_found(uri: Uri) -> NodeApiError {
    NodeApiError::RouteNotFound(uri.path().to_owned())
}
