//! `POST /v1/chat/completions`, `/v1/completions`, `/v1/embeddings`: checked, then forwarded whole
//! to a node that has the model ready.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::Response;
use llm_router_protocol::openai::{
    ChatCompletionView, CompletionView, EmbeddingView, RequestEnvelope, RequestView,
};

use axum::http::{HeaderName, HeaderValue};

use crate::api::aliases::{choose, with_model};
use crate::api::extract::body_rejection;
use crate::api::{ApiResult, ClientAddr, admit, tenant};
use crate::auth::KeyScope;
use crate::error::ApiError;
use crate::proxy::{self, Dialect};
use crate::state::AppState;
use crate::store::Api;

#[tracing::instrument(skip_all, name = "chat_completions")]
pub async fn chat_completions(
    State(state): State<AppState>,
    scope: KeyScope,
    client: ClientAddr,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    forward::<ChatCompletionView>(
        &state,
        Route::openai("/v1/chat/completions"),
        &scope,
        client,
        body,
    )
    .await
}

#[tracing::instrument(skip_all, name = "completions")]
pub async fn completions(
    State(state): State<AppState>,
    scope: KeyScope,
    client: ClientAddr,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    forward::<CompletionView>(
        &state,
        Route::openai("/v1/completions"),
        &scope,
        client,
        body,
    )
    .await
}

#[tracing::instrument(skip_all, name = "embeddings")]
pub async fn embeddings(
    State(state): State<AppState>,
    scope: KeyScope,
    client: ClientAddr,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    forward::<EmbeddingView>(
        &state,
        Route::openai("/v1/embeddings"),
        &scope,
        client,
        body,
    )
    .await
}

/// Response header naming the model that served the request, when an alias or a fallback chose
/// it.
pub const MODEL_HEADER: HeaderName = HeaderName::from_static("x-llm-router-model");

/// Where a request forwarded as it is goes, and which API it belongs to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Route {
    pub path: &'static str,
    /// The API the history records.
    pub api: Api,
    /// How the answer ends and how its errors look.
    pub dialect: Dialect,
}

impl Route {
    pub fn openai(path: &'static str) -> Self {
        Route {
            path,
            api: Api::Openai,
            dialect: Dialect::OpenAi,
        }
    }
}

/// Checks a body against the view `V`, the key's scope, and forwards it whole to a node with
/// the model ready; its answer is relayed as the node sent it.
pub(crate) async fn forward<V: RequestView>(
    state: &AppState,
    route: Route,
    scope: &KeyScope,
    ClientAddr(client): ClientAddr,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let Route { path, api, dialect } = route;
    let tenant = tenant(scope, client.as_deref());
    let mut recording = state.recorder.start(api, path, client);
    let checked = body
        .map_err(|e| body_rejection(&e))
        .and_then(|body| parse_view::<V>(&body).map(|envelope| (body, envelope)))
        .and_then(|(body, envelope)| {
            let snapshot = state.registry.snapshot();
            choose(state, scope, &snapshot, &envelope.model)
                .map(|resolved| (body, envelope, resolved))
        })
        .and_then(|checked| admit(&state.quotas, scope).map(|ticket| (checked, ticket)));
    let ((body, mut envelope, resolved), ticket) = match checked {
        Ok(checked) => checked,
        Err(e) => {
            recording.failed(&e);
            return Err(e);
        }
    };
    if let Some(ticket) = ticket {
        recording.admitted(ticket);
    }
    let requested = std::mem::replace(&mut envelope.model, resolved.model);
    recording.request(&envelope.model, envelope.stream, &body);
    let body = match resolved.via {
        Some(via) => {
            recording.requested_as(&requested);
            tracing::debug!(requested = %requested, model = %envelope.model, via = via.as_str(), "model resolved");
            with_model(body, &envelope.model)
        }
        None => body,
    };
    let mut response = proxy::forward(
        &state.forwarder,
        dialect,
        path,
        &envelope,
        &tenant,
        body,
        recording,
    )
    .await?;
    if requested != envelope.model
        && let Ok(value) = HeaderValue::from_str(&envelope.model)
    {
        response.headers_mut().insert(MODEL_HEADER, value);
    }
    Ok(response)
}

/// Checks a body against a request view and returns its envelope.
pub fn parse_view<V: RequestView>(body: &[u8]) -> ApiResult<RequestEnvelope> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::EmptyBody);
    }
    let view: V = serde_json::from_slice(body).map_err(|e| match e.classify() {
        // A type error may hide a syntax error further on: report the syntax error first.
        serde_json::error::Category::Data => {
            match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                Err(syntax) => ApiError::MalformedJson(syntax.to_string()),
                Ok(_) => ApiError::InvalidRequest(e.to_string()),
            }
        }
        _ => ApiError::MalformedJson(e.to_string()),
    })?;
    view.validate().map_err(ApiError::InvalidRequest)?;
    let envelope = view.into_envelope();
    if envelope.model.is_empty() {
        return Err(ApiError::InvalidRequest(
            "'model' must not be empty".to_owned(),
        ));
    }
    Ok(envelope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_whitespace_bodies_are_refused() {
        assert!(matches!(
            parse_view::<ChatCompletionView>(b""),
            Err(ApiError::EmptyBody)
        ));
        assert!(matches!(
            parse_view::<ChatCompletionView>(b" \n"),
            Err(ApiError::EmptyBody)
        ));
    }

    #[test]
    fn syntax_errors_are_malformed_json_and_type_errors_invalid_requests() {
        assert!(matches!(
            parse_view::<ChatCompletionView>(b"{\"model\":"),
            Err(ApiError::MalformedJson(_))
        ));
        assert!(matches!(
            parse_view::<ChatCompletionView>(br#"{"model":"m"} trailing"#),
            Err(ApiError::MalformedJson(_))
        ));
        assert!(matches!(
            parse_view::<ChatCompletionView>(br#"{"model":"m","messages":"hi"}"#),
            Err(ApiError::InvalidRequest(_))
        ));
        assert!(matches!(
            parse_view::<ChatCompletionView>(br#"{"messages":[{"role":"user","content":"x"}]}"#),
            Err(ApiError::InvalidRequest(m)) if m.contains("model")
        ));
    }

    mod props {
        use super::*;
        use llm_router_protocol::openai::{CompletionView, EmbeddingView};
        use llm_router_testkit::prop::{broken, config, json_value};
        use proptest::prelude::*;
        use serde_json::json;

        /// Every view refuses `body` or gives a non-empty model; none panics.
        fn check(body: &[u8]) -> Result<(), TestCaseError> {
            for envelope in [
                parse_view::<ChatCompletionView>(body),
                parse_view::<CompletionView>(body),
                parse_view::<EmbeddingView>(body),
            ]
            .into_iter()
            .flatten()
            {
                prop_assert!(!envelope.model.is_empty());
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(config(256))]

            #[test]
            fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
                check(&bytes)?;
            }

            #[test]
            fn wrong_json_never_panics(
                value in json_value(),
                chat in broken(json!({"model": "m", "stream": true,
                    "messages": [{"role": "user", "content": "hi"}]})),
                completion in broken(json!({"model": "m", "prompt": ["a", [1, 2]]})),
            ) {
                check(value.to_string().as_bytes())?;
                check(&chat)?;
                check(&completion)?;
            }
        }
    }
}
