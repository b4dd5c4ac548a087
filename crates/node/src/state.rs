//! What the node API handlers share.

use std::sync::Arc;

use crate::counters::RequestCounters;
use crate::runtime::ModelRuntime;

#[derive(Clone)]
pub struct NodeState {
    pub machine_name: Arc<str>,
    pub models: Arc<[Arc<ModelRuntime>]>,
    pub counters: Arc<RequestCounters>,
    /// Client for calls to the local runtimes.
    pub http: reqwest::Client,
}

impl NodeState {
    pub fn model(&self, name: &str) -> Option<&Arc<ModelRuntime>> {
        self.models.iter().find(|m| m.name() == name)
    }
}
