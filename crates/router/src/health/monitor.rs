//! The background task that turns silence into `offline`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::registry::Registry;
use crate::store::FleetLog;

/// Sweeps the registry every `period` until cancelled.
pub async fn run_monitor(
    registry: Arc<Registry>,
    fleet_log: Arc<FleetLog>,
    period: Duration,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let transitions = registry.sweep(Instant::now());
        if !transitions.is_empty() {
            let snapshot = registry.snapshot();
            for t in &transitions {
                if let Some(node) = snapshot.node(&t.node_id) {
                    fleet_log.node_changed(node);
                }
            }
        }
        for t in transitions {
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
