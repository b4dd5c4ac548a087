//! Router configuration: a TOML file, command-line flags and environment variables, merged in that
//! order of increasing precedence (flag/env > file > default), then validated into [`Config`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use llm_router_common::config::ConfigError;
pub use llm_router_common::tls::TlsFiles;
use serde::Deserialize;

use llm_router_protocol::Secret;

use crate::aliases::{ModelAliases, ModelFallbacks, ModelTable};
use crate::auth::AuthConfig;
use crate::dispatch::{BalancerMode, InFlightLimit, ShareLimits};

/// Every setting, each optional, as read from a file or from the command line / environment.
///
/// The same struct is parsed by clap (flags + env) and by serde (TOML, unknown keys refused), so an
/// option cannot exist in one place and be forgotten in the other.
#[derive(Debug, Default, Clone, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address the router listens on (OpenAI API, node API, operations).
    /// [default: 127.0.0.1:8080]
    #[arg(long, env = "LLM_ROUTER_LISTEN")]
    pub listen: Option<SocketAddr>,

    /// A node silent for longer than this goes offline. [default: 30s]
    #[arg(long, env = "LLM_ROUTER_NODE_TIMEOUT", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde")]
    pub node_timeout: Option<Duration>,

    /// Heartbeat interval the router asks nodes to use. [default: 10s]
    #[arg(long, env = "LLM_ROUTER_HEARTBEAT_INTERVAL", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde")]
    pub heartbeat_interval: Option<Duration>,

    /// Timeout for connecting to a node. [default: 5s]
    #[arg(long, env = "LLM_ROUTER_CONNECT_TIMEOUT", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde")]
    pub connect_timeout: Option<Duration>,

    /// Time a node may take to send response headers (non-streamed answers arrive whole, so
    /// this bounds a whole generation); past it the request is retried elsewhere. Streams that
    /// are making progress are never cut. [default: 300s]
    #[arg(long, env = "LLM_ROUTER_HEADER_TIMEOUT", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde")]
    pub header_timeout: Option<Duration>,

    /// Timeout of a health probe of a suspect node. [default: 1s]
    #[arg(long, env = "LLM_ROUTER_PROBE_TIMEOUT", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde")]
    pub probe_timeout: Option<Duration>,

    /// Requests that may wait for a free slot at once; beyond, 503 with Retry-After.
    /// [default: 1024]
    #[arg(long, env = "LLM_ROUTER_QUEUE_CAPACITY")]
    pub queue_capacity: Option<usize>,

    /// Requests one API key (without keys: one client address) may have waiting at once;
    /// beyond, 429 `key_queue_share` with Retry-After. 0 = no per-key limit.
    /// [default: a quarter of queue_capacity]
    #[arg(long, env = "LLM_ROUTER_MAX_QUEUED_PER_KEY")]
    pub max_queued_per_key: Option<usize>,

    /// Slots of a model one API key (without keys: one client address) may hold at once; its
    /// further requests wait while other keys' requests are served. 0 = no per-key limit.
    /// [default: three quarters of the model's slots, rounded up]
    #[arg(long, env = "LLM_ROUTER_MAX_IN_FLIGHT_PER_KEY")]
    pub max_in_flight_per_key: Option<u32>,

    /// Longest a request waits for a free slot before a 503; unset = no limit. [default: none]
    #[arg(long, env = "LLM_ROUTER_QUEUE_TIMEOUT", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde")]
    pub queue_timeout: Option<Duration>,

    /// Timeout of the router's call to a registering node's `/v1/models`. [default: 5s]
    #[arg(long, env = "LLM_ROUTER_REGISTRATION_TIMEOUT", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde")]
    pub registration_timeout: Option<Duration>,

    /// Largest request body accepted on the inference routes (`/v1/*`, Ollama's), in bytes;
    /// every other route takes at most 64 KiB. [default: 33554432 (32 MiB)]
    #[arg(long, env = "LLM_ROUTER_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,

    /// Time a client may take to send a request's headers, and to send the next request on an
    /// idle keep-alive connection; past it the connection is closed. [default: 30s]
    #[arg(long, env = "LLM_ROUTER_HEADER_READ_TIMEOUT", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde")]
    pub header_read_timeout: Option<Duration>,

    /// Client connections served at once; more are closed as they arrive (and a warning is
    /// logged). [default: 4096]
    #[arg(long, env = "LLM_ROUTER_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,

    /// How many nodes a request may be tried on before the first byte is sent. [default: 2]
    #[arg(long, env = "LLM_ROUTER_MAX_ATTEMPTS")]
    pub max_attempts: Option<u32>,

    /// Where fleet state and request history are kept: `sqlite:///path/router.db`, or `memory`
    /// (nothing survives a restart). [default: sqlite://~/.local/share/llm-router/router.db]
    #[arg(long, env = "LLM_ROUTER_DATABASE_URL")]
    pub database_url: Option<String>,

    /// How long request history is kept. [default: 7d]
    #[arg(long, env = "LLM_ROUTER_HISTORY_RETENTION", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde")]
    pub history_retention: Option<Duration>,

    /// How long node health samples are kept. [default: 7d]
    #[arg(long, env = "LLM_ROUTER_METRICS_RETENTION", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde")]
    pub metrics_retention: Option<Duration>,

    /// At most one stored health sample per node per this interval. [default: 30s]
    #[arg(long, env = "LLM_ROUTER_METRICS_SAMPLE_INTERVAL", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde")]
    pub metrics_sample_interval: Option<Duration>,

    /// Also store request and response bodies (first 8 KiB of each) in the history.
    /// [default: false]
    #[arg(long, env = "LLM_ROUTER_STORE_BODIES")]
    pub store_bodies: Option<bool>,

    /// History rows that may wait for the database writer; beyond, rows are dropped and counted
    /// (requests never wait). [default: 65536]
    #[arg(long, env = "LLM_ROUTER_HISTORY_BUFFER")]
    pub history_buffer: Option<usize>,

    /// How requests are spread over the nodes that have the model ready: auto (fewest requests in
    /// flight), round_robin (also spelled roundrobin or round-robin), metrics (CPU, memory, GPU),
    /// cache_aware (the node already holding the longest part of the prompt in its cache, counting
    /// each node's backlog, never piling up on one node). [default: auto]
    #[arg(long, env = "LOAD_BALANCER_MODE", value_enum)]
    pub load_balancer_mode: Option<BalancerMode>,

    /// Name of the first admin user, created at first start. [default: admin]
    #[arg(long, env = "LLM_ROUTER_ADMIN_USERNAME")]
    pub admin_username: Option<String>,

    /// Password of the first admin user (at least 8 characters); used only when no user exists
    /// yet. Unset: one is generated and printed once at first start. Prefer the environment
    /// variable to the flag (flags show in `ps`).
    #[arg(long, env = "LLM_ROUTER_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<Secret>,

    /// Token nodes must present to register (`llm-node --enrollment-token`). Unset: one is
    /// generated at first start, stored in the database and printed once.
    #[arg(long, env = "LLM_ROUTER_ENROLLMENT_TOKEN", hide_env_values = true)]
    pub enrollment_token: Option<Secret>,

    /// Where the router writes its log as JSON lines (one file a day, the last 7 kept), read back
    /// by `GET /api/logs` and the dashboard. [default: ~/.local/share/llm-router/logs]
    #[arg(long, env = "LLM_ROUTER_LOG_DIR")]
    pub log_dir: Option<PathBuf>,

    /// Serve the dashboard's files from this directory instead of the copy built into the
    /// binary (for working on the dashboard without rebuilding). [default: the built-in copy]
    #[arg(long, env = "LLM_ROUTER_DASHBOARD_DIR")]
    pub dashboard_dir: Option<PathBuf>,

    /// A bundle made by scripts/package.sh: served to joining machines at GET /join.sh and
    /// GET /api/bundle/FILE (the files of its SHA256SUMS, with the enrolment token).
    /// [default: none, both answer 404]
    #[arg(long, env = "LLM_ROUTER_BUNDLE_DIR")]
    pub bundle_dir: Option<PathBuf>,

    /// Serve /v1/* and the Ollama API without an API key (a warning is logged at start-up).
    /// [default: false]
    #[arg(
        long,
        env = "LLM_ROUTER_ALLOW_ANONYMOUS_INFERENCE",
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub allow_anonymous_inference: Option<bool>,

    /// Model catalog (TOML) read over the shipped one: its entries replace or add to the
    /// built-in ones, its `[placement]` replaces the GPU memory tiers. [default: built-in only]
    #[arg(long, env = "LLM_ROUTER_CATALOG")]
    pub catalog: Option<PathBuf>,

    /// Send each registering node the catalog models its tier calls for (by GPU memory, or by
    /// RAM for a node without GPU).
    /// [default: true]
    #[arg(long, env = "LLM_ROUTER_AUTO_DISTRIBUTE")]
    pub auto_distribute: Option<bool>,

    /// How long a login session lasts. [default: 24h]
    #[arg(long, env = "LLM_ROUTER_SESSION_TTL", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde")]
    pub session_ttl: Option<Duration>,

    /// Serve HTTPS only, with this certificate chain (PEM, the router's own certificate first);
    /// needs --tls-key. Session cookies then carry `Secure`. [default: plain HTTP]
    #[arg(long, env = "LLM_ROUTER_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// Private key (PEM) of --tls-cert. [default: none]
    #[arg(long, env = "LLM_ROUTER_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// Extra root certificates (PEM) trusted for nodes that serve HTTPS, besides the system's.
    /// [default: the system's roots only]
    #[arg(long, env = "LLM_ROUTER_NODE_CA")]
    pub node_ca: Option<PathBuf>,

    /// Model aliases: public names for models, `NAME=MODEL[,NAME=MODEL...]` (a TOML table in the
    /// file). The admin API (`/api/aliases`) adds more. [default: none]
    #[arg(long, env = "LLM_ROUTER_MODEL_ALIASES")]
    pub model_aliases: Option<ModelAliases>,

    /// Fallbacks tried in order when a model has no node ready:
    /// `MODEL=FALLBACK[|FALLBACK...][,MODEL=...]` (a TOML table of lists in the file).
    /// [default: none]
    #[arg(long, env = "LLM_ROUTER_MODEL_FALLBACKS")]
    pub model_fallbacks: Option<ModelFallbacks>,
}

