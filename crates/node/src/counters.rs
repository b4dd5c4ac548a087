//! The node's own request counters: active, total, and a moving average of latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

/// Weight of the newest latency in the moving average.
const EWMA_ALPHA: f64 = 0.2;

#[derive(Debug, Default)]
pub struct RequestCounters {
    active: AtomicU32,
    total: AtomicU64,
    /// f64 bits of the moving average in ms; 0 = none yet.
    avg_ms_bits: AtomicU64,
}

impl RequestCounters {
    pub fn active(&self) -> u32 {
        self.active.load(Ordering::Relaxed)
    }

    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    pub fn avg_response_ms(&self) -> Option<f64> {
        let bits = self.avg_ms_bits.load(Ordering::Relaxed);
        (bits != 0).then(|| f64::from_bits(bits))
    }

    /// Counts a request as started; the guard counts it as done (and its latency) when dropped.
    pub fn start(self: &Arc<Self>) -> RequestGuard {
        self.active.fetch_add(1, Ordering::AcqRel);
        self.total.fetch_add(1, Ordering::Relaxed);
        RequestGuard {
            counters: Arc::clone(self),
            started: Instant::now(),
        }
    }

    fn finish(&self, ms: f64) {
        self.active.fetch_sub(1, Ordering::AcqRel);
        let _ = self
            .avg_ms_bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                let next = if bits == 0 {
                    ms
                } else {
                    let avg = f64::from_bits(bits);
                    avg + EWMA_ALPHA * (ms - avg)
                };
                Some(next.max(f64::MIN_POSITIVE).to_bits())
            });
    }
}

/// Held for the life of a request's response body.
#[derive(Debug)]
pub struct RequestGuard {
    counters: Arc<RequestCounters>,
    started: Instant,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.counters
            .finish(self.started.elapsed().as_secs_f64() * 1000.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_tracks_active_total_and_latency() {
        let c = Arc::new(RequestCounters::default());
        assert_eq!(c.avg_response_ms(), None);
        let g1 = c.start();
        let g2 = c.start();
        assert_eq!((c.active(), c.total()), (2, 2));
        drop(g1);
        drop(g2);
        assert_eq!((c.active(), c.total()), (0, 2));
        assert!(c.avg_response_ms().is_some());
    }
}
