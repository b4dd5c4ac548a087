//! The production store: one SQLite file in WAL mode, through sqlx.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};

use super::{
    Api, Credentials, MetricSample, NodeRow, Page, RequestQuery, RequestRecord, RequestSummary,
    Store, StoreError, StoreOp, TaskRow,
};

use super::sqlite_credentials;

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite:///path/router.db` or
    /// `sqlite::memory:`) and brings its schema up to date.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        // One connection for an in-memory database: each connection would get its own.
        let max = if url.contains(":memory:") { 1 } else { 4 };
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(SqliteStore { pool })
    }
}

pub(super) fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(super) fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn request_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<RequestRecord, StoreError> {
    let api: String = row.try_get("api")?;
    Ok(RequestRecord {
        id: row.try_get("id")?,
        at_ms: u64_of(row.try_get("at_ms")?),
        api: Api::parse(&api).ok_or_else(|| StoreError::Corrupt(format!("api '{api}'")))?,
        endpoint: row.try_get("endpoint")?,
        model: row.try_get("model")?,
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
        streamed: row.try_get("streamed")?,
        error: row.try_get("error")?,
        client: row.try_get("client")?,
        request_body: row.try_get("request_body")?,
        response_body: row.try_get("response_body")?,
    })
}

/// Appends the WHERE clause of `query` to `qb`.
fn push_filters<'a>(qb: &mut QueryBuilder<'a, Sqlite>, query: &'a RequestQuery) {
    qb.push(" WHERE 1 = 1");
    if let Some(model) = &query.model {
        qb.push(" AND model = ").push_bind(model);
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

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn apply(&self, ops: &[StoreOp]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for op in ops {
            match op {
                StoreOp::Request(r) => {
                    sqlx::query(
                        "INSERT OR IGNORE INTO requests (id, at_ms, api, endpoint, model, node_id,
                         node_name, status, latency_ms, ttfb_ms, queue_ms, prompt_tokens,
                         completion_tokens, streamed, error, client, request_body, response_body)
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                    .execute(&mut *tx)
                    .await?;
                }
                StoreOp::Metrics(m) => {
                    sqlx::query(
                        "INSERT OR REPLACE INTO health_metrics (node_id, at_ms, cpu_percent,
                         memory_percent, memory_used_bytes, gpu_percent, gpu_memory_percent,
                         active_requests, avg_response_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    )
                    .bind(&m.node_id)
                    .bind(i64_of(m.at_ms))
                    .bind(m.cpu_percent)
                    .bind(m.memory_percent)
                    .bind(i64_of(m.memory_used_bytes))
                    .bind(m.gpu_percent)
                    .bind(m.gpu_memory_percent)
                    .bind(i64::from(m.active_requests))
                    .bind(m.avg_response_ms)
                    .execute(&mut *tx)
                    .await?;
                }
                StoreOp::UpsertNode(n) => {
                    sqlx::query("DELETE FROM nodes WHERE machine_name = ? AND id <> ?")
                        .bind(&n.machine_name)
                        .bind(&n.id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(
                        "INSERT INTO nodes (id, machine_name, base_url, runtime_kind,
                         runtime_version, node_version, hardware, models, status, first_seen_ms,
                         last_seen_ms, draining) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                         ON CONFLICT (id) DO UPDATE SET machine_name = excluded.machine_name,
                         base_url = excluded.base_url, runtime_kind = excluded.runtime_kind,
                         runtime_version = excluded.runtime_version,
                         node_version = excluded.node_version, hardware = excluded.hardware,
                         models = excluded.models, status = excluded.status,
                         last_seen_ms = excluded.last_seen_ms, draining = excluded.draining",
                    )
                    .bind(&n.id)
                    .bind(&n.machine_name)
                    .bind(&n.base_url)
                    .bind(&n.runtime_kind)
                    .bind(&n.runtime_version)
                    .bind(&n.node_version)
                    .bind(&n.hardware)
                    .bind(&n.models)
                    .bind(&n.status)
                    .bind(i64_of(n.first_seen_ms))
                    .bind(i64_of(n.last_seen_ms))
                    .bind(n.draining)
                    .execute(&mut *tx)
                    .await?;
                }
                StoreOp::DeleteNode(id) => {
                    sqlx::query("DELETE FROM nodes WHERE id = ?")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                StoreOp::UpsertTask(t) => {
                    sqlx::query(
                        "INSERT OR REPLACE INTO download_tasks (id, node_id, node_name, model,
                         status, bytes_done, bytes_total, bytes_per_sec, error, reason, created_ms,
                         updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    )
                    .bind(&t.id)
                    .bind(&t.node_id)
                    .bind(&t.node_name)
                    .bind(&t.model)
                    .bind(&t.status)
                    .bind(i64_of(t.bytes_done))
                    .bind(t.bytes_total.map(i64_of))
                    .bind(i64_of(t.bytes_per_sec))
                    .bind(&t.error)
                    .bind(&t.reason)
                    .bind(i64_of(t.created_ms))
                    .bind(i64_of(t.updated_ms))
                    .execute(&mut *tx)
                    .await?;
                }
                credential => sqlite_credentials::apply(&mut tx, credential).await?,
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn credentials(&self, now_ms: u64) -> Result<Credentials, StoreError> {
        sqlite_credentials::load(&self.pool, now_ms).await
    }

    async fn tasks(&self, limit: u32) -> Result<Vec<TaskRow>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM download_tasks ORDER BY created_ms DESC, id DESC LIMIT ?")
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|row| {
                Ok(TaskRow {
                    id: row.try_get("id")?,
                    node_id: row.try_get("node_id")?,
                    node_name: row.try_get("node_name")?,
                    model: row.try_get("model")?,
                    status: row.try_get("status")?,
                    bytes_done: u64_of(row.try_get("bytes_done")?),
                    bytes_total: row.try_get::<Option<i64>, _>("bytes_total")?.map(u64_of),
                    bytes_per_sec: u64_of(row.try_get("bytes_per_sec")?),
                    error: row.try_get("error")?,
                    reason: row.try_get("reason")?,
                    created_ms: u64_of(row.try_get("created_ms")?),
                    updated_ms: u64_of(row.try_get("updated_ms")?),
                })
            })
            .collect()
    }

    async fn nodes(&self) -> Result<Vec<NodeRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM nodes ORDER BY machine_name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(NodeRow {
                    id: row.try_get("id")?,
                    machine_name: row.try_get("machine_name")?,
                    base_url: row.try_get("base_url")?,
                    runtime_kind: row.try_get("runtime_kind")?,
                    runtime_version: row.try_get("runtime_version")?,
                    node_version: row.try_get("node_version")?,
                    hardware: row.try_get("hardware")?,
                    models: row.try_get("models")?,
                    status: row.try_get("status")?,
                    first_seen_ms: u64_of(row.try_get("first_seen_ms")?),
                    last_seen_ms: u64_of(row.try_get("last_seen_ms")?),
                    draining: row.try_get("draining")?,
                })
            })
            .collect()
    }

    async fn requests(&self, query: &RequestQuery) -> Result<Page<RequestRecord>, StoreError> {
        let mut count = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM requests");
        push_filters(&mut count, query);
        let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;

        let mut select = QueryBuilder::<Sqlite>::new("SELECT * FROM requests");
        push_filters(&mut select, query);
        select
            .push(" ORDER BY at_ms DESC, rowid DESC LIMIT ")
            .push_bind(i64::from(query.limit()))
            .push(" OFFSET ")
            .push_bind(i64::from(query.offset()));
        let rows = select.build().fetch_all(&self.pool).await?;
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

    async fn request(&self, id: &str) -> Result<Option<RequestRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM requests WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(request_from_row).transpose()
    }

    async fn request_summaries(&self, since_ms: u64) -> Result<Vec<RequestSummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT at_ms, model, node_name, status, error IS NOT NULL AS has_error, latency_ms
             FROM requests WHERE at_ms >= ?",
        )
        .bind(i64_of(since_ms))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
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
            })
            .collect()
    }

    async fn metrics_history(
        &self,
        node_id: &str,
        since_ms: u64,
    ) -> Result<Vec<MetricSample>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM health_metrics WHERE node_id = ? AND at_ms >= ? ORDER BY at_ms",
        )
        .bind(node_id)
        .bind(i64_of(since_ms))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(MetricSample {
                    node_id: row.try_get("node_id")?,
                    at_ms: u64_of(row.try_get("at_ms")?),
                    cpu_percent: row.try_get("cpu_percent")?,
                    memory_percent: row.try_get("memory_percent")?,
                    memory_used_bytes: u64_of(row.try_get("memory_used_bytes")?),
                    gpu_percent: row.try_get("gpu_percent")?,
                    gpu_memory_percent: row.try_get("gpu_memory_percent")?,
                    active_requests: u32::try_from(row.try_get::<i64, _>("active_requests")?)
                        .unwrap_or(0),
                    avg_response_ms: row.try_get("avg_response_ms")?,
                })
            })
            .collect()
    }

    async fn prune(
        &self,
        metrics_before_ms: u64,
        requests_before_ms: u64,
    ) -> Result<u64, StoreError> {
        let metrics = sqlx::query("DELETE FROM health_metrics WHERE at_ms < ?")
            .bind(i64_of(metrics_before_ms))
            .execute(&self.pool)
            .await?
            .rows_affected();
        let requests = sqlx::query("DELETE FROM requests WHERE at_ms < ?")
            .bind(i64_of(requests_before_ms))
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(metrics + requests)
    }
}
