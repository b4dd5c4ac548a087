//! Node configuration: a TOML file, flags and environment variables (flag/env > file > default),
//! validated into [`Config`].

mod gpu_layers;
mod model_spec;
mod settings;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use llm_router_common::config::ConfigError;
use llm_router_common::serve::Limits;
pub use llm_router_common::tls::TlsFiles;
use llm_router_protocol::Secret;

pub use gpu_layers::GpuLayers;
pub use model_spec::{ModelSpec, RuntimeChoice};
pub use settings::Settings;

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
    /// Header-read and idle keep-alive timeout, and connection cap, of the node API.
    pub limits: Limits,
    /// Certificate and key of the node API: set, it serves HTTPS only.
    pub tls: Option<TlsFiles>,
    /// Extra roots trusted for the router's HTTPS.
    pub router_ca: Option<PathBuf>,
    /// Where AMD GPUs are read (`/sys`).
    pub sysfs_root: PathBuf,
}

impl TryFrom<Settings> for Config {
    type Error = ConfigError;

    fn try_from(s: Settings) -> Result<Self, Self::Error> {
        let model_defaults = model_defaults(&s);
        let router_url = router_url(s.router_url)?;
        let runtime = s.runtime.unwrap_or(RuntimeChoice::LlamaServer);
        // No model is fine: the router places models on the node and it pulls them.
        let models = resolve_models(s.models.unwrap_or_default(), runtime, &model_defaults)?;
        let enrollment_token = enrollment_token(s.enrollment_token)?;
        let api_token = api_token(s.api_token)?;
        let runtime_archive = runtime_archive(s.runtime_url, s.runtime_sha256)?;
        let heartbeat_interval = heartbeat_interval(s.heartbeat_interval)?;
        let limits = limits(s.header_read_timeout, s.max_connections)?;
        let tls = TlsFiles::pair(s.tls_cert, s.tls_key).map_err(ConfigError::Invalid)?;
        Ok(Config {
            router_url,
            host: s.host.unwrap_or(IpAddr::from([127, 0, 0, 1])),
            port: s.port.unwrap_or(8081),
            advertise_address: s.advertise_address,
            name: s.name,
            models,
            heartbeat_interval,
            runtime,
            runtime_binary: match runtime {
                RuntimeChoice::LlamaServer => s.llama_server,
                RuntimeChoice::Ollama => s.ollama_bin,
            }
            .unwrap_or_else(|| default_binary(runtime)),
            ready_timeout: s.ready_timeout.unwrap_or(Duration::from_secs(300)),
            enrollment_token,
            api_token,
            models_dir: s.models_dir.unwrap_or_else(|| cache_dir().join("models")),
            log_dir: s.log_dir.unwrap_or_else(|| cache_dir().join("logs")),
            runtime_archive,
            runtimes_dir: s
                .runtimes_dir
                .unwrap_or_else(|| cache_dir().join("runtimes")),
            model_defaults,
            progress_interval: s.progress_interval.unwrap_or(Duration::from_secs(1)),
            pull_attempts: s.pull_attempts.unwrap_or(5).max(1),
            limits,
            tls,
            router_ca: s.router_ca,
            sysfs_root: s
                .sysfs_root
                .unwrap_or_else(|| PathBuf::from(crate::metrics::SYSFS_ROOT)),
        })
    }
}

impl Config {
    /// Gives every model without a `gpu_layers` of its own, and the defaults of models pulled
    /// later, the node's default for its hardware: every layer when it has a GPU, none without.
    /// Returns the node-wide value.
    pub fn settle_gpu_layers(&mut self, has_gpu: bool) -> GpuLayers {
        let layers = *self
            .model_defaults
            .gpu_layers
            .get_or_insert(GpuLayers::default_for(has_gpu));
        for model in &mut self.models {
            model.gpu_layers.get_or_insert(layers);
        }
        layers
    }
}

