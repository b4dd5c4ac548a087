//! Reading an Ollama request body and deciding where it goes: which model the fleet knows it as,
//! and whether the nodes serving it speak Ollama themselves.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use llm_router_protocol::node::RuntimeKind;
use llm_router_protocol::ollama::KeepAlive;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::OllamaError;
use crate::api::extract::body_rejection;
use crate::error::ApiError;
use crate::registry::{Snapshot, Unavailable};

/// Parses a request body; malformed JSON and wrong types are told apart (a syntax error is
/// reported first, even when a type error comes before it).
pub fn parse<T: DeserializeOwned>(body: &Result<Bytes, BytesRejection>) -> Result<T, OllamaError> {
    let body = body.as_ref().map_err(body_rejection)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::EmptyBody.into());
    }
    serde_json::from_slice(body).map_err(|e| {
        OllamaError(match e.classify() {
            serde_json::error::Category::Data => {
                match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                    Err(syntax) => ApiError::MalformedJson(syntax.to_string()),
                    Ok(_) => ApiError::InvalidRequest(e.to_string()),
                }
            }
            _ => ApiError::MalformedJson(e.to_string()),
        })
    })
}

/// The `model` field, which every generation route requires.
pub fn required_model(model: Option<&str>) -> Result<String, OllamaError> {
    match model.map(str::trim) {
        Some(name) if !name.is_empty() => Ok(name.to_owned()),
        _ => Err(ApiError::InvalidRequest("model is required".to_owned()).into()),
    }
}

/// How a request reaches a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Every node ready with the model runs Ollama: send the client's request as it is.
    Native,
    /// Translate to the OpenAI API (llama-server nodes, mixed fleets, model not ready yet).
    Translate,
}

/// Where a request for a model goes.
#[derive(Debug, Clone)]
pub struct Target {
    /// The model as the fleet knows it.
    pub model: String,
    pub route: Route,
}

impl Target {
    /// Resolves `requested` against the fleet: Ollama's implicit `:latest` tag is dropped when the
    /// fleet knows the model without it.
    pub fn of(snapshot: &Snapshot, requested: &str) -> Target {
        let known =
            |name: &str| !matches!(snapshot.candidates(name), Err(Unavailable::UnknownModel));
        let model = match requested.strip_suffix(":latest") {
            Some(base) if !known(requested) && known(base) => base.to_owned(),
            _ => requested.to_owned(),
        };
        let route = match snapshot.candidates(&model) {
            Ok(candidates)
                if !candidates.is_empty()
                    && candidates
                        .iter()
                        .all(|c| c.node.runtime.kind == RuntimeKind::Ollama) =>
            {
                Route::Native
            }
            _ => Route::Translate,
        };
        Target { model, route }
    }

    /// `Ok` when the fleet can serve the model now or soon (a "load" request needs nothing more).
    pub fn check_known(&self, snapshot: &Snapshot) -> Result<(), OllamaError> {
        match snapshot.candidates(&self.model) {
            Ok(_) | Err(Unavailable::NotReadyYet) => Ok(()),
            Err(Unavailable::UnknownModel) => {
                Err(ApiError::ModelNotFound(self.model.clone()).into())
            }
            Err(Unavailable::AllOffline) => {
                Err(ApiError::NoNodeAvailable(self.model.clone()).into())
            }
        }
    }
}

/// The client's body for a native route, with `model` replaced when the fleet knows the model
/// under another name; otherwise the exact bytes received.
pub fn native_body(body: Bytes, requested: &str, model: &str) -> Bytes {
    if requested == model {
        return body;
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(mut map)) => {
            map.insert("model".into(), Value::String(model.to_owned()));
            Bytes::from(serde_json::to_vec(&Value::Object(map)).unwrap_or_default())
        }
        _ => body,
    }
}

/// `keep_alive: 0` (as a number or a duration) asks Ollama to unload the model.
pub fn is_unload(keep_alive: Option<&KeepAlive>) -> bool {
    match keep_alive {
        Some(KeepAlive::Seconds(s)) => *s == 0.0,
        Some(KeepAlive::Duration(d)) => {
            let d = d.trim();
            d.trim_end_matches(|c: char| c.is_ascii_alphabetic())
                .parse::<f64>()
                .is_ok_and(|n| n == 0.0)
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_keep_alive_in_any_spelling_unloads() {
        assert!(is_unload(Some(&KeepAlive::Seconds(0.0))));
        assert!(is_unload(Some(&KeepAlive::Duration("0".into()))));
        assert!(is_unload(Some(&KeepAlive::Duration("0s".into()))));
        assert!(!is_unload(Some(&KeepAlive::Duration("5m".into()))));
        assert!(!is_unload(None));
    }

    #[test]
    fn syntax_errors_win_over_type_errors() {
        let body = Ok(Bytes::from_static(br#"{"model": 1, "#));
        let err = parse::<llm_router_protocol::ollama::ChatRequest>(&body).unwrap_err();
        assert!(matches!(err.0, ApiError::MalformedJson(_)), "{err:?}");
        let body = Ok(Bytes::from_static(br#"{"model": 1}"#));
        let err = parse::<llm_router_protocol::ollama::ChatRequest>(&body).unwrap_err();
        assert!(matches!(err.0, ApiError::InvalidRequest(_)), "{err:?}");
    }

    #[test]
    fn a_missing_or_blank_model_is_required() {
        assert!(required_model(None).is_err());
        assert!(required_model(Some(" ")).is_err());
        assert_eq!(required_model(Some("m")).unwrap(), "m");
    }
}
