//! How much prompt a llama-server keeps computed, for the router's cache-aware routing: the
//! tokens of its context (the KV cache of all slots, `--ctx-size`) plus those its host-RAM prompt
//! cache (`--cache-ram`, MiB) holds, at the model's KV bytes per token.
//!
//! llama-server's prompt cache evicts its oldest prompts past `--cache-ram` MiB; with `-1` (no
//! byte limit) it keeps at most a context's worth of tokens; `0` turns it off.

use super::gguf::GgufInfo;
use super::user_args;
use crate::config::ModelSpec;

/// llama-server's `--cache-ram` when it is not given, in MiB.
pub const LLAMA_SERVER_CACHE_RAM_MIB: u64 = 8192;

/// The host-RAM prompt cache of a runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostCache {
    Off,
    /// At most this many MiB.
    Mib(u64),
    /// No byte limit (`-1`): llama-server then keeps at most a context's worth of tokens.
    Unlimited,
}

impl HostCache {
    /// The cache `--cache-ram N` sets.
    pub fn from_flag(n: i64) -> HostCache {
        match n {
            0 => HostCache::Off,
            n if n < 0 => HostCache::Unlimited,
            n => HostCache::Mib(n.unsigned_abs()),
        }
    }
}

/// A KV cache element type (`--cache-type-k/v`), as bytes per block of 32 elements.
fn bytes_per_32(cache_type: &str) -> Option<u64> {
    Some(match cache_type {
        "f32" => 128,
        "f16" | "bf16" => 64,
        "q8_0" => 34,
        "q4_0" | "iq4_nl" => 18,
        "q4_1" => 20,
        "q5_0" => 22,
        "q5_1" => 24,
        _ => return None,
    })
}

/// Bytes of K and V cache one token takes over all layers: layers × KV heads × (key length ×
/// K element size + value length × V element size). `None` when the metadata or a cache type
/// is not known. Sliding-window layers are counted in full (as with `--swa-full`).
pub fn kv_bytes_per_token(gguf: &GgufInfo, cache_type_k: &str, cache_type_v: &str) -> Option<u64> {
    let layers = gguf.block_count?;
    let head_dim = || Some(gguf.embedding_length? / gguf.head_count.filter(|&h| h > 0)?);
    let key_length = gguf.key_length.or_else(head_dim)?;
    let value_length = gguf.value_length.or_else(head_dim)?;
    let kv_heads = gguf.head_count_kv.or(gguf.head_count)?;
    let k = key_length.checked_mul(bytes_per_32(cache_type_k)?)?;
    let v = value_length.checked_mul(bytes_per_32(cache_type_v)?)?;
    let bytes = layers
        .checked_mul(kv_heads)?
        .checked_mul(k.checked_add(v)?)?
        / 32;
    (bytes > 0).then_some(bytes)
}

/// Prompt tokens a runtime can keep computed: its context plus its host cache in tokens
/// (the host cache counts nothing when the KV bytes per token are unknown).
pub fn cache_tokens(ctx_tokens: u64, host: HostCache, kv_bytes_per_token: Option<u64>) -> u64 {
    let host_tokens = match (host, kv_bytes_per_token) {
        (HostCache::Off, _) | (_, None) => 0,
        (HostCache::Unlimited, Some(_)) => ctx_tokens,
        (HostCache::Mib(mib), Some(per_token)) => {
            mib.saturating_mul(1024 * 1024) / per_token.max(1)
        }
    };
    ctx_tokens.saturating_add(host_tokens)
}

