//! The production store: one SQLite file in WAL mode, through sqlx.
//!
//! This file opens the database and dispatches each [`StoreOp`] to the function of its table; the
//! SQL lives in one file per job: [`requests`] (request history), [`nodes`] (the fleet and its
//! health samples), [`tasks`] (download tasks), [`credentials`] (users, sessions, API keys,
//! settings). [`columns`] holds the integer conversions they share.

mod columns;
mod credentials;
mod nodes;
mod requests;
mod tasks;

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{SqliteConnection, SqlitePool};

use super::{
    Credentials, MetricSample, NodeRow, Page, RequestQuery, RequestRecord, RequestSummary, Store,
    StoreError, StoreOp, TaskRow,
};

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

/// Applies one operation on `conn` (the batch's transaction).
async fn apply_op(conn: &mut SqliteConnection, op: &StoreOp) -> Result<(), StoreError> {
    match op {
        StoreOp::Request(r) => requests::insert(conn, r).await,
        StoreOp::Metrics(m) => nodes::insert_metrics(conn, m).await,
        StoreOp::UpsertNode(n) => nodes::upsert(conn, n).await,
        StoreOp::DeleteNode(id) => nodes::delete(conn, id).await,
        StoreOp::UpsertUser(u) => credentials::upsert_user(conn, u).await,
        StoreOp::DeleteUser(id) => credentials::delete_user(conn, id).await,
        StoreOp::InsertSession(s) => credentials::insert_session(conn, s).await,
        StoreOp::DeleteSession(hash) => credentials::delete_session(conn, hash).await,
        StoreOp::DeleteSessionsOf(user_id) => credentials::delete_sessions_of(conn, user_id).await,
        StoreOp::UpsertApiKey(k) => credentials::upsert_api_key(conn, k).await,
        StoreOp::TouchApiKey { id, at_ms } => credentials::touch_api_key(conn, id, *at_ms).await,
        StoreOp::SetSetting { key, value } => credentials::set_setting(conn, key, value).await,
        StoreOp::UpsertTask(t) => tasks::upsert(conn, t).await,
        StoreOp::AddSpend {
            key_id,
            period,
            tokens,
        } => credentials::add_spend(conn, key_id, period, *tokens).await,
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn apply(&self, ops: &[StoreOp]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for op in ops {
            apply_op(&mut tx, op).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn credentials(&self, now_ms: u64) -> Result<Credentials, StoreError> {
        credentials::load(&self.pool, now_ms).await
    }

    async fn tasks(&self, limit: u32) -> Result<Vec<TaskRow>, StoreError> {
        tasks::newest(&self.pool, limit).await
    }

    async fn nodes(&self) -> Result<Vec<NodeRow>, StoreError> {
        nodes::all(&self.pool).await
    }

    async fn requests(&self, query: &RequestQuery) -> Result<Page<RequestRecord>, StoreError> {
        requests::page(&self.pool, query).await
    }

    async fn request(&self, id: &str) -> Result<Option<RequestRecord>, StoreError> {
        requests::get(&self.pool, id).await
    }

    async fn request_summaries(&self, since_ms: u64) -> Result<Vec<RequestSummary>, StoreError> {
        requests::summaries(&self.pool, since_ms).await
    }

    async fn metrics_history(
        &self,
        node_id: &str,
        since_ms: u64,
    ) -> Result<Vec<MetricSample>, StoreError> {
        nodes::metrics_since(&self.pool, node_id, since_ms).await
    }

    async fn prune(
        &self,
        metrics_before_ms: u64,
        requests_before_ms: u64,
    ) -> Result<u64, StoreError> {
        let metrics = nodes::delete_metrics_before(&self.pool, metrics_before_ms).await?;
        let requests = requests::delete_before(&self.pool, requests_before_ms).await?;
        Ok(metrics + requests)
    }
}
