//! What the node API handlers share.

use std::sync::Arc;

use llm_router_protocol::Secret;

use crate::counters::RequestCounters;
use crate::runtime::ModelRuntime;
use crate::runtime::backend::Backend;

#[derive(Clone)]
pub struct NodeState {
    pub machine_name: Arc<str>,
    /// The runtime every model of this node runs on.
    pub backend: Arc<Backend>,
    pub models: Arc<[Arc<ModelRuntime>]>,
    pub counters: Arc<RequestCounters>,
    /// Client for calls to the local runtimes.
    pub http: reqwest::Client,
    /// What the router must present on the node API.
    pub api_token: Secret,
}

impl NodeState {
    /// The model named `name` (Ollama's implicit `:latest` tag accepted).
    pub fn model(&self, name: &str) -> Option<&Arc<ModelRuntime>> {
        self.models.iter().find(|m| m.name() == name).or_else(|| {
            let base = name.strip_suffix(":latest")?;
            self.models.iter().find(|m| m.name() == base)
        })
    }
}
