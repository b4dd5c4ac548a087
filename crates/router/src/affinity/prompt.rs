//! The prompt key: a request's rendered prompt cut into fixed-size blocks of bytes, each block's
//! hash chained on the previous one, so two prompts with the same hash at block `i` share their
//! first `i + 1` blocks (barring a 64-bit collision).
//!
//! No tokenizer round trip: the router renders the prompt itself (chat messages in order with their
//! roles, or the completion prompt) in a small stable form whose prefix only grows when a turn is
//! appended, and counts [`BYTES_PER_TOKEN`] bytes per token when it needs tokens.

use std::hash::{BuildHasher, Hasher};

use foldhash::fast::FixedState;
use rand_core::{OsRng, RngCore};
use serde::Deserialize;
use serde_json::Value;

use super::render::{Message, PromptFields, PromptPart};

/// Bytes per block: ~16 tokens of English or code at ~4 bytes per token. Small enough that a match
/// stops close to where the node's cache really stops (llama.cpp reuses its cache token by token),
/// large enough that a 16 KiB (~4 000-token) prompt is 256 hashes and the index stays small.
pub const BLOCK_BYTES: usize = 64;
/// The router's estimate of bytes per token, without a tokenizer.
pub const BYTES_PER_TOKEN: usize = 4;
/// Tokens a block stands for.
pub const TOKENS_PER_BLOCK: u64 = (BLOCK_BYTES / BYTES_PER_TOKEN) as u64;

/// Computes prompt keys with one secret seed.
///
/// The seed is drawn per router ([`PromptHasher::random`]): a client cannot compute block hashes,
/// so it cannot craft two prompts that collide to steer another tenant's requests, and the index's
/// hash maps keyed by these hashes cannot be flooded with colliding keys. A collision would only
/// misroute a request (the node then computes the prompt), never give a wrong answer.
#[derive(Debug, Clone, Copy)]
pub struct PromptHasher {
    seed: u64,
}

impl PromptHasher {
    /// A hasher with a fixed seed (tests and the simulator).
    pub fn with_seed(seed: u64) -> Self {
        PromptHasher { seed }
    }

    /// A hasher with a seed from the operating system's generator.
    pub fn random() -> Self {
        Self::with_seed(OsRng.next_u64())
    }

    /// A writer that takes the rendered prompt piece by piece.
    pub fn writer(&self) -> BlockWriter {
        BlockWriter {
            state: FixedState::with_seed(self.seed),
            pending: [0; BLOCK_BYTES],
            pending_len: 0,
            previous: 0,
            key: PromptKey::default(),
        }
    }

    /// The key of a plain text prompt.
    pub fn text(&self, text: &str) -> PromptKey {
        let mut w = self.writer();
        w.write(text.as_bytes());
        w.finish()
    }

    /// The key of chat messages (OpenAI shape, which Ollama's chat is translated to): per message
    /// its role, then its content (a string, or the text of an array of parts), then its tool
    /// calls (function names and arguments), in order.
    pub fn chat(&self, messages: &[Value]) -> PromptKey {
        let mut w = self.writer();
        for message in messages {
            Message::deserialize(message)
                .unwrap_or_default()
                .render(&mut w);
        }
        w.finish()
    }

    /// The key of a completion prompt: a string, or an array of strings or of token ids (each id
    /// as 4 bytes, about the bytes of a token).
    pub fn completion(&self, prompt: &Value) -> PromptKey {
        let mut w = self.writer();
        PromptPart::deserialize(prompt)
            .unwrap_or_default()
            .render(&mut w);
        w.finish()
    }

    /// The key of an inference body's prompt, read from its bytes in one pass: its chat messages
    /// (OpenAI, Ollama's `/api/chat`), or its completion prompt (`/v1/completions`, Ollama's
    /// `/api/generate` after its `system`). `None` for a body without a prompt or not JSON.
    pub fn body(&self, body: &[u8]) -> Option<PromptKey> {
        let fields: PromptFields<'_> = serde_json::from_slice(body).ok()?;
        let mut w = self.writer();
        fields.render(&mut w).then(|| w.finish())
    }
}

