//! Sending models to nodes: a task per node, a `POST /pull` to each node (with its API token), and
//! the placement of new nodes by GPU memory.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use llm_router_protocol::node::{NodeStatus, PullRequest, RuntimeKind};

use super::Task;
use crate::error::ApiError;
use crate::registry::Node;
use crate::state::AppState;

/// Longest a node may take to accept a pull (it answers before downloading).
const PULL_ACCEPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Asks each of `nodes` to pull `model`; one task per node (an unfinished task for the same node
/// and model is returned instead of a new one). With a single node, its refusal is the error
/// (503 offline, 507 disk full, 502 unreachable); with several, refusals fail their tasks only.
pub async fn distribute(
    state: &AppState,
    model: &str,
    nodes: &[Arc<Node>],
    reason: &str,
) -> Result<Vec<Task>, ApiError> {
    let entry = state
        .catalog
        .get(model)
        .ok_or_else(|| ApiError::UnknownCatalogModel(model.to_owned()))?;
    let Some(gguf) = entry.gguf.as_ref() else {
        return Err(ApiError::InvalidRequest(format!(
            "the catalog has no GGUF download for '{model}'"
        )));
    };
    if gguf.parts > 1 {
        return Err(ApiError::InvalidRequest(format!(
            "'{model}' is split into {} GGUF files; nodes pull single files only (yet)",
            gguf.parts
        )));
    }
    let single = nodes.len() == 1;
    let mut tasks = Vec::with_capacity(nodes.len());
    for node in nodes {
        let refusal = if node.status == NodeStatus::Offline {
            Some(ApiError::NodeOffline(node.machine_name.clone()))
        } else if node.runtime.kind != RuntimeKind::LlamaServer {
            Some(ApiError::InvalidRequest(format!(
                "node '{}' runs {:?}: only llama-server nodes pull GGUF files",
                node.machine_name, node.runtime.kind
            )))
        } else {
            None
        };
        if let Some(e) = refusal {
            if single {
                return Err(e);
            }
            tracing::info!(node = %node.machine_name, %model, error = %e, "node skipped");
            continue;
        }
        if let Some(task) = state.tasks.active(&node.id, model) {
            tasks.push(task);
            continue;
        }
        let task = state
            .tasks
            .create(&node.id, &node.machine_name, model, reason);
        let request = PullRequest {
            task_id: task.id.clone(),
            model: model.to_owned(),
            url: gguf.url.clone(),
            sha256: gguf.sha256.clone(),
            size_bytes: Some(gguf.size_bytes),
            file_name: gguf.file_name.clone(),
            args: entry.args.clone(),
            chat_template: entry.chat_template.clone(),
            ctx_size: entry.ctx_size,
        };
        match send(state, node, &request).await {
            Ok(()) => {
                tracing::info!(node = %node.machine_name, %model, task = %task.id, %reason, "pull ordered");
                tasks.push(task);
            }
            Err(e) => {
                tracing::warn!(node = %node.machine_name, %model, error = %e, "pull refused");
                let failed = state.tasks.fail(&task.id, &e.to_string());
                if single {
                    return Err(e);
                }
                tasks.extend(failed);
            }
        }
    }
    Ok(tasks)
}

/// `POST /pull` to the node; its refusal as an [`ApiError`].
async fn send(state: &AppState, node: &Node, request: &PullRequest) -> Result<(), ApiError> {
    let response = node
        .request(&state.http, reqwest::Method::POST, "/pull")
        .timeout(PULL_ACCEPT_TIMEOUT)
        .json(request)
        .send()
        .await
        .map_err(|e| {
            if e.is_connect() {
                ApiError::NodeOffline(node.machine_name.clone())
            } else {
                ApiError::Upstream(format!("node '{}': {e}", node.machine_name))
            }
        })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or(body);
    Err(match status {
        StatusCode::INSUFFICIENT_STORAGE => {
            ApiError::InsufficientStorage(format!("node '{}': {message}", node.machine_name))
        }
        _ => ApiError::Upstream(format!(
            "node '{}' refused the pull ({status}): {message}",
            node.machine_name
        )),
    })
}

/// Places a node that just registered: the models its GPU memory tier calls for and it does not
/// have yet are distributed to it in the background, with the placement's reason on each task.
pub fn place(state: &AppState, node: Arc<Node>) {
    if !state.config.auto_distribute || node.runtime.kind != RuntimeKind::LlamaServer {
        return;
    }
    let choice = state
        .catalog
        .placement()
        .choose(&node.hardware, &state.catalog);
    let missing: Vec<String> = choice
        .models
        .iter()
        .filter(|m| !node.models.iter().any(|have| &have.name == *m))
        .filter(|m| state.tasks.active(&node.id, m).is_none())
        .cloned()
        .collect();
    tracing::info!(
        node = %node.machine_name,
        tier = %choice.tier,
        reason = %choice.reason,
        missing = ?missing,
        "placement"
    );
    if missing.is_empty() {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        for model in missing {
            let reason = format!("placement: {}", choice.reason);
            if let Err(e) = distribute(&state, &model, std::slice::from_ref(&node), &reason).await {
                tracing::warn!(node = %node.machine_name, %model, error = %e, "placement failed");
            }
        }
    });
}
