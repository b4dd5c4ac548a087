//! `POST /pull`: the router asks for a model. The node checks the request (its runtime `args`
//! against an allow-list: 400 naming a refused flag) and its free disk at once (507 when the file
//! cannot fit), answers 202, then downloads in the background, verifies
//! the file, starts a runtime for it and reports each step to the router's
//! `POST /api/tasks/{id}/progress`.

use std::path::Path;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use llm_router_protocol::node::{ModelState, PullRequest, TaskProgress, TaskStatus};
use serde_json::{Value, json};

use super::NodeApiError;
use crate::config::ModelSpec;
use crate::pull::{Phase, PullHandle, PullSpec, available_space, part_path};
use crate::runtime::pulled_args;
use crate::state::NodeState;

/// Longest a progress report may take; a slow router does not stall the download.
const REPORT_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn pull(
    State(state): State<NodeState>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), NodeApiError> {
    let req: PullRequest =
        serde_json::from_slice(&body).map_err(|e| NodeApiError::InvalidRequest(e.to_string()))?;
    check(&req)?;
    if let Some(runtime) = state.model(&req.model) {
        // Served already: the task follows the runtime to ready.
        tracing::info!(model = %req.model, task = %req.task_id, "pull of a model already served");
        let state = state.clone();
        let status = runtime.status().state;
        tokio::spawn(async move { follow_runtime(&state, &req).await });
        return Ok((StatusCode::OK, Json(json!({"state": status}))));
    }
    let dest = state.models_dir.join(&req.file_name);
    ensure_room(&state.models_dir, &dest, req.size_bytes)?;
    let handle = state.pulls.pull(
        &req.model,
        PullSpec {
            url: req.url.clone(),
            dest,
            sha256: req.sha256.clone(),
            size: req.size_bytes,
        },
    );
    tracing::info!(
        model = %req.model,
        task = %req.task_id,
        url = %redacted(&req.url),
        joined = handle.joined(),
        "pull started"
    );
    state.models.notify();
    let joined = handle.joined();
    let task_id = req.task_id.clone();
    tokio::spawn(async move { follow_pull(state, req, handle).await });
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"task_id": task_id, "joined": joined})),
    ))
}

fn check(req: &PullRequest) -> Result<(), NodeApiError> {
    let invalid = |m: &str| Err(NodeApiError::InvalidRequest(m.to_owned()));
    if req.model.trim().is_empty() || req.task_id.trim().is_empty() {
        return invalid("'model' and 'task_id' must not be empty");
    }
    let name = Path::new(&req.file_name);
    if req.file_name.is_empty()
        || name.components().count() != 1
        || name.file_name().is_none()
        || req.file_name.starts_with('.')
    {
        return invalid("'file_name' must be a plain file name");
    }
    if !(req.url.starts_with("http://") || req.url.starts_with("https://")) {
        return invalid("'url' must be http:// or https://");
    }
    // The runtime's command line: only flags that tune the model, never where it listens.
    pulled_args::check(&req.args)
        .and_then(|()| {
            req.chat_template
                .as_deref()
                .map_or(Ok(()), pulled_args::check_chat_template)
        })
        .map_err(|e| NodeApiError::InvalidRequest(format!("'args': {e}")))?;
    Ok(())
}

/// 507 before anything is written when the file cannot fit in `dir`.
fn ensure_room(dir: &Path, dest: &Path, size: Option<u64>) -> Result<(), NodeApiError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| NodeApiError::Storage(format!("{}: {e}", dir.display())))?;
    let Some(size) = size else {
        return Ok(());
    };
    let have = std::fs::metadata(part_path(dest)).map_or(0, |m| m.len());
    let needed = size.saturating_sub(have);
    let available = available_space(dir, None).map_err(|e| NodeApiError::Storage(e.to_string()))?;
    if needed > available {
        return Err(NodeApiError::DiskFull { needed, available });
    }
    Ok(())
}

