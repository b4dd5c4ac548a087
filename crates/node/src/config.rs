//! Node configuration: a TOML file, flags and environment variables (flag/env > file > default),
//! validated into [`Config`].

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use llm_router_protocol::Secret;
use serde::Deserialize;

/// One model the node serves: a name clients ask for and what is behind it — for llama-server the
/// GGUF file, for Ollama the model to serve (e.g. `gemma3:270m`, pulled when absent) — plus
/// optional per-model runtime settings (unset ones take the node-wide defaults).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub name: String,
    /// The GGUF file (llama-server), or the Ollama model name (Ollama).
    pub path: PathBuf,
    #[serde(default)]
    pub ctx_size: Option<u32>,
    #[serde(default)]
    pub parallel: Option<u32>,
    #[serde(default)]
    pub threads: Option<u32>,
    #[serde(default)]
    pub chat_template: Option<String>,
    #[serde(default)]
    pub embeddings: Option<bool>,
    /// Extra runtime arguments, appended last (llama-server only).
    #[serde(default)]
    pub args: Vec<String>,
}

impl ModelSpec {
    /// Fills every unset setting from `defaults` (name, path and args stay).
    pub fn or(self, defaults: &ModelSpec) -> ModelSpec {
        ModelSpec {
            ctx_size: self.ctx_size.or(defaults.ctx_size),
            parallel: self.parallel.or(defaults.parallel),
            threads: self.threads.or(defaults.threads),
            chat_template: self
                .chat_template
                .or_else(|| defaults.chat_template.clone()),
            embeddings: self.embeddings.or(defaults.embeddings),
            ..self
        }
    }
}

impl FromStr for ModelSpec {
    type Err = String;

    /// `NAME=PATH`, as given to `--models`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, path) = s
            .split_once('=')
            .ok_or_else(|| format!("expected NAME=PATH, got '{s}'"))?;
        if name.trim().is_empty() || path.trim().is_empty() {
            return Err(format!("expected NAME=PATH, got '{s}'"));
        }
        Ok(ModelSpec {
            name: name.trim().to_owned(),
            path: PathBuf::from(path.trim()),
            ctx_size: None,
            parallel: None,
            threads: None,
            chat_template: None,
            embeddings: None,
            args: Vec::new(),
        })
    }
}

/// The LLM runtime the node supervises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuntimeChoice {
    /// llama.cpp's `llama-server`, one process per model, serving a GGUF file.
    LlamaServer,
    /// `ollama serve`, one process per model on its own `OLLAMA_HOST` port, serving an Ollama
    /// model that is pulled when absent.
    Ollama,
}

