//! Step 2 of dispatch, the load-balancing policy: a small synchronous chooser over the candidates
//! of one model, one file per policy (`auto` is [`LeastOutstanding`], `metrics` is [`LoadScore`]).
//! [`cache_aware`] holds the cache-aware decision as a pure function over node descriptions (it is
//! not yet a configurable policy).
//!
//! Every policy only picks candidates with a free slot (`Candidate::has_free_slot`); `None` means
//! all are busy and the request waits in the queue. The caller claims the slot afterwards (with
//! compare-and-swap) and asks again if another request took it first.

pub mod cache_aware;
mod least_outstanding;
mod load_score;
mod round_robin;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;

pub use least_outstanding::LeastOutstanding;
pub use load_score::{LoadScore, load_score};
pub use round_robin::RoundRobin;

use crate::registry::Candidate;

/// What a policy may look at besides the candidates.
#[derive(Debug, Clone, Copy)]
pub struct SelectContext<'a> {
    pub model: &'a str,
    pub now: Instant,
    /// Metrics older than this count as missing (three heartbeat intervals).
    pub metrics_max_age: Duration,
}

/// Chooses one node among candidates that all have the model ready.
pub trait Policy: Send + Sync + 'static {
    fn name(&self) -> &'static str;

    /// Index into `candidates` of the chosen node, which has a free slot; `None` when none has.
    fn select(&self, candidates: &[Candidate], ctx: &SelectContext<'_>) -> Option<usize>;
}

/// The policy chosen by configuration (`LOAD_BALANCER_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum BalancerMode {
    /// Least outstanding requests per node and model, bounded by the runtime's slots; ties by
    /// metrics score, then round robin.
    Auto,
    /// Each request to the next candidate in turn. `roundrobin` is the load-balancing task list's
    /// spelling; `round-robin` is accepted too.
    #[value(name = "round_robin", aliases = ["roundrobin", "round-robin"])]
    #[serde(alias = "roundrobin", alias = "round-robin")]
    RoundRobin,
    /// Lowest cpu% + mem% + 10 x active requests (+ GPU); round robin when all are above 80% CPU.
    Metrics,
}

impl BalancerMode {
    pub fn build(self) -> Arc<dyn Policy> {
        match self {
            BalancerMode::Auto => Arc::new(LeastOutstanding::default()),
            BalancerMode::RoundRobin => Arc::new(RoundRobin::default()),
            BalancerMode::Metrics => Arc::new(LoadScore::default()),
        }
    }
}

/// Candidates for policy tests and benchmarks.
#[doc(hidden)]
pub mod testing {
    use std::sync::Arc;
    use std::time::{Instant, SystemTime};

    use llm_router_protocol::node::{
        Hardware, ModelState, ModelStatus, NodeMetrics, NodeStatus, RuntimeInfo, RuntimeKind,
    };

    use crate::registry::{Candidate, Load, Node};

    /// An online node named `name` with model `m` ready and fresh metrics of `cpu`% CPU.
    pub fn node(name: &str, cpu: f32) -> Node {
        Node {
            id: Arc::from(name),
            machine_name: name.to_owned(),
            base_url: "http://127.0.0.1:1".to_owned(),
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

    pub fn candidate(node: Node, capacity: u32) -> Candidate {
        Candidate {
            load: Load::of(&node),
            node: Arc::new(node),
            slots: Arc::default(),
            capacity,
        }
    }

    /// `n` candidates with 4 slots each and CPU spread over 0..100%.
    pub fn candidates(n: usize) -> Vec<Candidate> {
        (0..n)
            .map(|i| candidate(node(&format!("node-{i}"), (i * 37 % 100) as f32), 4))
            .collect()
    }
}
