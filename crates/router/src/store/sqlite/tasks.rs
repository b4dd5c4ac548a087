//! The `download_tasks` table: model downloads the router ordered.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection, SqlitePool};

use super::columns::{i64_of, u64_of};
use crate::store::{StoreError, TaskRow};

/// `StoreOp::UpsertTask`: inserts or replaces the task (by id).
pub(super) async fn upsert(conn: &mut SqliteConnection, t: &TaskRow) -> Result<(), StoreError> {
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
    .execute(conn)
    .await?;
    Ok(())
}

/// The newest `limit` tasks, newest first.
pub(super) async fn newest(pool: &SqlitePool, limit: u32) -> Result<Vec<TaskRow>, StoreError> {
    let rows =
        sqlx::query("SELECT * FROM download_tasks ORDER BY created_ms DESC, id DESC LIMIT ?")
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
    rows.iter().map(task_from_row).collect()
}

fn task_from_row(row: &SqliteRow) -> Result<TaskRow, StoreError> {
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
}
