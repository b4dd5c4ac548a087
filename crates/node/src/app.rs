//! Starting and stopping a node: the API server, one supervisor per model, the router agent.

use std::io::{self, IsTerminal};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use llm_router_common::serve::Limits;
use llm_router_common::tls::{self, TlsAcceptor, TlsError};
use llm_router_logs::LogFile;
use llm_router_protocol::node::{RuntimeBackend, Scheme};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::advertise;
use crate::agent::Agent;
use crate::api;
use crate::config::Config;
use crate::counters::RequestCounters;
use crate::metrics::MetricsCollector;
use crate::pull::{
    Downloader, ProxySettings, PullError, PullOptions, Pulls, RetryPolicy, download_client,
};
use crate::runtime::backend::Backend;
use crate::runtime::install::{self, InstallError};
use crate::state::{Models, NodeState};

/// How long in-flight requests may take to finish after shutdown was asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// Why a node could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: io::Error },
    #[error(transparent)]
    Install(#[from] InstallError),
    #[error(
        "{runtime} not found at {} (set --llama-server or --ollama-bin, or run \
         scripts/install-runtime.sh)",
        binary.display()
    )]
    RuntimeMissing {
        runtime: &'static str,
        binary: PathBuf,
    },
    #[error("cannot use the TLS files: {0}")]
    Tls(#[from] TlsError),
    #[error("cannot build an HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error("cannot build the download client: {0}")]
    DownloadClient(#[from] PullError),
    #[error("the node API failed: {0}")]
    Serve(#[from] io::Error),
}

pub struct Node {
    config: Config,
    listener: TcpListener,
    /// Set: the node API serves HTTPS only.
    tls: Option<TlsAcceptor>,
    /// The client to the router (trusting `--router-ca`).
    router_http: reqwest::Client,
}

impl Node {
    /// Reads the TLS files and binds the node API.
    pub async fn bind(config: Config) -> Result<Node, NodeError> {
        let tls = config
            .tls
            .as_ref()
            .map(|files| files.acceptor())
            .transpose()?;
        let router_http = router_client(config.router_ca.as_deref())?;
        let addr = SocketAddr::new(config.host, config.port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| NodeError::Listen { addr, source })?;
        Ok(Node {
            config,
            listener,
            tls,
            router_http,
        })
    }

    /// Runs until `shutdown`: serves the API, supervises the runtimes, talks to the router. On
    /// shutdown every runtime is stopped before this returns.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), NodeError> {
        let Node {
            mut config,
            listener,
            tls,
            router_http,
        } = self;
        let local = listener.local_addr()?;
        let machine_name = machine_name(&config, local);
        let address = advertised_address(&config, local).await;
        let backend = Arc::new(installed_runtime(&mut config).await?);
        let runtime_version = backend.version().await;
        let runtime_backend = backend.compute_backend().await;
        let metrics = MetricsCollector::new(config.sysfs_root.clone());
        settle_offload(&mut config, &metrics, runtime_backend);
        // Everything that can fail comes before the first runtime starts.
        let background = Background::default();
        let changed = Arc::new(Notify::new());
        let state = node_state(&config, &machine_name, backend, &changed, &background)?;
        let agent = Agent {
            router_url: config.router_url.clone(),
            enrollment_token: config.enrollment_token.clone(),
            address,
            port: local.port(),
            scheme: if tls.is_some() {
                Scheme::Https
            } else {
                Scheme::Http
            },
            runtime_version: runtime_version.clone(),
            runtime_backend,
            heartbeat_interval: config.heartbeat_interval,
            state: state.clone(),
            changed,
            metrics,
            http: router_http,
        };
        background.tasks.spawn(agent.run(background.cancel.clone()));
        log_listening(&config, local, &state, runtime_version.as_deref());
        let served = serve(listener, state, config.limits, tls, shutdown)
            .await
            .map_err(NodeError::Serve);
        background.stop().await;
        tracing::info!("llm-node stopped; all runtimes stopped");
        served
    }
}

/// Decides the GPU offload of every model left unset, from the GPUs the node found, and says so.
fn settle_offload(
    config: &mut Config,
    metrics: &MetricsCollector,
    runtime_backend: Option<RuntimeBackend>,
) {
    let gpus = metrics.hardware().gpus;
    let layers = config.settle_gpu_layers(!gpus.is_empty());
    let names: Vec<String> = gpus
        .iter()
        .map(|g| format!("GPU {}: {}", g.index, g.name))
        .collect();
    tracing::info!(gpu_layers = %layers, gpus = ?names, runtime_backend = ?runtime_backend, "GPU offload per runtime");
    if !gpus.is_empty() && runtime_backend == Some(RuntimeBackend::Cpu) {
        tracing::warn!(
            "this node has GPUs but its runtime sees none (a CPU build, or a driver it cannot \
             use): models run on the CPU; install a GPU runtime (scripts/install-runtime.sh \
             --backend cuda|vulkan)"
        );
    }
}

/// The client to the router. Redirects from the router's address are not followed: registration
/// and heartbeats carry the enrolment token and the node token, which must go nowhere else. An
/// https:// router is verified against the system's roots and those of `router_ca`.
fn router_client(router_ca: Option<&std::path::Path>) -> Result<reqwest::Client, NodeError> {
    let mut builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
    if let Some(path) = router_ca {
        for der in tls::certificates(path)? {
            builder = builder.add_root_certificate(reqwest::Certificate::from_der(&der)?);
        }
    }
    Ok(builder.build()?)
}

/// The node's name in the fleet: configured, else `HOSTNAME:PORT`.
fn machine_name(config: &Config, local: SocketAddr) -> String {
    config.name.clone().unwrap_or_else(|| {
        let host = sysinfo::System::host_name().unwrap_or_else(|| "node".to_owned());
        format!("{host}:{}", local.port())
    })
}

/// Where the router reaches the node (see [`crate::advertise`]), logged with the reason.
async fn advertised_address(config: &Config, local: SocketAddr) -> String {
    let chosen = advertise::advertised_address(
        config.advertise_address.as_deref(),
        local,
        &config.router_url,
    )
    .await;
    if chosen.source == advertise::Source::Loopback && !is_loopback_url(&config.router_url) {
        tracing::warn!(
            address = %chosen.address,
            router = %config.router_url,
            "no route to the router found; advertising 127.0.0.1 (set --advertise-address)"
        );
    } else {
        tracing::info!(
            address = %chosen.address,
            port = local.port(),
            from = chosen.source.describe(),
            "advertising this address to the router (--advertise-address changes it)"
        );
    }
    chosen.address
}

/// Whether the router URL names this machine's loopback.
fn is_loopback_url(url: &str) -> bool {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .is_some_and(|h| {
            h == "localhost"
                || h.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        })
}

/// The configured runtime, fetched first when its binary is missing and an archive is
/// configured (`config.runtime_binary` then points at the fetched one); an error when there is
/// still no binary.
async fn installed_runtime(config: &mut Config) -> Result<Backend, NodeError> {
    if !config.runtime_binary.is_file()
        && let Some((url, sha256)) = &config.runtime_archive
    {
        config.runtime_binary = install::fetch(
            url,
            sha256,
            &config.runtimes_dir,
            config.runtime.binary_name(),
            std::io::stderr().is_terminal(),
        )
        .await?;
    }
    let backend = Backend::from_config(config);
    if !backend.binary().is_file() {
        return Err(NodeError::RuntimeMissing {
            runtime: backend.name(),
            binary: backend.binary().to_owned(),
        });
    }
    Ok(backend)
}

/// Background work (supervisors, downloads, the router agent): stopped together on shutdown.
#[derive(Default)]
struct Background {
    tasks: TaskTracker,
    cancel: CancellationToken,
}

impl Background {
    /// Cancels every task and waits until all ended (every runtime stopped).
    async fn stop(self) {
        self.cancel.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

/// What the API handlers share, with a supervised runtime started for every configured model.
fn node_state(
    config: &Config,
    machine_name: &str,
    backend: Arc<Backend>,
    changed: &Arc<Notify>,
    background: &Background,
) -> Result<NodeState, NodeError> {
    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .no_proxy()
        .build()?;
    let downloader = downloader(config)?;
    let models = Arc::new(Models::new(
        Arc::clone(&backend),
        http.clone(),
        config.ready_timeout,
        Arc::clone(changed),
        background.tasks.clone(),
        background.cancel.clone(),
    ));
    for spec in &config.models {
        models.serve(spec.clone());
    }
    Ok(NodeState {
        machine_name: Arc::from(machine_name),
        backend,
        models,
        counters: Arc::new(RequestCounters::default()),
        http,
        api_token: config.api_token.clone(),
        pulls: Pulls::new(downloader, background.cancel.clone()),
        models_dir: config.models_dir.clone(),
        model_defaults: Arc::new(config.model_defaults.clone()),
        progress_interval: config.progress_interval,
        router: Arc::default(),
        log: LogFile::new(&config.log_dir, crate::LOG_FILE_PREFIX),
    })
}

/// The engine for model pulls, with the configured retries and progress interval.
fn downloader(config: &Config) -> Result<Downloader, PullError> {
    Ok(Downloader::new(
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
    ))
}

fn log_listening(
    config: &Config,
    local: SocketAddr,
    state: &NodeState,
    runtime_version: Option<&str>,
) {
    tracing::info!(
        addr = %local,
        name = %state.machine_name,
        router = %config.router_url,
        runtime = state.backend.name(),
        runtime_binary = %state.backend.binary().display(),
        runtime_version = runtime_version.unwrap_or("unknown"),
        tls = config.tls.is_some(),
        header_read_timeout = %humantime::format_duration(config.limits.header_read_timeout),
        max_connections = config.limits.max_connections,
        models = ?config.models.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        "llm-node listening"
    );
}

/// Serves the node API until `shutdown`, then lets in-flight requests finish for at most
/// [`SHUTDOWN_GRACE`].
async fn serve(
    listener: TcpListener,
    state: NodeState,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let stop = shutdown.clone();
    let app = api::router(state);
    let serve = llm_router_common::serve::serve(listener, app, limits, tls, async move {
        stop.cancelled().await;
    });
    let grace = async {
        shutdown.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        result = serve => result,
        () = grace => {
            tracing::warn!("in-flight requests still running after the grace period; closing");
            Ok(())
        }
    }
}
