//! Step 2 of dispatch, the load-balancing policy: a small synchronous chooser over the candidates
//! of one model, one file per policy (`auto` is [`LeastOutstanding`], `metrics` is [`LoadScore`]).
//! `cache_aware` is [`CacheAware`]: its decision is a pure function over node descriptions, fed by
//! the [`Affinity`] tracker.
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

pub use cache_aware::CacheAware;
pub use least_outstanding::LeastOutstanding;
pub use load_score::{LoadScore, load_score};
pub use round_robin::RoundRobin;

use crate::affinity::{Affinity, PromptKey};
use crate::registry::{Candidate, Snapshot};

/// What a policy may look at besides the candidates.
#[derive(Debug, Clone, Copy)]
pub struct SelectContext<'a> {
    pub model: &'a str,
    pub now: Instant,
    /// Metrics older than this count as missing (three heartbeat intervals).
    pub metrics_max_age: Duration,
    /// The request's prompt key, for policies that [`Policy::wants_prompt`] (none for requests
    /// without a prompt, e.g. embeddings).
    pub prompt: Option<&'a PromptKey>,
}

/// A policy's choice, and what it expected of it (for the response headers and the history).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    /// Index into the candidates.
    pub index: usize,
    /// Prompt tokens the chosen node is expected to reuse from its cache (cache-aware policies).
    pub predicted_cached_tokens: Option<u64>,
    /// Why this node, in a word (cache-aware policies: `affinity`, `least_loaded`, `guard`).
    pub reason: Option<&'static str>,
}

impl Decision {
    pub fn plain(index: usize) -> Decision {
        Decision {
            index,
            predicted_cached_tokens: None,
            reason: None,
        }
    }
}

/// Chooses one node among candidates that all have the model ready.
pub trait Policy: Send + Sync + 'static {
    fn name(&self) -> &'static str;

    /// Index into `candidates` of the chosen node, which has a free slot; `None` when none has.
    fn select(&self, candidates: &[Candidate], ctx: &SelectContext<'_>) -> Option<usize>;

    /// [`Policy::select`] with what the policy expected of its choice.
    fn decide(&self, candidates: &[Candidate], ctx: &SelectContext<'_>) -> Option<Decision> {
        self.select(candidates, ctx).map(Decision::plain)
    }

    /// Whether the policy uses the request's prompt key (computing it costs a parse of the body).
    fn wants_prompt(&self) -> bool {
        false
    }

    /// The request was given a slot on `candidate` (after [`Policy::decide`] chose it).
    fn sent(&self, _candidate: &Candidate, _ctx: &SelectContext<'_>) {}

    /// The registry published a new snapshot of the fleet.
    fn fleet_changed(&self, _snapshot: &Snapshot) {}
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
    /// Where the prompt costs least: the node already holding the longest part of it, counting
    /// the work each node already has, with a load guard; the least loaded node when no node
    /// holds a useful part. `cache-aware` is accepted too.
    #[value(name = "cache_aware", alias = "cache-aware")]
    #[serde(alias = "cache-aware")]
    CacheAware,
}

impl BalancerMode {
    /// The policy; `affinity` is the prefix tracker `cache_aware` reads and feeds.
    pub fn build(self, affinity: &Arc<Affinity>) -> Arc<dyn Policy> {
        match self {
            BalancerMode::Auto => Arc::new(LeastOutstanding::default()),
            BalancerMode::RoundRobin => Arc::new(RoundRobin::default()),
            BalancerMode::Metrics => Arc::new(LoadScore::default()),
            BalancerMode::CacheAware => Arc::new(CacheAware::new(Arc::clone(affinity))),
        }
    }
}

/// Candidates for policy tests and benchmarks.
#[doc(hidden)]
pub mod testing {
    use std::sync::Arc;

    pub use crate::registry::testing::node;
    use crate::registry::{Candidate, Load, Node};

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
