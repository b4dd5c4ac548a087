//! What can go wrong with a credential or a change to users and keys. The HTTP status of each is
//! decided once, in [`crate::error`].

use std::time::Duration;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(
        "authentication required: log in with POST /api/auth/login and send the session token as 'Authorization: Bearer <token>' (or the session cookie)"
    )]
    Unauthenticated,
    #[error("the session is invalid or has expired: log in again")]
    InvalidSession,
    #[error("wrong username or password")]
    InvalidCredentials,
    #[error(
        "too many failed logins from this address or for this account: try again in {} s",
        .0.as_secs().max(1)
    )]
    TooManyLoginAttempts(Duration),
    /// Every password checker is taken: try again shortly.
    #[error("too many password checks are under way: try again in a moment")]
    Busy,
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
    /// A user name, password or key field that breaks a rule.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The change would break an invariant (a duplicate name, no admin left).
    #[error("{0}")]
    Conflict(String),
    #[error("user '{0}' does not exist")]
    UserNotFound(String),
    #[error("API key '{0}' does not exist")]
    ApiKeyNotFound(String),
    /// The configured first admin password is refused (at start-up).
    #[error("admin password: {0}")]
    AdminPassword(String),
    #[error("internal error: {0}")]
    Store(#[from] StoreError),
    /// Hashing failed, or its worker thread died.
    #[error("internal error: {0}")]
    Hashing(String),
}
