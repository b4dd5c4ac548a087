//! The application state shared by every handler: one cheap-to-clone bundle of `Arc`s.

use std::sync::Arc;
use std::time::SystemTime;

use llm_router_common::tls::TlsError;
use llm_router_logs::LogFile;

use crate::affinity::Affinity;
use crate::aliases::ModelMap;
use crate::auth::Auth;
use crate::catalog::Catalog;
use crate::config::Config;
use crate::dispatch::{Dispatcher, Forwarder, HttpNodeClient};
use crate::history::Recorder;
use crate::live::Feed;
use crate::metrics::Metrics;
use crate::quota::Quotas;
use crate::registry::HealthPolicy;
use crate::registry::Registry;
use crate::store::{FleetLog, HistorySink, Store};
use crate::tasks::{Distributor, Tasks};

/// Metrics older than this many heartbeat intervals count as missing for balancing.
const METRICS_MAX_AGE_HEARTBEATS: u32 = 3;

/// Why the state cannot be built: the client to the nodes.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Http(#[from] reqwest::Error),
}

/// What the router makes of the names and keys of requests: model aliases and fallbacks, per-key
/// limits (both read from the store at start).
pub struct Tenancy {
    pub models: Arc<ModelMap>,
    pub quotas: Arc<Quotas>,
}

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub registry: Arc<Registry>,
    /// Chooses nodes and queues requests when all are busy.
    pub dispatcher: Arc<Dispatcher>,
    /// Sends inference requests to nodes (slot, failover), built once from the parts it needs.
    pub forwarder: Arc<Forwarder>,
    /// Client for calls to nodes; one connection pool for the whole router.
    pub http: reqwest::Client,
    /// Reads of history and fleet state (writes go through `recorder` and `fleet_log`).
    pub store: Arc<dyn Store>,
    pub recorder: Arc<Recorder>,
    pub fleet_log: Arc<FleetLog>,
    pub metrics: Arc<Metrics>,
    /// Users, sessions, API keys, the enrolment token.
    pub auth: Arc<Auth>,
    /// Models the router can distribute, and where they go.
    pub catalog: Arc<Catalog>,
    /// Model aliases and fallbacks.
    pub models: Arc<ModelMap>,
    /// Per-key limits and budget spend.
    pub quotas: Arc<Quotas>,
    /// Model downloads ordered from nodes.
    pub tasks: Arc<Tasks>,
    /// Orders downloads from nodes (by hand, or placing a node as it registers).
    pub distributor: Arc<Distributor>,
    /// What just happened, for the dashboard's sockets.
    pub events: Arc<Feed>,
    /// The router's own log file, served by `GET /api/logs`.
    pub log: Option<LogFile>,
    pub started_at: SystemTime,
}

impl AppState {
    /// Builds the state; `sink` feeds the writer task that owns writes to `store`; the client to
    /// the nodes trusts the roots of `config.node_ca` besides the system's.
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        sink: HistorySink,
        auth: Arc<Auth>,
        catalog: Arc<Catalog>,
        tasks: Arc<Tasks>,
        events: Arc<Feed>,
    ) -> Result<Self, StateError> {
        // A node's redirect is never followed: it would make the router fetch, and relay, whatever
        // the node points it at (another port of this host, a metadata service). A 3xx comes back
        // as the node's own answer, which each caller treats as a failed one.
        // Nodes serving HTTPS are verified (certificate chain and name); never turned off.
        let config_models = config.models.clone();
        let store_for_models = Arc::clone(&store);
        let quota_sink = sink.clone();
        let mut http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .tcp_nodelay(true)
            .pool_idle_timeout(std::time::Duration::from_secs(90))
            .no_proxy();
        if let Some(path) = &config.node_ca {
            for der in llm_router_common::tls::certificates(path)? {
                http = http.add_root_certificate(reqwest::Certificate::from_der(&der)?);
            }
        }
        let http = http.build()?;
        let registry = Arc::new(Registry::new(HealthPolicy {
            node_timeout: config.node_timeout,
        }));
        let metrics = Arc::new(Metrics::new());
        let affinity = Arc::new(Affinity::new(Arc::clone(&metrics)));
        let dispatcher = Dispatcher::with_shares(
            Arc::clone(&registry),
            config.load_balancer_mode.build(&affinity),
            config.queue_capacity,
            config.queue_timeout,
            config.heartbeat_interval * METRICS_MAX_AGE_HEARTBEATS,
            config.shares,
        );
        let forwarder = Arc::new(
            Forwarder::new(
                Arc::clone(&dispatcher),
                Arc::clone(&registry),
                HttpNodeClient::new(http.clone(), config.header_timeout),
                config.max_attempts,
            )
            .with_affinity(Arc::clone(&affinity)),
        );
        let recorder = Recorder::new(
            sink.clone(),
            Arc::clone(&metrics),
            Arc::clone(&registry),
            Arc::clone(&events),
            config.store_bodies,
            affinity,
        );
        let fleet_log = Arc::new(FleetLog::new(sink, config.metrics_sample_interval));
        let distributor = Arc::new(Distributor::new(
            Arc::clone(&catalog),
            Arc::clone(&tasks),
            http.clone(),
            config.auto_distribute,
        ));
        let log = config
            .log_dir
            .as_ref()
            .map(|dir| LogFile::new(dir, crate::LOG_FILE_PREFIX));
        Ok(AppState {
            config: Arc::new(config),
            registry,
            dispatcher,
            forwarder,
            http,
            store,
            recorder,
            fleet_log,
            metrics,
            auth,
            catalog,
            models: Arc::new(ModelMap::new(config_models, store_for_models, &[])),
            quotas: Arc::new(Quotas::new(quota_sink, Vec::new())),
            tasks,
            distributor,
            events,
            log,
            started_at: SystemTime::now(),
        })
    }

    /// The state with the aliases and key limits read from the store (those [`AppState::new`]
    /// starts with know only the configuration).
    pub fn with_tenancy(mut self, tenancy: Tenancy) -> Self {
        self.models = tenancy.models;
        self.quotas = tenancy.quotas;
        self
    }
}
