//! The model catalog and distribution: `GET /api/models/available`, `POST /api/models/distribute`,
//! `GET /api/agents/{id}/models`, `POST /api/agents/{id}/models/pull`, `GET /api/tasks[/{id}]`,
//! and the nodes' `POST /api/tasks/{id}/progress`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use llm_router_protocol::node::{ModelStatus, NodeStatus, TaskProgress};
use serde::{Deserialize, Serialize};

use crate::api::guard::NodeCaller;
use crate::api::{ApiJson, ApiResult};
use crate::auth::Staff;
use crate::catalog::CatalogEntry;
use crate::error::ApiError;
use crate::registry::Node;
use crate::state::AppState;
use crate::tasks::{Task, TaskError};

/// `GET /api/models/available`: the catalog.
pub async fn available(State(state): State<AppState>) -> Json<Vec<CatalogEntry>> {
    Json(state.catalog.entries().to_vec())
}

/// Which nodes a distribution goes to.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Target {
    /// `"all"` (every node that is not offline) or one node id.
    One(String),
    /// Node ids.
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistributeRequest {
    model: String,
    target: Target,
}

#[derive(Debug, Serialize)]
pub struct Accepted {
    task_ids: Vec<String>,
    tasks: Vec<Task>,
}

fn accepted(tasks: Vec<Task>) -> (StatusCode, Json<Accepted>) {
    (
        StatusCode::ACCEPTED,
        Json(Accepted {
            task_ids: tasks.iter().map(|t| t.id.clone()).collect(),
            tasks,
        }),
    )
}

/// `POST /api/models/distribute {model, target}` → 202 with one task per node.
pub async fn distribute_model(
    State(state): State<AppState>,
    staff: Staff,
    ApiJson(req): ApiJson<DistributeRequest>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    if state.catalog.get(&req.model).is_none() {
        return Err(TaskError::UnknownModel(req.model).into());
    }
    let snapshot = state.registry.snapshot();
    let nodes: Vec<Arc<Node>> = match req.target {
        Target::One(all) if all == "all" => snapshot
            .nodes()
            .iter()
            .filter(|n| n.status != NodeStatus::Offline)
            .cloned()
            .collect(),
        Target::One(id) => vec![node(&state, &id)?],
        Target::Many(ids) => ids
            .iter()
            .map(|id| node(&state, id))
            .collect::<ApiResult<_>>()?,
    };
    if nodes.is_empty() {
        return Err(ApiError::InvalidRequest(
            "no node to distribute to".to_owned(),
        ));
    }
    let reason = format!("asked by {}", staff.username);
    let tasks = state
        .distributor
        .distribute(&req.model, &nodes, &reason)
        .await?;
    Ok(accepted(tasks))
}

fn node(state: &AppState, id: &str) -> ApiResult<Arc<Node>> {
    state
        .registry
        .snapshot()
        .node(id)
        .cloned()
        .ok_or_else(|| ApiError::NodeNotFound(id.to_owned()))
}

#[derive(Debug, Serialize)]
pub struct NodeModels {
    node_id: String,
    models: Vec<ModelStatus>,
    /// Downloads to this node not finished yet.
    tasks: Vec<Task>,
}

/// `GET /api/agents/{id}/models`: what the node reported, and its running downloads.
pub async fn agent_models(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<NodeModels>> {
    let node = node(&state, &id)?;
    Ok(Json(NodeModels {
        node_id: id.clone(),
        models: node.models.clone(),
        tasks: state
            .tasks
            .list()
            .into_iter()
            .filter(|t| t.node_id == id && !t.status.is_final())
            .collect(),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullToNode {
    model: String,
}

/// `POST /api/agents/{id}/models/pull {model}` → 202 with the task.
pub async fn pull_to_agent(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PullToNode>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let node = node(&state, &id)?;
    let reason = format!("asked by {}", staff.username);
    let tasks = state
        .distributor
        .distribute(&req.model, &[node], &reason)
        .await?;
    Ok(accepted(tasks))
}

/// `GET /api/tasks`, newest first.
pub async fn tasks(State(state): State<AppState>) -> Json<Vec<Task>> {
    Json(state.tasks.list())
}

/// `GET /api/tasks/{id}`.
pub async fn task(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Task>> {
    state
        .tasks
        .get(&id)
        .map(Json)
        .ok_or(TaskError::NotFound(id).into())
}

/// `POST /api/tasks/{id}/progress`: a node reports on its own task, with its node token (checked
/// before the body is read; the body's `node_id` must then be the token's node).
pub async fn progress(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: NodeCaller,
    ApiJson(report): ApiJson<TaskProgress>,
) -> ApiResult<StatusCode> {
    state.registry.check_token(&report.node_id, &caller.token)?;
    let task = state.tasks.report(&id, report)?;
    tracing::debug!(task = %id, status = task.status.as_str(), percent = ?task.percent, "task progress");
    if task.status.is_final() {
        tracing::info!(
            task = %id,
            node = task.node_name.as_deref().unwrap_or(&task.node_id),
            model = %task.model,
            status = task.status.as_str(),
            error = task.error.as_deref().unwrap_or(""),
            "task finished"
        );
    }
    Ok(StatusCode::NO_CONTENT)
}
