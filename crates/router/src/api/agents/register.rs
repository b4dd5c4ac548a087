//! `POST /api/agents/register`: a node announces itself with the router's enrolment token; the
//! router checks it can reach the node's API (with the node's API token) before listing it.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, HeaderValue};
use llm_router_protocol::Secret;
use llm_router_protocol::node::{RegisterRequest, RegisterResponse};
use llm_router_protocol::openai::ModelList;

use crate::api::{ApiJson, ApiResult};
use crate::auth::bearer;
use crate::error::ApiError;
use crate::registry::api_authorization;
use crate::state::AppState;

#[tracing::instrument(skip_all, fields(node = %req.machine_name))]
pub async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> ApiResult<Json<RegisterResponse>> {
    if let Err(e) = state.auth.check_enrollment(bearer(&headers)) {
        tracing::warn!(node = %req.machine_name, error = %e, "registration refused");
        return Err(e.into());
    }
    if req.machine_name.trim().is_empty() {
        return Err(ApiError::InvalidRequest(
            "'machine_name' must not be empty".into(),
        ));
    }
    if req.port == 0 {
        return Err(ApiError::InvalidRequest("'port' must not be 0".into()));
    }
    let Some(authorization) = api_authorization(req.api_token.expose()) else {
        return Err(ApiError::InvalidRequest(
            "'api_token' must be a non-empty token of visible ASCII characters".into(),
        ));
    };
    let ready = ready_models(&state, &req.base_url(), authorization).await?;
    let base_url = req.base_url();
    let registered = state.registry.register(req, &ready);
    if let Some(node) = state.registry.snapshot().node(&registered.node_id) {
        state.fleet_log.node_changed(node);
        state.distributor.place(Arc::clone(node));
    }
    tracing::info!(
        node_id = %registered.node_id,
        %base_url,
        status = registered.status.as_str(),
        ready_models = ?ready,
        updated = registered.updated,
        "node registered"
    );
    Ok(Json(RegisterResponse {
        node_id: registered.node_id,
        node_token: Secret::new(registered.node_token),
        status: registered.status,
        heartbeat_interval_secs: state.config.heartbeat_interval.as_secs().max(1),
    }))
}

/// Calls the node's `GET /v1/models`: the node must answer; the models it lists are ready.
async fn ready_models(
    state: &AppState,
    base_url: &str,
    authorization: HeaderValue,
) -> ApiResult<Vec<String>> {
    let url = format!("{base_url}/v1/models");
    let unreachable = |e: reqwest::Error| {
        ApiError::Upstream(format!(
            "the router cannot reach the node API at {url}: {e}"
        ))
    };
    let list: ModelList = state
        .http
        .get(&url)
        .header(AUTHORIZATION, authorization)
        .timeout(state.config.registration_timeout)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(unreachable)?
        .json()
        .await
        .map_err(unreachable)?;
    Ok(list.data.into_iter().map(|m| m.id).collect())
}
