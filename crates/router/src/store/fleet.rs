//! Persisting the fleet: node rows on registration and status changes, sampled health metrics on
//! heartbeats, and restoring known nodes (as offline) when the router starts.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use super::{HistorySink, MetricSample, NodeRow, StoreError, StoreOp, WriteError, unix_ms};
use crate::registry::{KnownNode, Load, Node};

/// Writes fleet changes through the history sink, sampling metrics at most once per interval per
/// node. What an admin changed (drain, resume, delete) is written on the path that waits
/// ([`HistorySink::store`]); what nodes report, on the one that may drop under load.
pub struct FleetLog {
    sink: HistorySink,
    sample_every: Duration,
    last_sample: Mutex<HashMap<String, Instant>>,
}

impl FleetLog {
    pub fn new(sink: HistorySink, sample_every: Duration) -> Self {
        FleetLog {
            sink,
            sample_every,
            last_sample: Mutex::new(HashMap::new()),
        }
    }

    /// The node registered or changed status.
    pub fn node_changed(&self, node: &Node) {
        self.sink
            .send(StoreOp::UpsertNode(Box::new(node_row(node))));
    }

    /// An admin changed the node (drained or resumed it): stored before this returns.
    pub async fn node_set(&self, node: &Node) -> Result<(), WriteError> {
        self.sink
            .store(StoreOp::UpsertNode(Box::new(node_row(node))))
            .await
    }

    /// An admin removed the node: stored before this returns.
    pub async fn node_removed(&self, id: &str) -> Result<(), WriteError> {
        self.sink.store(StoreOp::DeleteNode(id.to_owned())).await
    }

    /// A heartbeat or metrics push arrived: the node row is refreshed and, when the last sample is
    /// old enough, a metrics sample is kept.
    pub fn node_reported(&self, node: &Node) {
        let now = Instant::now();
        let due = {
            let mut last = self
                .last_sample
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let due = last
                .get(&*node.id)
                .is_none_or(|t| now.saturating_duration_since(*t) >= self.sample_every);
            if due {
                last.insert(node.id.to_string(), now);
            }
            due
        };
        if due {
            self.sink
                .send(StoreOp::UpsertNode(Box::new(node_row(node))));
            self.sink.send(StoreOp::Metrics(sample(node)));
        }
    }
}

fn node_row(node: &Node) -> NodeRow {
    NodeRow {
        id: node.id.to_string(),
        machine_name: node.machine_name.clone(),
        base_url: node.base_url.clone(),
        runtime_kind: serde_json::to_value(node.runtime.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        runtime_version: node.runtime.version.clone(),
        node_version: node.node_version.clone(),
        hardware: serde_json::to_string(&node.hardware).unwrap_or_else(|_| "{}".into()),
        models: serde_json::to_string(&node.models).unwrap_or_else(|_| "[]".into()),
        status: node.status.as_str().to_owned(),
        first_seen_ms: unix_ms(node.registered_at),
        last_seen_ms: unix_ms(SystemTime::now() - node.last_seen.elapsed()),
        draining: node.draining,
    }
}

fn sample(node: &Node) -> MetricSample {
    let load = Load::of(node);
    let has_gpus = !node.metrics.gpus.is_empty();
    MetricSample {
        node_id: node.id.to_string(),
        at_ms: unix_ms(SystemTime::now()),
        cpu_percent: load.cpu_percent,
        memory_percent: load.memory_percent,
        memory_used_bytes: node.metrics.memory_used_bytes,
        gpu_percent: has_gpus.then_some(load.gpu_percent),
        gpu_memory_percent: has_gpus.then_some(load.gpu_memory_percent),
        active_requests: node.metrics.active_requests,
        avg_response_ms: node.metrics.avg_response_ms,
    }
}

/// A stored node, ready for [`Registry::restore`](crate::registry::Registry::restore).
pub fn known_node(row: NodeRow) -> Result<KnownNode, StoreError> {
    let corrupt = |what: &str, e: serde_json::Error| {
        StoreError::Corrupt(format!("node {}: {what}: {e}", row.id))
    };
    let at = |ms: u64| SystemTime::UNIX_EPOCH + Duration::from_millis(ms);
    Ok(KnownNode {
        runtime: llm_router_protocol::node::RuntimeInfo {
            kind: serde_json::from_value(serde_json::Value::String(row.runtime_kind.clone()))
                .map_err(|e| corrupt("runtime", e))?,
            version: row.runtime_version.clone(),
            // Not stored: the node says it again when it registers.
            backend: None,
        },
        hardware: serde_json::from_str(&row.hardware).map_err(|e| corrupt("hardware", e))?,
        models: serde_json::from_str(&row.models).map_err(|e| corrupt("models", e))?,
        first_seen: at(row.first_seen_ms),
        last_seen: at(row.last_seen_ms),
        id: row.id,
        machine_name: row.machine_name,
        base_url: row.base_url,
        node_version: row.node_version,
        draining: row.draining,
    })
}
