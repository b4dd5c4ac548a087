//! The read side of the registry: an immutable, indexed picture of the fleet that request handlers
//! load without locking.

use std::collections::HashMap;
use std::sync::Arc;

use llm_router_protocol::node::NodeStatus;

use super::node::Node;

/// What the fleet can do for one model.
#[derive(Debug, Default)]
pub struct ModelEntry {
    /// Online nodes with the model ready: the candidates for a request.
    pub ready: Vec<Arc<Node>>,
}

/// Why a model has no candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// No registered node knows the model at all.
    UnknownModel,
    /// Some node knows the model but none is online with it ready.
    NoReadyNode,
}

/// All nodes, plus an index from model name to its candidate nodes.
#[derive(Debug, Default)]
pub struct Snapshot {
    nodes: Vec<Arc<Node>>,
    models: HashMap<String, ModelEntry>,
}

impl Snapshot {
    /// Builds the index; `nodes` is sorted by machine name for stable listings.
    pub fn new(mut nodes: Vec<Arc<Node>>) -> Self {
        nodes.sort_by(|a, b| a.machine_name.cmp(&b.machine_name));
        let mut models: HashMap<String, ModelEntry> = HashMap::new();
        for node in &nodes {
            for model in &node.models {
                let entry = models.entry(model.name.clone()).or_default();
                if node.status == NodeStatus::Online && node.has_ready_model(&model.name) {
                    entry.ready.push(Arc::clone(node));
                }
            }
        }
        Snapshot { nodes, models }
    }

    pub fn nodes(&self) -> &[Arc<Node>] {
        &self.nodes
    }

    pub fn node(&self, id: &str) -> Option<&Arc<Node>> {
        self.nodes.iter().find(|n| &*n.id == id)
    }

    /// Nodes that can serve `model` now.
    pub fn candidates(&self, model: &str) -> Result<&[Arc<Node>], Unavailable> {
        match self.models.get(model) {
            None => Err(Unavailable::UnknownModel),
            Some(entry) if entry.ready.is_empty() => Err(Unavailable::NoReadyNode),
            Some(entry) => Ok(&entry.ready),
        }
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
