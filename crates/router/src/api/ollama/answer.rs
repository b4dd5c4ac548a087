//! What the Ollama model routes (`/api/chat`, `/api/generate`, the embedding routes) share after
//! the intake: sending a request to a node, natively or translated, answering in Ollama's format,
//! and closing the request's recording.

use std::time::Instant;

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::error::OllamaResult;
use super::intake::Accepted;
use super::target::native_body;
use crate::dispatch;
use crate::dispatch::Tenant;
use crate::history::Recording;
use crate::proxy::ollama::relay::{
    error_response, ndjson, read_json, recorded_json, upstream_error,
};
use crate::proxy::ollama::{Output, Passthrough, Transcoder, Translated, response};
use crate::state::AppState;

/// The recording of a request, taken by whatever answers it.
pub type Rec = Option<Recording>;

/// Sends the client's Ollama request as it is to `path` on a node running Ollama (the model renamed
/// when the fleet knows it under another name), and passes its answer on (NDJSON line by line, or
/// the whole JSON).
pub async fn native<R>(
    state: &AppState,
    path: &'static str,
    accepted: Accepted<R>,
    recording: &mut Rec,
) -> OllamaResult<Response> {
    let Accepted {
        body,
        requested,
        stream,
        target,
        tenant,
        ..
    } = accepted;
    let body = native_body(body, &requested, &target.model);
    let upstream = state
        .forwarder
        .send(path, &target.model, &tenant, body)
        .await?;
    if !upstream.response.status().is_success() {
        return Ok(upstream_error(upstream, recording.take()).await);
    }
    if stream {
        let source = Passthrough::default();
        return Ok(ndjson(
            upstream,
            state.registry.clone(),
            source,
            recording.take(),
        ));
    }
    whole(state, upstream, recording, Ok).await
}

/// Sends a translated chat or text completion for `model` to a node (as a request of `tenant`) and
/// answers in Ollama's format: streamed through the [`Transcoder`], or translated whole.
pub async fn translated(
    state: &AppState,
    (model, tenant): (&str, &Tenant),
    request: Translated,
    output: Output,
    stream: bool,
    started: Instant,
    recording: &mut Rec,
) -> OllamaResult<Response> {
    let endpoint = request.endpoint;
    let upstream = state
        .forwarder
        .send(endpoint.path(), model, tenant, request.body)
        .await?;
    if !upstream.response.status().is_success() {
        return Ok(upstream_error(upstream, recording.take()).await);
    }
    if stream {
        let transcoder = Transcoder::new(endpoint, output, started);
        return Ok(ndjson(
            upstream,
            state.registry.clone(),
            transcoder,
            recording.take(),
        ));
    }
    whole(state, upstream, recording, |answer| {
        response::generation(&answer, endpoint, &output, started)
    })
    .await
}

/// Sends a translated request that has no streamed form (embeddings) to `path` on a node, and
/// answers with `translate` of its whole answer.
pub async fn translated_whole<T: serde::Serialize>(
    state: &AppState,
    path: &'static str,
    model: &str,
    tenant: &Tenant,
    body: Bytes,
    recording: &mut Rec,
    translate: impl FnOnce(Value) -> Result<T, String>,
) -> OllamaResult<Response> {
    let upstream = state.forwarder.send(path, model, tenant, body).await?;
    if !upstream.response.status().is_success() {
        return Ok(upstream_error(upstream, recording.take()).await);
    }
    whole(state, upstream, recording, translate).await
}

/// Reads a node's whole answer and answers with `translate` of it (or a 502 saying why not).
async fn whole<T: serde::Serialize>(
    state: &AppState,
    upstream: dispatch::Upstream,
    recording: &mut Rec,
    translate: impl FnOnce(Value) -> Result<T, String>,
) -> OllamaResult<Response> {
    let (headers, value) = match read_json(upstream, &state.registry, recording).await {
        Ok(answer) => answer,
        Err(response) => return Ok(response),
    };
    Ok(match translate(value) {
        Ok(out) => recorded_json(headers, &out, recording.take()),
        Err(message) => {
            if let Some(mut r) = recording.take() {
                r.broke(message.clone());
            }
            error_response(axum::http::StatusCode::BAD_GATEWAY, message)
        }
    })
}

/// An answer the router gives itself (no node involved).
pub fn local(value: &impl serde::Serialize, recording: &mut Rec) -> Response {
    if let Some(r) = recording.as_mut() {
        r.answered_locally(axum::http::StatusCode::OK);
    }
    recorded_json(HeaderMap::new(), value, recording.take())
}

/// Notes what the request asked for.
pub fn note(recording: &mut Rec, model: &str, stream: bool, body: &[u8]) {
    if let Some(r) = recording.as_mut() {
        r.request(model, stream, body);
    }
}

/// The response for a handler's outcome; a recording no answer took is closed here.
pub fn close(result: OllamaResult<Response>, recording: Rec) -> Response {
    match result {
        Ok(response) => {
            if let Some(mut r) = recording {
                r.completed();
            }
            response
        }
        Err(e) => {
            if let Some(mut r) = recording {
                r.failed(&e.0);
            }
            e.into_response()
        }
    }
}
