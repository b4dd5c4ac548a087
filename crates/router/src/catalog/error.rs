//! Why a catalog was refused. Every error names the file it comes from.

use std::path::PathBuf;

/// A catalog that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read model catalog {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("model catalog {origin} is not a valid catalog: {source}")]
    Parse {
        /// The file's path, or `built-in catalog`.
        origin: String,
        source: Box<toml::de::Error>,
    },
    #[error("model catalog {origin}: {problem}")]
    Invalid { origin: String, problem: Problem },
}

/// What is wrong inside a catalog that parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("model #{index} has an empty name")]
    EmptyName { index: usize },
    #[error("model name {name:?} contains whitespace or control characters")]
    BadName { name: String },
    #[error("model {name:?} is listed twice")]
    DuplicateName { name: String },
    #[error("model {name:?} has neither [models.gguf] nor an ollama tag: nothing to download")]
    NoSource { name: String },
    #[error("model {name:?}: gguf url {url:?} is not an http:// or https:// URL")]
    BadUrl { name: String, url: String },
    #[error("model {name:?}: gguf sha256 must be 64 hexadecimal digits, got {sha256:?}")]
    BadSha256 { name: String, sha256: String },
    #[error("model {name:?}: gguf file_name {file_name:?} must be a plain file name")]
    BadFileName { name: String, file_name: String },
    #[error("model {name:?}: gguf parts must be at least 1")]
    NoParts { name: String },
    #[error(
        "model {name:?}: a gguf in {parts} parts must name its first part in url and file_name, \
         ending in {suffix:?}"
    )]
    BadSplitName {
        name: String,
        parts: u32,
        suffix: String,
    },
    #[error(
        "model {name:?}: sha256 cannot be given for a gguf in several parts (give part_sha256, \
         one per part)"
    )]
    SplitWithSha256 { name: String },
    #[error("model {name:?}: part_sha256 is for a gguf in several parts; give sha256")]
    PartDigestsOfOneFile { name: String },
    #[error("model {name:?}: a gguf in {parts} parts needs {parts} part_sha256, got {digests}")]
    PartDigestCount {
        name: String,
        parts: u32,
        digests: usize,
    },
    #[error("model {name:?}: unverified = true contradicts the digests given")]
    UnverifiedWithDigest { name: String },
    #[error("model {name:?}: empty ollama tag")]
    EmptyOllamaTag { name: String },
    #[error("model {name:?}: empty chat_template")]
    EmptyChatTemplate { name: String },
    #[error("model {name:?}: ctx_size must be at least 1")]
    ZeroCtxSize { name: String },
    #[error("the catalog has no [placement]")]
    NoPlacement,
    #[error("[placement] has no tiers")]
    NoTiers,
    #[error("placement tier #{index} has an empty label")]
    EmptyTierLabel { index: usize },
    #[error("placement tier label {label:?} is used twice")]
    DuplicateTierLabel { label: String },
    #[error("placement tiers {first:?} and {second:?} both start at {min_gpu_memory_bytes} bytes")]
    DuplicateTierThreshold {
        first: String,
        second: String,
        min_gpu_memory_bytes: u64,
    },
    #[error("CPU placement tiers {first:?} and {second:?} both start at {min_ram_bytes} bytes")]
    DuplicateCpuTierThreshold {
        first: String,
        second: String,
        min_ram_bytes: u64,
    },
    #[error(
        "[placement] needs a tier with min_gpu_memory_bytes = 0, so that a node without GPU gets one"
    )]
    NoBaseTier,
    #[error("placement tier {label:?} has an empty model name")]
    EmptyTierModel { label: String },
    #[error("placement tier {label:?} names model {model:?} twice")]
    DuplicateTierModel { label: String, model: String },
}
