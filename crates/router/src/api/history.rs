//! Request history and statistics: `GET /api/requests`, `/api/requests/{id}`,
//! `/api/requests/export`, `/api/stats`.

use std::time::SystemTime;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::api::ApiResult;
use crate::auth::Staff;
use crate::error::ApiError;
use crate::state::AppState;
use crate::stats::Window;
use crate::store::{Page, RequestQuery, RequestRecord, unix_ms};

/// Most rows one export returns.
const EXPORT_MAX_ROWS: u32 = 100_000;
/// Rows fetched per page while exporting.
const EXPORT_PAGE: u32 = 1000;

fn query<T>(q: Result<Query<T>, QueryRejection>) -> ApiResult<T> {
    q.map(|Query(q)| q)
        .map_err(|e| ApiError::InvalidRequest(e.body_text()))
}

fn check(q: &RequestQuery) -> ApiResult<()> {
    match q.status.as_deref() {
        None | Some("success" | "error") => Ok(()),
        Some(code) if code.parse::<u16>().is_ok() => Ok(()),
        Some(other) => Err(ApiError::InvalidRequest(format!(
            "status must be a status code, `success` or `error`, got '{other}'"
        ))),
    }
}

/// Stored request and response bodies are for admins only.
fn visible_to(staff: &Staff, mut record: RequestRecord) -> RequestRecord {
    if !staff.is_admin() {
        record.request_body = None;
        record.response_body = None;
    }
    record
}

/// `GET /api/requests?limit&offset&model&node&status&since&until`, newest first.
pub async fn list(
    State(state): State<AppState>,
    staff: Staff,
    q: Result<Query<RequestQuery>, QueryRejection>,
) -> ApiResult<Json<Page<RequestRecord>>> {
    let q = query(q)?;
    check(&q)?;
    let page = state.store.requests(&q).await?;
    Ok(Json(Page {
        items: page
            .items
            .into_iter()
            .map(|r| visible_to(&staff, r))
            .collect(),
        ..page
    }))
}

pub async fn get(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> ApiResult<Json<RequestRecord>> {
    state
        .store
        .request(&id)
        .await?
        .map(|r| Json(visible_to(&staff, r)))
        .ok_or(ApiError::RequestNotFound(id))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    format: Option<String>,
    model: Option<String>,
    node: Option<String>,
    status: Option<String>,
    since: Option<u64>,
    until: Option<u64>,
}

/// `GET /api/requests/export?format=csv|jsonl` (same filters as the list), newest first.
pub async fn export(
    State(state): State<AppState>,
    staff: Staff,
    q: Result<Query<ExportQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let q = query(q)?;
    let csv = match q.format.as_deref().unwrap_or("jsonl") {
        "csv" => true,
        "jsonl" => false,
        other => {
            return Err(ApiError::InvalidRequest(format!(
                "format must be `csv` or `jsonl`, got '{other}'"
            )));
        }
    };
    let mut filter = RequestQuery {
        limit: Some(EXPORT_PAGE),
        offset: Some(0),
        model: q.model,
        node: q.node,
        status: q.status,
        since: q.since,
        until: q.until,
    };
    check(&filter)?;
    let mut out = String::new();
    if csv {
        out.push_str(CSV_HEADER);
    }
    let mut fetched = 0;
    loop {
        let page = state.store.requests(&filter).await?;
        let n = page.items.len() as u32;
        for r in page.items {
            let r = visible_to(&staff, r);
            if csv {
                csv_row(&mut out, &r);
            } else {
                out.push_str(
                    &serde_json::to_string(&r).map_err(|e| ApiError::Internal(e.to_string()))?,
                );
                out.push('\n');
            }
        }
        fetched += n;
        if n < EXPORT_PAGE || fetched >= EXPORT_MAX_ROWS {
            break;
        }
        filter.offset = Some(fetched);
    }
    let (content_type, file) = if csv {
        ("text/csv; charset=utf-8", "requests.csv")
    } else {
        ("application/x-ndjson", "requests.jsonl")
    };
    Ok((
        [
            (CONTENT_TYPE, content_type.to_owned()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        Body::from(out),
    )
        .into_response())
}

const CSV_HEADER: &str = "id,at_ms,api,endpoint,model,node_id,node_name,status,latency_ms,ttfb_ms,queue_ms,prompt_tokens,completion_tokens,streamed,error,client\n";

/// One CSV cell. A text that a spreadsheet would run as a formula (it starts with `=`, `+`, `-`,
/// `@`, a tab or a carriage return — a model name or an error text a client chose) is prefixed
/// with `'`, so it shows as text.
fn csv_field(out: &mut String, value: &str) {
    let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let value = if formula {
        std::borrow::Cow::Owned(format!("'{value}"))
    } else {
        std::borrow::Cow::Borrowed(value)
    };
    if value.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(&value);
    }
}

fn csv_row(out: &mut String, r: &RequestRecord) {
    let opt = |v: Option<String>| v.unwrap_or_default();
    let fields = [
        r.id.clone(),
        r.at_ms.to_string(),
        r.api.as_str().to_owned(),
        r.endpoint.clone(),
        r.model.clone(),
        opt(r.node_id.clone()),
        opt(r.node_name.clone()),
        r.status.to_string(),
        format!("{:.3}", r.latency_ms),
        opt(r.ttfb_ms.map(|v| format!("{v:.3}"))),
        format!("{:.3}", r.queue_ms),
        opt(r.prompt_tokens.map(|v| v.to_string())),
        opt(r.completion_tokens.map(|v| v.to_string())),
        r.streamed.to_string(),
        opt(r.error.clone()),
        opt(r.client.clone()),
    ];
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(out, f);
    }
    out.push('\n');
}

/// `GET /api/stats`.
#[derive(Debug, Serialize)]
pub struct Stats {
    pub last_hour: Window,
    pub since_start: Window,
    pub started_at_ms: u64,
}

pub async fn stats(State(state): State<AppState>) -> ApiResult<Json<Stats>> {
    let now = unix_ms(SystemTime::now());
    let started = unix_ms(state.started_at);
    let hour_ago = now.saturating_sub(3_600_000);
    let rows = state.store.request_summaries(started.min(hour_ago)).await?;
    let since_start: Vec<_> = rows
        .iter()
        .filter(|r| r.at_ms >= started)
        .cloned()
        .collect();
    let last_hour: Vec<_> = rows.into_iter().filter(|r| r.at_ms >= hour_ago).collect();
    Ok(Json(Stats {
        last_hour: Window::of(&last_hour),
        since_start: Window::of(&since_start),
        started_at_ms: started,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_fields_with_separators() {
        let mut out = String::new();
        csv_field(&mut out, "a,\"b\"");
        assert_eq!(out, "\"a,\"\"b\"\"\"");
    }

    #[test]
    fn csv_cells_that_would_run_as_formulas_are_text() {
        for (value, cell) in [
            (
                "=HYPERLINK(\"http://x\")",
                "\"'=HYPERLINK(\"\"http://x\"\")\"",
            ),
            ("+1", "'+1"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("gemma3-270m", "gemma3-270m"),
            ("12.5", "12.5"),
        ] {
            let mut out = String::new();
            csv_field(&mut out, value);
            assert_eq!(out, cell, "{value:?}");
        }
    }
}