/// Hashes of a prompt's full blocks, in order. A trailing partial block is not hashed (it is
/// counted in `bytes`): the next turn, which appends to it, would not match it anyway.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PromptKey {
    pub blocks: Vec<u64>,
    /// Length of the rendered prompt.
    pub bytes: usize,
}

impl PromptKey {
    /// The prompt's length in tokens, estimated.
    pub fn estimated_tokens(&self) -> u64 {
        self.bytes.div_ceil(BYTES_PER_TOKEN) as u64
    }
}

/// Tokens of `blocks` whole blocks.
pub fn blocks_to_tokens(blocks: usize) -> u64 {
    blocks as u64 * TOKENS_PER_BLOCK
}

/// The blocks a node's answer says it reused: `cached_tokens` of `prompt_tokens` (the node's own
/// count, template included), scaled to the rendered prompt of `prompt_bytes` and rounded down.
pub fn cached_blocks(prompt_bytes: usize, prompt_tokens: u64, cached_tokens: u64) -> usize {
    if prompt_tokens == 0 {
        return 0;
    }
    let cached = cached_tokens.min(prompt_tokens) as u128;
    let bytes = cached * prompt_bytes as u128 / prompt_tokens as u128;
    (bytes / BLOCK_BYTES as u128) as usize
}

/// Cuts bytes into blocks and chains their hashes; no allocation but the key's vector.
pub struct BlockWriter {
    state: FixedState,
    pending: [u8; BLOCK_BYTES],
    pending_len: usize,
    previous: u64,
    key: PromptKey,
}

impl BlockWriter {
    pub fn write(&mut self, mut bytes: &[u8]) {
        self.key.bytes += bytes.len();
        if self.pending_len > 0 {
            let take = (BLOCK_BYTES - self.pending_len).min(bytes.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&bytes[..take]);
            self.pending_len += take;
            bytes = &bytes[take..];
            if self.pending_len < BLOCK_BYTES {
                return;
            }
            let block = self.pending;
            self.push(&block);
            self.pending_len = 0;
        }
        let mut chunks = bytes.chunks_exact(BLOCK_BYTES);
        for block in &mut chunks {
            self.push(block);
        }
        let rest = chunks.remainder();
        self.pending[..rest.len()].copy_from_slice(rest);
        self.pending_len = rest.len();
    }

    fn push(&mut self, block: &[u8]) {
        let mut hasher = self.state.build_hasher();
        hasher.write_u64(self.previous);
        hasher.write(block);
        self.previous = hasher.finish();
        self.key.blocks.push(self.previous);
    }

