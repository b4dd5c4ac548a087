//! The router's API error: one enum, mapped to an HTTP status exactly once, rendered in the shape of
//! the API that was called.

use axum::http::header::{HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use llm_router_protocol::openai::ErrorResponse;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("request body is empty")]
    EmptyBody,
    #[error("request body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("request body is larger than the router accepts (max_body_bytes)")]
    PayloadTooLarge,
    #[error("no route for {0}")]
    RouteNotFound(String),
    #[error("method not allowed on {0}")]
    MethodNotAllowed(String),
    #[error("the model '{0}' does not exist or is not served by any node")]
    ModelNotFound(String),
    #[error("no node can serve the model '{0}' right now")]
    NoNodeAvailable(String),
    #[error("the router is at capacity: {0} requests are already waiting")]
    QueueFull(usize),
    #[error("no node had a free slot within {0:?}")]
    QueueTimeout(std::time::Duration),
    #[error("node '{0}' is not registered")]
    NodeNotFound(String),
    #[error("invalid node token")]
    InvalidNodeToken,
    #[error("the node did not answer: {0}")]
    Upstream(String),
    #[error("internal error: {0}")]
    Internal(String),
    #[error("request {0} is not in the history")]
    RequestNotFound(String),
    #[error(
        "authentication required: log in with POST /api/auth/login and send the session token as 'Authorization: Bearer <token>' (or the session cookie)"
    )]
    Unauthenticated,
    #[error("the session is invalid or has expired: log in again")]
    InvalidSession,
    #[error("wrong username or password")]
    InvalidCredentials,
    #[error("too many failed logins from this address: try again in {} s", .0.as_secs().max(1))]
    TooManyLoginAttempts(std::time::Duration),
    #[error(
        "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>' (an admin creates keys with POST /api/keys)"
    )]
    MissingApiKey,
    #[error("invalid API key: {0}")]
    InvalidApiKey(&'static str),
    #[error("this API key may not use the model '{0}'")]
    ModelNotAllowed(String),
    #[error("registration needs the router's enrolment token as 'Authorization: Bearer <token>'")]
    MissingEnrollmentToken,
    #[error("invalid enrolment token")]
    InvalidEnrollmentToken,
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("user '{0}' does not exist")]
    UserNotFound(String),
    #[error("API key '{0}' does not exist")]
    ApiKeyNotFound(String),
    #[error("the model '{0}' is not in the catalog (GET /api/models/available lists it)")]
    UnknownCatalogModel(String),
    #[error("node '{0}' is offline")]
    NodeOffline(String),
    #[error("not enough disk space: {0}")]
    InsufficientStorage(String),
    #[error("task {0} does not exist")]
    TaskNotFound(String),
    #[error("the node's answer is larger than {0} bytes")]
    UpstreamTooLarge(usize),
}

impl ApiError {
    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::EmptyBody | Self::MalformedJson(_) | Self::InvalidRequest(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::PayloadTooLarge | Self::UpstreamTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::ModelNotFound(_)
            | Self::NodeNotFound(_)
            | Self::RouteNotFound(_)
            | Self::RequestNotFound(_)
            | Self::UserNotFound(_)
            | Self::ApiKeyNotFound(_)
            | Self::TaskNotFound(_) => StatusCode::NOT_FOUND,
            Self::UnknownCatalogModel(_) => StatusCode::BAD_REQUEST,
            Self::NodeOffline(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            Self::Unauthenticated
            | Self::InvalidSession
            | Self::InvalidCredentials
            | Self::MissingApiKey
            | Self::InvalidApiKey(_)
            | Self::MissingEnrollmentToken
            | Self::InvalidEnrollmentToken => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::ModelNotAllowed(_) => StatusCode::FORBIDDEN,
            Self::TooManyLoginAttempts(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::NoNodeAvailable(_) | Self::QueueFull(_) | Self::QueueTimeout(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::InvalidNodeToken => StatusCode::UNAUTHORIZED,
            Self::Upstream(_) => StatusCode::BAD_GATEWAY,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// OpenAI's `error.type`.
    fn openai_type(&self) -> &'static str {
        match self.status_code() {
            StatusCode::UNAUTHORIZED => "authentication_error",
            StatusCode::FORBIDDEN => "permission_error",
            s if s.is_client_error() => "invalid_request_error",
            _ => "server_error",
        }
    }

    /// OpenAI's `error.code`.
    fn openai_code(&self) -> Option<&'static str> {
        Some(match self {
            Self::EmptyBody | Self::MalformedJson(_) => "invalid_json",
            Self::InvalidRequest(_) => "invalid_request",
            Self::PayloadTooLarge => "payload_too_large",
            Self::RouteNotFound(_) => "not_found",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::ModelNotFound(_) => "model_not_found",
            Self::NoNodeAvailable(_) => "no_node_available",
            Self::QueueFull(_) => "queue_full",
            Self::QueueTimeout(_) => "queue_timeout",
            Self::NodeNotFound(_) => "node_not_found",
            Self::RequestNotFound(_) => "request_not_found",
            Self::InvalidNodeToken => "invalid_node_token",
            Self::Unauthenticated => "unauthorized",
            Self::InvalidSession => "invalid_session",
            Self::InvalidCredentials => "invalid_credentials",
            Self::TooManyLoginAttempts(_) => "too_many_attempts",
            Self::MissingApiKey => "missing_api_key",
            Self::InvalidApiKey(_) => "invalid_api_key",
            Self::ModelNotAllowed(_) => "model_not_allowed",
            Self::MissingEnrollmentToken => "missing_enrollment_token",
            Self::InvalidEnrollmentToken => "invalid_enrollment_token",
            Self::Forbidden(_) => "forbidden",
            Self::Conflict(_) => "conflict",
            Self::UserNotFound(_) => "user_not_found",
            Self::ApiKeyNotFound(_) => "api_key_not_found",
            Self::UnknownCatalogModel(_) => "unknown_model",
            Self::NodeOffline(_) => "node_offline",
            Self::InsufficientStorage(_) => "insufficient_storage",
            Self::TaskNotFound(_) => "task_not_found",
            Self::UpstreamTooLarge(_) => "upstream_too_large",
            Self::Upstream(_) => "upstream_error",
            Self::Internal(_) => return None,
        })
    }

    /// The error as OpenAI's `{"error": {...}}` body.
    pub fn to_openai(&self) -> ErrorResponse {
        ErrorResponse::new(self.to_string(), self.openai_type(), self.openai_code())
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<crate::registry::AuthError> for ApiError {
    fn from(e: crate::registry::AuthError) -> Self {
        match e {
            crate::registry::AuthError::UnknownNode(id) => ApiError::NodeNotFound(id),
            crate::registry::AuthError::InvalidToken => ApiError::InvalidNodeToken,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), error = %self, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), error = %self, "request refused");
        }
        let mut response = (status, axum::Json(self.to_openai())).into_response();
        self.add_headers(response.headers_mut());
        response
    }
}

impl ApiError {
    /// Headers that go with the status, whatever the body's shape: `Retry-After` on 503 and 429,
    /// `WWW-Authenticate` on 401.
    pub fn add_headers(&self, headers: &mut HeaderMap) {
        match self {
            Self::TooManyLoginAttempts(wait) => {
                headers.insert(RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)));
            }
            _ if self.status_code() == StatusCode::SERVICE_UNAVAILABLE => {
                headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ if self.status_code() == StatusCode::UNAUTHORIZED => {
                headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
    }
}