/// Every setting, each optional; parsed by clap (flags + env) and by serde (TOML file).
#[derive(Debug, Default, Clone, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// URL of the router to register with. [default: http://127.0.0.1:8080]
    #[arg(long, env = "LLM_NODE_ROUTER_URL")]
    pub router_url: Option<String>,

    /// Address the node API listens on. [default: 127.0.0.1]
    #[arg(long, env = "LLM_NODE_HOST")]
    pub host: Option<IpAddr>,

    /// Port of the node API; 0 picks a free one. [default: 8081]
    #[arg(long, env = "LLM_NODE_PORT")]
    pub port: Option<u16>,

    /// Host or IP the router should use to reach this node. [default: the listen address, or
    /// 127.0.0.1 when listening on all interfaces]
    #[arg(long, env = "LLM_NODE_ADVERTISE_ADDRESS")]
    pub advertise_address: Option<String>,

    /// Name of this node in the fleet; re-registering under the same name updates the entry.
    /// [default: HOSTNAME:PORT]
    #[arg(long, env = "LLM_NODE_NAME")]
    pub name: Option<String>,

    /// Models to serve, as NAME=PATH pairs separated by commas (a config file can give per-model
    /// settings with [[models]] tables).
    #[arg(long, env = "LLM_NODE_MODELS", value_delimiter = ',')]
    pub models: Option<Vec<ModelSpec>>,

    /// Heartbeat interval. [default: what the router asks for, 10s unless configured there]
    #[arg(long, env = "LLM_NODE_HEARTBEAT_INTERVAL", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde")]
    pub heartbeat_interval: Option<Duration>,

    /// Runtime to supervise: llama-server (models are NAME=GGUF_PATH) or ollama (models are
    /// NAME=OLLAMA_MODEL, e.g. gemma3-270m=gemma3:270m). [default: llama-server]
    #[arg(long, env = "LLM_NODE_RUNTIME", value_enum)]
    pub runtime: Option<RuntimeChoice>,

    /// Path of the llama-server binary. [default: `llama-server` on PATH, else
    /// ~/.cache/llm-router/bin/llama-server]
    #[arg(long, env = "LLM_NODE_LLAMA_SERVER")]
    pub llama_server: Option<PathBuf>,

    /// Path of the ollama binary (runtime ollama). [default: `ollama` on PATH, else
    /// ~/.cache/llm-router/bin/ollama]
    #[arg(long, env = "LLM_NODE_OLLAMA_BIN")]
    pub ollama_bin: Option<PathBuf>,

    /// Context size per runtime (llama-server -c). [default: 4096]
    #[arg(long, env = "LLM_NODE_CTX_SIZE")]
    pub ctx_size: Option<u32>,

    /// Parallel request slots per runtime (llama-server -np). [default: 2]
    #[arg(long, env = "LLM_NODE_PARALLEL")]
    pub parallel: Option<u32>,

    /// CPU threads per runtime (llama-server -t). [default: number of CPUs]
    #[arg(long, env = "LLM_NODE_THREADS")]
    pub threads: Option<u32>,

    /// Built-in chat template to use instead of the model's own (e.g. `gemma`, for GGUF files
    /// without one); turns jinja templates off. [default: the model's template]
    #[arg(long, env = "LLM_NODE_CHAT_TEMPLATE")]
    pub chat_template: Option<String>,

    /// Serve /v1/embeddings (llama-server --embeddings). [default: false]
    #[arg(long, env = "LLM_NODE_EMBEDDINGS")]
    pub embeddings: Option<bool>,

    /// How long a runtime may take to load its model and answer /health. [default: 300s]
    #[arg(long, env = "LLM_NODE_READY_TIMEOUT", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde")]
    pub ready_timeout: Option<Duration>,

    /// The router's enrolment token (printed by the router at its first start; admins read it
    /// with GET /api/auth/enrollment-token). Required.
    #[arg(long, env = "LLM_NODE_ENROLLMENT_TOKEN", hide_env_values = true)]
    pub enrollment_token: Option<Secret>,

    /// Where to fetch the runtime when its binary is missing: a .tar.gz holding `llama-server`
    /// (or `ollama`) and its libraries. Needs --runtime-sha256. Unset: a missing runtime is an
    /// error (scripts/install-runtime.sh installs llama-server on these machines).
    #[arg(long, env = "LLM_NODE_RUNTIME_URL")]
    pub runtime_url: Option<String>,

    /// SHA-256 of the --runtime-url archive.
    #[arg(long, env = "LLM_NODE_RUNTIME_SHA256")]
    pub runtime_sha256: Option<String>,

    /// Where fetched runtimes are unpacked. [default: ~/.cache/llm-router/runtimes]
    #[arg(long, env = "LLM_NODE_RUNTIMES_DIR")]
    pub runtimes_dir: Option<PathBuf>,

    /// Where models pulled at the router's request are stored.
    /// [default: $LLM_ROUTER_CACHE/models, else ~/.cache/llm-router/models]
    #[arg(long, env = "LLM_NODE_MODELS_DIR")]
    pub models_dir: Option<PathBuf>,

    /// Where the node writes its log as JSON lines (one file a day, the last 7 kept), read back by
    /// `GET /api/logs`. [default: $LLM_ROUTER_CACHE/logs, else ~/.cache/llm-router/logs]
    #[arg(long, env = "LLM_NODE_LOG_DIR")]
    pub log_dir: Option<PathBuf>,

    /// Least time between two progress reports of a download (to the router and the terminal).
    /// [default: 1s]
    #[arg(long, env = "LLM_NODE_PROGRESS_INTERVAL", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde")]
    pub progress_interval: Option<Duration>,

    /// Attempts of a download before its task fails (1, 2, 4 … s apart, at most 60 s).
    /// [default: 5]
    #[arg(long, env = "LLM_NODE_PULL_ATTEMPTS")]
    pub pull_attempts: Option<u32>,

    /// Token the router must present on this node's API; sent to the router when registering.
    /// [default: a random one per start]
    #[arg(long, env = "LLM_NODE_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<Secret>,
}

