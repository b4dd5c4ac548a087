//! `GET /v1/models` and `GET /v1/models/{id}`: the models ready somewhere in the fleet.

use axum::Json;
use axum::extract::{Path, State};
use llm_router_protocol::openai::{ModelList, ModelObject};

use crate::api::ApiResult;
use crate::api::aliases::choose;
use crate::auth::KeyScope;
use crate::error::ApiError;
use crate::state::AppState;

const OWNER: &str = "llm-router";

/// Each model ready on at least one online node, listed once (only those the API key may use),
/// then each alias that a ready model would serve now.
pub async fn list(State(state): State<AppState>, scope: KeyScope) -> Json<ModelList> {
    let snapshot = state.registry.snapshot();
    let mut data: Vec<ModelObject> = snapshot
        .ready_models()
        .into_iter()
        .filter(|name| scope.permits(name))
        .map(|name| ModelObject::new(name, OWNER))
        .collect();
    for alias in state.models.aliases() {
        if data.iter().any(|m| m.id == alias.name) {
            continue;
        }
        if let Ok(resolved) = choose(&state, &scope, &snapshot, &alias.name)
            && snapshot.candidates(&resolved.model).is_ok()
        {
            data.push(ModelObject::new(alias.name, OWNER));
        }
    }
    Json(ModelList::new(data))
}

pub async fn get(
    State(state): State<AppState>,
    scope: KeyScope,
    Path(id): Path<String>,
) -> ApiResult<Json<ModelObject>> {
    let snapshot = state.registry.snapshot();
    let resolved = choose(&state, &scope, &snapshot, &id)?;
    if snapshot.candidates(&resolved.model).is_ok() {
        Ok(Json(ModelObject::new(id, OWNER)))
    } else {
        Err(ApiError::ModelNotFound(id))
    }
}
