//! The application state shared by every handler: one cheap-to-clone bundle of `Arc`s.

use std::sync::Arc;

use crate::balancer::Policy;
use crate::config::Config;
use crate::health::HealthPolicy;
use crate::registry::Registry;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub registry: Arc<Registry>,
    pub policy: Arc<dyn Policy>,
    /// Client for calls to nodes; one connection pool for the whole router.
    pub http: reqwest::Client,
}

impl AppState {
    pub fn new(config: Config) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .tcp_nodelay(true)
            .pool_idle_timeout(std::time::Duration::from_secs(90))
            .no_proxy()
            .build()?;
        let registry = Arc::new(Registry::new(HealthPolicy {
            node_timeout: config.node_timeout,
        }));
        Ok(AppState {
            policy: config.load_balancer_mode.build(),
            config: Arc::new(config),
            registry,
            http,
        })
    }
}