impl Settings {
    /// Fills every unset field of `self` from `lower`.
    pub fn or(self, lower: Settings) -> Settings {
        llm_router_common::fill_unset!(
            Settings,
            self,
            lower,
            [
                listen,
                node_timeout,
                heartbeat_interval,
                connect_timeout,
                header_timeout,
                probe_timeout,
                queue_capacity,
                queue_timeout,
                max_queued_per_key,
                max_in_flight_per_key,
                registration_timeout,
                max_body_bytes,
                header_read_timeout,
                max_connections,
                max_attempts,
                load_balancer_mode,
                database_url,
                history_retention,
                metrics_retention,
                metrics_sample_interval,
                store_bodies,
                history_buffer,
                admin_username,
                admin_password,
                enrollment_token,
                allow_anonymous_inference,
                session_ttl,
                catalog,
                auto_distribute,
                log_dir,
                dashboard_dir,
                bundle_dir,
                tls_cert,
                tls_key,
                node_ca,
                model_aliases,
                model_fallbacks,
            ]
        )
    }

    /// Reads a TOML settings file.
    pub fn from_file(path: &Path) -> Result<Settings, ConfigError> {
        llm_router_common::config::from_file(path)
    }
}

/// Validated router configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub node_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub connect_timeout: Duration,
    pub header_timeout: Duration,
    pub probe_timeout: Duration,
    pub queue_capacity: usize,
    pub queue_timeout: Option<Duration>,
    /// The per-key shares of the queue and of the slots.
    pub shares: ShareLimits,
    pub registration_timeout: Duration,
    /// Body limit of the inference routes.
    pub max_body_bytes: usize,
    /// Header-read and idle keep-alive timeout of client connections.
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    pub max_attempts: u32,
    pub load_balancer_mode: BalancerMode,
    /// `sqlite://...` or `memory`. The programmatic default is `memory`; the command line's is
    /// a file under the user's data directory.
    pub database_url: String,
    pub history_retention: Duration,
    pub metrics_retention: Duration,
    pub metrics_sample_interval: Duration,
    pub store_bodies: bool,
    pub history_buffer: usize,
    pub auth: AuthConfig,
    /// User catalog file over the built-in catalog.
    pub catalog: Option<PathBuf>,
    pub auto_distribute: bool,
    /// Where the JSON-lines log files go; `None` (the programmatic default): no log file, and
    /// `GET /api/logs` answers an empty log. The command line's default is under the user's data
    /// directory.
    pub log_dir: Option<PathBuf>,
    /// Dashboard files served from disk instead of the built-in copy.
    pub dashboard_dir: Option<PathBuf>,
    /// The join bundle served to new machines (`scripts/package.sh`).
    pub bundle_dir: Option<PathBuf>,
    /// Certificate and key of the listener: set, it serves HTTPS only.
    pub tls: Option<TlsFiles>,
    /// Extra roots trusted for nodes' HTTPS.
    pub node_ca: Option<PathBuf>,
    /// Model aliases and fallbacks of the configuration (the admin API's are in the store).
    pub models: ModelTable,
}