impl Settings {
    /// Fills every unset field of `self` from `lower`.
    pub fn or(self, lower: Settings) -> Settings {
        Settings {
            router_url: self.router_url.or(lower.router_url),
            host: self.host.or(lower.host),
            port: self.port.or(lower.port),
            advertise_address: self.advertise_address.or(lower.advertise_address),
            name: self.name.or(lower.name),
            models: self.models.or(lower.models),
            heartbeat_interval: self.heartbeat_interval.or(lower.heartbeat_interval),
            runtime: self.runtime.or(lower.runtime),
            llama_server: self.llama_server.or(lower.llama_server),
            ollama_bin: self.ollama_bin.or(lower.ollama_bin),
            ctx_size: self.ctx_size.or(lower.ctx_size),
            parallel: self.parallel.or(lower.parallel),
            threads: self.threads.or(lower.threads),
            chat_template: self.chat_template.or(lower.chat_template),
            embeddings: self.embeddings.or(lower.embeddings),
            ready_timeout: self.ready_timeout.or(lower.ready_timeout),
            enrollment_token: self.enrollment_token.or(lower.enrollment_token),
            api_token: self.api_token.or(lower.api_token),
            models_dir: self.models_dir.or(lower.models_dir),
            log_dir: self.log_dir.or(lower.log_dir),
            runtime_url: self.runtime_url.or(lower.runtime_url),
            runtime_sha256: self.runtime_sha256.or(lower.runtime_sha256),
            runtimes_dir: self.runtimes_dir.or(lower.runtimes_dir),
            progress_interval: self.progress_interval.or(lower.progress_interval),
            pull_attempts: self.pull_attempts.or(lower.pull_attempts),
        }
    }

    pub fn from_file(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }
}

/// Validated node configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub router_url: String,
    pub host: IpAddr,
    pub port: u16,
    pub advertise_address: Option<String>,
    pub name: Option<String>,
    /// Models with every runtime setting resolved.
    pub models: Vec<ModelSpec>,
    pub heartbeat_interval: Option<Duration>,
    pub runtime: RuntimeChoice,
    /// The binary of `runtime`.
    pub runtime_binary: PathBuf,
    pub ready_timeout: Duration,
    pub enrollment_token: Secret,
    pub api_token: Secret,
    pub models_dir: PathBuf,
    /// Where the JSON-lines log files go.
    pub log_dir: PathBuf,
    /// Archive to fetch the runtime from when its binary is missing, and its SHA-256.
    pub runtime_archive: Option<(String, String)>,
    /// Where fetched runtimes are unpacked.
    pub runtimes_dir: PathBuf,
    /// Node-wide settings for models pulled later (name and path empty).
    pub model_defaults: ModelSpec,
    pub progress_interval: Duration,
    pub pull_attempts: u32,
}

impl TryFrom<Settings> for Config {
    type Error = ConfigError;

