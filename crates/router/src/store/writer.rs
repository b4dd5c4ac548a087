//! The single writer: store operations arrive through a bounded channel and are applied in
//! batched transactions, so no request ever waits for the database.
//!
//! Durability bound: an operation is on disk once its batch committed. A batch holds what queued
//! up while the previous one was written or during the [`BATCH_WINDOW`] after it (at most
//! [`MAX_BATCH`] operations), so a SIGKILL loses at most the batch being written plus what waits
//! in the channel — the last ~5 ms of history plus one batch. A graceful shutdown drains the
//! channel first and loses nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Store, StoreOp, unix_ms};

/// Most operations applied in one transaction.
const MAX_BATCH: usize = 1024;
/// After a partial batch the writer lets rows gather this long before the next one, so a busy
/// router wakes it a few hundred times a second rather than once per request.
const BATCH_WINDOW: Duration = Duration::from_millis(5);
/// How often old rows are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// The handle request handlers write through. Never blocks: when the channel is full, the
/// operation is dropped and counted.
#[derive(Clone)]
pub struct HistorySink {
    tx: mpsc::Sender<StoreOp>,
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
    pub fn channel(capacity: usize) -> (HistorySink, mpsc::Receiver<StoreOp>) {
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
        if self.tx.try_send(op).is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn counters(&self) -> &SinkCounters {
        &self.counters
    }
}

/// Applies operations from `rx` until cancelled, then drains what is left and returns.
pub async fn run_writer(
    store: Arc<dyn Store>,
    sink: HistorySink,
    mut rx: mpsc::Receiver<StoreOp>,
    retention: Retention,
    cancel: CancellationToken,
) {
    let mut prune = tokio::time::interval(PRUNE_EVERY);
    prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        tokio::select! {
            biased;
            received = rx.recv_many(&mut batch, MAX_BATCH) => {
                if received == 0 {
                    break;
                }
                write(&*store, &sink, &mut batch).await;
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
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        write(&*store, &sink, &mut batch).await;
    }
}

async fn write(store: &dyn Store, sink: &HistorySink, batch: &mut Vec<StoreOp>) {
    let n = batch.len() as u64;
    match store.apply(batch).await {
        Ok(()) => {
            sink.counters.written.fetch_add(n, Ordering::Relaxed);
        }
        Err(e) => {
            sink.counters.failed.fetch_add(n, Ordering::Relaxed);
            tracing::error!(error = %e, rows = n, "writing history failed; rows lost");
        }
    }
    batch.clear();
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
