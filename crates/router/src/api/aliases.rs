//! Model aliases and fallbacks at the edge: choosing the model a request is served by (every
//! inference route calls [`choose`]), and the admin API.
//!
//! | route                          | who    | what |
//! |--------------------------------|--------|------|
//! | `GET /api/aliases`             | viewer | aliases and fallback lists, with their source (`config` or `api`) |
//! | `PUT /api/aliases/{name}`      | admin  | `{"model": "..."}`: sets an alias |
//! | `DELETE /api/aliases/{name}`   | admin  | removes an alias set through the API |
//! | `PUT /api/fallbacks/{model}`   | admin  | `{"fallbacks": ["...", ...]}`: sets a model's fallbacks |
//! | `DELETE /api/fallbacks/{model}`| admin  | removes them |

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aliases::{AliasView, FallbackView, Resolved};
use crate::api::{ApiJson, ApiResult};
use crate::auth::KeyScope;
use crate::registry::Snapshot;
use crate::state::AppState;

/// The model serving a request for `requested`: its alias's target, or a fallback when that has
/// no node ready. The key must be allowed the name it sent or the model the alias names; a
/// fallback is taken only if the key is allowed it too.
pub(crate) fn choose(
    state: &AppState,
    scope: &KeyScope,
    snapshot: &Snapshot,
    requested: &str,
) -> ApiResult<Resolved> {
    let target = state.models.alias(requested);
    let primary = target.as_deref().unwrap_or(requested);
    if !scope.permits(requested) {
        scope.check(primary)?;
    }
    Ok(state.models.resolve(requested, |model| {
        snapshot.candidates(model).is_ok() && (model == primary || scope.permits(model))
    }))
}

/// `body` with its `model` set to `model` (unknown fields kept); the same bytes when it already
/// names it or is not a JSON object (the view that parsed it said it is).
pub(crate) fn with_model(body: Bytes, model: &str) -> Bytes {
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(mut map)) if map.get("model").and_then(Value::as_str) != Some(model) => {
            map.insert("model".into(), Value::String(model.to_owned()));
            serde_json::to_vec(&Value::Object(map)).map_or(body, Bytes::from)
        }
        _ => body,
    }
}

#[derive(Debug, Serialize)]
pub struct Listing {
    pub aliases: Vec<AliasView>,
    pub fallbacks: Vec<FallbackView>,
}

/// `GET /api/aliases`.
pub async fn list(State(state): State<AppState>) -> Json<Listing> {
    Json(Listing {
        aliases: state.models.aliases(),
        fallbacks: state.models.fallback_lists(),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetAlias {
    pub model: String,
}

/// `PUT /api/aliases/{name}`.
pub async fn set_alias(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<SetAlias>,
) -> ApiResult<Json<AliasView>> {
    state.models.set_alias(&name, &body.model).await?;
    tracing::info!(alias = %name, model = %body.model, "model alias set");
    Ok(Json(AliasView {
        name,
        model: body.model,
        source: "api",
    }))
}

/// `DELETE /api/aliases/{name}`.
pub async fn remove_alias(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state.models.remove_alias(&name).await?;
    tracing::info!(alias = %name, "model alias removed");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetFallbacks {
    pub fallbacks: Vec<String>,
}

/// `PUT /api/fallbacks/{model}`.
pub async fn set_fallbacks(
    State(state): State<AppState>,
    Path(model): Path<String>,
    ApiJson(body): ApiJson<SetFallbacks>,
) -> ApiResult<Json<FallbackView>> {
    state.models.set_fallbacks(&model, &body.fallbacks).await?;
    tracing::info!(model = %model, fallbacks = ?body.fallbacks, "model fallbacks set");
    Ok(Json(FallbackView {
        model,
        fallbacks: body.fallbacks,
        source: "api",
    }))
}

/// `DELETE /api/fallbacks/{model}`.
pub async fn remove_fallbacks(
    State(state): State<AppState>,
    Path(model): Path<String>,
) -> ApiResult<StatusCode> {
    state.models.remove_fallbacks(&model).await?;
    tracing::info!(model = %model, "model fallbacks removed");
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_is_replaced_and_other_fields_kept() {
        let body = Bytes::from_static(br#"{"model":"alias","input":"x","store":false}"#);
        let out: Value = serde_json::from_slice(&with_model(body, "real")).unwrap();
        assert_eq!(
            out,
            serde_json::json!({"model": "real", "input": "x", "store": false})
        );
        let same = Bytes::from_static(br#"{"model":"real"}"#);
        assert_eq!(with_model(same.clone(), "real"), same);
    }
}