    fn try_from(s: Settings) -> Result<Self, Self::Error> {
        let router_url = s
            .router_url
            .unwrap_or_else(|| "http://127.0.0.1:8080".to_owned())
            .trim_end_matches('/')
            .to_owned();
        if !(router_url.starts_with("http://") || router_url.starts_with("https://")) {
            return Err(ConfigError::Invalid(format!(
                "router_url must start with http:// or https://, got '{router_url}'"
            )));
        }
        // No model is fine: the router places models on the node and it pulls them.
        let models = s.models.unwrap_or_default();
        let runtime = s.runtime.unwrap_or(RuntimeChoice::LlamaServer);
        let mut seen = std::collections::HashSet::new();
        let threads_default = std::thread::available_parallelism()
            .map(|n| u32::try_from(n.get()).unwrap_or(1))
            .unwrap_or(1);
        let model_defaults = ModelSpec {
            name: String::new(),
            path: PathBuf::new(),
            ctx_size: s.ctx_size.or(Some(4096)),
            parallel: s.parallel.or(Some(2)),
            threads: s.threads.or(Some(threads_default)),
            chat_template: s.chat_template.clone(),
            embeddings: s.embeddings.or(Some(false)),
            args: Vec::new(),
        };
        let mut resolved = Vec::with_capacity(models.len());
        for m in models {
            if !seen.insert(m.name.clone()) {
                return Err(ConfigError::Invalid(format!(
                    "model '{}' is listed twice",
                    m.name
                )));
            }
            match runtime {
                RuntimeChoice::LlamaServer if !m.path.is_file() => {
                    return Err(ConfigError::Invalid(format!(
                        "model '{}': no file at {}",
                        m.name,
                        m.path.display()
                    )));
                }
                RuntimeChoice::Ollama if m.path.to_str().is_none_or(|p| p.trim().is_empty()) => {
                    return Err(ConfigError::Invalid(format!(
                        "model '{}': give the Ollama model to serve as NAME=MODEL",
                        m.name
                    )));
                }
                RuntimeChoice::Ollama if !m.args.is_empty() => {
                    return Err(ConfigError::Invalid(format!(
                        "model '{}': extra args are for llama-server; the ollama runtime takes none",
                        m.name
                    )));
                }
                _ => {}
            }
            resolved.push(m.or(&model_defaults));
        }
        let Some(enrollment_token) = s.enrollment_token.filter(|t| !t.is_empty()) else {
            return Err(ConfigError::Invalid(
                "no enrollment_token: give the router's enrolment token with --enrollment-token or \
                 LLM_NODE_ENROLLMENT_TOKEN (the router prints it at its first start; admins read \
                 it with GET /api/auth/enrollment-token)"
                    .to_owned(),
            ));
        };
        let api_token = match s.api_token {
            Some(t)
                if t.expose().len() < 16 || !t.expose().bytes().all(|b| b.is_ascii_graphic()) =>
            {
                return Err(ConfigError::Invalid(
                    "api_token must be at least 16 visible ASCII characters".to_owned(),
                ));
            }
            Some(t) => t,
            None => random_token(),
        };
        let runtime_archive = match (s.runtime_url.clone(), s.runtime_sha256.clone()) {
            (None, None) => None,
            (Some(url), Some(sha))
                if (url.starts_with("http://") || url.starts_with("https://"))
                    && sha.len() == 64
                    && sha.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                Some((url, sha.to_ascii_lowercase()))
            }
            _ => {
                return Err(ConfigError::Invalid(
                    "runtime_url needs runtime_sha256 (64 hex digits) and an http(s) URL".into(),
                ));
            }
        };
        if s.heartbeat_interval.is_some_and(|d| d.is_zero()) {
            return Err(ConfigError::Invalid(
                "heartbeat_interval must be above zero".into(),
            ));
        }
        Ok(Config {
            router_url,
            host: s.host.unwrap_or(IpAddr::from([127, 0, 0, 1])),
            port: s.port.unwrap_or(8081),
            advertise_address: s.advertise_address,
            name: s.name,
            models: resolved,
            heartbeat_interval: s.heartbeat_interval,
            runtime,
            runtime_binary: match runtime {
                RuntimeChoice::LlamaServer => s
                    .llama_server
                    .unwrap_or_else(|| default_binary("llama-server")),
                RuntimeChoice::Ollama => s.ollama_bin.unwrap_or_else(|| default_binary("ollama")),
            },
            ready_timeout: s.ready_timeout.unwrap_or(Duration::from_secs(300)),
            enrollment_token,
            api_token,
            models_dir: s.models_dir.unwrap_or_else(|| cache_dir().join("models")),
            log_dir: s
                .log_dir
                .clone()
                .unwrap_or_else(|| cache_dir().join("logs")),
            runtime_archive,
            runtimes_dir: s
                .runtimes_dir
                .clone()
                .unwrap_or_else(|| cache_dir().join("runtimes")),
            model_defaults,
            progress_interval: s.progress_interval.unwrap_or(Duration::from_secs(1)),
            pull_attempts: s.pull_attempts.unwrap_or(5).max(1),
        })
    }
}