/// The URL without its query (signed URLs carry credentials there).
fn redacted(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

/// Reports the download's progress, then loads the model and reports until it is ready.
async fn follow_pull(state: NodeState, req: PullRequest, handle: PullHandle) {
    let mut updates = handle.subscribe();
    let pulled = loop {
        let now = updates.borrow_and_update().clone();
        if let Some(outcome) = now.outcome {
            break outcome;
        }
        if let Some(p) = now.progress {
            let status = match p.phase {
                Phase::Downloading => TaskStatus::Downloading,
                Phase::Verifying => TaskStatus::Verifying,
            };
            report(
                &state,
                &req,
                status,
                p.bytes_done,
                p.bytes_total,
                p.bytes_per_sec,
                None,
            )
            .await;
        }
        if updates.changed().await.is_err() {
            let state_now = updates.borrow().clone();
            match state_now.outcome {
                Some(outcome) => break outcome,
                None => {
                    fail(&state, &req, "the download stopped without an outcome").await;
                    return;
                }
            }
        }
    };
    let pulled = match pulled {
        Ok(pulled) => pulled,
        Err(e) => {
            tracing::warn!(model = %req.model, task = %req.task_id, error = %e, "pull failed");
            fail(&state, &req, &e.to_string()).await;
            state.models.notify();
            return;
        }
    };
    tracing::info!(
        model = %req.model,
        path = %pulled.path.display(),
        bytes = pulled.bytes,
        sha256 = %pulled.sha256,
        "model downloaded and verified; starting its runtime"
    );
    let spec = ModelSpec {
        name: req.model.clone(),
        path: pulled.path.clone(),
        ctx_size: req.ctx_size,
        parallel: None,
        threads: None,
        chat_template: req.chat_template.clone(),
        embeddings: None,
        swa_full: None,
        cache_ram_mib: None,
        gpu_layers: None,
        args: req.args.clone(),
    }
    .or(&state.model_defaults);
    // Served before anything is awaited: the pull is no longer listed, and a heartbeat that
    // found the model in neither list would tell the router the model is gone (its waiting
    // requests would fail).
    state.models.serve(spec);
    let bytes = pulled.bytes;
    report(
        &state,
        &req,
        TaskStatus::Loading,
        bytes,
        Some(bytes),
        0,
        None,
    )
    .await;
    follow_runtime(&state, &req).await;
}

/// Reports `loading` until the model's runtime is ready (`ready`) or fails (`failed`).
async fn follow_runtime(state: &NodeState, req: &PullRequest) {
    let Some(runtime) = state.model(&req.model) else {
        fail(state, req, "the model is not served").await;
        return;
    };
    let mut updates = runtime.subscribe();
    loop {
        let now = updates.borrow_and_update().clone();
        match now.state {
            ModelState::Ready => {
                report(state, req, TaskStatus::Ready, 0, None, 0, None).await;
                return;
            }
            ModelState::Failed => {
                let why = now.error.unwrap_or_else(|| "the runtime failed".to_owned());
                fail(state, req, &why).await;
                return;
            }
            ModelState::Loading | ModelState::Downloading => {}
        }
        if updates.changed().await.is_err() {
            return;
        }
    }
}

async fn fail(state: &NodeState, req: &PullRequest, error: &str) {
    report(
        state,
        req,
        TaskStatus::Failed,
        0,
        None,
        0,
        Some(error.to_owned()),
    )
    .await;
}

/// One progress report; failures are logged, never fatal to the pull.
async fn report(
    state: &NodeState,
    req: &PullRequest,
    status: TaskStatus,
    bytes_done: u64,
    bytes_total: Option<u64>,
    bytes_per_sec: u64,
    error: Option<String>,
) {
    let Some(router) = state.router.get() else {
        tracing::warn!(task = %req.task_id, "not registered: progress not reported");
        return;
    };
    let body = TaskProgress {
        node_id: router.node_id.clone(),
        status,
        bytes_done,
        bytes_total,
        bytes_per_sec,
        error,
    };
    let sent = state
        .http
        .post(format!(
            "{}/api/tasks/{}/progress",
            router.router_url, req.task_id
        ))
        .bearer_auth(router.node_token.expose())
        .timeout(REPORT_TIMEOUT)
        .json(&body)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status);
    if let Err(e) = sent {
        tracing::warn!(task = %req.task_id, status = status.as_str(), error = %e, "progress report failed");
    }
}
