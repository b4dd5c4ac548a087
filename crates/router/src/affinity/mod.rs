//! Prefix affinity: which node already holds a request's prompt in its cache.
//!
//! llama-server keeps computed prompts (in its slots and, with `--cache-ram`, in host memory): a
//! request sent where its prefix is already computed skips that prompt processing. This module is
//! the router's model of those caches:
//!
//! - `prompt.rs` — the [`PromptKey`]: the rendered prompt (chat messages with roles, or the
//!   completion prompt) cut into blocks of [`BLOCK_BYTES`] bytes, hashes chained block to block
//!   with a per-router seed.
//! - `index.rs` — the [`PrefixIndex`]: per model and node, the blocks each node holds (bounded,
//!   least recently used evicted), matched against a prompt in one walk down its chain, corrected
//!   from what the node reports it reused, forgotten when the node restarts or leaves. Pure.
//! - `tracker.rs` — the [`Affinity`] tracker the running router shares: keys the bodies sent to
//!   nodes, records where prompts went, learns from each answer's reported reuse, follows the fleet.
//!
//! The choice of a node from these matches and the nodes' load is `dispatch::policy::cache_aware`.

mod index;
mod lru;
mod prompt;
mod render;
mod tracker;

pub use index::{DEFAULT_CAPACITY_BLOCKS, NodeMatch, PrefixIndex, SharedIndex, capacity_blocks};
pub use prompt::{
    BLOCK_BYTES, BYTES_PER_TOKEN, BlockWriter, PromptHasher, PromptKey, TOKENS_PER_BLOCK,
    blocks_to_tokens, cached_blocks,
};
pub use tracker::Affinity;
