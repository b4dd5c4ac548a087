//! The router's errors in Anthropic's shape: same status and headers (`Retry-After`,
//! `WWW-Authenticate`) as everywhere, the body `{"type":"error","error":{"type","message"}}` with
//! the type Anthropic gives that status, so its SDKs raise their own exception types.

use axum::response::{IntoResponse, Response};
use llm_router_common::text::{MAX_ERROR, bounded};
use llm_router_protocol::anthropic::ErrorResponse;

use crate::error::ApiError;

/// An [`ApiError`] rendered for an Anthropic client.
#[derive(Debug)]
pub struct AnthropicError(pub ApiError);

impl From<ApiError> for AnthropicError {
    fn from(e: ApiError) -> Self {
        AnthropicError(e)
    }
}

impl AnthropicError {
    pub fn body(&self) -> ErrorResponse {
        let status = self.0.status_code().as_u16();
        ErrorResponse::new(ErrorResponse::kind_for_status(status), self.0.to_string())
    }
}

impl IntoResponse for AnthropicError {
    fn into_response(self) -> Response {
        let status = self.0.status_code();
        tracing::debug!(status = status.as_u16(), error = %bounded(&self.0, MAX_ERROR), "anthropic request refused");
        let mut response = (status, axum::Json(self.body())).into_response();
        self.0.add_headers(response.headers_mut());
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn statuses_map_to_anthropic_error_types() {
        let e = AnthropicError(ApiError::ModelNotFound("m".into()));
        assert_eq!(e.body().error.kind, "not_found_error");
        let e = AnthropicError(ApiError::KeyQueueShare(3));
        assert_eq!(e.body().error.kind, "rate_limit_error");
        let e = AnthropicError(ApiError::Auth(crate::auth::AuthError::MissingApiKey));
        assert_eq!(e.body().error.kind, "authentication_error");
        let response = AnthropicError(ApiError::QueueFull(4)).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().contains_key("retry-after"));
    }
}
