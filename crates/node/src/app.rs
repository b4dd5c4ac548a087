//! Starting and stopping a node: the API server, one supervisor per model, the router agent.

use llm_router_logs::LogFile;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::agent::Agent;
use crate::api;
use crate::config::{Config, RuntimeChoice};
use crate::counters::RequestCounters;
use crate::metrics::MetricsCollector;
use crate::pull::{Downloader, ProxySettings, PullOptions, Pulls, RetryPolicy, download_client};
use crate::runtime::backend::Backend;
use crate::runtime::install;
use crate::state::{Models, NodeState};

/// How long in-flight requests may take to finish after shutdown was asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

pub struct Node {
    config: Config,
    listener: TcpListener,
}

impl Node {
    /// Binds the node API.
    pub async fn bind(config: Config) -> anyhow::Result<Node> {
        let addr = SocketAddr::new(config.host, config.port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
        Ok(Node { config, listener })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Runs until `shutdown`: serves the API, supervises the runtimes, talks to the router. On
    /// shutdown every runtime is stopped before this returns.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Node { config, listener } = self;
        let local = listener.local_addr()?;
        let machine_name = config.name.clone().unwrap_or_else(|| {
            let host = sysinfo::System::host_name().unwrap_or_else(|| "node".to_owned());
            format!("{host}:{}", local.port())
        });
        let address = config.advertise_address.clone().unwrap_or_else(|| {
            if local.ip().is_unspecified() {
                tracing::warn!(
                    "listening on all interfaces without --advertise-address; advertising 127.0.0.1"
                );
                "127.0.0.1".to_owned()
            } else {
                local.ip().to_string()
            }
        });
        let mut config = config;
        if !config.runtime_binary.is_file()
            && let Some((url, sha256)) = &config.runtime_archive
        {
            let name = match config.runtime {
                RuntimeChoice::LlamaServer => "llama-server",
                RuntimeChoice::Ollama => "ollama",
            };
            config.runtime_binary = install::fetch(
                url,
                sha256,
                &config.runtimes_dir,
                name,
                std::io::stderr().is_terminal(),
            )
            .await?;
        }
        let backend = Arc::new(Backend::from_config(&config));
        if !backend.binary().is_file() {
            anyhow::bail!(
                "{} not found at {} (set --llama-server or --ollama-bin, or run scripts/install-runtime.sh)",
                backend.name(),
                backend.binary().display()
            );
        }
        let runtime_version = backend.version().await;

        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .no_proxy()
            .build()?;
        let changed = Arc::new(Notify::new());
        let tasks = TaskTracker::new();
        let background = CancellationToken::new();
        let models = Arc::new(Models::new(
            Arc::clone(&backend),
            http.clone(),
            config.ready_timeout,
            Arc::clone(&changed),
            tasks.clone(),
            background.clone(),
        ));
        for spec in &config.models {
            models.serve(spec.clone());
        }
        let downloader = Downloader::new(
            download_client(&ProxySettings::from_env())?,
            PullOptions {
                progress_interval: config.progress_interval,
                retry: RetryPolicy {
                    max_attempts: config.pull_attempts,
                    ..RetryPolicy::default()
                },
                terminal_progress: std::io::stderr().is_terminal(),
                available_space_override: None,
            },
        );
        let state = NodeState {
            machine_name: Arc::from(machine_name.as_str()),
            backend: Arc::clone(&backend),
            models,
            counters: Arc::new(RequestCounters::default()),
            http: http.clone(),
            api_token: config.api_token.clone(),
            pulls: Pulls::new(downloader, background.clone()),
            models_dir: config.models_dir.clone(),
            model_defaults: Arc::new(config.model_defaults.clone()),
            router: Arc::default(),
            log: LogFile::new(&config.log_dir, crate::LOG_FILE_PREFIX),
        };

        let agent = Agent {
            router_url: config.router_url.clone(),
            enrollment_token: config.enrollment_token.clone(),
            address,
            port: local.port(),
            runtime_version: runtime_version.clone(),
            heartbeat_interval: config.heartbeat_interval,
            state: state.clone(),
            changed,
            metrics: MetricsCollector::new(),
            http: reqwest::Client::builder().build()?,
        };
        tasks.spawn(agent.run(background.clone()));
        tracing::info!(
            addr = %local,
            name = %machine_name,
            router = %config.router_url,
            runtime = backend.name(),
            runtime_binary = %backend.binary().display(),
            runtime_version = runtime_version.as_deref().unwrap_or("unknown"),
            models = ?config.models.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
            "llm-node listening"
        );

        let stop = shutdown.clone();
        let serve = axum::serve(listener, api::router(state))
            .with_graceful_shutdown(async move { stop.cancelled().await });
        let grace = async {
            shutdown.cancelled().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        let served = tokio::select! {
            result = serve => result.map_err(anyhow::Error::from),
            () = grace => {
                tracing::warn!("in-flight requests still running after the grace period; closing");
                Ok(())
            }
        };
        background.cancel();
        tasks.close();
        tasks.wait().await;
        tracing::info!("llm-node stopped; all runtimes stopped");
        served
    }
}
