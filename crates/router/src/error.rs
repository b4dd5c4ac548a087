//! The router's API error: the edge's own failures (bad JSON, unknown route, ...) and the domain
//! errors ([`AuthError`], [`TaskError`], ...) wrapped, each mapped to an HTTP status exactly once
//! ([`ApiError::class`]), rendered in the shape of the API that was called.

use axum::http::header::{HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use llm_router_common::text::{MAX_ERROR, MAX_NAME, bounded, capped};
use llm_router_protocol::openai::ErrorResponse;

use crate::aliases::AliasError;
use crate::auth::AuthError;
use crate::quota::OverLimit;
use crate::registry::NodeAuthError;
use crate::tasks::TaskError;

/// Seconds a key over its share of the wait queue is told to wait (`Retry-After`): long enough
/// for some of its waiters to be served.
const KEY_SHARE_RETRY_AFTER_SECS: u16 = 2;

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
    #[error("the model '{}' does not exist or is not served by any node", capped(.0, MAX_NAME))]
    ModelNotFound(String),
    #[error("no node can serve the model '{}' right now", capped(.0, MAX_NAME))]
    NoNodeAvailable(String),
    #[error("the router is at capacity: {0} requests are already waiting")]
    QueueFull(usize),
    #[error("no node had a free slot within {0:?}")]
    QueueTimeout(std::time::Duration),
    #[error(
        "this API key (without a key: this client address) already has {0} requests waiting, its share of the wait queue (max_queued_per_key)"
    )]
    KeyQueueShare(usize),
    #[error("node '{}' is not registered", capped(.0, MAX_NAME))]
    NodeNotFound(String),
    #[error("invalid node token")]
    InvalidNodeToken,
    #[error("the node did not answer: {0}")]
    Upstream(String),
    #[error("internal error: {0}")]
    Internal(String),
    #[error("request {0} is not in the history")]
    RequestNotFound(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("the node's answer is larger than {0} bytes")]
    UpstreamTooLarge(usize),
    /// A change was made but could not be stored.
    #[error("the change could not be stored: {0}")]
    NotStored(#[from] crate::store::WriteError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Task(#[from] TaskError),
    #[error(transparent)]
    Alias(#[from] AliasError),
    #[error(transparent)]
    OverLimit(#[from] OverLimit),
}

impl ApiError {
    pub fn status_code(&self) -> StatusCode {
        self.class().0
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
        self.class().1
    }

    /// The one table of statuses and codes: every error, the router's own and the domains', with
    /// its HTTP status and OpenAI `error.code`.
    fn class(&self) -> (StatusCode, Option<&'static str>) {
        use StatusCode as S;
        let (status, code) = match self {
            Self::EmptyBody | Self::MalformedJson(_) => (S::BAD_REQUEST, "invalid_json"),
            Self::InvalidRequest(_) => (S::BAD_REQUEST, "invalid_request"),
            Self::PayloadTooLarge => (S::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::UpstreamTooLarge(_) => (S::PAYLOAD_TOO_LARGE, "upstream_too_large"),
            Self::RouteNotFound(_) => (S::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed(_) => (S::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::ModelNotFound(_) => (S::NOT_FOUND, "model_not_found"),
            Self::NodeNotFound(_) => (S::NOT_FOUND, "node_not_found"),
            Self::RequestNotFound(_) => (S::NOT_FOUND, "request_not_found"),
            Self::NoNodeAvailable(_) => (S::SERVICE_UNAVAILABLE, "no_node_available"),
            Self::NotStored(_) => (S::SERVICE_UNAVAILABLE, "not_stored"),
            Self::QueueFull(_) => (S::SERVICE_UNAVAILABLE, "queue_full"),
            Self::QueueTimeout(_) => (S::SERVICE_UNAVAILABLE, "queue_timeout"),
            Self::KeyQueueShare(_) => (S::TOO_MANY_REQUESTS, "key_queue_share"),
            Self::InvalidNodeToken => (S::UNAUTHORIZED, "invalid_node_token"),
            Self::Forbidden(_) => (S::FORBIDDEN, "forbidden"),
            Self::Upstream(_) => (S::BAD_GATEWAY, "upstream_error"),
            Self::Internal(_) => return (S::INTERNAL_SERVER_ERROR, None),
            Self::Auth(e) => return auth_class(e),
            Self::Task(e) => task_class(e),
            Self::Alias(e) => alias_class(e),
            Self::OverLimit(e) => (S::TOO_MANY_REQUESTS, e.limit.as_str()),
        };
        (status, Some(code))
    }

    /// The error as OpenAI's `{"error": {...}}` body.
    pub fn to_openai(&self) -> ErrorResponse {
        ErrorResponse::new(self.to_string(), self.openai_type(), self.openai_code())
    }
}

fn auth_class(e: &AuthError) -> (StatusCode, Option<&'static str>) {
    use StatusCode as S;
    let (status, code) = match e {
        AuthError::Unauthenticated => (S::UNAUTHORIZED, "unauthorized"),
        AuthError::InvalidSession => (S::UNAUTHORIZED, "invalid_session"),
        AuthError::InvalidCredentials => (S::UNAUTHORIZED, "invalid_credentials"),
        AuthError::MissingApiKey => (S::UNAUTHORIZED, "missing_api_key"),
        AuthError::InvalidApiKey(_) => (S::UNAUTHORIZED, "invalid_api_key"),
        AuthError::MissingEnrollmentToken => (S::UNAUTHORIZED, "missing_enrollment_token"),
        AuthError::InvalidEnrollmentToken => (S::UNAUTHORIZED, "invalid_enrollment_token"),
        AuthError::TooManyLoginAttempts(_) => (S::TOO_MANY_REQUESTS, "too_many_attempts"),
        AuthError::Busy => (S::SERVICE_UNAVAILABLE, "busy"),
        AuthError::ModelNotAllowed(_) => (S::FORBIDDEN, "model_not_allowed"),
        AuthError::Invalid(_) | AuthError::AdminPassword(_) => (S::BAD_REQUEST, "invalid_request"),
        AuthError::Conflict(_) => (S::CONFLICT, "conflict"),
        AuthError::UserNotFound(_) => (S::NOT_FOUND, "user_not_found"),
        AuthError::ApiKeyNotFound(_) => (S::NOT_FOUND, "api_key_not_found"),
        AuthError::Store(_) | AuthError::Hashing(_) => return (S::INTERNAL_SERVER_ERROR, None),
    };
    (status, Some(code))
}

fn alias_class(e: &AliasError) -> (StatusCode, &'static str) {
    use StatusCode as S;
    match e {
        AliasError::Invalid(_) => (S::BAD_REQUEST, "invalid_request"),
        AliasError::FromConfig(_) => (S::CONFLICT, "set_in_config"),
        AliasError::NotFound(_) => (S::NOT_FOUND, "alias_not_found"),
        AliasError::Store(_) => (S::SERVICE_UNAVAILABLE, "not_stored"),
    }
}

fn task_class(e: &TaskError) -> (StatusCode, &'static str) {
    use StatusCode as S;
    match e {
        TaskError::UnknownModel(_) => (S::BAD_REQUEST, "unknown_model"),
        TaskError::NotPullable(_) => (S::BAD_REQUEST, "invalid_request"),
        TaskError::NodeOffline(_) => (S::SERVICE_UNAVAILABLE, "node_offline"),
        TaskError::InsufficientStorage(_) => (S::INSUFFICIENT_STORAGE, "insufficient_storage"),
        TaskError::NodeFailed(_) => (S::BAD_GATEWAY, "upstream_error"),
        TaskError::NotFound(_) => (S::NOT_FOUND, "task_not_found"),
        TaskError::OtherNode(_) => (S::FORBIDDEN, "forbidden"),
    }
}

impl crate::history::Refusal for ApiError {
    fn status(&self) -> StatusCode {
        self.status_code()
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<NodeAuthError> for ApiError {
    fn from(e: NodeAuthError) -> Self {
        match e {
            NodeAuthError::UnknownNode(id) => ApiError::NodeNotFound(id),
            NodeAuthError::InvalidToken => ApiError::InvalidNodeToken,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), error = %bounded(&self, MAX_ERROR), "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), error = %bounded(&self, MAX_ERROR), "request refused");
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
            Self::Auth(AuthError::TooManyLoginAttempts(wait)) => {
                headers.insert(RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)));
            }
            Self::KeyQueueShare(_) => {
                headers.insert(RETRY_AFTER, HeaderValue::from(KEY_SHARE_RETRY_AFTER_SECS));
            }
            Self::OverLimit(e) => {
                headers.insert(
                    RETRY_AFTER,
                    HeaderValue::from(e.retry_after.as_secs().max(1)),
                );
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
