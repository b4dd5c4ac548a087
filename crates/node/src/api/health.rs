//! `GET /health` and `GET /v1/models`.

use axum::Json;
use axum::extract::State;
use llm_router_protocol::node::NodeHealth;
use llm_router_protocol::openai::{ModelList, ModelObject};

use crate::state::NodeState;

/// Liveness plus the node's counters and each model's state.
pub async fn health(State(state): State<NodeState>) -> Json<NodeHealth> {
    Json(NodeHealth {
        status: "ok".to_owned(),
        machine_name: state.machine_name.to_string(),
        active_requests: state.counters.active(),
        requests_total: state.counters.total(),
        models: state.models.list().iter().map(|m| m.status()).collect(),
    })
}

/// The models ready on this node (the router treats every listed model as ready).
pub async fn models(State(state): State<NodeState>) -> Json<ModelList> {
    let data = state
        .models
        .list()
        .iter()
        .filter(|m| m.ready_port().is_some())
        .map(|m| ModelObject::new(m.name(), state.machine_name.to_string()))
        .collect();
    Json(ModelList::new(data))
}