/// 256 random bits in hex.
fn random_token() -> Secret {
    use rand_core::RngCore;
    let mut bytes = [0u8; 32];
    rand_core::OsRng.fill_bytes(&mut bytes);
    Secret::new(hex::encode(bytes))
}

/// `name` on PATH, else the one the project's install script puts in its cache.
fn default_binary(name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    cache_dir().join("bin").join(name)
}

/// The project's cache: `$LLM_ROUTER_CACHE`, else `~/.cache/llm-router`.
fn cache_dir() -> PathBuf {
    std::env::var_os("LLM_ROUTER_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/llm-router")))
        .unwrap_or_else(|| PathBuf::from(".cache/llm-router"))
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_pairs_parse_and_bad_ones_are_refused() {
        let m: ModelSpec = "gemma=/models/g.gguf".parse().unwrap();
        assert_eq!(m.name, "gemma");
        assert_eq!(m.path, PathBuf::from("/models/g.gguf"));
        assert!("gemma".parse::<ModelSpec>().is_err());
        assert!("=/x".parse::<ModelSpec>().is_err());
    }

    #[test]
    fn file_models_take_node_wide_defaults() {
        let dir = std::env::temp_dir().join(format!("llm-node-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let gguf = dir.join("m.gguf");
        std::fs::write(&gguf, b"x").unwrap();
        let text = format!(
            "parallel = 4\nenrollment_token = \"e\"\n[[models]]\nname = \"a\"\npath = \"{}\"\nctx_size = 512\n",
            gguf.display()
        );
        let settings: Settings = toml::from_str(&text).unwrap();
        let config = Config::try_from(settings).unwrap();
        assert_eq!(config.models[0].ctx_size, Some(512));
        assert_eq!(config.models[0].parallel, Some(4));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ollama_models_are_model_names_not_files() {
        let settings = Settings {
            runtime: Some(RuntimeChoice::Ollama),
            ollama_bin: Some(PathBuf::from("/opt/ollama")),
            models: Some(vec!["gemma3-270m=gemma3:270m".parse().unwrap()]),
            enrollment_token: Some(Secret::new("e")),
            ..Settings::default()
        };
        let config = Config::try_from(settings).unwrap();
        assert_eq!(config.runtime, RuntimeChoice::Ollama);
        assert_eq!(config.runtime_binary, PathBuf::from("/opt/ollama"));
        assert_eq!(config.models[0].path, PathBuf::from("gemma3:270m"));
    }

    #[test]
    fn the_enrolment_token_is_required_and_the_api_token_generated() {
        let settings = Settings {
            runtime: Some(RuntimeChoice::Ollama),
            models: Some(vec!["a=a:1b".parse().unwrap()]),
            ..Settings::default()
        };
        let error = Config::try_from(settings.clone()).unwrap_err().to_string();
        assert!(error.contains("enrollment_token"), "{error}");
        let with_token = Settings {
            enrollment_token: Some(Secret::new("e")),
            ..settings
        };
        let a = Config::try_from(with_token.clone()).unwrap();
        let b = Config::try_from(with_token).unwrap();
        assert_eq!(a.api_token.expose().len(), 64);
        assert_ne!(a.api_token, b.api_token, "a fresh token per start");
        assert!(
            !format!("{a:?}").contains(a.api_token.expose()),
            "never in Debug"
        );
    }

    #[test]
    fn runtime_is_read_from_the_file_in_kebab_case() {
        let settings: Settings =
            toml::from_str("runtime = \"ollama\"\n[[models]]\nname = \"a\"\npath = \"a:1b\"\n")
                .unwrap();
        assert_eq!(settings.runtime, Some(RuntimeChoice::Ollama));
    }

    #[test]
    fn missing_model_file_is_a_clear_error() {
        let settings = Settings {
            models: Some(vec!["a=/nonexistent/x.gguf".parse().unwrap()]),
            ..Settings::default()
        };
        let err = Config::try_from(settings).unwrap_err().to_string();
        assert!(err.contains("no file at /nonexistent/x.gguf"), "{err}");
    }
}
