//! Building and running the router: the HTTP routes, the background tasks, graceful shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api;
use crate::config::Config;
use crate::health::{run_monitor, run_prober};
use crate::queue::run_waker;
use crate::state::AppState;

/// How long in-flight requests may take to finish after shutdown was asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// The production route table over `state`.
pub fn build_router(state: AppState) -> Router {
    let limit = state.config.max_body_bytes;
    api::routes()
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// A bound, not yet running router.
pub struct Server {
    listener: TcpListener,
    state: AppState,
}

impl Server {
    /// Binds the listen address and builds the state.
    pub async fn bind(config: Config) -> anyhow::Result<Server> {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
        let state = AppState::new(config)?;
        Ok(Server { listener, state })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` is cancelled, then drains in-flight requests (bounded by a grace
    /// period) and stops the background tasks.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Server { listener, state } = self;
        let tasks = TaskTracker::new();
        let background = shutdown.child_token();
        let sweep_period = (state.config.node_timeout / 10)
            .clamp(Duration::from_millis(100), Duration::from_secs(1));
        tasks.spawn(run_monitor(
            state.registry.clone(),
            sweep_period,
            background.clone(),
        ));
        tasks.spawn(run_prober(
            state.registry.clone(),
            state.http.clone(),
            state.config.probe_timeout,
            background.clone(),
        ));
        tasks.spawn(run_waker(state.dispatcher.clone(), background.clone()));
        tracing::info!(
            addr = %listener.local_addr()?,
            balancer = state.dispatcher.policy_name(),
            queue_capacity = state.config.queue_capacity,
            node_timeout = %humantime::format_duration(state.config.node_timeout),
            "llm-router listening"
        );

        let app = build_router(state);
        let stop = shutdown.clone();
        let serve = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { stop.cancelled().await });
        let grace = async {
            shutdown.cancelled().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        tokio::select! {
            result = serve => result?,
            () = grace => tracing::warn!("in-flight requests still running after the grace period; closing"),
        }
        background.cancel();
        tasks.close();
        tasks.wait().await;
        tracing::info!("llm-router stopped");
        Ok(())
    }
}
