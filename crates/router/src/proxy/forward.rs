//! Choosing a node and sending it the request, with failover before the first byte.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::response::Response;
use llm_router_protocol::openai::RequestEnvelope;

use super::relay::relay;
use crate::balancer::SelectContext;
use crate::error::ApiError;
use crate::registry::{Node, Unavailable};
use crate::state::AppState;

/// Sends `body` (unchanged) to `path` on a node with `envelope.model` ready and relays the answer.
///
/// A connection error or a 5xx before any byte reached the client is retried on another candidate,
/// up to `max_attempts` nodes in all.
pub async fn forward(
    state: &AppState,
    path: &'static str,
    envelope: &RequestEnvelope,
    body: Bytes,
) -> Result<Response, ApiError> {
    let snapshot = state.registry.snapshot();
    let candidates = snapshot.candidates(&envelope.model).map_err(|u| match u {
        Unavailable::UnknownModel => ApiError::ModelNotFound(envelope.model.clone()),
        Unavailable::NoReadyNode => ApiError::NoNodeAvailable(envelope.model.clone()),
    })?;
    let ctx = SelectContext {
        model: &envelope.model,
    };
    let attempts = (state.config.max_attempts as usize).min(candidates.len());
    let mut remaining: Option<Vec<Arc<Node>>> = None;
    let mut last_error = None;

    for attempt in 1..=attempts {
        let pool: &[Arc<Node>] = remaining.as_deref().unwrap_or(candidates);
        let Some(index) = state.policy.select(pool, &ctx) else {
            break;
        };
        let node = Arc::clone(&pool[index]);
        let guard = node.counters.start_request();
        let result = state
            .http
            .post(format!("{}{}", node.base_url, path))
            .header(CONTENT_TYPE, "application/json")
            .body(body.clone())
            .send()
            .await;
        let failure = match result {
            Ok(response) if !response.status().is_server_error() || attempt == attempts => {
                return Ok(relay(response, &node, guard));
            }
            Ok(response) => format!("answered {}", response.status()),
            Err(e) => e.to_string(),
        };
        node.counters.record_failure();
        tracing::warn!(
            node = %node.machine_name,
            model = %envelope.model,
            attempt,
            error = %failure,
            "node failed before the first byte; trying another"
        );
        last_error = Some(format!("node '{}' {failure}", node.machine_name));
        let mut rest = remaining.take().unwrap_or_else(|| candidates.to_vec());
        rest.retain(|n| n.id != node.id);
        remaining = Some(rest);
    }
    Err(match last_error {
        Some(e) => ApiError::Upstream(e),
        None => ApiError::NoNodeAvailable(envelope.model.clone()),
    })
}
