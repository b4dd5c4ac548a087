//! `POST /api/health`: a node's heartbeat, authenticated by its node token.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use llm_router_protocol::node::{Heartbeat, HeartbeatResponse, NODE_TOKEN_HEADER, NodeMetrics};

use crate::api::{ApiJson, ApiResult};
use crate::auth::bearer;
use crate::error::ApiError;
use crate::state::AppState;

pub async fn heartbeat(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(hb): ApiJson<Heartbeat>,
) -> ApiResult<Json<HeartbeatResponse>> {
    let token = node_token(&headers).ok_or(ApiError::InvalidNodeToken)?;
    let node_id = hb.node_id.clone();
    let (status, transition) = state.registry.heartbeat(hb, token)?;
    state.metrics.record_heartbeat();
    if let Some(node) = state.registry.snapshot().node(&node_id) {
        if transition.is_some() {
            state.fleet_log.node_changed(node);
        }
        state.fleet_log.node_reported(node);
    }
    if let Some(t) = transition {
        tracing::info!(
            %node_id,
            node = %t.machine_name,
            from = t.from.as_str(),
            to = t.to.as_str(),
            "node status changed on heartbeat"
        );
    } else {
        tracing::trace!(%node_id, "heartbeat");
    }
    Ok(Json(HeartbeatResponse { status }))
}

/// `POST /api/agents/{id}/metrics`: a metrics push between heartbeats (same fields as the
/// heartbeat's `metrics`), authenticated by the node token. Answers 204.
pub async fn push_metrics(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(metrics): ApiJson<NodeMetrics>,
) -> ApiResult<StatusCode> {
    let token = node_token(&headers).ok_or(ApiError::InvalidNodeToken)?;
    state.registry.push_metrics(&id, token, metrics)?;
    if let Some(node) = state.registry.snapshot().node(&id) {
        state.fleet_log.node_reported(node);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The node token from `Authorization: Bearer …` or `X-LLM-Node-Token`.
fn node_token(headers: &HeaderMap) -> Option<&str> {
    if let Some(token) = bearer(headers) {
        return Some(token);
    }
    headers
        .get(NODE_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}
