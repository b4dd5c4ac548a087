//! What every Ollama model route does first: read the body, check the model and the key's scope,
//! resolve where the model goes, and note the request in its recording.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use llm_router_protocol::ollama::{ChatRequest, EmbedRequest, EmbeddingsRequest, GenerateRequest};
use serde::de::DeserializeOwned;

use super::answer::{Rec, note};
use super::error::OllamaResult;
use super::target::{Target, parse, required_model};
use crate::api::admit;
use crate::api::aliases::choose;
use crate::api::extract::body_rejection;
use crate::auth::KeyScope;
use crate::dispatch::Tenant;
use crate::registry::Snapshot;
use crate::state::AppState;

/// An Ollama request for a model.
pub trait ModelRequest: DeserializeOwned {
    /// The `model` field as sent.
    fn model(&self) -> Option<&str>;
    /// Whether the answer is streamed (Ollama streams unless told not to).
    fn stream(&self) -> bool;
}

impl ModelRequest for ChatRequest {
    fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    fn stream(&self) -> bool {
        self.stream.unwrap_or(true)
    }
}

impl ModelRequest for GenerateRequest {
    fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    fn stream(&self) -> bool {
        self.stream.unwrap_or(true)
    }
}

impl ModelRequest for EmbedRequest {
    fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    fn stream(&self) -> bool {
        false
    }
}

impl ModelRequest for EmbeddingsRequest {
    fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    fn stream(&self) -> bool {
        false
    }
}

/// A request the key may send, with where it goes.
pub struct Accepted<R> {
    pub request: R,
    /// The body as received.
    pub body: Bytes,
    /// The model as the client named it.
    pub requested: String,
    pub stream: bool,
    /// The fleet the request was resolved against.
    pub snapshot: Arc<Snapshot>,
    pub target: Target,
    /// Who the request counts against for the per-key shares.
    pub tenant: Tenant,
}

/// Parses `body`, checks the model against `scope`, resolves the target and notes the request
/// (of `tenant`).
pub fn accept<R: ModelRequest>(
    state: &AppState,
    scope: &KeyScope,
    tenant: Tenant,
    body: Result<Bytes, BytesRejection>,
    recording: &mut Rec,
) -> OllamaResult<Accepted<R>> {
    let request: R = parse(&body)?;
    let body = body.map_err(|e| body_rejection(&e))?;
    let requested = required_model(request.model())?;
    let stream = request.stream();
    let snapshot = state.registry.snapshot();
    let resolved = choose(state, scope, &snapshot, &requested)?;
    let ticket = admit(&state.quotas, scope)?;
    let target = Target::of(&snapshot, &resolved.model);
    note(recording, &target.model, stream, &body);
    if let Some(recording) = recording.as_mut() {
        if resolved.via.is_some() {
            recording.requested_as(&requested);
        }
        if let Some(ticket) = ticket {
            recording.admitted(ticket);
        }
    }
    Ok(Accepted {
        request,
        body,
        requested,
        stream,
        snapshot,
        target,
        tenant,
    })
}
