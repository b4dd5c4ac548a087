//! Load-balancing policies: small synchronous choosers over a snapshot of candidate nodes.

mod round_robin;

use std::sync::Arc;

use serde::Deserialize;

pub use round_robin::RoundRobin;

use crate::registry::Node;

/// What a policy may look at besides the candidates.
#[derive(Debug, Clone, Copy)]
pub struct SelectContext<'a> {
    pub model: &'a str,
}

/// Chooses one node among candidates that all have the model ready.
pub trait Policy: Send + Sync + 'static {
    fn name(&self) -> &'static str;

    /// Index into `candidates` of the chosen node; `None` when none should be used.
    fn select(&self, candidates: &[Arc<Node>], ctx: &SelectContext<'_>) -> Option<usize>;
}

/// The policy chosen by configuration (`LOAD_BALANCER_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum BalancerMode {
    /// Each request to the next candidate in turn.
    RoundRobin,
}

impl BalancerMode {
    pub fn build(self) -> Arc<dyn Policy> {
        match self {
            BalancerMode::RoundRobin => Arc::new(RoundRobin::default()),
        }
    }
}

/// Candidate nodes for policy tests and benchmarks.
#[doc(hidden)]
pub mod testing {
    use std::sync::Arc;
    use std::time::{Instant, SystemTime};

    use llm_router_protocol::node::{
        Hardware, ModelState, ModelStatus, NodeMetrics, NodeStatus, RuntimeInfo, RuntimeKind,
    };

    use crate::registry::Node;

    /// `n` online nodes, each with model `m` ready.
    pub fn nodes(n: usize) -> Vec<Arc<Node>> {
        (0..n)
            .map(|i| {
                Arc::new(Node {
                    id: Arc::from(format!("node-{i}")),
                    machine_name: format!("node-{i}"),
                    base_url: format!("http://127.0.0.1:{}", 10_000 + i),
                    status: NodeStatus::Online,
                    runtime: RuntimeInfo {
                        kind: RuntimeKind::LlamaServer,
                        version: None,
                    },
                    hardware: Hardware {
                        cpu_cores: 8,
                        memory_total_bytes: 1 << 34,
                        gpus: vec![],
                    },
                    node_version: "test".into(),
                    metrics: NodeMetrics::default(),
                    models: vec![ModelStatus {
                        name: "m".into(),
                        state: ModelState::Ready,
                        slots_total: Some(2),
                        slots_free: Some(2),
                        error: None,
                    }],
                    registered_at: SystemTime::now(),
                    last_seen: Instant::now(),
                    counters: Arc::default(),
                })
            })
            .collect()
    }
}
