//! Nodes for tests and benchmarks.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use llm_router_protocol::node::{
    Hardware, ModelState, ModelStatus, NodeMetrics, NodeStatus, RuntimeInfo, RuntimeKind,
};

use super::Node;

/// An online node named `name` with model `m` ready and fresh metrics of `cpu`% CPU.
pub fn node(name: &str, cpu: f32) -> Node {
    Node {
        id: Arc::from(name),
        id_hash: super::node_hash(name),
        machine_name: name.to_owned(),
        base_url: "http://127.0.0.1:1".to_owned(),
        status: NodeStatus::Online,
        runtime: RuntimeInfo {
            kind: RuntimeKind::LlamaServer,
            version: None,
            backend: None,
        },
        hardware: Hardware {
            cpu_cores: 8,
            memory_total_bytes: 1 << 34,
            gpus: vec![],
        },
        node_version: "test".into(),
        metrics: NodeMetrics {
            cpu_percent: cpu,
            memory_percent: 10.0,
            ..NodeMetrics::default()
        },
        metrics_at: Some(Instant::now()),
        models: vec![ModelStatus {
            name: "m".into(),
            state: ModelState::Ready,
            slots_total: Some(4),
            slots_free: Some(4),
            error: None,
            cache_tokens: None,
        }],
        registered_at: SystemTime::now(),
        last_seen: Instant::now(),
        counters: Arc::default(),
        authorization: None,
        draining: false,
    }
}
