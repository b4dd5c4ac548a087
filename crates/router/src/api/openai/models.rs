//! `GET /v1/models` and `GET /v1/models/{id}`: the models ready somewhere in the fleet.

use axum::Json;
use axum::extract::{Path, State};
use llm_router_protocol::openai::{ModelList, ModelObject};

use crate::api::ApiResult;
use crate::auth::KeyScope;
use crate::error::ApiError;
use crate::state::AppState;

const OWNER: &str = "llm-router";

/// Each model ready on at least one online node, listed once (only those the API key may use).
pub async fn list(State(state): State<AppState>, scope: KeyScope) -> Json<ModelList> {
    let snapshot = state.registry.snapshot();
    let data = snapshot
        .ready_models()
        .into_iter()
        .filter(|name| scope.permits(name))
        .map(|name| ModelObject::new(name, OWNER))
        .collect();
    Json(ModelList::new(data))
}

pub async fn get(
    State(state): State<AppState>,
    scope: KeyScope,
    Path(id): Path<String>,
) -> ApiResult<Json<ModelObject>> {
    scope.check(&id)?;
    let snapshot = state.registry.snapshot();
    if snapshot.candidates(&id).is_ok() {
        Ok(Json(ModelObject::new(id, OWNER)))
    } else {
        Err(ApiError::ModelNotFound(id))
    }
}
