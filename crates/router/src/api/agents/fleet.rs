//! `GET /api/agents`, `GET /api/agents/{id}`, `DELETE /api/agents/{id}`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use crate::api::ApiResult;
use crate::error::ApiError;
use crate::queue::QueueStatsView;
use crate::registry::NodeSummary;
use crate::state::AppState;

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
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NodeNotFound(id))
    }
}

/// `GET /api/queue`: requests waiting for a slot now, and how long waits have been.
pub async fn queue(State(state): State<AppState>) -> Json<QueueStatsView> {
    Json(state.dispatcher.stats())
}
