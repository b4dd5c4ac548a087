//! How many of a model's layers the runtime keeps in GPU memory (llama-server `--n-gpu-layers`,
//! Ollama `num_gpu`).
//!
//! The node decides it instead of leaving it to the runtime build's own default: a GPU build of
//! llama-server defaults to `auto` (fit what it estimates), Ollama to its own estimate, and a node
//! that reports a GPU is there to serve from it. Unset, the node gives every layer to the GPU when
//! it found one ([`GpuLayers::default_for`]) and none otherwise.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

/// Layers to offload: every one, the runtime's own estimate, or a count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Raw")]
pub enum GpuLayers {
    /// Every layer (llama-server `all`; Ollama `num_gpu` [`OLLAMA_ALL_LAYERS`]).
    All,
    /// The runtime's own estimate of what fits (llama-server `auto`; Ollama's default).
    Auto,
    /// At most this many layers; 0 keeps the model on the CPU.
    Layers(u32),
}

/// Ollama's `num_gpu` for "every layer": it offloads at most the model's layers, and no model has
/// this many.
pub const OLLAMA_ALL_LAYERS: u32 = 999;

impl GpuLayers {
    /// The node's default: every layer when it reports a GPU, none without one.
    pub fn default_for(has_gpu: bool) -> GpuLayers {
        if has_gpu {
            GpuLayers::All
        } else {
            GpuLayers::Layers(0)
        }
    }

    /// The value of llama-server's `--n-gpu-layers`.
    pub fn llama_server_value(self) -> String {
        self.to_string()
    }

    /// Ollama's `num_gpu` option; `None` leaves Ollama's own estimate.
    pub fn ollama_num_gpu(self) -> Option<u32> {
        match self {
            GpuLayers::All => Some(OLLAMA_ALL_LAYERS),
            GpuLayers::Auto => None,
            GpuLayers::Layers(n) => Some(n),
        }
    }
}

impl fmt::Display for GpuLayers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GpuLayers::All => f.write_str("all"),
            GpuLayers::Auto => f.write_str("auto"),
            GpuLayers::Layers(n) => write!(f, "{n}"),
        }
    }
}

impl FromStr for GpuLayers {
    type Err = String;

    /// `all`, `auto` or a number of layers.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "all" => Ok(GpuLayers::All),
            "auto" => Ok(GpuLayers::Auto),
            n => n.parse().map(GpuLayers::Layers).map_err(|_| {
                format!("gpu_layers must be 'all', 'auto' or a number of layers, got '{s}'")
            }),
        }
    }
}

/// What a TOML file may write: `gpu_layers = 20` or `gpu_layers = "all"`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Raw {
    Count(u32),
    Text(String),
}

impl TryFrom<Raw> for GpuLayers {
    type Error = String;

    fn try_from(raw: Raw) -> Result<Self, Self::Error> {
        match raw {
            Raw::Count(n) => Ok(GpuLayers::Layers(n)),
            Raw::Text(s) => s.parse(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_every_layer_with_a_gpu_and_none_without() {
        assert_eq!(GpuLayers::default_for(true), GpuLayers::All);
        assert_eq!(GpuLayers::default_for(false), GpuLayers::Layers(0));
    }

    #[test]
    fn words_and_numbers_parse_from_flags_and_files() {
        assert_eq!("all".parse(), Ok(GpuLayers::All));
        assert_eq!("auto".parse(), Ok(GpuLayers::Auto));
        assert_eq!("24".parse(), Ok(GpuLayers::Layers(24)));
        assert!("-1".parse::<GpuLayers>().is_err());
        assert!("most".parse::<GpuLayers>().is_err());
        #[derive(Deserialize)]
        struct File {
            gpu_layers: GpuLayers,
        }
        let n: File = toml::from_str("gpu_layers = 12").unwrap();
        assert_eq!(n.gpu_layers, GpuLayers::Layers(12));
        let all: File = toml::from_str("gpu_layers = \"all\"").unwrap();
        assert_eq!(all.gpu_layers, GpuLayers::All);
        assert!(toml::from_str::<File>("gpu_layers = \"some\"").is_err());
    }

    #[test]
    fn each_runtime_gets_its_own_spelling() {
        assert_eq!(GpuLayers::All.llama_server_value(), "all");
        assert_eq!(GpuLayers::Layers(0).llama_server_value(), "0");
        assert_eq!(GpuLayers::All.ollama_num_gpu(), Some(OLLAMA_ALL_LAYERS));
        assert_eq!(GpuLayers::Layers(0).ollama_num_gpu(), Some(0));
        assert_eq!(GpuLayers::Auto.ollama_num_gpu(), None);
    }
}
