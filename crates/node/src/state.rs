//! What the node API handlers share.

use llm_router_logs::LogFile;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use llm_router_protocol::Secret;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ModelSpec;
use crate::counters::RequestCounters;
use crate::pull::Pulls;
use crate::runtime::ModelRuntime;
use crate::runtime::backend::Backend;
use crate::runtime::supervisor::Supervisor;

#[derive(Clone)]
pub struct NodeState {
    pub machine_name: Arc<str>,
    /// The runtime every model of this node runs on.
    pub backend: Arc<Backend>,
    pub models: Arc<Models>,
    pub counters: Arc<RequestCounters>,
    /// Client for calls to the local runtimes.
    pub http: reqwest::Client,
    /// What the router must present on the node API.
    pub api_token: Secret,
    /// Downloads asked for by the router.
    pub pulls: Pulls,
    /// Where pulled models are stored.
    pub models_dir: PathBuf,
    /// Node-wide settings for pulled models.
    pub model_defaults: Arc<ModelSpec>,
    /// Least time between two progress reports of a pull.
    pub progress_interval: Duration,
    /// The router this node is registered with (for progress reports).
    pub router: Arc<RouterLink>,
    /// The node's own log, served by `GET /api/logs`.
    pub log: LogFile,
}

impl NodeState {
    /// The model named `name` (Ollama's implicit `:latest` tag accepted).
    pub fn model(&self, name: &str) -> Option<Arc<ModelRuntime>> {
        self.models.get(name).or_else(|| {
            let base = name.strip_suffix(":latest")?;
            self.models.get(base)
        })
    }
}

/// The models this node serves. Configured models are there from the start; models pulled at the
/// router's request join while the node runs. Each gets its own supervised runtime.
pub struct Models {
    list: RwLock<Vec<Arc<ModelRuntime>>>,
    backend: Arc<Backend>,
    http: reqwest::Client,
    ready_timeout: Duration,
    /// Woken on every state change of any model (the agent heartbeats at once).
    changed: Arc<Notify>,
    tasks: TaskTracker,
    cancel: CancellationToken,
}

impl Models {
    pub fn new(
        backend: Arc<Backend>,
        http: reqwest::Client,
        ready_timeout: Duration,
        changed: Arc<Notify>,
        tasks: TaskTracker,
        cancel: CancellationToken,
    ) -> Models {
        Models {
            list: RwLock::default(),
            backend,
            http,
            ready_timeout,
            changed,
            tasks,
            cancel,
        }
    }

    /// Every model, in the order they were added.
    pub fn list(&self) -> Vec<Arc<ModelRuntime>> {
        self.list
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn get(&self, name: &str) -> Option<Arc<ModelRuntime>> {
        self.list
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|m| m.name() == name)
            .cloned()
    }

    /// Starts serving `spec` under a supervisor; a model of that name already served is kept.
    pub fn serve(&self, spec: ModelSpec) -> Arc<ModelRuntime> {
        let mut list = self.list.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(existing) = list.iter().find(|m| m.name() == spec.name) {
            return Arc::clone(existing);
        }
        let runtime = Arc::new(ModelRuntime::new(spec, Arc::clone(&self.changed)));
        list.push(Arc::clone(&runtime));
        drop(list);
        let supervisor = Supervisor {
            runtime: Arc::clone(&runtime),
            backend: Arc::clone(&self.backend),
            ready_timeout: self.ready_timeout,
            http: self.http.clone(),
        };
        self.tasks.spawn(supervisor.run(self.cancel.clone()));
        self.changed.notify_one();
        runtime
    }

    /// Wakes the agent to report at once (e.g. a pull started).
    pub fn notify(&self) {
        self.changed.notify_one();
    }
}

/// The node's registration with its router, once it has one.
#[derive(Debug, Default)]
pub struct RouterLink {
    registration: RwLock<Option<Registration>>,
}

#[derive(Debug, Clone)]
pub struct Registration {
    pub router_url: String,
    pub node_id: String,
    pub node_token: Secret,
}

impl RouterLink {
    pub fn set(&self, registration: Registration) {
        *self
            .registration
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(registration);
    }

    pub fn get(&self) -> Option<Registration> {
        self.registration
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
