//! Route guards: middleware that lets a request through only with the right credential, and the
//! request extensions they leave for handlers ([`Staff`], [`KeyScope`], plain types of `auth`).
//!
//! | guard            | accepts                                   | error shape |
//! |------------------|-------------------------------------------|-------------|
//! | [`viewer`]       | a session of any user                     | OpenAI      |
//! | [`admin`]        | a session of an admin                     | OpenAI      |
//! | [`openai_key`]   | an API key (or none, if anonymous allowed) | OpenAI      |
//! | [`ollama_key`]   | the same                                  | Ollama      |
//! | [`anthropic_key`] | the same (`x-api-key` is what its SDKs send) | Anthropic |
//! | [`metrics`]      | a session or an API key                   | text        |
//!
//! Node routes take their credential as an extractor placed before the body's, so it is checked
//! from the headers before a byte of the body is read:
//!
//! | extractor      | accepts                                        | used by               |
//! |----------------|------------------------------------------------|-----------------------|
//! | [`Enrolment`]  | the enrolment token                            | registration, bundle files |
//! | [`NodeCaller`] | the token of a registered node                 | heartbeats, task progress |
//!
//! Both first refuse (413) a body declared over [`SMALL_BODY_BYTES`], without reading it.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_LENGTH;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::SMALL_BODY_BYTES;
use crate::api::anthropic::AnthropicError;
use crate::api::ollama::OllamaError;
use crate::auth::{AuthError, KeyScope, Staff, bearer};
use crate::auth::{cookie_write, same_origin};
use crate::error::ApiError;
use crate::state::AppState;
use llm_router_protocol::node::NODE_TOKEN_HEADER;

/// Fails closed: a handler taking a [`KeyScope`] on a route without a key guard refuses to run.
impl<S: Send + Sync> FromRequestParts<S> for KeyScope {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<KeyScope>()
            .cloned()
            .ok_or(ApiError::Auth(AuthError::MissingApiKey))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Staff {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Staff>()
            .cloned()
            .ok_or(ApiError::Auth(AuthError::Unauthenticated))
    }
}

/// A change made with the session cookie from a page of another origin (cross-site request
/// forgery): refused before the credential is even looked at.
fn cross_site_write(req: &Request) -> Option<Response> {
    (cookie_write(req.method(), req.headers()) && !same_origin(req.headers())).then(|| {
        ApiError::Forbidden(
            "cross-site request refused: changes with the session cookie must come from the dashboard's own origin"
                .into(),
        )
        .into_response()
    })
}

/// Any logged-in user.
pub async fn viewer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if let Some(refused) = cross_site_write(&req) {
        return refused;
    }
    match state.auth.staff(req.headers()) {
        Ok(staff) => {
            req.extensions_mut().insert(staff);
            next.run(req).await
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// A logged-in admin.
pub async fn admin(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if let Some(refused) = cross_site_write(&req) {
        return refused;
    }
    match state.auth.staff(req.headers()) {
        Ok(staff) if staff.is_admin() => {
            req.extensions_mut().insert(staff);
            next.run(req).await
        }
        Ok(staff) => ApiError::Forbidden(format!(
            "user '{}' is a viewer; this needs an admin",
            staff.username
        ))
        .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// An API key on the OpenAI routes.
pub async fn openai_key(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    match state.auth.inference_scope(req.headers()) {
        Ok(scope) => {
            req.extensions_mut().insert(scope);
            next.run(req).await
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// An API key on the Ollama routes; errors in Ollama's shape.
pub async fn ollama_key(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    match state.auth.inference_scope(req.headers()) {
        Ok(scope) => {
            req.extensions_mut().insert(scope);
            next.run(req).await
        }
        Err(e) => OllamaError(e.into()).into_response(),
    }
}

/// An API key on Anthropic's routes (`x-api-key` or `Authorization: Bearer`); errors in
/// Anthropic's shape.
pub async fn anthropic_key(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    match state.auth.inference_scope(req.headers()) {
        Ok(scope) => {
            req.extensions_mut().insert(scope);
            next.run(req).await
        }
        Err(e) => AnthropicError(e.into()).into_response(),
    }
}

/// `/metrics`: a logged-in user, or an API key (what a Prometheus scrape config can hold).
pub async fn metrics(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let staff = state.auth.staff(req.headers());
    if staff.is_ok() || state.auth.scrape_key(req.headers()) {
        return next.run(req).await;
    }
    match staff {
        Err(e) => ApiError::from(e).into_response(),
        Ok(_) => ApiError::Auth(AuthError::Unauthenticated).into_response(),
    }
}

/// The enrolment token of `POST /api/agents/register` and `GET /api/bundle/{file}`, checked
/// before the body is read.
#[derive(Debug, Clone, Copy)]
pub struct Enrolment;

impl FromRequestParts<AppState> for Enrolment {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        refuse_declared_too_large(&parts.headers)?;
        match state.auth.check_enrollment(bearer(&parts.headers)) {
            Ok(()) => Ok(Enrolment),
            Err(e) => {
                // Nothing the caller sent is logged: the body was not read.
                tracing::warn!(
                    error = %e,
                    "enrolment token refused (registration or bundle download)"
                );
                Err(e.into())
            }
        }
    }
}

/// A registered node, proven by its node token (`Authorization: Bearer …` or
/// `X-LLM-Node-Token`), checked before the body is read. The handler still checks that the node
/// the body names is the token's.
#[derive(Debug, Clone)]
pub struct NodeCaller {
    /// The token presented, for the registry's own check against the body's node id.
    pub token: String,
}

impl FromRequestParts<AppState> for NodeCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        refuse_declared_too_large(&parts.headers)?;
        let token = node_token(&parts.headers).ok_or(ApiError::InvalidNodeToken)?;
        if !state.registry.holds_token(token) {
            return Err(ApiError::InvalidNodeToken);
        }
        Ok(NodeCaller {
            token: token.to_owned(),
        })
    }
}

/// 413 for a body whose declared length is over the limit of the node routes (nothing is read).
fn refuse_declared_too_large(headers: &HeaderMap) -> Result<(), ApiError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > SMALL_BODY_BYTES as u64 => Err(ApiError::PayloadTooLarge),
        _ => Ok(()),
    }
}

/// The node token from `Authorization: Bearer …` or `X-LLM-Node-Token`.
pub fn node_token(headers: &HeaderMap) -> Option<&str> {
    if let Some(token) = bearer(headers) {
        return Some(token);
    }
    headers
        .get(NODE_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}
