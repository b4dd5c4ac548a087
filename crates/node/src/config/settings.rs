//! Every node setting, each optional, as given by flags, environment variables or the TOML file.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use llm_router_common::config::ConfigError;
use llm_router_protocol::Secret;
use serde::Deserialize;

use super::{GpuLayers, ModelSpec, RuntimeChoice};

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

    /// Host or IP the router should use to reach this node. [default: the listen address; when
    /// listening on all interfaces, the address of the interface that routes to the router
    /// (127.0.0.1 when the router is on this machine)]
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

    /// Give llama-server `--swa-full`: keep the whole context in the KV cache of sliding-window
    /// attention layers (Gemma 2/3, gpt-oss...). Without it llama-server cannot reuse a cached
    /// prompt prefix across conversations of such a model (its KV cache of those layers only
    /// holds the last window), which is what cache-aware routing counts on; it costs KV memory
    /// (Gemma 3 270M at 4096 tokens: 72 MiB instead of 42). No effect on other models.
    /// [default: on for models with sliding-window attention, per their GGUF metadata]
    #[arg(long, env = "LLM_NODE_SWA_FULL")]
    pub swa_full: Option<bool>,

    /// Host RAM per llama-server for its prompt cache (llama-server --cache-ram, MiB): prompts
    /// are kept there after their slot moves on and reloaded when a request shares their prefix,
    /// instead of being computed again; used only as prompts get cached, oldest evicted past the
    /// limit. 0 turns it off. [default: a quarter of the machine's RAM shared by the configured
    /// models, at most 8192 (llama-server's own default)]
    #[arg(long, env = "LLM_NODE_CACHE_RAM_MIB")]
    pub cache_ram_mib: Option<u32>,

    /// Model layers kept in GPU memory, per runtime: `all`, `auto` (the runtime's own estimate)
    /// or a number; 0 keeps models on the CPU. Passed as llama-server `--n-gpu-layers` and Ollama
    /// `num_gpu`; a model's own `gpu_layers` (config file) or `-ngl` in its args win.
    /// [default: all when the node finds a GPU, else 0]
    #[arg(long, env = "LLM_NODE_GPU_LAYERS")]
    pub gpu_layers: Option<GpuLayers>,

    /// Where AMD GPUs are read (`<root>/class/drm/card*/device/mem_info_vram_total`...): the real
    /// sysfs, or a copy of it (a container that mounts the host's /sys elsewhere, a test's
    /// fixture). [default: /sys]
    #[arg(long, env = "LLM_NODE_SYSFS_ROOT")]
    pub sysfs_root: Option<PathBuf>,

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

    /// Time a client may take to send a request's headers to the node API, and to send the next
    /// request on an idle keep-alive connection; past it the connection is closed. [default: 30s]
    #[arg(long, env = "LLM_NODE_HEADER_READ_TIMEOUT", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde")]
    pub header_read_timeout: Option<Duration>,

    /// Connections the node API serves at once; more are closed as they arrive (and a warning is
    /// logged). [default: 512]
    #[arg(long, env = "LLM_NODE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,

    /// Serve the node API over HTTPS only, with this certificate chain (PEM, the node's own
    /// certificate first, valid for --advertise-address); needs --tls-key. The node tells the
    /// router at registration, and the router then calls it at https://. [default: plain HTTP]
    #[arg(long, env = "LLM_NODE_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// Private key (PEM) of --tls-cert. [default: none]
    #[arg(long, env = "LLM_NODE_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// Extra root certificates (PEM) trusted for an https:// --router-url, besides the system's.
    /// [default: the system's roots only]
    #[arg(long, env = "LLM_NODE_ROUTER_CA")]
    pub router_ca: Option<PathBuf>,
}

impl Settings {
    /// Fills every unset field of `self` from `lower`.
    pub fn or(self, lower: Settings) -> Settings {
        llm_router_common::fill_unset!(
            Settings,
            self,
            lower,
            [
                router_url,
                host,
                port,
                advertise_address,
                name,
                models,
                heartbeat_interval,
                runtime,
                llama_server,
                ollama_bin,
                ctx_size,
                parallel,
                threads,
                chat_template,
                embeddings,
                swa_full,
                cache_ram_mib,
                gpu_layers,
                sysfs_root,
                ready_timeout,
                enrollment_token,
                api_token,
                models_dir,
                log_dir,
                runtime_url,
                runtime_sha256,
                runtimes_dir,
                progress_interval,
                pull_attempts,
                header_read_timeout,
                max_connections,
                tls_cert,
                tls_key,
                router_ca,
            ]
        )
    }

    /// Reads a TOML settings file.
    pub fn from_file(path: &Path) -> Result<Settings, ConfigError> {
        llm_router_common::config::from_file(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_is_read_from_the_file_in_kebab_case() {
        let settings: Settings =
            toml::from_str("runtime = \"ollama\"\n[[models]]\nname = \"a\"\npath = \"a:1b\"\n")
                .unwrap();
        assert_eq!(settings.runtime, Some(RuntimeChoice::Ollama));
    }

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        settings: Settings,
    }

    #[test]
    fn cache_settings_are_flags_and_flags_win_over_the_file() {
        use clap::Parser;
        let flags =
            Cli::try_parse_from(["llm-node", "--swa-full", "false", "--cache-ram-mib", "0"])
                .unwrap()
                .settings;
        assert_eq!(flags.swa_full, Some(false));
        assert_eq!(flags.cache_ram_mib, Some(0));
        let file: Settings = toml::from_str("swa_full = true\ncache_ram_mib = 2048\n").unwrap();
        let merged = flags.or(file.clone());
        assert_eq!(
            (merged.swa_full, merged.cache_ram_mib),
            (Some(false), Some(0))
        );
        let merged = Settings::default().or(file);
        assert_eq!(
            (merged.swa_full, merged.cache_ram_mib),
            (Some(true), Some(2048))
        );
    }

    #[test]
    fn gpu_layers_are_a_flag_and_a_file_setting() {
        use clap::Parser;
        let flags = Cli::try_parse_from(["llm-node", "--gpu-layers", "all"])
            .unwrap()
            .settings;
        assert_eq!(flags.gpu_layers, Some(GpuLayers::All));
        assert!(Cli::try_parse_from(["llm-node", "--gpu-layers", "many"]).is_err());
        let file: Settings = toml::from_str("gpu_layers = 0\n").unwrap();
        assert_eq!(flags.or(file.clone()).gpu_layers, Some(GpuLayers::All));
        assert_eq!(
            Settings::default().or(file).gpu_layers,
            Some(GpuLayers::Layers(0))
        );
    }
}
