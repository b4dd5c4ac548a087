//! `GET /api/tags`: the node's ready models in Ollama's terms (size, family, quantization,
//! capabilities), for the router's Ollama listings.

use axum::Json;
use axum::extract::State;
use llm_router_protocol::ollama::ListResponse;

use crate::state::NodeState;

pub async fn tags(State(state): State<NodeState>) -> Json<ListResponse> {
    let models = state
        .models
        .list()
        .iter()
        .filter(|m| m.ready_port().is_some())
        .filter_map(|m| m.state().info)
        .collect();
    Json(ListResponse { models })
}
