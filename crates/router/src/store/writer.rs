//! The single writer: store operations arrive through a bounded channel and are applied in
//! batched transactions, so no request ever waits for the database.
//!
//! Durability bound: an operation is on disk once its batch committed. A batch holds what queued
//! up while the previous one was written or during the [`BATCH_WINDOW`] after it (at most
//! [`MAX_BATCH`] operations), so a SIGKILL loses at most the batch being written plus what waits
//! in the channel — the last ~5 ms of history plus one batch. A graceful shutdown drains the
//! channel first and loses nothing.
//!
//! Two ways in: [`HistorySink::send`] (request rows, samples, heartbeat refreshes) never waits and
//! drops when the channel is full; [`HistorySink::store`] (fleet changes an admin made: drain,
//! resume, delete) waits for room and then for its batch to commit, so it cannot be dropped, and
//! stays in order with what was queued before it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{Store, StoreOp, unix_ms};

/// Most operations applied in one transaction.
const MAX_BATCH: usize = 1024;
/// After a partial batch the writer lets rows gather this long before the next one, so a busy
/// router wakes it a few hundred times a second rather than once per request.
const BATCH_WINDOW: Duration = Duration::from_millis(5);
/// How often old rows are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// Longest wait of [`HistorySink::store`] (room in the channel, then the commit).
const STORE_WITHIN: Duration = Duration::from_secs(30);

/// An operation on its way to the writer; a durable one carries who waits for its commit.
pub struct Queued {
    op: StoreOp,
    done: Option<oneshot::Sender<bool>>,
}

impl Queued {
    /// The operation (for tests that read a sink's channel).
    pub fn op(&self) -> &StoreOp {
        &self.op
    }
}

/// Why a durable write ([`HistorySink::store`]) did not land.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("the store is shutting down")]
    Closed,
    #[error("the store did not commit the change within {0:?}")]
    TimedOut(Duration),
    #[error("the store failed to write the change (the router's log says why)")]
    Failed,
}

/// The handle request handlers write through. Never blocks: when the channel is full, the
/// operation is dropped and counted.
#[derive(Clone)]
pub struct HistorySink {
    tx: mpsc::Sender<Queued>,
    counters: Arc<SinkCounters>,
}

#[derive(Debug, Default)]
pub struct SinkCounters {
    pub dropped: AtomicU64,
    pub written: AtomicU64,
    pub failed: AtomicU64,
}

/// Retention of the data the writer prunes.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub metrics: Duration,
    pub requests: Duration,
}

impl HistorySink {
    /// A sink and the receiving end for [`run_writer`].
    pub fn channel(capacity: usize) -> (HistorySink, mpsc::Receiver<Queued>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (
            HistorySink {
                tx,
                counters: Arc::default(),
            },
            rx,
        )
    }

    /// Queues `op` for the writer; drops (and counts) it when the writer is behind.
    pub fn send(&self, op: StoreOp) {
        if self.tx.try_send(Queued { op, done: None }).is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues `op` behind what is already queued, waiting for room rather than dropping it, and
    /// returns once its batch committed (within [`STORE_WITHIN`]).
    pub async fn store(&self, op: StoreOp) -> Result<(), WriteError> {
        let (done, committed) = oneshot::channel();
        let queued = Queued {
            op,
            done: Some(done),
        };
        let wait = async {
            self.tx.send(queued).await.map_err(|_| WriteError::Closed)?;
            match committed.await {
                Ok(true) => Ok(()),
                Ok(false) => Err(WriteError::Failed),
                Err(_) => Err(WriteError::Closed),
            }
        };
        tokio::time::timeout(STORE_WITHIN, wait)
            .await
            .map_err(|_| WriteError::TimedOut(STORE_WITHIN))?
    }

    pub fn counters(&self) -> &SinkCounters {
        &self.counters
    }
}

/// Applies operations from `rx` until cancelled, then drains what is left and returns.
pub async fn run_writer(
    store: Arc<dyn Store>,
    sink: HistorySink,
    mut rx: mpsc::Receiver<Queued>,
    retention: Retention,
    cancel: CancellationToken,
) {
    let mut prune = tokio::time::interval(PRUNE_EVERY);
    prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch = Batch::default();
    loop {
        tokio::select! {
            biased;
            received = rx.recv_many(&mut batch.queued, MAX_BATCH) => {
                if received == 0 {
                    break;
                }
                batch.write(&*store, &sink).await;
                if received < MAX_BATCH {
                    tokio::select! {
                        () = tokio::time::sleep(BATCH_WINDOW) => {}
                        () = cancel.cancelled() => break,
                    }
                }
            }
            _ = prune.tick() => prune_old(&*store, retention).await,
            () = cancel.cancelled() => break,
        }
    }
    // Shutdown: whatever is still queued is written before the router exits.
    rx.close();
    while rx.recv_many(&mut batch.queued, MAX_BATCH).await > 0 {
        batch.write(&*store, &sink).await;
    }
}

/// What the writer received, and room to split it into operations and waiters (kept across
/// batches, so a batch allocates nothing once the vectors have grown).
struct Batch {
    queued: Vec<Queued>,
    ops: Vec<StoreOp>,
    waiting: Vec<oneshot::Sender<bool>>,
}

impl Default for Batch {
    fn default() -> Self {
        Batch {
            queued: Vec::with_capacity(MAX_BATCH),
            ops: Vec::with_capacity(MAX_BATCH),
            waiting: Vec::new(),
        }
    }
}

impl Batch {
    /// Applies the received operations in one transaction and tells the waiters how it went.
    async fn write(&mut self, store: &dyn Store, sink: &HistorySink) {
        for Queued { op, done } in self.queued.drain(..) {
            self.ops.push(op);
            self.waiting.extend(done);
        }
        let n = self.ops.len() as u64;
        let committed = match store.apply(&self.ops).await {
            Ok(()) => {
                sink.counters.written.fetch_add(n, Ordering::Relaxed);
                true
            }
            Err(e) => {
                sink.counters.failed.fetch_add(n, Ordering::Relaxed);
                tracing::error!(error = %e, rows = n, "writing history failed; rows lost");
                false
            }
        };
        for done in self.waiting.drain(..) {
            // The waiter may have given up.
            let _ = done.send(committed);
        }
        self.ops.clear();
    }
}

async fn prune_old(store: &dyn Store, retention: Retention) {
    let now = SystemTime::now();
    let cutoff = |keep: Duration| unix_ms(now.checked_sub(keep).unwrap_or(SystemTime::UNIX_EPOCH));
    match store
        .prune(cutoff(retention.metrics), cutoff(retention.requests))
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(rows = n, "pruned history past retention"),
        Err(e) => tracing::warn!(error = %e, "pruning history failed"),
    }
}