/// `$XDG_DATA_HOME/llm-router` (or `~/.local/share/llm-router`).
fn data_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("llm-router")
}

/// `sqlite://$XDG_DATA_HOME/llm-router/router.db` (or under `~/.local/share`).
pub fn default_database_url() -> String {
    format!("sqlite://{}", data_dir().join("router.db").display())
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            node_timeout: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            header_timeout: Duration::from_secs(300),
            probe_timeout: Duration::from_secs(1),
            queue_capacity: 1024,
            queue_timeout: None,
            shares: ShareLimits {
                max_queued: 256,
                max_in_flight: InFlightLimit::Auto,
            },
            registration_timeout: Duration::from_secs(5),
            max_body_bytes: 32 * 1024 * 1024,
            header_read_timeout: Duration::from_secs(30),
            max_connections: 4096,
            max_attempts: 2,
            load_balancer_mode: BalancerMode::Auto,
            database_url: "memory".to_owned(),
            history_retention: Duration::from_secs(7 * 24 * 3600),
            metrics_retention: Duration::from_secs(7 * 24 * 3600),
            metrics_sample_interval: Duration::from_secs(30),
            store_bodies: false,
            history_buffer: 65_536,
            auth: AuthConfig::default(),
            catalog: None,
            auto_distribute: true,
            log_dir: None,
            dashboard_dir: None,
            bundle_dir: None,
            tls: None,
            node_ca: None,
            models: ModelTable::default(),
        }
    }
}

