//! The `requests` table: one row per finished inference request.

use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool};

use super::columns::{i64_of, u64_of};
use crate::store::{Api, Page, RequestQuery, RequestRecord, RequestSummary, Routing, StoreError};

/// `StoreOp::Request`: a request id already stored is kept as it is.
pub(super) async fn insert(
    conn: &mut SqliteConnection,
    r: &RequestRecord,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT OR IGNORE INTO requests (id, at_ms, api, endpoint, model, node_id,
                         node_name, status, latency_ms, ttfb_ms, queue_ms, prompt_tokens,
                         completion_tokens, streamed, error, client, request_body, response_body,
                         cached_tokens, policy, route_reason, candidates, attempts,
                         predicted_cached_tokens, requested_model)
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
                                 ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&r.id)
    .bind(i64_of(r.at_ms))
    .bind(r.api.as_str())
    .bind(&r.endpoint)
    .bind(&r.model)
    .bind(&r.node_id)
    .bind(&r.node_name)
    .bind(i64::from(r.status))
    .bind(r.latency_ms)
    .bind(r.ttfb_ms)
    .bind(r.queue_ms)
    .bind(r.prompt_tokens.map(i64::from))
    .bind(r.completion_tokens.map(i64::from))
    .bind(r.streamed)
    .bind(&r.error)
    .bind(&r.client)
    .bind(&r.request_body)
    .bind(&r.response_body)
    .bind(r.cached_tokens.map(i64::from))
    .bind(r.routing.as_ref().map(|x| x.policy.as_str()))
    .bind(r.routing.as_ref().and_then(|x| x.reason.as_deref()))
    .bind(r.routing.as_ref().map(|x| i64::from(x.candidates)))
    .bind(r.routing.as_ref().map(|x| i64::from(x.attempts)))
    .bind(
        r.routing
            .as_ref()
            .and_then(|x| x.predicted_cached_tokens)
            .map(i64_of),
    )
    .bind(&r.requested_model)
    .execute(conn)
    .await?;
    Ok(())
}

/// One page of requests matching `query`, newest first, and the number of matching rows.
pub(super) async fn page(
    pool: &SqlitePool,
    query: &RequestQuery,
) -> Result<Page<RequestRecord>, StoreError> {
    let mut count = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM requests");
    push_filters(&mut count, query);
    let total: i64 = count.build_query_scalar().fetch_one(pool).await?;

    let mut select = QueryBuilder::<Sqlite>::new("SELECT * FROM requests");
    push_filters(&mut select, query);
    select
        .push(" ORDER BY at_ms DESC, rowid DESC LIMIT ")
        .push_bind(i64::from(query.limit()))
        .push(" OFFSET ")
        .push_bind(i64::from(query.offset()));
    let rows = select.build().fetch_all(pool).await?;
    Ok(Page {
        total: u64_of(total),
        limit: query.limit(),
        offset: query.offset(),
        items: rows
            .iter()
            .map(request_from_row)
            .collect::<Result<_, _>>()?,
    })
}

pub(super) async fn get(pool: &SqlitePool, id: &str) -> Result<Option<RequestRecord>, StoreError> {
    let row = sqlx::query("SELECT * FROM requests WHERE id = ?")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(request_from_row).transpose()
}

/// The figures stats need of every request at or after `since_ms`.
pub(super) async fn summaries(
    pool: &SqlitePool,
    since_ms: u64,
) -> Result<Vec<RequestSummary>, StoreError> {
    let rows = sqlx::query(
        "SELECT at_ms, model, node_name, status, error IS NOT NULL AS has_error, latency_ms
             FROM requests WHERE at_ms >= ?",
    )
    .bind(i64_of(since_ms))
    .fetch_all(pool)
    .await?;
    rows.iter().map(summary_from_row).collect()
}

/// Deletes the requests older than `before_ms`; rows deleted.
pub(super) async fn delete_before(pool: &SqlitePool, before_ms: u64) -> Result<u64, StoreError> {
    Ok(sqlx::query("DELETE FROM requests WHERE at_ms < ?")
        .bind(i64_of(before_ms))
        .execute(pool)
        .await?
        .rows_affected())
}

