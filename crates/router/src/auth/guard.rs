//! Route guards: middleware that lets a request through only with the right credential, and the
//! request extensions they leave for handlers ([`Staff`], [`KeyScope`]).
//!
//! | guard            | accepts                                   | error shape |
//! |------------------|-------------------------------------------|-------------|
//! | [`viewer`]       | a session of any user                     | OpenAI      |
//! | [`admin`]        | a session of an admin                     | OpenAI      |
//! | [`openai_key`]   | an API key (or none, if anonymous allowed) | OpenAI      |
//! | [`ollama_key`]   | the same                                  | Ollama      |
//! | [`metrics`]      | a session or an API key                   | text        |
//!
//! Node routes check the enrolment token or the node token in their handlers.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::secrets::Digest;
use super::{ApiKey, Role};
use crate::api::ollama::OllamaError;
use crate::error::ApiError;
use crate::state::AppState;

/// The logged-in user a request came from.
#[derive(Debug, Clone)]
pub struct Staff {
    pub user_id: String,
    pub username: String,
    pub role: Role,
    /// Digest of the session token, to end this session on logout.
    pub(super) session: Digest,
}

impl Staff {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// What an inference request may use.
#[derive(Debug, Clone)]
pub enum KeyScope {
    /// No key, and the router allows anonymous inference.
    Anonymous,
    Key(Arc<ApiKey>),
}

impl KeyScope {
    /// `Err(ModelNotAllowed)` when the key is limited to other models.
    pub fn check(&self, model: &str) -> Result<(), ApiError> {
        match self {
            KeyScope::Key(key) if !key.permits(model) => {
                Err(ApiError::ModelNotAllowed(model.to_owned()))
            }
            _ => Ok(()),
        }
    }

    pub fn permits(&self, model: &str) -> bool {
        self.check(model).is_ok()
    }
}

/// Fails closed: a handler taking a [`KeyScope`] on a route without a key guard refuses to run.
impl<S: Send + Sync> FromRequestParts<S> for KeyScope {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<KeyScope>()
            .cloned()
            .ok_or(ApiError::MissingApiKey)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Staff {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Staff>()
            .cloned()
            .ok_or(ApiError::Unauthenticated)
    }
}

/// Any logged-in user.
pub async fn viewer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    match state.auth.staff(req.headers()) {
        Ok(staff) => {
            req.extensions_mut().insert(staff);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

/// A logged-in admin.
pub async fn admin(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
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
        Err(e) => e.into_response(),
    }
}

/// An API key on the OpenAI routes.
pub async fn openai_key(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    match state.auth.inference_scope(req.headers()) {
        Ok(scope) => {
            req.extensions_mut().insert(scope);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

/// An API key on the Ollama routes; errors in Ollama's shape.
pub async fn ollama_key(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    match state.auth.inference_scope(req.headers()) {
        Ok(scope) => {
            req.extensions_mut().insert(scope);
            next.run(req).await
        }
        Err(e) => OllamaError(e).into_response(),
    }
}

/// `/metrics`: a logged-in user, or an API key (what a Prometheus scrape config can hold).
pub async fn metrics(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let staff = state.auth.staff(req.headers());
    if staff.is_ok() || state.auth.scrape_key(req.headers()) {
        return next.run(req).await;
    }
    match staff {
        Err(e) => e.into_response(),
        Ok(_) => ApiError::Unauthenticated.into_response(),
    }
}
