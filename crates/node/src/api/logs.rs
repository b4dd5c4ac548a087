//! `GET /api/logs?tail=N`: the last N lines of the node's JSON-lines log (default 200, at most
//! 2000), oldest first, as text; empty when nothing was written yet.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use serde::Deserialize;

use crate::api::NodeApiError;
use crate::state::NodeState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TailQuery {
    tail: Option<usize>,
}

pub async fn logs(
    State(state): State<NodeState>,
    query: Result<Query<TailQuery>, QueryRejection>,
) -> Result<impl IntoResponse, NodeApiError> {
    let Query(query) = query.map_err(|e| NodeApiError::InvalidRequest(e.body_text()))?;
    let text = state
        .log
        .tail(llm_router_logs::tail_lines(query.tail))
        .await
        .map_err(|e| NodeApiError::Storage(format!("cannot read the log: {e}")))?;
    Ok(([(CONTENT_TYPE, "text/plain; charset=utf-8")], text))
}
