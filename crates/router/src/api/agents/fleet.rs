//! `GET /api/agents`, `GET /api/agents/{id}`, `DELETE /api/agents/{id}`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use crate::api::ApiResult;
use crate::dispatch::QueueStatsView;
use crate::error::ApiError;
use crate::registry::NodeSummary;
use crate::state::AppState;
use crate::store::{MetricSample, unix_ms};

pub async fn list(State(state): State<AppState>) -> Json<Vec<NodeSummary>> {
    let snapshot = state.registry.snapshot();
    Json(snapshot.nodes().iter().map(|n| n.summary()).collect())
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<NodeSummary>> {
    let snapshot = state.registry.snapshot();
    let node = snapshot.node(&id).ok_or(ApiError::NodeNotFound(id))?;
    Ok(Json(node.summary()))
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if state.registry.remove(&id) {
        tracing::info!(node_id = %id, "node removed");
        state.fleet_log.node_removed(&id).await?;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NodeNotFound(id))
    }
}

/// `POST /api/agents/{id}/drain`: the node gets no new requests (those running finish); it stays
/// drained across re-registrations until resumed.
pub async fn drain(state: State<AppState>, id: Path<String>) -> ApiResult<Json<NodeSummary>> {
    set_draining(state, id, true).await
}

/// `POST /api/agents/{id}/resume`: the node takes requests again.
pub async fn resume(state: State<AppState>, id: Path<String>) -> ApiResult<Json<NodeSummary>> {
    set_draining(state, id, false).await
}

/// The change is in the registry at once and answered once stored (503 if the store fails).
async fn set_draining(
    State(state): State<AppState>,
    Path(id): Path<String>,
    draining: bool,
) -> ApiResult<Json<NodeSummary>> {
    let node = state
        .registry
        .set_draining(&id, draining)
        .ok_or(ApiError::NodeNotFound(id))?;
    tracing::info!(node_id = %node.id, node = %node.machine_name, draining, "node drain changed");
    state.fleet_log.node_set(&node).await?;
    Ok(Json(node.summary()))
}

/// `GET /api/queue`: requests waiting for a slot now, and how long waits have been.
pub async fn queue(State(state): State<AppState>) -> Json<QueueStatsView> {
    Json(state.dispatcher.stats())
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Unix ms; default: the last hour.
    since: Option<u64>,
}

/// `GET /api/agents/{id}/metrics/history?since=`: the node's stored health samples.
pub async fn metrics_history(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<axum::extract::Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Vec<MetricSample>>> {
    let axum::extract::Query(query) = query.map_err(|e| ApiError::InvalidRequest(e.body_text()))?;
    if state.registry.snapshot().node(&id).is_none() {
        return Err(ApiError::NodeNotFound(id));
    }
    let hour_ago = unix_ms(std::time::SystemTime::now()).saturating_sub(3_600_000);
    let samples = state
        .store
        .metrics_history(&id, query.since.unwrap_or(hour_ago))
        .await?;
    Ok(Json(samples))
}
