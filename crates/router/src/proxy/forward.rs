//! Forwarding a request of an API the nodes speak themselves (OpenAI's, Anthropic's): sent to a
//! node as it is, its answer relayed as it is.

use axum::body::Bytes;
use axum::response::Response;
use llm_router_protocol::openai::RequestEnvelope;

use super::identity::{Dialect, Identity};
use super::relay::relay;
use crate::dispatch::{Forwarder, Tenant};
use crate::error::ApiError;
use crate::history::Recording;

/// Sends `body` (unchanged) to `path` on a node with `envelope.model` ready, as a request of
/// `tenant`, and relays the answer as it is, following `dialect`'s conventions for its end and its
/// errors. The recording travels with the answer and is written when it ends.
pub async fn forward(
    forwarder: &Forwarder,
    dialect: Dialect,
    path: &'static str,
    envelope: &RequestEnvelope,
    tenant: &Tenant,
    body: Bytes,
    mut recording: Recording,
) -> Result<Response, ApiError> {
    match forwarder.send(path, &envelope.model, tenant, body).await {
        Ok(upstream) => {
            let (headers, identity) = Identity::for_dialect(&upstream.response, dialect);
            Ok(relay(
                upstream,
                headers,
                identity,
                Some(recording),
                forwarder.registry().clone(),
            ))
        }
        Err(e) => {
            recording.failed(&e);
            Err(e)
        }
    }
}
