//! Ollama options that take effect when a model is loaded, not per request.

/// `options` keys that size or place the model when it is loaded (context, batch, GPU layers,
/// memory mapping, threads, RoPE scaling). A node runs its models with its own settings, so per
/// request these cannot apply: the router ignores them when translating, and the node strips
/// them from native Ollama requests (Ollama would otherwise reload the model for everyone).
pub const LOAD_TIME_OPTIONS: &[&str] = &[
    "num_ctx",
    "numa",
    "num_batch",
    "num_gpu",
    "main_gpu",
    "low_vram",
    "f16_kv",
    "logits_all",
    "vocab_only",
    "use_mmap",
    "use_mlock",
    "embedding_only",
    "num_thread",
    "num_gqa",
    "rope_frequency_base",
    "rope_frequency_scale",
];

/// True for an `options` key in [`LOAD_TIME_OPTIONS`].
pub fn is_load_time_option(key: &str) -> bool {
    LOAD_TIME_OPTIONS.contains(&key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_options_are_told_from_sampling_options() {
        // The three the node's copy of the list used to miss.
        for name in ["num_gqa", "rope_frequency_base", "rope_frequency_scale"] {
            assert!(is_load_time_option(name), "{name}");
        }
        for name in ["temperature", "top_p", "num_predict", "seed", "stop"] {
            assert!(!is_load_time_option(name), "{name}");
        }
        let mut unique = LOAD_TIME_OPTIONS.to_vec();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), LOAD_TIME_OPTIONS.len(), "listed twice");
    }
}
