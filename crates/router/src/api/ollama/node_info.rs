//! What nodes know of their models (size, family, quantization, capabilities), read from their
//! `GET /api/tags` when an Ollama listing asks for it. Best effort: a node that does not answer
//! in time leaves its models with the details the registry has.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use llm_router_protocol::node::NodeStatus;
use llm_router_protocol::ollama::{ListModel, ListResponse};

use crate::registry::{MAX_SMALL_ANSWER_BYTES, Node, read_json_answer};
use crate::state::AppState;

/// How long a node may take to describe its models.
const NODE_INFO_TIMEOUT: Duration = Duration::from_secs(2);

/// Details of each model in `wanted`, asking as few nodes as cover them (ready nodes first).
pub async fn collect(
    state: &AppState,
    nodes: &[Arc<Node>],
    wanted: &[&str],
) -> HashMap<String, ListModel> {
    let mut uncovered: Vec<&str> = wanted.to_vec();
    let mut ask = Vec::new();
    let mut ordered: Vec<&Arc<Node>> = nodes
        .iter()
        .filter(|n| n.status != NodeStatus::Offline)
        .collect();
    ordered.sort_by_key(|n| n.status != NodeStatus::Online);
    for node in ordered {
        let before = uncovered.len();
        uncovered.retain(|m| !node.models.iter().any(|s| s.name == *m));
        if uncovered.len() < before {
            ask.push(Arc::clone(node));
        }
        if uncovered.is_empty() {
            break;
        }
    }
    let answers = join_all(ask.iter().map(|node| fetch(state, node))).await;
    let mut details = HashMap::new();
    for listing in answers.into_iter().flatten() {
        for model in listing.models {
            if wanted.contains(&model.name.as_str()) {
                details.entry(model.name.clone()).or_insert(model);
            }
        }
    }
    details
}

async fn fetch(state: &AppState, node: &Node) -> Option<ListResponse> {
    let result = async {
        let response = node
            .request(&state.http, reqwest::Method::GET, "/api/tags")
            .timeout(NODE_INFO_TIMEOUT)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| e.to_string())?;
        read_json_answer::<ListResponse>(response, MAX_SMALL_ANSWER_BYTES).await
    }
    .await;
    match result {
        Ok(listing) => Some(listing),
        Err(e) => {
            tracing::debug!(node = %node.machine_name, error = %e, "node did not describe its models");
            None
        }
    }
}