/// [`cache_tokens`] of the llama-server that `command` starts for `spec`, the model's extra
/// args winning over its settings. `None` when the context size is not known.
pub fn estimate(spec: &ModelSpec, gguf: Option<&GgufInfo>) -> Option<u64> {
    let args = &spec.args;
    let ctx = match user_args::value(args, &["-c", "--ctx-size"]) {
        Some(v) => v.parse::<u64>().ok()?,
        None => u64::from(spec.ctx_size?),
    };
    // 0: the context the model was trained with.
    let ctx = if ctx == 0 { gguf?.context_length? } else { ctx };
    let host = match user_args::value(args, &["-cram", "--cache-ram"]) {
        Some(v) => HostCache::from_flag(v.parse().ok()?),
        None => spec
            .cache_ram_mib
            .map_or(HostCache::Mib(LLAMA_SERVER_CACHE_RAM_MIB), |m| {
                HostCache::from_flag(i64::from(m))
            }),
    };
    let cache_type_k = user_args::value(args, &["-ctk", "--cache-type-k"]).unwrap_or("f16");
    let cache_type_v = user_args::value(args, &["-ctv", "--cache-type-v"]).unwrap_or("f16");
    let per_token = gguf.and_then(|g| kv_bytes_per_token(g, cache_type_k, cache_type_v));
    Some(cache_tokens(ctx, host, per_token))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gemma 3 270M's attention shape.
    fn gemma3_270m() -> GgufInfo {
        GgufInfo {
            architecture: Some("gemma3".into()),
            context_length: Some(32_768),
            block_count: Some(18),
            embedding_length: Some(640),
            head_count: Some(4),
            head_count_kv: Some(1),
            key_length: Some(256),
            value_length: Some(256),
            sliding_window: Some(512),
            ..GgufInfo::default()
        }
    }

    fn spec(ctx: Option<u32>, cache_ram_mib: Option<u32>, args: &[&str]) -> ModelSpec {
        let mut spec: ModelSpec = "m=/m.gguf".parse().unwrap();
        spec.ctx_size = ctx;
        spec.cache_ram_mib = cache_ram_mib;
        spec.args = args.iter().map(|a| (*a).to_owned()).collect();
        spec
    }

    #[test]
    fn kv_bytes_per_token_follow_the_attention_shape_and_cache_types() {
        // 18 layers × 1 KV head × (256 + 256) × 2 bytes.
        assert_eq!(
            kv_bytes_per_token(&gemma3_270m(), "f16", "f16"),
            Some(18_432)
        );
        // q8_0 keys: 34 bytes per 32 elements.
        assert_eq!(
            kv_bytes_per_token(&gemma3_270m(), "q8_0", "f16"),
            Some(18 * (256 * 34 / 32 + 256 * 2))
        );
        // Without key/value lengths: embedding / heads; without KV heads: the heads (no GQA).
        let llama = GgufInfo {
            block_count: Some(32),
            embedding_length: Some(4096),
            head_count: Some(32),
            ..GgufInfo::default()
        };
        assert_eq!(
            kv_bytes_per_token(&llama, "f16", "f16"),
            Some(32 * 32 * 256 * 2)
        );
        // Unknown shape or cache type.
        assert_eq!(kv_bytes_per_token(&GgufInfo::default(), "f16", "f16"), None);
        assert_eq!(kv_bytes_per_token(&gemma3_270m(), "q3_k", "f16"), None);
        let per_layer_heads = GgufInfo {
            head_count: None,
            head_count_kv: None,
            ..gemma3_270m()
        };
        assert_eq!(kv_bytes_per_token(&per_layer_heads, "f16", "f16"), None);
    }

    #[test]
    fn cache_tokens_are_the_context_plus_the_host_cache_in_tokens() {
        assert_eq!(
            cache_tokens(4096, HostCache::Mib(18), Some(18_432)),
            4096 + 1024
        );
        assert_eq!(cache_tokens(4096, HostCache::Off, Some(18_432)), 4096);
        // Unknown KV size: the context only.
        assert_eq!(cache_tokens(4096, HostCache::Mib(8192), None), 4096);
        // No byte limit: llama-server keeps a context's worth.
        assert_eq!(cache_tokens(4096, HostCache::Unlimited, Some(18_432)), 8192);
        assert_eq!(
            cache_tokens(u64::MAX, HostCache::Mib(u64::MAX), Some(1)),
            u64::MAX
        );
    }

    #[test]
    fn the_estimate_reads_the_settings_and_lets_extra_args_win() {
        let g = gemma3_270m();
        // 4096 + 512 MiB / 18 KiB.
        assert_eq!(
            estimate(&spec(Some(4096), Some(512), &[]), Some(&g)),
            Some(4096 + 29_127)
        );
        // Not configured: llama-server's own 8192 MiB.
        assert_eq!(
            estimate(&spec(Some(4096), None, &[]), Some(&g)),
            Some(4096 + 466_033)
        );
        assert_eq!(
            estimate(&spec(Some(4096), Some(0), &[]), Some(&g)),
            Some(4096)
        );
        // Extra args: context, host cache and cache types.
        assert_eq!(
            estimate(
                &spec(Some(4096), Some(512), &["-c", "1024", "--cache-ram", "0"]),
                Some(&g)
            ),
            Some(1024)
        );
        assert_eq!(
            estimate(&spec(Some(4096), Some(0), &["-cram", "-1"]), Some(&g)),
            Some(8192)
        );
        assert_eq!(
            estimate(
                &spec(Some(4096), Some(9), &["-ctk", "q8_0", "-ctv", "q8_0"]),
                Some(&g)
            ),
            Some(4096 + 9 * 1024 * 1024 / (18 * 512 * 34 / 32))
        );
        // Context 0 is the model's own; without metadata, the context only.
        assert_eq!(
            estimate(&spec(Some(0), Some(0), &[]), Some(&g)),
            Some(32_768)
        );
        assert_eq!(estimate(&spec(Some(0), Some(512), &[]), None), None);
        assert_eq!(
            estimate(&spec(Some(2048), Some(512), &[]), None),
            Some(2048)
        );
        assert_eq!(estimate(&spec(None, Some(512), &[]), Some(&g)), None);
    }
}
