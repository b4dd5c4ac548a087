//! `POST /api/chat` and `POST /api/generate`: one handler over a [`Generation`] request.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::Response;
use llm_router_protocol::ollama::{
    ChatRequest, ChatResponse, GenerateRequest, GenerateResponse, KeepAlive, Message,
};

use super::answer::{Rec, close, local, native, translated};
use super::error::OllamaResult;
use super::intake::{ModelRequest, accept};
use super::target::{Route, is_unload};
use crate::api::{ClientAddr, tenant};
use crate::auth::KeyScope;
use crate::dispatch::Tenant;
use crate::error::ApiError;
use crate::proxy::ollama::render::Answer;
use crate::proxy::ollama::{Output, Shape, Translated, clock, request};
use crate::state::AppState;
use crate::store::Api;

/// A request that generates text: `/api/chat` or `/api/generate`.
pub trait Generation: ModelRequest + Send {
    /// The route, as the history records it and a native node is sent it.
    const PATH: &'static str;
    /// The Ollama answer the client expects.
    const SHAPE: Shape;
    /// True when there is nothing to generate from: Ollama then loads (or, with `keep_alive` 0,
    /// unloads) the model.
    fn is_load(&self) -> bool;
    fn keep_alive(&self) -> Option<&KeepAlive>;
    /// The answer to a load or unload request (`reason` says which).
    fn loaded(model: String, reason: &str) -> Answer;
    /// The request as an OpenAI request for `model`.
    fn translate(self, model: &str, stream: bool) -> Result<Translated, String>;
}

impl Generation for ChatRequest {
    const PATH: &'static str = "/api/chat";
    const SHAPE: Shape = Shape::Chat;

    fn is_load(&self) -> bool {
        self.messages.as_ref().is_none_or(Vec::is_empty)
    }

    fn keep_alive(&self) -> Option<&KeepAlive> {
        self.keep_alive.as_ref()
    }

    fn loaded(model: String, reason: &str) -> Answer {
        Answer::Chat(ChatResponse {
            model,
            created_at: clock::now(),
            message: Message::assistant(""),
            done: true,
            done_reason: Some(reason.to_owned()),
            metrics: None,
        })
    }

    fn translate(self, model: &str, stream: bool) -> Result<Translated, String> {
        request::chat(self, model, stream)
    }
}

impl Generation for GenerateRequest {
    const PATH: &'static str = "/api/generate";
    const SHAPE: Shape = Shape::Generate;

    fn is_load(&self) -> bool {
        self.prompt.as_deref().is_none_or(str::is_empty)
            && self.images.as_ref().is_none_or(Vec::is_empty)
    }

    fn keep_alive(&self) -> Option<&KeepAlive> {
        self.keep_alive.as_ref()
    }

    fn loaded(model: String, reason: &str) -> Answer {
        Answer::Generate(GenerateResponse {
            model,
            created_at: clock::now(),
            response: String::new(),
            thinking: None,
            done: true,
            done_reason: Some(reason.to_owned()),
            metrics: None,
        })
    }

    fn translate(self, model: &str, stream: bool) -> Result<Translated, String> {
        request::generate(self, model, stream)
    }
}

#[tracing::instrument(skip_all, name = "ollama_chat")]
pub async fn chat(
    State(state): State<AppState>,
    scope: KeyScope,
    client: ClientAddr,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    generation::<ChatRequest>(&state, &scope, client, body).await
}

#[tracing::instrument(skip_all, name = "ollama_generate")]
pub async fn generate(
    State(state): State<AppState>,
    scope: KeyScope,
    client: ClientAddr,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    generation::<GenerateRequest>(&state, &scope, client, body).await
}

async fn generation<R: Generation>(
    state: &AppState,
    scope: &KeyScope,
    ClientAddr(client): ClientAddr,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let tenant = tenant(scope, client.as_deref());
    let mut recording = Some(state.recorder.start(Api::Ollama, R::PATH, client));
    let result = handle::<R>(state, scope, tenant, body, &mut recording).await;
    close(result, recording)
}

async fn handle<R: Generation>(
    state: &AppState,
    scope: &KeyScope,
    tenant: Tenant,
    body: Result<Bytes, BytesRejection>,
    recording: &mut Rec,
) -> OllamaResult<Response> {
    let started = Instant::now();
    let accepted = accept::<R>(state, scope, tenant, body, recording)?;
    if accepted.request.is_load() {
        // The fleet keeps its models loaded, so only say whether it has this one.
        accepted.target.check_known(&accepted.snapshot)?;
        let reason = if is_unload(accepted.request.keep_alive()) {
            "unload"
        } else {
            "load"
        };
        return Ok(local(&R::loaded(accepted.requested, reason), recording));
    }
    if accepted.target.route == Route::Native {
        return native(state, R::PATH, accepted, recording).await;
    }
    let model = accepted.target.model;
    let stream = accepted.stream;
    let translated_request = accepted
        .request
        .translate(&model, stream)
        .map_err(ApiError::InvalidRequest)?;
    let output = Output {
        shape: R::SHAPE,
        model: accepted.requested,
    };
    translated(
        state,
        (&model, &accepted.tenant),
        translated_request,
        output,
        stream,
        started,
        recording,
    )
    .await
}
