//! `POST /pull`: the router asks for a model. The node checks the request (its runtime `args`
//! against an allow-list: 400 naming a refused flag; the parts of a split model) and its free disk
//! at once (507 when the model cannot fit), answers 202, then downloads in the background (every
//! part of a split model, each verified), starts a runtime for it (on the first part) and reports
//! each step to the router's `POST /api/tasks/{id}/progress`.

use std::path::{Path, PathBuf};
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
    if state.backend.speaks_ollama() {
        return super::pull_ollama::pull(state, req);
    }
    if req.ollama.is_some() {
        return Err(NodeApiError::InvalidRequest(
            "this node runs llama-server: pull a GGUF (url, file_name), not an Ollama model".into(),
        ));
    }
    check(&req)?;
    if let Some(runtime) = state.model(&req.model) {
        // Served already: the task follows the runtime to ready.
        tracing::info!(model = %req.model, task = %req.task_id, "pull of a model already served");
        let state = state.clone();
        let status = runtime.status().state;
        tokio::spawn(async move { follow_runtime(&state, &req).await });
        return Ok((StatusCode::OK, Json(json!({"state": status}))));
    }
    let specs = specs(&state.models_dir, &req);
    let partial: Vec<_> = specs.iter().map(|s| part_path(&s.dest)).collect();
    ensure_room(&state.models_dir, &partial, req.size_bytes)?;
    let handle = state.pulls.pull_parts(&req.model, specs, req.size_bytes);
    tracing::info!(
        model = %req.model,
        task = %req.task_id,
        url = %redacted(&req.url),
        parts = req.parts.len().max(1),
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

/// Most parts a split model may come in (gpt-oss-120b has 3; llama.cpp's own splits of the
/// largest models stay well under this).
pub const MAX_PARTS: usize = 64;

/// What to download: the request's one file, or each of its parts, under the models directory.
fn specs(models_dir: &Path, req: &PullRequest) -> Vec<PullSpec> {
    if req.parts.is_empty() {
        return vec![PullSpec {
            url: req.url.clone(),
            dest: models_dir.join(&req.file_name),
            sha256: req.sha256.clone(),
            size: req.size_bytes,
        }];
    }
    req.parts
        .iter()
        .map(|p| PullSpec {
            url: p.url.clone(),
            dest: models_dir.join(&p.file_name),
            sha256: p.sha256.clone(),
            size: None,
        })
        .collect()
}

fn check(req: &PullRequest) -> Result<(), NodeApiError> {
    let invalid = |m: &str| Err(NodeApiError::InvalidRequest(m.to_owned()));
    if req.model.trim().is_empty() || req.task_id.trim().is_empty() {
        return invalid("'model' and 'task_id' must not be empty");
    }
    if !is_plain_file_name(&req.file_name) {
        return invalid("'file_name' must be a plain file name");
    }
    if !is_http(&req.url) {
        return invalid("'url' must be http:// or https://");
    }
    check_parts(req).map_err(NodeApiError::InvalidRequest)?;
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

fn is_plain_file_name(file_name: &str) -> bool {
    let name = Path::new(file_name);
    !file_name.is_empty()
        && name.components().count() == 1
        && name.file_name().is_some()
        && !file_name.starts_with('.')
}

fn is_http(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

/// The parts of a split model, if any: 2 to [`MAX_PARTS`], each a plain file name of the split
/// pattern llama-server looks for beside the first part (`<stem>-0000i-of-0000n.gguf`, one stem),
/// with an http(s) URL; the first part is the request's own file. Otherwise llama-server could
/// not find the parts, or a part could land outside the models directory.
fn check_parts(req: &PullRequest) -> Result<(), String> {
    let parts = &req.parts;
    if parts.is_empty() {
        return Ok(());
    }
    if parts.len() < 2 || parts.len() > MAX_PARTS {
        return Err(format!("'parts' must list 2 to {MAX_PARTS} files"));
    }
    let first = &parts[0];
    if first.file_name != req.file_name || first.url != req.url || first.sha256 != req.sha256 {
        return Err("'parts' must start with the request's own url, file_name and sha256".into());
    }
    let n = parts.len();
    let stem = req
        .file_name
        .strip_suffix(&format!("-{:05}-of-{n:05}.gguf", 1))
        .ok_or_else(|| format!("part 1 must be named <stem>-00001-of-{n:05}.gguf"))?;
    for (i, part) in parts.iter().enumerate() {
        let expected = format!("{stem}-{:05}-of-{n:05}.gguf", i + 1);
        if part.file_name != expected || !is_plain_file_name(&part.file_name) {
            return Err(format!("part {} must be named {expected:?}", i + 1));
        }
        if !is_http(&part.url) {
            return Err(format!("part {}: 'url' must be http:// or https://", i + 1));
        }
    }
    Ok(())
}

/// 507 before anything is written when the model cannot fit in `dir`, counting what its
/// `.part` files already hold.
fn ensure_room(dir: &Path, partial: &[PathBuf], size: Option<u64>) -> Result<(), NodeApiError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| NodeApiError::Storage(format!("{}: {e}", dir.display())))?;
    let Some(size) = size else {
        return Ok(());
    };
    let have: u64 = partial
        .iter()
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum();
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

/// Reports `loading` until the model's runtime is ready (`ready`) or fails (`failed`); while the
/// runtime downloads the model itself (Ollama), `downloading` with its bytes.
pub(super) async fn follow_runtime(state: &NodeState, req: &PullRequest) {
    let Some(runtime) = state.model(&req.model) else {
        fail(state, req, "the model is not served").await;
        return;
    };
    let mut updates = runtime.subscribe();
    let mut download = runtime.subscribe_download();
    let mut last_report = tokio::time::Instant::now() - state.progress_interval;
    loop {
        let now = updates.borrow_and_update().clone();
        let downloaded = *download.borrow_and_update();
        if now.state == ModelState::Downloading
            && let Some(d) = downloaded
            && last_report.elapsed() >= state.progress_interval
        {
            last_report = tokio::time::Instant::now();
            report(
                state,
                req,
                TaskStatus::Downloading,
                d.bytes_done,
                d.bytes_total,
                0,
                None,
            )
            .await;
        }
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
        tokio::select! {
            changed = updates.changed() => if changed.is_err() { return; },
            // A closed download channel never wakes again; the state still does.
            Ok(()) = download.changed() => {}
        }
    }
}

pub(super) async fn fail(state: &NodeState, req: &PullRequest, error: &str) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use llm_router_protocol::node::PullPart;

    fn split(n: usize) -> PullRequest {
        let part = |i: usize| PullPart {
            url: format!("http://127.0.0.1:9/m-{i:05}-of-{n:05}.gguf"),
            file_name: format!("m-{i:05}-of-{n:05}.gguf"),
            sha256: None,
        };
        PullRequest {
            task_id: "t".into(),
            model: "m".into(),
            url: part(1).url,
            sha256: None,
            size_bytes: Some(10),
            file_name: part(1).file_name,
            args: Vec::new(),
            chat_template: None,
            ctx_size: None,
            parts: (1..=n).map(part).collect(),
            ollama: None,
        }
    }

    #[test]
    fn a_split_model_downloads_every_part_into_the_models_directory() {
        let req = split(3);
        assert!(check(&req).is_ok());
        let specs = specs(Path::new("/models"), &req);
        let dests: Vec<_> = specs.iter().map(|s| s.dest.clone()).collect();
        assert_eq!(
            dests,
            [
                PathBuf::from("/models/m-00001-of-00003.gguf"),
                PathBuf::from("/models/m-00002-of-00003.gguf"),
                PathBuf::from("/models/m-00003-of-00003.gguf"),
            ]
        );
        let single = PullRequest {
            parts: Vec::new(),
            ..split(3)
        };
        assert_eq!(specs_len(&single), 1);
    }

    fn specs_len(req: &PullRequest) -> usize {
        specs(Path::new("/models"), req).len()
    }

    #[test]
    fn parts_that_llama_server_could_not_find_or_that_leave_the_directory_are_refused() {
        let mut escaping = split(2);
        escaping.parts[1].file_name = "../m-00002-of-00002.gguf".into();
        let mut renamed = split(2);
        renamed.parts[1].file_name = "other-00002-of-00002.gguf".into();
        let mut miscounted = split(2);
        miscounted.parts[1].file_name = "m-00002-of-00003.gguf".into();
        let mut not_first = split(2);
        not_first.file_name = "m-00002-of-00002.gguf".into();
        let mut ftp = split(2);
        ftp.parts[1].url = "ftp://h/m-00002-of-00002.gguf".into();
        let mut one = split(2);
        one.parts.truncate(1);
        let too_many = split(MAX_PARTS + 1);
        for (what, req) in [
            ("escaping", escaping),
            ("renamed", renamed),
            ("miscounted", miscounted),
            ("not first", not_first),
            ("ftp", ftp),
            ("one part", one),
            ("too many", too_many),
        ] {
            assert!(
                matches!(check(&req), Err(NodeApiError::InvalidRequest(_))),
                "{what}"
            );
        }
    }
}
