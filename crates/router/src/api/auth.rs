//! Logging in and out, the caller's identity, users and API keys:
//! `/api/auth/*` (login is open; the rest need a session), `/api/users*` and `/api/keys*` (admins).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::SET_COOKIE;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::api::{ApiJson, ApiResult, ClientAddr};
use crate::auth::{
    ApiKeyView, AuthError, NewApiKey, NewUser, SESSION_COOKIE, Spend, Staff, UserPatch, UserView,
};
use crate::state::AppState;
use crate::store::unix_ms;
use std::time::SystemTime;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    username: String,
    password: String,
}

#[derive(Serialize)]
pub struct LoginResponse {
    /// Session token for `Authorization: Bearer` (scripts); the browser gets the same as an
    /// HTTP-only cookie.
    token: String,
    token_type: &'static str,
    expires_at_ms: u64,
    user: UserView,
}

/// `POST /api/auth/login` → a session token and cookie.
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    let session = state
        .auth
        .login(&req.username, &req.password, &address(client))
        .await?;
    let max_age = state.config.auth.session_ttl.as_secs();
    let cookie = format!(
        "{SESSION_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{}",
        session.token.expose(),
        secure(&state)
    );
    let body = LoginResponse {
        token: session.token.expose().to_owned(),
        token_type: "Bearer",
        expires_at_ms: session.expires_ms,
        user: session.user,
    };
    Ok(([(SET_COOKIE, cookie)], Json(body)).into_response())
}

/// `POST /api/auth/logout`: ends the session and clears the cookie.
pub async fn logout(State(state): State<AppState>, staff: Staff) -> ApiResult<Response> {
    state.auth.logout(&staff).await?;
    let cookie = format!(
        "{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}",
        secure(&state)
    );
    Ok((StatusCode::NO_CONTENT, [(SET_COOKIE, cookie)]).into_response())
}

/// The cookie attribute that keeps the session off plain HTTP, when the router serves HTTPS.
fn secure(state: &AppState) -> &'static str {
    if state.config.tls.is_some() {
        "; Secure"
    } else {
        ""
    }
}

/// `GET /api/auth/me`.
pub async fn me(State(state): State<AppState>, staff: Staff) -> ApiResult<Json<UserView>> {
    state
        .auth
        .user(&staff.user_id)
        .map(Json)
        .ok_or(AuthError::InvalidSession.into())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// `PUT /api/auth/password`: the caller changes their own password (their sessions end).
/// Checking the current password is throttled like a login.
pub async fn change_password(
    State(state): State<AppState>,
    staff: Staff,
    ClientAddr(client): ClientAddr,
    ApiJson(req): ApiJson<PasswordChange>,
) -> ApiResult<StatusCode> {
    state
        .auth
        .change_own_password(
            &staff,
            &req.current_password,
            req.new_password,
            &address(client),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The client's address without its port, as password checks are throttled by.
fn address(client: Option<String>) -> String {
    let Some(client) = client else {
        return "unknown".to_owned();
    };
    match client.parse::<std::net::SocketAddr>() {
        Ok(addr) => addr.ip().to_string(),
        Err(_) => client,
    }
}

#[derive(Serialize)]
pub struct EnrollmentToken {
    token: String,
}

/// `GET /api/auth/enrollment-token` (admins): what `llm-node --enrollment-token` needs. A
/// generated token is stored only as a digest: after a restart it cannot be shown (409).
pub async fn enrollment_token(State(state): State<AppState>) -> ApiResult<Json<EnrollmentToken>> {
    let token = state.auth.enrollment_token().ok_or_else(|| {
        AuthError::Conflict(
            "the generated enrolment token is stored only as a digest and was shown once, when \
             it was generated; set LLM_ROUTER_ENROLLMENT_TOKEN (--enrollment-token) to choose one"
                .to_owned(),
        )
    })?;
    Ok(Json(EnrollmentToken {
        token: token.expose().to_owned(),
    }))
}

/// `GET /api/users`.
pub async fn list_users(State(state): State<AppState>) -> Json<Vec<UserView>> {
    Json(state.auth.users())
}

/// `POST /api/users` → 201.
pub async fn create_user(
    State(state): State<AppState>,
    ApiJson(new): ApiJson<NewUser>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    let user = state.auth.create_user(new).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// `PATCH /api/users/{id}`: role and/or password.
pub async fn update_user(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<UserPatch>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(state.auth.update_user(&id, patch).await?))
}

/// `DELETE /api/users/{id}` → 204.
pub async fn delete_user(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.auth.delete_user(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/keys`: every key, without the keys themselves.
pub async fn list_keys(State(state): State<AppState>) -> Json<Vec<ApiKeyView>> {
    let now_ms = unix_ms(SystemTime::now());
    let mut keys = state.auth.api_keys();
    for key in &mut keys {
        if let Some((budget, period)) = key.limits.budget() {
            let (period, tokens) = state.quotas.spent(&key.id, period, now_ms);
            key.spend = Some(Spend {
                period,
                tokens,
                budget,
            });
        }
    }
    Json(keys)
}

/// `POST /api/keys` → 201 with the key, shown this once.
pub async fn create_key(
    State(state): State<AppState>,
    staff: Staff,
    ApiJson(new): ApiJson<NewApiKey>,
) -> ApiResult<(StatusCode, Json<ApiKeyView>)> {
    let key = state.auth.create_api_key(new, &staff.username).await?;
    Ok((StatusCode::CREATED, Json(key)))
}

/// `DELETE /api/keys/{id}`: revokes the key (it stays listed as `revoked`).
pub async fn revoke_key(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<ApiKeyView>> {
    Ok(Json(state.auth.revoke_api_key(&id).await?))
}
