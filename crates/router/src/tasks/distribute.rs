//! Sending models to nodes: a task per node, a `POST /pull` to each node (with its API token): a
//! GGUF (every part of a split one) to llama-server nodes, an Ollama model to Ollama nodes. And the
//! placement of new nodes by the memory they can serve from.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use llm_router_protocol::node::{NodeStatus, PullPart, PullRequest, RuntimeKind};

use super::{Task, TaskError, Tasks};
use crate::catalog::{Catalog, CatalogEntry};
use crate::registry::{MAX_SMALL_ANSWER_BYTES, Node, read_answer};
use llm_router_common::text::{MAX_ERROR, capped, capped_lossy};

/// Longest a node may take to accept a pull (it answers before downloading).
const PULL_ACCEPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Orders model downloads from nodes: what distribution needs, and nothing else.
pub struct Distributor {
    catalog: Arc<Catalog>,
    tasks: Arc<Tasks>,
    http: reqwest::Client,
    /// Place the catalog's models on nodes as they register.
    auto_distribute: bool,
}

impl Distributor {
    pub fn new(
        catalog: Arc<Catalog>,
        tasks: Arc<Tasks>,
        http: reqwest::Client,
        auto_distribute: bool,
    ) -> Self {
        Distributor {
            catalog,
            tasks,
            http,
            auto_distribute,
        }
    }

    /// Asks each of `nodes` to pull `model`; one task per node (an unfinished task for the same
    /// node and model is returned instead of a new one). With a single node, its refusal is the
    /// error (offline, disk full, unreachable); with several, refusals fail their tasks only.
    pub async fn distribute(
        &self,
        model: &str,
        nodes: &[Arc<Node>],
        reason: &str,
    ) -> Result<Vec<Task>, TaskError> {
        let entry = self
            .catalog
            .get(model)
            .ok_or_else(|| TaskError::UnknownModel(model.to_owned()))?;
        let single = nodes.len() == 1;
        let mut tasks = Vec::with_capacity(nodes.len());
        for node in nodes {
            let request = can_pull(node).and_then(|()| pull_request(entry, node.runtime.kind));
            let request = match request {
                Ok(request) => request,
                Err(e) if single => return Err(e),
                Err(e) => {
                    tracing::info!(node = %node.machine_name, %model, error = %e, "node skipped");
                    continue;
                }
            };
            if let Some(task) = self.tasks.active(&node.id, model) {
                tasks.push(task);
                continue;
            }
            let task = self
                .tasks
                .create(&node.id, &node.machine_name, model, reason);
            let request = PullRequest {
                task_id: task.id.clone(),
                ..request
            };
            match self.send(node, &request).await {
                Ok(()) => {
                    tracing::info!(node = %node.machine_name, %model, task = %task.id, %reason, "pull ordered");
                    tasks.push(task);
                }
                Err(e) => {
                    tracing::warn!(node = %node.machine_name, %model, error = %e, "pull refused");
                    let failed = self.tasks.fail(&task.id, &e.to_string());
                    if single {
                        return Err(e);
                    }
                    tasks.extend(failed);
                }
            }
        }
        Ok(tasks)
    }

    /// `POST /pull` to the node; its refusal as a [`TaskError`].
    async fn send(&self, node: &Node, request: &PullRequest) -> Result<(), TaskError> {
        let response = node
            .request(&self.http, reqwest::Method::POST, "/pull")
            .timeout(PULL_ACCEPT_TIMEOUT)
            .json(request)
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() {
                    TaskError::NodeOffline(node.machine_name.clone())
                } else {
                    TaskError::NodeFailed(format!("node '{}': {e}", node.machine_name))
                }
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = read_answer(response, MAX_SMALL_ANSWER_BYTES)
            .await
            .unwrap_or_default();
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v["error"]["message"]
                    .as_str()
                    .map(|m| capped(m, MAX_ERROR).into_owned())
            })
            .unwrap_or_else(|| capped_lossy(&body, MAX_ERROR));
        Err(match status {
            StatusCode::INSUFFICIENT_STORAGE => {
                TaskError::InsufficientStorage(format!("node '{}': {message}", node.machine_name))
            }
            _ => TaskError::NodeFailed(format!(
                "node '{}' refused the pull ({status}): {message}",
                node.machine_name
            )),
        })
    }

    /// Places a node that just registered: the models its GPU memory tier calls for and it does
    /// not have yet are distributed to it in the background, with the placement's reason on each
    /// task.
    pub fn place(self: &Arc<Self>, node: Arc<Node>) {
        if !self.auto_distribute {
            return;
        }
        let choice = self
            .catalog
            .placement()
            .choose(&node.hardware, &self.catalog);
        let missing: Vec<String> = choice
            .models
            .iter()
            .filter(|m| !node.models.iter().any(|have| &have.name == *m))
            .filter(|m| self.tasks.active(&node.id, m).is_none())
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
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let reason = format!("placement: {}", choice.reason);
            for model in missing {
                if let Err(e) = this
                    .distribute(&model, std::slice::from_ref(&node), &reason)
                    .await
                {
                    tracing::warn!(node = %node.machine_name, %model, error = %e, "placement failed");
                }
            }
        });
    }
}

/// Why `node` cannot take a pull now, if it cannot.
fn can_pull(node: &Node) -> Result<(), TaskError> {
    if node.status == NodeStatus::Offline {
        Err(TaskError::NodeOffline(node.machine_name.clone()))
    } else {
        Ok(())
    }
}

/// What a node running `runtime` is sent for `entry` (the task id is filled in per node): the
/// GGUF file, or every part of a split one, for llama-server; the Ollama model for Ollama, which
/// pulls it through its own API.
fn pull_request(entry: &CatalogEntry, runtime: RuntimeKind) -> Result<PullRequest, TaskError> {
    let model = &entry.name;
    let base = PullRequest {
        task_id: String::new(),
        model: model.clone(),
        url: String::new(),
        sha256: None,
        size_bytes: Some(entry.size_bytes),
        file_name: String::new(),
        args: Vec::new(),
        chat_template: entry.chat_template.clone(),
        ctx_size: entry.ctx_size,
        parts: Vec::new(),
        ollama: None,
    };
    if runtime == RuntimeKind::Ollama {
        let Some(tag) = entry.ollama.clone() else {
            return Err(TaskError::NotPullable(format!(
                "the catalog has no Ollama model for '{model}'"
            )));
        };
        return Ok(PullRequest {
            ollama: Some(tag),
            // Ollama uses its own templates.
            chat_template: None,
            ..base
        });
    }
    let Some(gguf) = entry.gguf.as_ref() else {
        return Err(TaskError::NotPullable(format!(
            "the catalog has no GGUF download for '{model}'"
        )));
    };
    // A split model: every part, the first one also as the request's own file (what the runtime
    // is started on).
    let parts: Vec<PullPart> = if gguf.parts > 1 {
        gguf.part_files()
            .into_iter()
            .map(|p| PullPart {
                url: p.url,
                file_name: p.file_name,
                sha256: p.sha256,
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(PullRequest {
        url: gguf.url.clone(),
        sha256: parts
            .first()
            .map_or_else(|| gguf.sha256.clone(), |p| p.sha256.clone()),
        size_bytes: Some(gguf.size_bytes),
        file_name: gguf.file_name.clone(),
        args: entry.args.clone(),
        parts,
        ..base
    })
}
