//! Building and running the router: the HTTP routes, the background tasks, graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use llm_router_common::serve::{Limits, serve};
use llm_router_common::tls::{self, TlsAcceptor, TlsError};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::aliases::ModelMap;
use crate::api;
use crate::auth::{Auth, AuthError, Generated};
use crate::catalog::{Catalog, CatalogError};
use crate::config::Config;
use crate::dashboard::run_hub;
use crate::dispatch::run_waker;
use crate::health::{run_monitor, run_prober};
use crate::live::Feed;
use crate::quota::Quotas;
use crate::state::{AppState, StateError, Tenancy};
use crate::store::{
    HistorySink, MemoryStore, Queued, RequestQuery, Retention, SqliteStore, Store, StoreError,
    fleet, run_writer, unix_ms,
};
use crate::tasks::Tasks;

/// How long in-flight requests may take to finish after shutdown was asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// The production route table over `state`, with its body limits.
pub fn build_router(state: AppState) -> Router {
    api::routes(&state).with_state(state)
}

/// Why the router could not start or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot create {}: {source}", .dir.display())]
    CreateDir {
        dir: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot make {} private to this user: {source}", .file.display())]
    Restrict {
        file: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open database {url}: {source}")]
    OpenDatabase { url: String, source: StoreError },
    #[error("cannot read the stored state: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("cannot use the TLS files: {0}")]
    Tls(#[from] TlsError),
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the listener failed: {0}")]
    Serve(#[from] std::io::Error),
}

impl From<StateError> for ServerError {
    fn from(e: StateError) -> Self {
        match e {
            StateError::Tls(e) => ServerError::Tls(e),
            StateError::Http(e) => ServerError::Http(e),
        }
    }
}

/// A bound, not yet running router.
pub struct Server {
    listener: TcpListener,
    /// Set: the listener serves HTTPS only.
    tls: Option<TlsAcceptor>,
    state: AppState,
    writes: mpsc::Receiver<Queued>,
    sink: HistorySink,
}

impl Server {
    /// Opens the store, restores the known fleet, binds the listen address and builds the state.
    pub async fn bind(config: Config) -> Result<Server, ServerError> {
        // The files first: a wrong path fails the start before anything is opened.
        let tls = config
            .tls
            .as_ref()
            .map(|files| files.acceptor())
            .transpose()?;
        if let Some(path) = &config.node_ca {
            tls::certificates(path)?;
        }
        let store = open_store(&config.database_url).await?;
        let known = store.nodes().await?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServerError::Listen {
                    addr: config.listen,
                    source,
                })?;
        // The address actually bound (port 0 resolved): registration refuses it as a node's.
        let config = Config {
            listen: listener.local_addr()?,
            ..config
        };
        let (sink, writes) = HistorySink::channel(config.history_buffer);
        let (auth, generated) = Auth::open(Arc::clone(&store), sink.clone(), &config.auth).await?;
        show_generated(&generated);
        let catalog = Catalog::load(config.catalog.as_deref())?;
        tracing::info!(
            models = catalog.entries().len(),
            file = ?config.catalog,
            auto_distribute = config.auto_distribute,
            "model catalog loaded"
        );
        let unknown = catalog.unknown_tier_models();
        if !unknown.is_empty() {
            tracing::warn!(
                models = ?unknown,
                "placement tiers name models the catalog lacks; they are skipped when placing nodes"
            );
        }
        let events = Arc::new(Feed::default());
        seed_live_figures(&events, store.as_ref()).await?;
        let tasks = Tasks::new(
            sink.clone(),
            store.tasks(crate::tasks::KEPT).await?,
            Arc::clone(&events),
        );
        let stored = store.credentials(unix_ms(SystemTime::now())).await?;
        let models = ModelMap::new(config.models.clone(), Arc::clone(&store), &stored.settings);
        let quotas = Quotas::new(sink.clone(), stored.key_spend);
        let state = AppState::new(
            config,
            store,
            sink.clone(),
            Arc::new(auth),
            Arc::new(catalog),
            Arc::new(tasks),
            events,
        )?
        .with_tenancy(Tenancy {
            models: Arc::new(models),
            quotas: Arc::new(quotas),
        });
        let mut restored = Vec::with_capacity(known.len());
        for row in known {
            match fleet::known_node(row) {
                Ok(node) => restored.push(node),
                Err(e) => tracing::warn!(error = %e, "skipping a stored node"),
            }
        }
        if !restored.is_empty() {
            tracing::info!(
                nodes = restored.len(),
                "restored known nodes as offline until they report in"
            );
            state.registry.restore(restored);
        }
        Ok(Server {
            listener,
            tls,
            state,
            writes,
            sink,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` is cancelled, then drains in-flight requests (bounded by a grace
    /// period) and stops the background tasks.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), ServerError> {
        let Server {
            listener,
            tls,
            state,
            writes,
            sink,
        } = self;
        let tasks = TaskTracker::new();
        let background = CancellationToken::new();
        // The writer stops last, after every request has been recorded.
        let writer_stop = CancellationToken::new();
        let writer = tokio::spawn(run_writer(
            Arc::clone(&state.store),
            sink,
            writes,
            Retention {
                metrics: state.config.metrics_retention,
                requests: state.config.history_retention,
            },
            writer_stop.clone(),
        ));
        let sweep_period = (state.config.node_timeout / 10)
            .clamp(Duration::from_millis(100), Duration::from_secs(1));
        tasks.spawn(run_monitor(
            state.registry.clone(),
            state.fleet_log.clone(),
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
        tasks.spawn(run_hub(state.clone(), background.clone()));
        let events = Arc::clone(&state.events);
        let limits = Limits {
            header_read_timeout: state.config.header_read_timeout,
            max_connections: state.config.max_connections,
        };
        tracing::info!(
            addr = %listener.local_addr()?,
            tls = tls.is_some(),
            balancer = state.dispatcher.policy_name(),
            queue_capacity = state.config.queue_capacity,
            node_timeout = %humantime::format_duration(state.config.node_timeout),
            header_read_timeout = %humantime::format_duration(limits.header_read_timeout),
            max_connections = limits.max_connections,
            "llm-router listening"
        );

        let app = build_router(state);
        let stop = shutdown.clone();
        let sockets = Arc::clone(&events);
        let serve = serve(listener, app, limits, tls, async move {
            stop.cancelled().await;
            sockets.close();
        });
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
        writer_stop.cancel();
        if writer.await.is_err() {
            tracing::error!("the history writer panicked");
        }
        tracing::info!("llm-router stopped");
        Ok(())
    }
}

/// Gives the dashboard's live figures the stored history: the row count and the last hour.
async fn seed_live_figures(events: &Feed, store: &dyn Store) -> Result<(), StoreError> {
    let total = store
        .requests(&RequestQuery {
            limit: Some(1),
            ..RequestQuery::default()
        })
        .await?
        .total;
    let hour_ago = unix_ms(SystemTime::now()).saturating_sub(3_600_000);
    let rows = store.request_summaries(hour_ago).await?;
    events.seed(
        total,
        rows.into_iter().map(|r| (r.at_ms, r.latency_ms, r.failed)),
    );
    Ok(())
}

/// Prints secrets generated at first start, once, on stderr (not through the log, which may be
/// shipped elsewhere).
fn show_generated(generated: &Generated) {
    if let Some((username, password)) = &generated.admin {
        eprintln!(
            "\n  llm-router: created the admin user '{username}' with password: {}\n  \
             (shown once; set LLM_ROUTER_ADMIN_PASSWORD before the first start to choose it)\n",
            password.expose()
        );
    }
    if let Some(token) = &generated.enrollment_token {
        eprintln!(
            "\n  llm-router: nodes register with the enrolment token: {}\n  \
             (shown once; start nodes with LLM_NODE_ENROLLMENT_TOKEN=<token>, or set \
             LLM_ROUTER_ENROLLMENT_TOKEN to choose it)\n",
            token.expose()
        );
    }
}

/// The file of a `sqlite://` URL (none for in-memory SQLite).
fn sqlite_path(url: &str) -> Option<&str> {
    url.strip_prefix("sqlite://")
        .map(|p| p.split('?').next().unwrap_or(p))
        .filter(|p| !p.is_empty() && !p.starts_with(':'))
}

/// The store behind `url`: `memory`, or a SQLite file (its directory is created if missing, 0700;
/// the files 0600).
async fn open_store(url: &str) -> Result<Arc<dyn Store>, ServerError> {
    if url == "memory" {
        tracing::warn!("database_url is `memory`: history and fleet state end with the process");
        return Ok(Arc::new(MemoryStore::new()));
    }
    if let Some(path) = sqlite_path(url)
        && let Some(dir) = std::path::Path::new(path).parent()
    {
        llm_router_common::fs::create_private_dir(dir).map_err(|source| {
            ServerError::CreateDir {
                dir: dir.to_owned(),
                source,
            }
        })?;
    }
    let store = SqliteStore::open(url)
        .await
        .map_err(|source| ServerError::OpenDatabase {
            url: url.to_owned(),
            source,
        })?;
    if let Some(path) = sqlite_path(url) {
        // Password hashes, key digests, request history: the service's user only. SQLite gives
        // its WAL and shared-memory files the database file's mode.
        for suffix in ["", "-wal", "-shm"] {
            let file = std::path::PathBuf::from(format!("{path}{suffix}"));
            llm_router_common::fs::restrict_file(&file)
                .map_err(|source| ServerError::Restrict { file, source })?;
        }
    }
    tracing::info!(%url, "database open");
    Ok(Arc::new(store))
}
