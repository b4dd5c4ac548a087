//! [`Gauge`]: how many requests a fake node is serving now, and the most it ever served at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Debug, Default)]
pub(crate) struct Gauge {
    current: AtomicU32,
    max: AtomicU32,
}

impl Gauge {
    pub(crate) fn current(&self) -> u32 {
        self.current.load(Ordering::SeqCst)
    }

    pub(crate) fn max(&self) -> u32 {
        self.max.load(Ordering::SeqCst)
    }

    /// Counts one request as started; the guard counts it as finished when dropped.
    pub(crate) fn enter(self: &Arc<Self>) -> GaugeGuard {
        let now = self.current.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
        GaugeGuard(Arc::clone(self))
    }
}

/// One request in flight; dropped when the fake has finished answering it.
#[derive(Debug)]
pub(crate) struct GaugeGuard(Arc<Gauge>);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.current.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauge_keeps_the_highest_concurrency_seen() {
        let gauge = Arc::new(Gauge::default());
        let a = gauge.enter();
        let b = gauge.enter();
        assert_eq!((gauge.current(), gauge.max()), (2, 2));
        drop(a);
        drop(b);
        let _c = gauge.enter();
        assert_eq!((gauge.current(), gauge.max()), (1, 2));
    }
}
