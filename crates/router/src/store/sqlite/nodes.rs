//! The fleet's tables: `nodes` (one row per known node) and `health_metrics` (sampled health of
//! each node).

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection, SqlitePool};

use super::columns::{i64_of, u64_of};
use crate::store::{MetricSample, NodeRow, StoreError};

/// `StoreOp::UpsertNode`: another row of the same machine is replaced by this one; the first-seen
/// time of an existing row is kept.
pub(super) async fn upsert(conn: &mut SqliteConnection, n: &NodeRow) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM nodes WHERE machine_name = ? AND id <> ?")
        .bind(&n.machine_name)
        .bind(&n.id)
        .execute(&mut *conn)
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
    .execute(conn)
    .await?;
    Ok(())
}

/// `StoreOp::DeleteNode`.
pub(super) async fn delete(conn: &mut SqliteConnection, id: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM nodes WHERE id = ?")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Every known node, by machine name.
pub(super) async fn all(pool: &SqlitePool) -> Result<Vec<NodeRow>, StoreError> {
    let rows = sqlx::query("SELECT * FROM nodes ORDER BY machine_name")
        .fetch_all(pool)
        .await?;
    rows.iter().map(node_from_row).collect()
}

/// `StoreOp::Metrics`: a second sample of a node at the same millisecond replaces the first.
pub(super) async fn insert_metrics(
    conn: &mut SqliteConnection,
    m: &MetricSample,
) -> Result<(), StoreError> {
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
    .execute(conn)
    .await?;
    Ok(())
}

/// Metric samples of a node at or after `since_ms`, oldest first.
pub(super) async fn metrics_since(
    pool: &SqlitePool,
    node_id: &str,
    since_ms: u64,
) -> Result<Vec<MetricSample>, StoreError> {
    let rows =
        sqlx::query("SELECT * FROM health_metrics WHERE node_id = ? AND at_ms >= ? ORDER BY at_ms")
            .bind(node_id)
            .bind(i64_of(since_ms))
            .fetch_all(pool)
            .await?;
    rows.iter().map(sample_from_row).collect()
}

/// Deletes the metric samples older than `before_ms`; rows deleted.
pub(super) async fn delete_metrics_before(
    pool: &SqlitePool,
    before_ms: u64,
) -> Result<u64, StoreError> {
    Ok(sqlx::query("DELETE FROM health_metrics WHERE at_ms < ?")
        .bind(i64_of(before_ms))
        .execute(pool)
        .await?
        .rows_affected())
}

fn node_from_row(row: &SqliteRow) -> Result<NodeRow, StoreError> {
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
}

fn sample_from_row(row: &SqliteRow) -> Result<MetricSample, StoreError> {
    Ok(MetricSample {
        node_id: row.try_get("node_id")?,
        at_ms: u64_of(row.try_get("at_ms")?),
        cpu_percent: row.try_get("cpu_percent")?,
        memory_percent: row.try_get("memory_percent")?,
        memory_used_bytes: u64_of(row.try_get("memory_used_bytes")?),
        gpu_percent: row.try_get("gpu_percent")?,
        gpu_memory_percent: row.try_get("gpu_memory_percent")?,
        active_requests: u32::try_from(row.try_get::<i64, _>("active_requests")?).unwrap_or(0),
        avg_response_ms: row.try_get("avg_response_ms")?,
    })
}
