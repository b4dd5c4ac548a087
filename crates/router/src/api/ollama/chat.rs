//! `POST /api/chat`.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::Response;
use llm_router_protocol::ollama::{ChatRequest, ChatResponse, Message};

use super::error::OllamaResult;
use super::generation::{Rec, close, local, native, note, translated};
use super::target::{Route, Target, is_unload, native_body, parse, required_model};
use crate::api::ClientAddr;
use crate::api::extract::body_rejection;
use crate::auth::KeyScope;
use crate::error::ApiError;
use crate::proxy::ollama::{Output, Shape, clock, request};
use crate::state::AppState;
use crate::store::Api;

const PATH: &str = "/api/chat";

#[tracing::instrument(skip_all, name = "ollama_chat")]
pub async fn chat(
    State(state): State<AppState>,
    scope: KeyScope,
    ClientAddr(client): ClientAddr,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut recording = Some(state.recorder.start(Api::Ollama, PATH, client));
    let result = handle(&state, &scope, body, &mut recording).await;
    close(result, recording)
}

async fn handle(
    state: &AppState,
    scope: &KeyScope,
    body: Result<Bytes, BytesRejection>,
    recording: &mut Rec,
) -> OllamaResult<Response> {
    let started = Instant::now();
    let request: ChatRequest = parse(&body)?;
    let body = body.map_err(|e| body_rejection(&e))?;
    let requested = required_model(request.model.as_deref())?;
    scope.check(&requested)?;
    let stream = request.stream.unwrap_or(true);
    let snapshot = state.registry.snapshot();
    let target = Target::of(&snapshot, &requested);
    note(recording, &target.model, stream, &body);
    if request.messages.as_ref().is_none_or(Vec::is_empty) {
        // Ollama loads (or, with keep_alive 0, unloads) the model: the fleet keeps its models
        // loaded, so only say whether it has it.
        target.check_known(&snapshot)?;
        let reason = if is_unload(request.keep_alive.as_ref()) {
            "unload"
        } else {
            "load"
        };
        let answer = ChatResponse {
            model: requested,
            created_at: clock::now(),
            message: Message::assistant(""),
            done: true,
            done_reason: Some(reason.to_owned()),
            metrics: None,
        };
        return Ok(local(&answer, recording));
    }
    if target.route == Route::Native {
        let body = native_body(body, &requested, &target.model);
        return native(state, PATH, &target.model, body, stream, recording).await;
    }
    let translated_request =
        request::chat(request, &target.model, stream).map_err(ApiError::InvalidRequest)?;
    let output = Output {
        shape: Shape::Chat,
        model: requested,
    };
    translated(
        state,
        &target.model,
        translated_request,
        output,
        stream,
        started,
        recording,
    )
    .await
}