fn request_from_row(row: &SqliteRow) -> Result<RequestRecord, StoreError> {
    let api: String = row.try_get("api")?;
    Ok(RequestRecord {
        id: row.try_get("id")?,
        at_ms: u64_of(row.try_get("at_ms")?),
        api: Api::parse(&api).ok_or_else(|| StoreError::Corrupt(format!("api '{api}'")))?,
        endpoint: row.try_get("endpoint")?,
        model: row.try_get("model")?,
        requested_model: row.try_get("requested_model")?,
        node_id: row.try_get("node_id")?,
        node_name: row.try_get("node_name")?,
        status: u16::try_from(row.try_get::<i64, _>("status")?).unwrap_or(0),
        latency_ms: row.try_get("latency_ms")?,
        ttfb_ms: row.try_get("ttfb_ms")?,
        queue_ms: row.try_get("queue_ms")?,
        prompt_tokens: row
            .try_get::<Option<i64>, _>("prompt_tokens")?
            .and_then(|v| u32::try_from(v).ok()),
        completion_tokens: row
            .try_get::<Option<i64>, _>("completion_tokens")?
            .and_then(|v| u32::try_from(v).ok()),
        cached_tokens: row
            .try_get::<Option<i64>, _>("cached_tokens")?
            .and_then(|v| u32::try_from(v).ok()),
        routing: routing_from_row(row)?,
        streamed: row.try_get("streamed")?,
        error: row.try_get("error")?,
        client: row.try_get("client")?,
        request_body: row.try_get("request_body")?,
        response_body: row.try_get("response_body")?,
    })
}

fn routing_from_row(row: &SqliteRow) -> Result<Option<Routing>, StoreError> {
    let Some(policy) = row.try_get::<Option<String>, _>("policy")? else {
        return Ok(None);
    };
    let count = |column: &str| -> Result<u32, StoreError> {
        Ok(row
            .try_get::<Option<i64>, _>(column)?
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(0))
    };
    Ok(Some(Routing {
        policy,
        reason: row.try_get("route_reason")?,
        candidates: count("candidates")?,
        attempts: count("attempts")?,
        predicted_cached_tokens: row
            .try_get::<Option<i64>, _>("predicted_cached_tokens")?
            .map(u64_of),
    }))
}

fn summary_from_row(row: &SqliteRow) -> Result<RequestSummary, StoreError> {
    let status = u16::try_from(row.try_get::<i64, _>("status")?).unwrap_or(0);
    let has_error: bool = row.try_get("has_error")?;
    Ok(RequestSummary {
        at_ms: u64_of(row.try_get("at_ms")?),
        model: row.try_get("model")?,
        node_name: row.try_get("node_name")?,
        status,
        failed: status >= 400 || has_error,
        latency_ms: row.try_get("latency_ms")?,
    })
}

/// Appends the WHERE clause of `query` to `qb`.
fn push_filters<'a>(qb: &mut QueryBuilder<'a, Sqlite>, query: &'a RequestQuery) {
    qb.push(" WHERE 1 = 1");
    if let Some(model) = &query.model {
        qb.push(" AND (model = ")
            .push_bind(model)
            .push(" OR requested_model = ")
            .push_bind(model)
            .push(")");
    }
    if let Some(node) = &query.node {
        qb.push(" AND node_name = ").push_bind(node);
    }
    if let Some(since) = query.since {
        qb.push(" AND at_ms >= ").push_bind(i64_of(since));
    }
    if let Some(until) = query.until {
        qb.push(" AND at_ms < ").push_bind(i64_of(until));
    }
    match query.status.as_deref() {
        None => {}
        Some("success") => {
            qb.push(" AND status < 400 AND error IS NULL");
        }
        Some("error") => {
            qb.push(" AND (status >= 400 OR error IS NOT NULL)");
        }
        Some(code) => {
            let code = code.parse::<i64>().unwrap_or(-1);
            qb.push(" AND status = ").push_bind(code);
        }
    }
}