/// The node-wide runtime settings (name and path empty), every one resolved to a value.
fn model_defaults(s: &Settings) -> ModelSpec {
    let threads_default = std::thread::available_parallelism()
        .map(|n| u32::try_from(n.get()).unwrap_or(1))
        .unwrap_or(1);
    ModelSpec {
        name: String::new(),
        path: PathBuf::new(),
        ctx_size: s.ctx_size.or(Some(4096)),
        parallel: s.parallel.or(Some(2)),
        threads: s.threads.or(Some(threads_default)),
        chat_template: s.chat_template.clone(),
        embeddings: s.embeddings.or(Some(false)),
        // Unset: decided per model from its GGUF metadata.
        swa_full: s.swa_full,
        cache_ram_mib: s.cache_ram_mib.or_else(|| {
            let models = s.models.as_ref().map_or(0, Vec::len);
            default_cache_ram_mib(total_ram_bytes(), models)
        }),
        // Unset: decided once the node knows whether it has a GPU (Config::settle_gpu_layers).
        gpu_layers: s.gpu_layers,
        args: Vec::new(),
    }
}

/// Most host RAM a runtime's prompt cache gets by default: llama-server's own default.
pub const CACHE_RAM_MAX_MIB: u32 = 8192;

/// Host RAM for each runtime's prompt cache (llama-server `--cache-ram`, MiB) when not
/// configured: a quarter of the machine's RAM, shared by the configured models (a node that only
/// pulls models gives each one the whole quarter), at most [`CACHE_RAM_MAX_MIB`]. The rest stays
/// for the models' weights, their KV caches and the system; the cache only takes its RAM as
/// prompts get cached. `None` (llama-server's default) when the RAM is not known.
fn default_cache_ram_mib(total_ram_bytes: u64, models: usize) -> Option<u32> {
    if total_ram_bytes == 0 {
        return None;
    }
    let models = u64::try_from(models.max(1)).unwrap_or(u64::MAX);
    let mib = total_ram_bytes / 4 / models / (1024 * 1024);
    Some(
        u32::try_from(mib)
            .unwrap_or(u32::MAX)
            .min(CACHE_RAM_MAX_MIB),
    )
}

/// The machine's RAM in bytes; 0 when it cannot be read.
fn total_ram_bytes() -> u64 {
    use sysinfo::{MemoryRefreshKind, RefreshKind, System};
    System::new_with_specifics(
        RefreshKind::nothing().with_memory(MemoryRefreshKind::nothing().with_ram()),
    )
    .total_memory()
}

/// The router's URL without a trailing `/`; http(s) only.
fn router_url(url: Option<String>) -> Result<String, ConfigError> {
    let url = url
        .unwrap_or_else(|| "http://127.0.0.1:8080".to_owned())
        .trim_end_matches('/')
        .to_owned();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ConfigError::Invalid(format!(
            "router_url must start with http:// or https://, got '{url}'"
        )));
    }
    Ok(url)
}

/// Each model checked for `runtime` and completed with `defaults`; a name given twice is refused.
fn resolve_models(
    models: Vec<ModelSpec>,
    runtime: RuntimeChoice,
    defaults: &ModelSpec,
) -> Result<Vec<ModelSpec>, ConfigError> {
    let mut seen = std::collections::HashSet::new();
    let mut resolved = Vec::with_capacity(models.len());
    for m in models {
        if !seen.insert(m.name.clone()) {
            return Err(ConfigError::Invalid(format!(
                "model '{}' is listed twice",
                m.name
            )));
        }
        check_model(&m, runtime)?;
        resolved.push(m.or(defaults));
    }
    Ok(resolved)
}

/// llama-server serves an existing GGUF file; Ollama a model name, without extra args.
fn check_model(m: &ModelSpec, runtime: RuntimeChoice) -> Result<(), ConfigError> {
    match runtime {
        RuntimeChoice::LlamaServer if !m.path.is_file() => Err(ConfigError::Invalid(format!(
            "model '{}': no file at {}",
            m.name,
            m.path.display()
        ))),
        RuntimeChoice::Ollama if m.path.to_str().is_none_or(|p| p.trim().is_empty()) => {
            Err(ConfigError::Invalid(format!(
                "model '{}': give the Ollama model to serve as NAME=MODEL",
                m.name
            )))
        }
        RuntimeChoice::Ollama if !m.args.is_empty() => Err(ConfigError::Invalid(format!(
            "model '{}': extra args are for llama-server; the ollama runtime takes none",
            m.name
        ))),
        _ => Ok(()),
    }
}

