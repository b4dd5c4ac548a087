//! Persistence of fleet state and request history, behind the [`Store`] trait.
//!
//! Two implementations answer the same test suite: [`SqliteStore`] (production: one SQLite file in
//! WAL mode, schema under `migrations/`) and [`MemoryStore`] (its in-memory twin). Writes never sit
//! on the request path: handlers hand [`StoreOp`]s through a [`HistorySink`] to the writer task
//! ([`run_writer`]), which applies them in batched transactions.

pub mod fleet;
mod memory;
mod sqlite;
mod types;
mod writer;

#[cfg(test)]
mod tests;

pub use fleet::FleetLog;
pub use memory::MemoryStore;
pub use sqlite::SqliteStore;
pub use types::{
    Api, ApiKeyRow, Credentials, MetricSample, NodeRow, Page, RequestQuery, RequestRecord,
    RequestSummary, Routing, SessionRow, SpendRow, StoreOp, TaskRow, UserRow, unix_ms,
};
pub use writer::{HistorySink, Queued, Retention, SinkCounters, WriteError, run_writer};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

/// Everything the router persists.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies the operations in one transaction, in order.
    async fn apply(&self, ops: &[StoreOp]) -> Result<(), StoreError>;

    /// Users, live sessions, API keys and settings (to restore authentication at start-up).
    async fn credentials(&self, now_ms: u64) -> Result<Credentials, StoreError>;

    /// The newest `limit` download tasks, newest first.
    async fn tasks(&self, limit: u32) -> Result<Vec<TaskRow>, StoreError>;

    /// Every known node (to restore the fleet at start-up).
    async fn nodes(&self) -> Result<Vec<NodeRow>, StoreError>;

    /// One page of request history, newest first, and the number of matching rows.
    async fn requests(&self, query: &RequestQuery) -> Result<Page<RequestRecord>, StoreError>;

    async fn request(&self, id: &str) -> Result<Option<RequestRecord>, StoreError>;

    /// The figures stats are computed from, for requests at or after `since_ms`.
    async fn request_summaries(&self, since_ms: u64) -> Result<Vec<RequestSummary>, StoreError>;

    /// Metric samples of a node at or after `since_ms`, oldest first.
    async fn metrics_history(
        &self,
        node_id: &str,
        since_ms: u64,
    ) -> Result<Vec<MetricSample>, StoreError>;

    /// Deletes metric samples and requests older than the given times; rows deleted.
    async fn prune(
        &self,
        metrics_before_ms: u64,
        requests_before_ms: u64,
    ) -> Result<u64, StoreError>;
}
