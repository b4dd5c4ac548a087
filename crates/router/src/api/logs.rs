//! Logs: `GET /api/logs?tail=N` (the router's own) and `GET /api/agents/{id}/logs?tail=N` (a
//! node's, fetched from its `GET /api/logs`). Both answer JSON lines as text, oldest first;
//! N defaults to 200 and is capped at 2000.

use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;

use crate::api::ApiResult;
use crate::error::ApiError;
use crate::state::AppState;

/// How long a node may take to send its log.
const NODE_LOG_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest node log answer relayed.
pub const NODE_LOG_MAX_BYTES: usize = 10 * 1024 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TailQuery {
    tail: Option<usize>,
}

impl TailQuery {
    fn lines(q: Result<Query<TailQuery>, QueryRejection>) -> ApiResult<usize> {
        let Query(q) = q.map_err(|e| ApiError::InvalidRequest(e.body_text()))?;
        Ok(llm_router_logs::tail_lines(q.tail))
    }
}

fn text(body: impl Into<axum::body::Body>) -> Response {
    ([(CONTENT_TYPE, "text/plain; charset=utf-8")], body.into()).into_response()
}

/// `GET /api/logs?tail=N`.
pub async fn router_log(
    State(state): State<AppState>,
    q: Result<Query<TailQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let lines = TailQuery::lines(q)?;
    let Some(log) = &state.log else {
        return Ok(text(String::new()));
    };
    let tail = log
        .tail(lines)
        .await
        .map_err(|e| ApiError::Internal(format!("cannot read the log: {e}")))?;
    Ok(text(tail))
}

/// `GET /api/agents/{id}/logs?tail=N`: 502 when the node cannot be reached or fails, 413 when its
/// answer is over 10 MiB.
pub async fn node_log(
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: Result<Query<TailQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let lines = TailQuery::lines(q)?;
    let snapshot = state.registry.snapshot();
    let node = snapshot.node(&id).ok_or(ApiError::NodeNotFound(id))?;
    let name = &node.machine_name;
    let unreachable = |e: reqwest::Error| {
        let why = if e.is_timeout() {
            format!("no answer within {} s", NODE_LOG_TIMEOUT.as_secs())
        } else {
            e.without_url().to_string()
        };
        ApiError::Upstream(format!("cannot read the log of node '{name}': {why}"))
    };
    let response = node
        .request(
            &state.http,
            reqwest::Method::GET,
            &format!("/api/logs?tail={lines}"),
        )
        .timeout(NODE_LOG_TIMEOUT)
        .send()
        .await
        .map_err(unreachable)?;
    let status = response.status();
    if response
        .content_length()
        .is_some_and(|n| n > NODE_LOG_MAX_BYTES as u64)
    {
        return Err(ApiError::UpstreamTooLarge(NODE_LOG_MAX_BYTES));
    }
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(unreachable)?;
        if body.len() + chunk.len() > NODE_LOG_MAX_BYTES {
            return Err(ApiError::UpstreamTooLarge(NODE_LOG_MAX_BYTES));
        }
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        let excerpt = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
        return Err(ApiError::Upstream(format!(
            "node '{name}' answered {status} for its log: {excerpt}"
        )));
    }
    Ok(text(body))
}
