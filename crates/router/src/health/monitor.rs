//! The background task that turns silence into `offline`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::registry::Registry;

/// Sweeps the registry every `period` until cancelled.
pub async fn run_monitor(registry: Arc<Registry>, period: Duration, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        for t in registry.sweep(Instant::now()) {
            tracing::warn!(
                node_id = %t.node_id,
                node = %t.machine_name,
                from = t.from.as_str(),
                to = t.to.as_str(),
                "node silent past the heartbeat timeout"
            );
        }
    }
}