/// The router's enrolment token, which the node cannot register without.
fn enrollment_token(token: Option<Secret>) -> Result<Secret, ConfigError> {
    token.filter(|t| !t.is_empty()).ok_or_else(|| {
        ConfigError::Invalid(
            "no enrollment_token: give the router's enrolment token with --enrollment-token or \
             LLM_NODE_ENROLLMENT_TOKEN (the router prints it at its first start; admins read \
             it with GET /api/auth/enrollment-token)"
                .to_owned(),
        )
    })
}

/// The given API token (at least 16 visible ASCII characters), else a random one.
fn api_token(token: Option<Secret>) -> Result<Secret, ConfigError> {
    match token {
        Some(t) if t.expose().len() < 16 || !t.expose().bytes().all(|b| b.is_ascii_graphic()) => {
            Err(ConfigError::Invalid(
                "api_token must be at least 16 visible ASCII characters".to_owned(),
            ))
        }
        Some(t) => Ok(t),
        None => Ok(random_token()),
    }
}

/// The runtime archive's URL and lowercase SHA-256: both or neither.
fn runtime_archive(
    url: Option<String>,
    sha256: Option<String>,
) -> Result<Option<(String, String)>, ConfigError> {
    match (url, sha256) {
        (None, None) => Ok(None),
        (Some(url), Some(sha))
            if (url.starts_with("http://") || url.starts_with("https://"))
                && sha.len() == 64
                && sha.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            Ok(Some((url, sha.to_ascii_lowercase())))
        }
        _ => Err(ConfigError::Invalid(
            "runtime_url needs runtime_sha256 (64 hex digits) and an http(s) URL".into(),
        )),
    }
}

/// The heartbeat interval asked for, if any; never zero.
fn heartbeat_interval(interval: Option<Duration>) -> Result<Option<Duration>, ConfigError> {
    if interval.is_some_and(|d| d.is_zero()) {
        return Err(ConfigError::Invalid(
            "heartbeat_interval must be above zero".into(),
        ));
    }
    Ok(interval)
}

/// The node API's limits: 30 s to send the headers, 512 connections unless configured.
fn limits(
    header_read_timeout: Option<Duration>,
    max_connections: Option<usize>,
) -> Result<Limits, ConfigError> {
    let limits = Limits {
        header_read_timeout: header_read_timeout.unwrap_or(Duration::from_secs(30)),
        max_connections: max_connections.unwrap_or(512),
    };
    if limits.header_read_timeout.is_zero() {
        return Err(ConfigError::Invalid(
            "header_read_timeout must be above zero".into(),
        ));
    }
    if limits.max_connections == 0 {
        return Err(ConfigError::Invalid(
            "max_connections must be above zero".into(),
        ));
    }
    Ok(limits)
}

/// 256 random bits in hex.
fn random_token() -> Secret {
    use rand_core::RngCore;
    let mut bytes = [0u8; 32];
    rand_core::OsRng.fill_bytes(&mut bytes);
    Secret::new(hex::encode(bytes))
}