impl TryFrom<Settings> for Config {
    type Error = ConfigError;

    fn try_from(s: Settings) -> Result<Self, Self::Error> {
        let d = Config::default();
        let config = Config {
            listen: s.listen.unwrap_or(d.listen),
            node_timeout: s.node_timeout.unwrap_or(d.node_timeout),
            heartbeat_interval: s.heartbeat_interval.unwrap_or(d.heartbeat_interval),
            connect_timeout: s.connect_timeout.unwrap_or(d.connect_timeout),
            header_timeout: s.header_timeout.unwrap_or(d.header_timeout),
            probe_timeout: s.probe_timeout.unwrap_or(d.probe_timeout),
            queue_capacity: s.queue_capacity.unwrap_or(d.queue_capacity),
            queue_timeout: s.queue_timeout.or(d.queue_timeout),
            shares: ShareLimits {
                max_queued: s.max_queued_per_key.unwrap_or_else(|| {
                    s.queue_capacity
                        .map_or(d.shares.max_queued, |capacity| capacity.div_ceil(4))
                }),
                max_in_flight: s
                    .max_in_flight_per_key
                    .map_or(d.shares.max_in_flight, InFlightLimit::Fixed),
            },
            registration_timeout: s.registration_timeout.unwrap_or(d.registration_timeout),
            max_body_bytes: s.max_body_bytes.unwrap_or(d.max_body_bytes),
            header_read_timeout: s.header_read_timeout.unwrap_or(d.header_read_timeout),
            max_connections: s.max_connections.unwrap_or(d.max_connections),
            max_attempts: s.max_attempts.unwrap_or(d.max_attempts),
            load_balancer_mode: s.load_balancer_mode.unwrap_or(d.load_balancer_mode),
            database_url: s.database_url.unwrap_or_else(default_database_url),
            history_retention: s.history_retention.unwrap_or(d.history_retention),
            metrics_retention: s.metrics_retention.unwrap_or(d.metrics_retention),
            metrics_sample_interval: s
                .metrics_sample_interval
                .unwrap_or(d.metrics_sample_interval),
            store_bodies: s.store_bodies.unwrap_or(d.store_bodies),
            history_buffer: s.history_buffer.unwrap_or(d.history_buffer),
            auth: AuthConfig {
                admin_username: s.admin_username.unwrap_or(d.auth.admin_username),
                admin_password: s.admin_password,
                enrollment_token: s.enrollment_token.filter(|t| !t.is_empty()),
                allow_anonymous_inference: s
                    .allow_anonymous_inference
                    .unwrap_or(d.auth.allow_anonymous_inference),
                session_ttl: s.session_ttl.unwrap_or(d.auth.session_ttl),
            },
            catalog: s.catalog,
            auto_distribute: s.auto_distribute.unwrap_or(d.auto_distribute),
            log_dir: Some(s.log_dir.unwrap_or_else(|| data_dir().join("logs"))),
            dashboard_dir: s.dashboard_dir,
            bundle_dir: s.bundle_dir,
            tls: TlsFiles::pair(s.tls_cert, s.tls_key).map_err(ConfigError::Invalid)?,
            node_ca: s.node_ca,
            models: ModelTable::from_settings(s.model_aliases, s.model_fallbacks)
                .map_err(|e| ConfigError::Invalid(format!("model aliases: {e}")))?,
        };
        if config
            .auth
            .admin_password
            .as_ref()
            .is_some_and(|p| p.expose().chars().count() < 8)
        {
            return Err(ConfigError::Invalid(
                "admin_password must have at least 8 characters".into(),
            ));
        }
        if config.auth.session_ttl.is_zero() {
            return Err(ConfigError::Invalid(
                "session_ttl must be above zero".into(),
            ));
        }
        if config.database_url != "memory" && !config.database_url.starts_with("sqlite:") {
            return Err(ConfigError::Invalid(format!(
                "database_url must be `memory` or start with `sqlite:`, got '{}'",
                config.database_url
            )));
        }
        if config.heartbeat_interval.is_zero() {
            return Err(ConfigError::Invalid(
                "heartbeat_interval must be above zero".into(),
            ));
        }
        if config.node_timeout <= config.heartbeat_interval {
            return Err(ConfigError::Invalid(format!(
                "node_timeout ({}) must be longer than heartbeat_interval ({})",
                humantime::format_duration(config.node_timeout),
                humantime::format_duration(config.heartbeat_interval)
            )));
        }
        if config.max_attempts == 0 {
            return Err(ConfigError::Invalid(
                "max_attempts must be at least 1".into(),
            ));
        }
        if config.max_body_bytes == 0 {
            return Err(ConfigError::Invalid(
                "max_body_bytes must be above zero".into(),
            ));
        }
        if config.header_read_timeout.is_zero() {
            return Err(ConfigError::Invalid(
                "header_read_timeout must be above zero".into(),
            ));
        }
        if config.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "max_connections must be above zero".into(),
            ));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_and_defaults_fill_the_rest() {
        let file: Settings = toml::from_str("node_timeout = \"17s\"\nmax_attempts = 3\n").unwrap();
        let flags = Settings {
            max_attempts: Some(5),
            ..Settings::default()
        };
        let config = Config::try_from(flags.or(file)).unwrap();
        assert_eq!(config.node_timeout, Duration::from_secs(17));
        assert_eq!(config.max_attempts, 5);
        assert_eq!(config.listen, Config::default().listen);
    }

    /// The spellings of `LOAD_BALANCER_MODE`, on the command line and in a file.
    #[test]
    fn round_robin_has_the_task_lists_spelling_too() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            settings: Settings,
        }
        for spelling in ["round_robin", "roundrobin", "round-robin"] {
            let cli = <Cli as clap::Parser>::try_parse_from([
                "llm-router",
                "--load-balancer-mode",
                spelling,
            ])
            .unwrap();
            assert_eq!(
                cli.settings.load_balancer_mode,
                Some(BalancerMode::RoundRobin),
                "{spelling}"
            );
            let file: Settings =
                toml::from_str(&format!("load_balancer_mode = \"{spelling}\"")).unwrap();
            assert_eq!(
                file.load_balancer_mode,
                Some(BalancerMode::RoundRobin),
                "{spelling}"
            );
        }
        for spelling in ["cache_aware", "cache-aware"] {
            let cli = <Cli as clap::Parser>::try_parse_from([
                "llm-router",
                "--load-balancer-mode",
                spelling,
            ])
            .unwrap();
            assert_eq!(
                cli.settings.load_balancer_mode,
                Some(BalancerMode::CacheAware)
            );
            let file: Settings =
                toml::from_str(&format!("load_balancer_mode = \"{spelling}\"")).unwrap();
            assert_eq!(file.load_balancer_mode, Some(BalancerMode::CacheAware));
        }
        let cli = <Cli as clap::Parser>::try_parse_from([
            "llm-router",
            "--load-balancer-mode",
            "fastest",
        ]);
        assert!(cli.is_err());
    }

    #[test]
    fn unknown_keys_in_file_are_refused() {
        assert!(toml::from_str::<Settings>("node_timout = \"7s\"").is_err());
    }

    #[test]
    fn listener_limits_default_to_30s_and_4096_and_zero_is_refused() {
        let config = Config::try_from(Settings::default()).unwrap();
        assert_eq!(config.header_read_timeout, Duration::from_secs(30));
        assert_eq!(config.max_connections, 4096);
        let file: Settings =
            toml::from_str("header_read_timeout = \"2s\"\nmax_connections = 10\n").unwrap();
        let config = Config::try_from(file).unwrap();
        assert_eq!(config.header_read_timeout, Duration::from_secs(2));
        assert_eq!(config.max_connections, 10);
        for zero in [
            Settings {
                header_read_timeout: Some(Duration::ZERO),
                ..Settings::default()
            },
            Settings {
                max_connections: Some(0),
                ..Settings::default()
            },
        ] {
            assert!(matches!(
                Config::try_from(zero),
                Err(ConfigError::Invalid(_))
            ));
        }
    }

    #[test]
    fn tls_needs_both_files_from_any_layer() {
        let file: Settings =
            toml::from_str("tls_cert = \"/c.pem\"\nnode_ca = \"/ca.pem\"\n").unwrap();
        let Err(ConfigError::Invalid(why)) = Config::try_from(file.clone()) else {
            panic!("a certificate without a key was accepted");
        };
        assert!(why.contains("tls_key"), "{why}");
        let flags = Settings {
            tls_key: Some(PathBuf::from("/k.pem")),
            ..Settings::default()
        };
        let config = Config::try_from(flags.or(file)).unwrap();
        assert_eq!(
            config.tls,
            Some(TlsFiles {
                cert: PathBuf::from("/c.pem"),
                key: PathBuf::from("/k.pem"),
            })
        );
        assert_eq!(config.node_ca, Some(PathBuf::from("/ca.pem")));
        assert_eq!(Config::try_from(Settings::default()).unwrap().tls, None);
    }

    #[test]
    fn key_shares_default_to_a_quarter_of_the_queue_and_auto_slots() {
        let config = Config::try_from(Settings::default()).unwrap();
        assert_eq!(config.shares.max_queued, 256);
        assert_eq!(config.shares.max_in_flight, InFlightLimit::Auto);
        let file: Settings = toml::from_str("queue_capacity = 10\n").unwrap();
        assert_eq!(Config::try_from(file).unwrap().shares.max_queued, 3);
        let file: Settings =
            toml::from_str("max_queued_per_key = 0\nmax_in_flight_per_key = 4\n").unwrap();
        let config = Config::try_from(file).unwrap();
        assert_eq!(config.shares.max_queued, 0);
        assert_eq!(config.shares.max_in_flight, InFlightLimit::Fixed(4));
    }

    #[test]
    fn timeout_must_exceed_heartbeat_interval() {
        let s = Settings {
            node_timeout: Some(Duration::from_secs(5)),
            heartbeat_interval: Some(Duration::from_secs(10)),
            ..Settings::default()
        };
        assert!(matches!(Config::try_from(s), Err(ConfigError::Invalid(_))));
    }
}
