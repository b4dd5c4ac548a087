//! Active health: probes suspect nodes' `/health` so a node that failed a request comes back as
//! soon as it answers again, without waiting for its next heartbeat.

use std::sync::Arc;
use std::time::{Duration, Instant};

use llm_router_protocol::node::{ModelState, NodeHealth};
use tokio_util::sync::CancellationToken;

use crate::registry::{MAX_SMALL_ANSWER_BYTES, ProbeTarget, Registry, read_json_answer};

/// How often due probes are looked for.
const TICK: Duration = Duration::from_millis(100);

pub async fn run_prober(
    registry: Arc<Registry>,
    http: reqwest::Client,
    timeout: Duration,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let due = registry.due_probes(Instant::now());
        let probes = due.into_iter().map(|target| {
            let http = http.clone();
            let registry = Arc::clone(&registry);
            async move {
                let outcome = probe(&http, &target, timeout).await;
                if let Some(t) = registry.probe_result(&target.node_id, outcome) {
                    tracing::info!(node = %t.machine_name, to = t.to.as_str(), "probe cleared suspect node");
                } else if outcome.is_none() {
                    tracing::debug!(node_id = %target.node_id, "probe failed");
                }
            }
        });
        futures_util::future::join_all(probes).await;
    }
}

/// `Some(has_ready_model)` when the node's `/health` answered in time, `None` otherwise.
async fn probe(http: &reqwest::Client, target: &ProbeTarget, timeout: Duration) -> Option<bool> {
    let response = http
        .get(format!("{}/health", target.base_url))
        .timeout(timeout)
        .send()
        .await
        .ok()?
        .error_for_status()
        .ok()?;
    let health: NodeHealth = read_json_answer(response, MAX_SMALL_ANSWER_BYTES)
        .await
        .ok()?;
    Some(health.models.iter().any(|m| m.state == ModelState::Ready))
}
