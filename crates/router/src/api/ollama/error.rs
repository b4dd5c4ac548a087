//! Errors on the Ollama routes: the router's [`ApiError`], with its status, in Ollama's
//! `{"error": "..."}` shape.

use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use llm_router_common::text::{MAX_ERROR, MAX_NAME, bounded, capped};

use crate::auth::AuthError;
use crate::error::ApiError;
use crate::proxy::ollama::relay::error_response;

/// An [`ApiError`] rendered as Ollama renders errors.
#[derive(Debug)]
pub struct OllamaError(pub ApiError);

impl From<ApiError> for OllamaError {
    fn from(e: ApiError) -> Self {
        OllamaError(e)
    }
}

impl From<AuthError> for OllamaError {
    fn from(e: AuthError) -> Self {
        OllamaError(e.into())
    }
}

impl OllamaError {
    /// The message Ollama clients show. Ollama's own wording for an unknown model is kept, so
    /// tools that look for "not found" recognise it.
    pub fn message(&self) -> String {
        match &self.0 {
            ApiError::ModelNotFound(model) => {
                let model = capped(model, MAX_NAME);
                format!("model '{model}' not found: no node serves it")
            }
            other => other.to_string(),
        }
    }
}

impl IntoResponse for OllamaError {
    fn into_response(self) -> Response {
        let status = self.0.status_code();
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), error = %bounded(&self.0, MAX_ERROR), "Ollama request failed");
        } else {
            tracing::debug!(status = status.as_u16(), error = %bounded(&self.0, MAX_ERROR), "Ollama request refused");
        }
        let mut response = error_response(status, self.message());
        self.0.add_headers(response.headers_mut());
        response
    }
}

/// Handler result on the Ollama routes.
pub type OllamaResult<T> = Result<T, OllamaError>;

/// A known Ollama route called with the wrong method.
pub async fn method_not_allowed(uri: Uri) -> OllamaError {
    OllamaError(ApiError::MethodNotAllowed(uri.path().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[tokio::test]
    async fn errors_keep_their_status_and_get_an_ollama_body() {
        let response = OllamaError(ApiError::ModelNotFound("x".into())).into_response();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"error": "model 'x' not found: no node serves it"})
        );
    }

    #[tokio::test]
    async fn unavailable_errors_say_when_to_retry() {
        let response = OllamaError(ApiError::QueueFull(3)).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["retry-after"], "1");
    }
}