/// The runtime's binary on PATH, else the one the project's install script puts in its cache.
fn default_binary(runtime: RuntimeChoice) -> PathBuf {
    let name = runtime.binary_name();
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn the_prompt_cache_gets_a_quarter_of_the_ram_shared_by_the_models_capped() {
        const GIB: u64 = 1024 * 1024 * 1024;
        // 16 GiB: 4 GiB for one model, 1 GiB each for four.
        assert_eq!(default_cache_ram_mib(16 * GIB, 1), Some(4096));
        assert_eq!(default_cache_ram_mib(16 * GIB, 4), Some(1024));
        // No configured model (all pulled later): the whole quarter.
        assert_eq!(default_cache_ram_mib(16 * GIB, 0), Some(4096));
        // A big machine: llama-server's own 8192 MiB at most.
        assert_eq!(default_cache_ram_mib(512 * GIB, 1), Some(CACHE_RAM_MAX_MIB));
        assert_eq!(default_cache_ram_mib(u64::MAX, 1), Some(CACHE_RAM_MAX_MIB));
        // A small one, shared by many: little or nothing, never more than there is.
        assert_eq!(default_cache_ram_mib(2 * GIB, 3), Some(170));
        assert_eq!(default_cache_ram_mib(GIB, 1000), Some(0));
        // Unknown RAM: llama-server's default.
        assert_eq!(default_cache_ram_mib(0, 1), None);
    }

    #[test]
    fn cache_settings_are_node_wide_and_per_model() {
        let dir = std::env::temp_dir().join(format!("llm-node-cache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let gguf = dir.join("m.gguf");
        std::fs::write(&gguf, b"x").unwrap();
        let text = format!(
            "swa_full = false\ncache_ram_mib = 300\nenrollment_token = \"e\"\n\
             [[models]]\nname = \"a\"\npath = \"{0}\"\n\
             [[models]]\nname = \"b\"\npath = \"{0}\"\nswa_full = true\ncache_ram_mib = 0\n",
            gguf.display()
        );
        let config = Config::try_from(toml::from_str::<Settings>(&text).unwrap()).unwrap();
        assert_eq!(config.models[0].swa_full, Some(false));
        assert_eq!(config.models[0].cache_ram_mib, Some(300));
        assert_eq!(config.models[1].swa_full, Some(true));
        assert_eq!(config.models[1].cache_ram_mib, Some(0));
        assert_eq!(config.model_defaults.cache_ram_mib, Some(300));
        // Unset: swa_full stays automatic, the cache is sized from the RAM.
        let text = format!(
            "enrollment_token = \"e\"\n[[models]]\nname = \"a\"\npath = \"{}\"\n",
            gguf.display()
        );
        let config = Config::try_from(toml::from_str::<Settings>(&text).unwrap()).unwrap();
        assert_eq!(config.models[0].swa_full, None);
        assert_eq!(
            config.models[0].cache_ram_mib,
            default_cache_ram_mib(total_ram_bytes(), 1)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn gpu_layers_default_to_the_hardware_unless_set_node_wide_or_per_model() {
        let dir = std::env::temp_dir().join(format!("llm-node-ngl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let gguf = dir.join("m.gguf");
        std::fs::write(&gguf, b"x").unwrap();
        let text = |node_wide: &str| {
            format!(
                "{node_wide}enrollment_token = \"e\"\n\
                 [[models]]\nname = \"a\"\npath = \"{0}\"\n\
                 [[models]]\nname = \"b\"\npath = \"{0}\"\ngpu_layers = 7\n",
                gguf.display()
            )
        };
        let load = |t: &str| Config::try_from(toml::from_str::<Settings>(t).unwrap()).unwrap();
        for (has_gpu, expected) in [(true, GpuLayers::All), (false, GpuLayers::Layers(0))] {
            let mut config = load(&text(""));
            assert_eq!(config.settle_gpu_layers(has_gpu), expected);
            assert_eq!(config.models[0].gpu_layers, Some(expected));
            assert_eq!(config.models[1].gpu_layers, Some(GpuLayers::Layers(7)));
            assert_eq!(config.model_defaults.gpu_layers, Some(expected));
        }
        // Node-wide setting: wins over the hardware's default, not over the model's own.
        let mut config = load(&text("gpu_layers = \"auto\"\n"));
        assert_eq!(config.settle_gpu_layers(true), GpuLayers::Auto);
        assert_eq!(config.models[0].gpu_layers, Some(GpuLayers::Auto));
        assert_eq!(config.models[1].gpu_layers, Some(GpuLayers::Layers(7)));
        std::fs::remove_dir_all(&dir).unwrap();
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
