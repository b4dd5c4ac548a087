//! What the node serves: one model's settings, and the runtime that serves them.

use std::path::PathBuf;
use std::str::FromStr;

use serde::Deserialize;

use super::GpuLayers;

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
    /// llama-server `--swa-full`: a full-size KV cache for sliding-window attention layers, so a
    /// cached prompt prefix can be reused by another conversation. Unset: on for models with
    /// sliding-window attention (GGUF `<arch>.attention.sliding_window`), off for others.
    #[serde(default)]
    pub swa_full: Option<bool>,
    /// llama-server `--cache-ram`: MiB of host RAM for cached prompts; 0 turns it off.
    #[serde(default)]
    pub cache_ram_mib: Option<u32>,
    /// Layers kept in GPU memory (llama-server `--n-gpu-layers`, Ollama `num_gpu`): `all`,
    /// `auto` or a number. Unset everywhere: every layer when the node found a GPU, else 0.
    #[serde(default)]
    pub gpu_layers: Option<GpuLayers>,
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
            swa_full: self.swa_full.or(defaults.swa_full),
            cache_ram_mib: self.cache_ram_mib.or(defaults.cache_ram_mib),
            gpu_layers: self.gpu_layers.or(defaults.gpu_layers),
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
            swa_full: None,
            cache_ram_mib: None,
            gpu_layers: None,
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

impl RuntimeChoice {
    /// The runtime's binary, as installed on PATH or in an archive.
    pub fn binary_name(self) -> &'static str {
        match self {
            RuntimeChoice::LlamaServer => "llama-server",
            RuntimeChoice::Ollama => "ollama",
        }
    }
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
}
