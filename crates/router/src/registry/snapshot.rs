//! The read side of the registry: an immutable, indexed picture of the fleet that request handlers
//! load without locking.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use llm_router_protocol::node::NodeStatus;

use super::node::Node;

/// The router's in-flight requests for one model on one node. It outlives snapshots: every
/// snapshot built for the node hands out the same counter.
#[derive(Debug, Default)]
pub struct SlotCounter {
    in_flight: AtomicU32,
}

impl SlotCounter {
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Takes a slot if fewer than `capacity` are taken (compare-and-swap, never over-claims).
    pub fn try_claim(&self, capacity: u32) -> bool {
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < capacity).then_some(n + 1)
            })
            .is_ok()
    }

    /// Gives a slot back.
    pub fn release(&self) {
        let _ = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }
}

/// A node's load figures from its last metrics, summarised when the snapshot is built so that
/// selection reads a few contiguous numbers instead of the whole node.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Load {
    pub cpu_percent: f32,
    pub memory_percent: f32,
    /// Mean utilisation over the node's GPUs; 0 without GPUs.
    pub gpu_percent: f32,
    /// Mean memory use over the node's GPUs, in percent; 0 without GPUs.
    pub gpu_memory_percent: f32,
    /// Requests the node said it was serving.
    pub active_requests: u32,
    /// When the figures arrived; `None` when the node never sent any.
    pub at: Option<Instant>,
}

impl Load {
    pub fn of(node: &Node) -> Load {
        let m = &node.metrics;
        let n = m.gpus.len().max(1) as f32;
        Load {
            cpu_percent: m.cpu_percent,
            memory_percent: m.memory_percent,
            gpu_percent: m.gpus.iter().map(|g| g.utilization_percent).sum::<f32>() / n,
            gpu_memory_percent: m
                .gpus
                .iter()
                .map(|g| {
                    if g.memory_total_bytes == 0 {
                        0.0
                    } else {
                        (g.memory_used_bytes as f64 * 100.0 / g.memory_total_bytes as f64) as f32
                    }
                })
                .sum::<f32>()
                / n,
            active_requests: m.active_requests,
            at: node.metrics_at,
        }
    }

    /// True when the figures are younger than `max_age` at `now`.
    pub fn is_fresh(&self, now: Instant, max_age: Duration) -> bool {
        self.at
            .is_some_and(|at| now.saturating_duration_since(at) <= max_age)
    }
}

/// A node that can serve a model now, with its slot accounting for that model.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub node: Arc<Node>,
    pub slots: Arc<SlotCounter>,
    /// Parallel slots of the node's runtime for the model (`u32::MAX` when the node did not say).
    pub capacity: u32,
    pub load: Load,
}

impl Candidate {
    pub fn in_flight(&self) -> u32 {
        self.slots.in_flight()
    }

    pub fn has_free_slot(&self) -> bool {
        self.slots.in_flight() < self.capacity
    }

    pub fn try_claim(&self) -> bool {
        self.slots.try_claim(self.capacity)
    }
}

/// What the fleet can do for one model.
#[derive(Debug, Default)]
pub struct ModelEntry {
    /// Online nodes with the model ready: the candidates for a request.
    pub ready: Vec<Candidate>,
    /// Nodes not offline that list the model but cannot take it now (initializing, suspect, or
    /// the model still loading): worth waiting for.
    pub pending: usize,
}

/// Why a model has no candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// No registered node knows the model at all.
    UnknownModel,
    /// Only offline nodes know the model.
    AllOffline,
    /// Nodes know the model and may soon serve it (loading, initializing, suspect).
    NotReadyYet,
}

/// All nodes, plus an index from model name to its candidate nodes.
#[derive(Debug, Default)]
pub struct Snapshot {
    nodes: Vec<Arc<Node>>,
    /// Node id to its index in `nodes`.
    by_id: HashMap<Arc<str>, usize>,
    models: HashMap<String, ModelEntry>,
}

impl Snapshot {
    /// Builds the index. `slots` gives the persistent counter of a (node id, model) pair; `nodes`
    /// are sorted by machine name for stable listings.
    pub fn new(mut nodes: Vec<Arc<Node>>, slots: impl Fn(&str, &str) -> Arc<SlotCounter>) -> Self {
        nodes.sort_by(|a, b| a.machine_name.cmp(&b.machine_name));
        let mut models: HashMap<String, ModelEntry> = HashMap::new();
        for node in &nodes {
            for model in &node.models {
                let entry = models.entry(model.name.clone()).or_default();
                if node.status == NodeStatus::Online
                    && !node.draining
                    && node.has_ready_model(&model.name)
                {
                    entry.ready.push(Candidate {
                        node: Arc::clone(node),
                        slots: slots(&node.id, &model.name),
                        capacity: model.slots_total.filter(|&n| n > 0).unwrap_or(u32::MAX),
                        load: Load::of(node),
                    });
                } else if node.status != NodeStatus::Offline {
                    entry.pending += 1;
                }
            }
        }
        let by_id = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (Arc::clone(&n.id), i))
            .collect();
        Snapshot {
            nodes,
            by_id,
            models,
        }
    }

    pub fn nodes(&self) -> &[Arc<Node>] {
        &self.nodes
    }

    pub fn node(&self, id: &str) -> Option<&Arc<Node>> {
        self.by_id.get(id).map(|&i| &self.nodes[i])
    }

    /// Nodes that can serve `model` now (possibly all busy).
    pub fn candidates(&self, model: &str) -> Result<&[Candidate], Unavailable> {
        match self.models.get(model) {
            None => Err(Unavailable::UnknownModel),
            Some(entry) if !entry.ready.is_empty() => Ok(&entry.ready),
            Some(entry) if entry.pending > 0 => Err(Unavailable::NotReadyYet),
            Some(_) => Err(Unavailable::AllOffline),
        }
    }

    /// True when some registered node lists `model`.
    pub fn knows_model(&self, model: &str) -> bool {
        self.models.contains_key(model)
    }

    /// Names of models ready on at least one online node, sorted, each once.
    pub fn ready_models(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .models
            .iter()
            .filter(|(_, e)| !e.ready.is_empty())
            .map(|(name, _)| name.as_str())
            .collect();
        names.sort_unstable();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_stop_at_capacity_and_release_frees_one() {
        let c = SlotCounter::default();
        assert!(c.try_claim(2));
        assert!(c.try_claim(2));
        assert!(!c.try_claim(2));
        c.release();
        assert_eq!(c.in_flight(), 1);
        assert!(c.try_claim(2));
    }

    #[test]
    fn release_never_underflows() {
        let c = SlotCounter::default();
        c.release();
        assert_eq!(c.in_flight(), 0);
    }
}
