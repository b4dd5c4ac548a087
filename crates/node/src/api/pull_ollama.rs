//! `POST /pull` on a node that runs Ollama: the router names an Ollama model (`ollama`), and the
//! node serves it like a configured one — its own `ollama serve`, which pulls the model through
//! Ollama's `/api/pull` when absent (see [`crate::runtime::backend`]). The task follows the model:
//! `downloading` with the bytes Ollama reports, `loading`, then `ready` or `failed`, reported to
//! the router exactly as a GGUF pull's.

use std::path::PathBuf;

use axum::Json;
use axum::http::StatusCode;
use llm_router_protocol::node::PullRequest;
use serde_json::{Value, json};

use super::NodeApiError;
use super::pull::follow_runtime;
use crate::config::ModelSpec;
use crate::runtime::pulled_args;
use crate::state::NodeState;

/// Longest Ollama model name taken (`namespace/model:tag`; Ollama's own names are far shorter).
const MAX_OLLAMA_MODEL: usize = 200;

pub fn pull(state: NodeState, req: PullRequest) -> Result<(StatusCode, Json<Value>), NodeApiError> {
    let model = check(&req)?.to_owned();
    if let Some(runtime) = state.model(&req.model) {
        tracing::info!(model = %req.model, task = %req.task_id, "pull of a model already served");
        let status = runtime.status().state;
        tokio::spawn(async move { follow_runtime(&state, &req).await });
        return Ok((StatusCode::OK, Json(json!({"state": status}))));
    }
    let spec = ModelSpec {
        name: req.model.clone(),
        path: PathBuf::from(&model),
        ctx_size: req.ctx_size,
        parallel: None,
        threads: None,
        chat_template: None,
        embeddings: None,
        swa_full: None,
        cache_ram_mib: None,
        gpu_layers: None,
        args: Vec::new(),
    }
    .or(&state.model_defaults);
    tracing::info!(model = %req.model, ollama_model = %model, task = %req.task_id, "pull through ollama started");
    state.models.serve(spec);
    let task_id = req.task_id.clone();
    tokio::spawn(async move { follow_runtime(&state, &req).await });
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"task_id": task_id, "joined": false})),
    ))
}

/// The Ollama model to pull: given, of Ollama's name characters, bounded.
fn check(req: &PullRequest) -> Result<&str, NodeApiError> {
    let invalid = |m: &str| Err(NodeApiError::InvalidRequest(m.to_owned()));
    if req.model.trim().is_empty() || req.task_id.trim().is_empty() {
        return invalid("'model' and 'task_id' must not be empty");
    }
    let Some(model) = req.ollama.as_deref() else {
        return invalid("this node runs Ollama: the pull must name an Ollama model ('ollama')");
    };
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '/');
    if model.is_empty()
        || model.len() > MAX_OLLAMA_MODEL
        || !model.chars().all(allowed)
        || model.starts_with(['/', '.', '-'])
    {
        return invalid("'ollama' must be an Ollama model name such as gpt-oss:20b");
    }
    if let Some(template) = req.chat_template.as_deref() {
        pulled_args::check_chat_template(template)
            .map_err(|e| NodeApiError::InvalidRequest(format!("'chat_template': {e}")))?;
    }
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(ollama: Option<&str>) -> PullRequest {
        PullRequest {
            task_id: "t".into(),
            model: "gpt-oss:20b".into(),
            url: String::new(),
            sha256: None,
            size_bytes: None,
            file_name: String::new(),
            args: Vec::new(),
            chat_template: None,
            ctx_size: Some(16384),
            parts: Vec::new(),
            ollama: ollama.map(str::to_owned),
        }
    }

    #[test]
    fn ollama_model_names_are_taken_and_anything_else_refused() {
        for good in ["gpt-oss:20b", "library/qwen3-coder:30b", "gemma3"] {
            assert_eq!(check(&request(Some(good))).ok(), Some(good));
        }
        let long = "a".repeat(MAX_OLLAMA_MODEL + 1);
        for bad in [
            None,
            Some(""),
            Some("a b"),
            Some("--help"),
            Some("/etc/passwd"),
            Some(&long[..]),
        ] {
            assert!(check(&request(bad)).is_err(), "{bad:?}");
        }
    }
}
