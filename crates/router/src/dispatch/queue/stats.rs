//! Queue counters for the fleet API and (later) the dashboard.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

use super::ShareTotals;

#[derive(Debug, Default)]
pub struct QueueStats {
    queued_total: AtomicU64,
    served_after_wait_total: AtomicU64,
    rejected_total: AtomicU64,
    key_share_refused_total: AtomicU64,
    timed_out_total: AtomicU64,
    abandoned_total: AtomicU64,
    wait_us_total: AtomicU64,
    max_wait_us: AtomicU64,
}

/// `GET /api/queue`.
#[derive(Debug, Clone, Serialize)]
pub struct QueueStatsView {
    /// Requests waiting now.
    pub depth: usize,
    /// Most requests that may wait at once.
    pub capacity: usize,
    pub depth_by_model: HashMap<String, usize>,
    pub queued_total: u64,
    pub served_after_wait_total: u64,
    /// Refused with 503 because the queue was full.
    pub rejected_total: u64,
    pub timed_out_total: u64,
    /// Left the queue because their client went away.
    pub abandoned_total: u64,
    pub avg_wait_ms: f64,
    pub max_wait_ms: f64,
    /// The per-key shares.
    pub per_key: PerKeyView,
}

/// What the keys (or client addresses, without keys) hold now, and the refusals of a key over
/// its share of the queue.
#[derive(Debug, Clone, Serialize)]
pub struct PerKeyView {
    /// Keys with a request waiting or holding a slot.
    pub keys: usize,
    /// Requests waiting, counted per key (the same as `depth`).
    pub waiting: usize,
    /// Slots held, counted per key.
    pub in_flight: u64,
    /// Refused with 429 `key_queue_share`.
    pub refused_total: u64,
}

impl QueueStats {
    pub fn record_queued(&self) {
        self.queued_total.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_rejected(&self) {
        self.rejected_total.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_key_share_refused(&self) {
        self.key_share_refused_total.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_timed_out(&self) {
        self.timed_out_total.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_abandoned(&self) {
        self.abandoned_total.fetch_add(1, Ordering::Relaxed);
    }

    /// A request got its slot after waiting `waited` (zero when it never queued).
    pub fn record_wait(&self, waited: Duration) {
        if waited.is_zero() {
            return;
        }
        let us = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
        self.served_after_wait_total.fetch_add(1, Ordering::Relaxed);
        self.wait_us_total.fetch_add(us, Ordering::Relaxed);
        self.max_wait_us.fetch_max(us, Ordering::Relaxed);
    }

    pub fn view(
        &self,
        depth: usize,
        capacity: usize,
        depth_by_model: HashMap<String, usize>,
        shares: ShareTotals,
    ) -> QueueStatsView {
        let served = self.served_after_wait_total.load(Ordering::Relaxed);
        let total_us = self.wait_us_total.load(Ordering::Relaxed);
        QueueStatsView {
            depth,
            capacity,
            depth_by_model,
            queued_total: self.queued_total.load(Ordering::Relaxed),
            served_after_wait_total: served,
            rejected_total: self.rejected_total.load(Ordering::Relaxed),
            timed_out_total: self.timed_out_total.load(Ordering::Relaxed),
            abandoned_total: self.abandoned_total.load(Ordering::Relaxed),
            avg_wait_ms: if served == 0 {
                0.0
            } else {
                total_us as f64 / served as f64 / 1000.0
            },
            max_wait_ms: self.max_wait_us.load(Ordering::Relaxed) as f64 / 1000.0,
            per_key: PerKeyView {
                keys: shares.tenants,
                waiting: shares.waiting,
                in_flight: shares.in_flight,
                refused_total: self.key_share_refused_total.load(Ordering::Relaxed),
            },
        }
    }
}
