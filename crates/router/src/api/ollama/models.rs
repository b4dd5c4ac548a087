//! `GET /api/tags`, `GET /api/ps` and `POST /api/show`: the fleet's models in Ollama's shapes.

use std::sync::Arc;
use std::time::SystemTime;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use llm_router_protocol::node::NodeStatus;
use llm_router_protocol::ollama::{
    ListModel, ListResponse, ProcessResponse, RunningModel, ShowRequest, ShowResponse,
};
use serde_json::json;

use super::error::OllamaResult;
use super::node_info;
use super::target::{Target, parse, required_model};
use crate::api::aliases::choose;
use crate::auth::KeyScope;
use crate::error::ApiError;
use crate::proxy::ollama::clock;
use crate::registry::{Node, Snapshot};
use crate::state::AppState;

/// `GET /api/tags`: every model ready somewhere in the fleet, once, with what its nodes say of it.
#[tracing::instrument(skip_all, name = "ollama_tags")]
pub async fn tags(State(state): State<AppState>, scope: KeyScope) -> Json<ListResponse> {
    let snapshot = state.registry.snapshot();
    let mut names = snapshot.ready_models();
    names.retain(|name| scope.permits(name));
    let mut details = node_info::collect(&state, snapshot.nodes(), &names).await;
    let models = names
        .iter()
        .map(|name| {
            let mut model = describe(&snapshot, name, details.remove(*name));
            // Node-side additions that Ollama's listing does not have.
            model.capabilities.clear();
            model.context_length = None;
            model.model_info.clear();
            model
        })
        .collect::<Vec<_>>();
    // Aliases that a ready model would serve now, listed as that model under the alias's name.
    let mut models = models;
    for alias in state.models.aliases() {
        if models.iter().any(|m| m.name == alias.name) {
            continue;
        }
        let Ok(resolved) = choose(&state, &scope, &snapshot, &alias.name) else {
            continue;
        };
        if let Some(served) = models.iter().find(|m| m.name == resolved.model) {
            let mut listed = served.clone();
            listed.name.clone_from(&alias.name);
            listed.model = alias.name;
            models.push(listed);
        }
    }
    Json(ListResponse { models })
}

/// `GET /api/ps`: the models loaded in the fleet (all ready models: nodes keep them loaded), with
/// the nodes that have each.
#[tracing::instrument(skip_all, name = "ollama_ps")]
pub async fn ps(State(state): State<AppState>, scope: KeyScope) -> Json<ProcessResponse> {
    let snapshot = state.registry.snapshot();
    let mut names = snapshot.ready_models();
    names.retain(|name| scope.permits(name));
    let mut details = node_info::collect(&state, snapshot.nodes(), &names).await;
    let models = names
        .iter()
        .map(|name| {
            let model = describe(&snapshot, name, details.remove(*name));
            let nodes = snapshot
                .candidates(name)
                .map(|c| c.iter().map(|c| c.node.machine_name.clone()).collect())
                .unwrap_or_default();
            RunningModel {
                name: model.name,
                model: model.model,
                size: model.size,
                digest: model.digest,
                details: model.details,
                expires_at: clock::NEVER.to_owned(),
                size_vram: 0,
                context_length: model.context_length,
                nodes,
            }
        })
        .collect();
    Json(ProcessResponse { models })
}

/// `POST /api/show`: what is known of one model.
#[tracing::instrument(skip_all, name = "ollama_show")]
pub async fn show(
    State(state): State<AppState>,
    scope: KeyScope,
    body: Result<Bytes, BytesRejection>,
) -> OllamaResult<Json<ShowResponse>> {
    let request: ShowRequest = parse(&body)?;
    let requested = required_model(request.model.as_deref().or(request.name.as_deref()))?;
    scope.check(&requested)?;
    let snapshot = state.registry.snapshot();
    let target = Target::of(&snapshot, &requested);
    let holders = holders(&snapshot, &target.model);
    if holders.is_empty() {
        return Err(ApiError::ModelNotFound(requested).into());
    }
    let mut details = node_info::collect(&state, &holders, &[target.model.as_str()]).await;
    let model = describe(&snapshot, &target.model, details.remove(&target.model));
    let served_by: Vec<&str> = holders.iter().map(|n| n.machine_name.as_str()).collect();
    let mut model_info = model.model_info;
    if model_info.is_empty() && !model.details.family.is_empty() {
        model_info.insert("general.architecture".into(), json!(model.details.family));
    }
    let capabilities = if model.capabilities.is_empty() {
        vec!["completion".to_owned()]
    } else {
        model.capabilities
    };
    Ok(Json(ShowResponse {
        modelfile: format!(
            "# Served by llm-router from {}\nFROM {}\n",
            served_by.join(", "),
            target.model
        ),
        parameters: String::new(),
        template: String::new(),
        details: model.details,
        model_info,
        capabilities,
        modified_at: model.modified_at,
    }))
}

/// Nodes not offline that list `model`, ready ones first.
fn holders(snapshot: &Snapshot, model: &str) -> Vec<Arc<Node>> {
    let mut nodes: Vec<Arc<Node>> = snapshot
        .nodes()
        .iter()
        .filter(|n| n.status != NodeStatus::Offline && n.models.iter().any(|m| m.name == model))
        .cloned()
        .collect();
    nodes.sort_by_key(|n| !n.has_ready_model(model));
    nodes
}

/// The Ollama description of `name`: what a node said (`known`), completed from the registry.
fn describe(snapshot: &Snapshot, name: &str, known: Option<ListModel>) -> ListModel {
    let mut model = known.unwrap_or_default();
    model.name = name.to_owned();
    model.model = name.to_owned();
    if model.modified_at.is_empty() {
        // When the model first became known to the fleet: the earliest registration of a node
        // that has it.
        let since = snapshot
            .nodes()
            .iter()
            .filter(|n| n.models.iter().any(|m| m.name == name))
            .map(|n| n.registered_at)
            .min()
            .unwrap_or_else(SystemTime::now);
        model.modified_at = clock::rfc3339(since);
    }
    if model.details.format.is_empty() {
        model.details.format = "gguf".to_owned();
    }
    model
}
