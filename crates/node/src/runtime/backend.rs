//! The runtime a node supervises, chosen by configuration: what differs between llama-server and
//! Ollama (how to start one, when it is ready, what must happen before it serves) behind one type.

use std::path::{Path, PathBuf};

use llm_router_protocol::node::{ModelState, RuntimeBackend, RuntimeKind};
use llm_router_protocol::ollama::ListModel;
use tokio::process::Command;

use super::gguf::GgufInfo;
use super::{ModelRuntime, llama_server, ollama, prompt_cache};
use crate::config::{Config, ModelSpec, RuntimeChoice};

/// A runtime and its binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    LlamaServer { binary: PathBuf },
    Ollama { binary: PathBuf },
}

/// A runtime ready to serve its model.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Requests it serves at once, when known.
    pub slots: Option<u32>,
    /// Prompt tokens it keeps computed (context plus host prompt cache), when known.
    pub cache_tokens: Option<u64>,
    /// The model in Ollama's terms (size, family, capabilities).
    pub info: ListModel,
}

impl Backend {
    pub fn from_config(config: &Config) -> Backend {
        let binary = config.runtime_binary.clone();
        match config.runtime {
            RuntimeChoice::LlamaServer => Backend::LlamaServer { binary },
            RuntimeChoice::Ollama => Backend::Ollama { binary },
        }
    }

    pub fn kind(&self) -> RuntimeKind {
        match self {
            Backend::LlamaServer { .. } => RuntimeKind::LlamaServer,
            Backend::Ollama { .. } => RuntimeKind::Ollama,
        }
    }

    pub fn binary(&self) -> &Path {
        match self {
            Backend::LlamaServer { binary } | Backend::Ollama { binary } => binary,
        }
    }

    /// A name for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::LlamaServer { .. } => "llama-server",
            Backend::Ollama { .. } => "ollama",
        }
    }

    /// True when the runtime answers Ollama's own API (`/api/chat`, ...).
    pub fn speaks_ollama(&self) -> bool {
        matches!(self, Backend::Ollama { .. })
    }

    /// The name the runtime knows the model by (llama-server: the alias, the node's name).
    pub fn runtime_model(&self, spec: &ModelSpec) -> String {
        match self {
            Backend::LlamaServer { .. } => spec.name.clone(),
            Backend::Ollama { .. } => ollama::model_of(spec),
        }
    }

    /// The runtime's version, from `<binary> --version`; `None` when it cannot be read.
    pub async fn version(&self) -> Option<String> {
        let parse = match self {
            Backend::LlamaServer { .. } => llama_server::parse_version,
            Backend::Ollama { .. } => ollama::parse_version,
        };
        super::version(self.binary(), parse).await
    }

    /// What the runtime computes on (llama-server `--list-devices`); `None` for Ollama, which
    /// picks its libraries at run time, or when the runtime does not say.
    pub async fn compute_backend(&self) -> Option<RuntimeBackend> {
        match self {
            Backend::LlamaServer { binary } => {
                super::ask(binary, "--list-devices", llama_server::parse_devices).await
            }
            Backend::Ollama { .. } => None,
        }
    }

    /// What the runtime needs to know of the model file before it starts (llama-server only).
    pub async fn inspect(&self, spec: &ModelSpec) -> Option<GgufInfo> {
        let Backend::LlamaServer { .. } = self else {
            return None;
        };
        let path = spec.path.clone();
        match tokio::task::spawn_blocking(move || super::gguf::read(&path)).await {
            Ok(Ok(info)) => Some(info),
            Ok(Err(e)) => {
                tracing::warn!(model = %spec.name, error = %e, "cannot read the model's GGUF metadata");
                None
            }
            Err(_) => None,
        }
    }

    /// The command that serves `spec` on `127.0.0.1:port`.
    pub fn command(&self, spec: &ModelSpec, port: u16, gguf: Option<&GgufInfo>) -> Command {
        match self {
            Backend::LlamaServer { binary } => llama_server::command(binary, spec, port, gguf),
            Backend::Ollama { binary } => ollama::command(binary, spec, port),
        }
    }

    pub async fn is_healthy(&self, http: &reqwest::Client, port: u16) -> bool {
        match self {
            Backend::LlamaServer { .. } => llama_server::is_healthy(http, port).await,
            Backend::Ollama { .. } => ollama::is_healthy(http, port).await,
        }
    }

    /// What must happen between a healthy runtime and a ready model: for Ollama, pulling the
    /// model when absent (the model is `downloading` meanwhile) and loading it.
    pub async fn prepare(
        &self,
        http: &reqwest::Client,
        runtime: &ModelRuntime,
        port: u16,
        gguf: Option<&GgufInfo>,
    ) -> Result<Prepared, String> {
        let spec = &runtime.spec;
        match self {
            Backend::LlamaServer { .. } => Ok(Prepared {
                slots: llama_server::total_slots(http, port)
                    .await
                    .or(spec.parallel),
                cache_tokens: prompt_cache::estimate(spec, gguf),
                info: llama_server::describe(http, port, spec, gguf).await,
            }),
            Backend::Ollama { .. } => {
                let model = ollama::model_of(spec);
                if !ollama::has_model(http, port, &model).await? {
                    tracing::info!(model = %spec.name, ollama_model = %model, "pulling the model");
                    runtime.update(|s| s.state = ModelState::Downloading);
                    let mut reported = 0;
                    let mut layers = ollama::PullLayers::default();
                    ollama::pull(http, port, &model, |step| {
                        if let Some(progress) = layers.add(step) {
                            runtime.set_download(progress);
                        }
                        if let (Some(done), Some(total)) = (step.completed, step.total)
                            && total > 0
                        {
                            let percent = done.saturating_mul(100) / total;
                            if percent >= reported + 10 {
                                reported = percent;
                                tracing::info!(model = %spec.name, percent, "pulling");
                            }
                        }
                    })
                    .await?;
                    runtime.update(|s| s.state = ModelState::Loading);
                }
                ollama::load(http, port, &model, spec.gpu_layers).await?;
                Ok(Prepared {
                    slots: spec.parallel,
                    cache_tokens: None,
                    info: ollama::describe(http, port, &spec.name, &model).await,
                })
            }
        }
    }

    /// Slots not busy right now, when the runtime tells (llama-server's `/slots`).
    pub async fn free_slots(&self, http: &reqwest::Client, port: u16) -> Option<u32> {
        match self {
            Backend::LlamaServer { .. } => llama_server::free_slots(http, port).await,
            Backend::Ollama { .. } => None,
        }
    }
}