    pub fn finish(self) -> PromptKey {
        self.key
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn hasher() -> PromptHasher {
        PromptHasher::with_seed(7)
    }

    fn text_of(len: usize, salt: u8) -> String {
        (0..len)
            .map(|i| char::from(b'a' + ((i * 7 + salt as usize) % 26) as u8))
            .collect()
    }

    #[test]
    fn equal_prefixes_give_equal_leading_blocks_and_a_changed_byte_stops_the_match_at_its_block() {
        let h = hasher();
        let base = text_of(20 * BLOCK_BYTES + 10, 0);
        let a = h.text(&base);
        assert_eq!(a.blocks.len(), 20);
        assert_eq!(a.bytes, base.len());
        for k in [0, 1, 7, 19] {
            let mut changed = base.clone().into_bytes();
            changed[k * BLOCK_BYTES + 3] = b'#';
            let b = h.text(std::str::from_utf8(&changed).unwrap());
            assert_eq!(a.blocks[..k], b.blocks[..k], "blocks before {k} are shared");
            for i in k..20 {
                assert_ne!(a.blocks[i], b.blocks[i], "block {i} after a change in {k}");
            }
        }
    }

    #[test]
    fn a_longer_prompt_extends_the_chain_of_its_prefix() {
        let h = hasher();
        let short = text_of(5 * BLOCK_BYTES + 30, 1);
        let long = format!("{short}{}", text_of(300, 2));
        assert_eq!(h.text(&long).blocks[..5], h.text(&short).blocks[..]);
    }

    #[test]
    fn pieces_written_in_any_cut_give_the_same_key() {
        let h = hasher();
        let text = text_of(777, 3);
        let whole = h.text(&text);
        for cut in [1, 13, 63, 64, 65, 200] {
            let mut w = h.writer();
            for piece in text.as_bytes().chunks(cut) {
                w.write(piece);
            }
            assert_eq!(w.finish(), whole, "cut {cut}");
        }
    }

    #[test]
    fn equal_blocks_at_different_positions_hash_differently() {
        let h = hasher();
        let key = h.text(&"x".repeat(4 * BLOCK_BYTES));
        assert_ne!(key.blocks[0], key.blocks[1]);
        assert_ne!(key.blocks[1], key.blocks[2]);
    }

    #[test]
    fn the_seed_changes_every_hash() {
        let text = text_of(3 * BLOCK_BYTES, 4);
        let a = PromptHasher::with_seed(1).text(&text);
        let b = PromptHasher::with_seed(2).text(&text);
        assert!(a.blocks.iter().zip(&b.blocks).all(|(x, y)| x != y));
    }

    #[test]
    fn a_conversation_prefix_is_shared_by_its_next_turn() {
        let h = hasher();
        let system = text_of(1000, 5);
        let turn1 = json!([
            {"role": "system", "content": system},
            {"role": "user", "content": "What is the weather?"},
        ]);
        let turn2 = json!([
            {"role": "system", "content": system},
            {"role": "user", "content": "What is the weather?"},
            {"role": "assistant", "content": "Sunny."},
            {"role": "user", "content": [{"type": "text", "text": "And tomorrow?"}]},
        ]);
        let a = h.chat(turn1.as_array().unwrap());
        let b = h.chat(turn2.as_array().unwrap());
        assert!(a.blocks.len() >= 15);
        assert_eq!(b.blocks[..a.blocks.len()], a.blocks[..]);
    }

    #[test]
    fn roles_count_and_array_contents_read_as_their_text() {
        let h = hasher();
        let body = text_of(300, 6);
        let as_user = h.chat(&[json!({"role": "user", "content": body})]);
        let as_system = h.chat(&[json!({"role": "system", "content": body})]);
        assert_ne!(as_user.blocks[0], as_system.blocks[0]);
        let parts = h.chat(&[json!({"role": "user", "content": [
            {"type": "text", "text": &body[..100]},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            {"type": "text", "text": &body[100..]},
        ]})]);
        // The text before the image is shared; the image is part of the key.
        assert_eq!(parts.blocks[0], as_user.blocks[0]);
        assert_ne!(parts.blocks[2], as_user.blocks[2]);
    }

    #[test]
    fn tool_calls_are_part_of_the_key() {
        let h = hasher();
        let call = |args: &str| {
            h.chat(
                &[json!({"role": "assistant", "content": null, "tool_calls": [
                    {"type": "function", "function": {"name": "lookup", "arguments": args}}
                ]})],
            )
        };
        let long = text_of(200, 7);
        assert_ne!(call(&format!("a{long}")), call(&format!("b{long}")));
    }

    #[test]
    fn completion_prompts_as_text_list_or_tokens() {
        let h = hasher();
        let text = text_of(300, 8);
        assert_eq!(
            h.completion(&json!(text)).blocks,
            h.text(&text).blocks,
            "a string prompt is its text"
        );
        let list = h.completion(&json!([text, "second"]));
        assert_eq!(list.blocks[..4], h.text(&text).blocks[..4]);
        let tokens: Vec<u32> = (0..100).collect();
        let by_ids = h.completion(&json!(tokens));
        assert_eq!(by_ids.bytes, 400);
        assert_eq!(by_ids.blocks.len(), 400 / BLOCK_BYTES);
    }

    #[test]
    fn cached_tokens_convert_to_blocks_rounding_down() {
        // 1 000 tokens over 4 000 bytes: 640 cached tokens are 2 560 bytes, 40 blocks.
        assert_eq!(cached_blocks(4000, 1000, 640), 40);
        assert_eq!(cached_blocks(4000, 1000, 650), 40);
        assert_eq!(cached_blocks(4000, 1000, 5000), 4000 / BLOCK_BYTES);
        assert_eq!(cached_blocks(4000, 0, 10), 0);
        assert_eq!(blocks_to_tokens(3), 48);
    }
}
