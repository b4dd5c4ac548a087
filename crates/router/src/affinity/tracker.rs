//! The [`Affinity`] tracker: the prefix index as the running router uses it. Keys requests from
//! the bodies sent to nodes, records where each prompt went, corrects itself from what each
//! answer says the node reused, and forgets what a node can no longer hold.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use serde::Deserialize;
use serde_json::Value;

use super::index::{DEFAULT_CAPACITY_BLOCKS, NodeMatch, PrefixIndex, SharedIndex};
use super::prompt::{PromptHasher, PromptKey, TOKENS_PER_BLOCK, blocks_to_tokens, cached_blocks};
use crate::metrics::Metrics;
use crate::registry::{AnswerFigures, Node, Snapshot};

/// The parts of an inference body that make its prompt; everything else is skipped unparsed.
#[derive(Deserialize)]
struct PromptFields {
    #[serde(default)]
    messages: Option<Vec<Value>>,
    #[serde(default)]
    prompt: Option<Value>,
    /// Ollama's `/api/generate` system prompt, rendered before its prompt.
    #[serde(default)]
    system: Option<String>,
}

/// Shared by the `cache_aware` policy (matching, recording) and the recorder (feedback).
pub struct Affinity {
    hasher: PromptHasher,
    index: SharedIndex,
    /// When each node known to the index registered: a new registration is a restarted node.
    registered: Mutex<HashMap<Arc<str>, SystemTime>>,
    metrics: Arc<Metrics>,
}

impl Affinity {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self::with_hasher(PromptHasher::random(), metrics)
    }

    pub fn with_hasher(hasher: PromptHasher, metrics: Arc<Metrics>) -> Self {
        Affinity {
            hasher,
            index: SharedIndex::new(PrefixIndex::new(DEFAULT_CAPACITY_BLOCKS)),
            registered: Mutex::new(HashMap::new()),
            metrics,
        }
    }

    /// The prompt key of a body about to be sent to `path` on a node: chat messages (OpenAI, and
    /// Ollama's `/api/chat`), or a completion prompt (`/v1/completions`, Ollama's `/api/generate`
    /// with its `system`). `None` for other paths, bodies without a prompt, or unparsable bodies
    /// (which the node will refuse anyway).
    pub fn key(&self, path: &str, body: &[u8]) -> Option<PromptKey> {
        if !matches!(
            path,
            "/v1/chat/completions" | "/v1/completions" | "/api/chat" | "/api/generate"
        ) {
            return None;
        }
        let fields: PromptFields = serde_json::from_slice(body).ok()?;
        let key = match (fields.messages, fields.prompt) {
            (Some(messages), _) => self.hasher.chat(&messages),
            (None, Some(prompt)) => match fields.system {
                Some(system) => self.hasher.chat(&[
                    serde_json::json!({"role": "system", "content": system}),
                    serde_json::json!({"role": "user", "content": prompt}),
                ]),
                None => self.hasher.completion(&prompt),
            },
            (None, None) => return None,
        };
        (!key.blocks.is_empty()).then_some(key)
    }

    /// For each node holding the start of `key` for `model`, how many leading blocks it holds.
    pub fn matches(&self, model: &str, key: &PromptKey) -> Vec<NodeMatch> {
        self.index.lock().matches(model, &key.blocks)
    }

    /// `key` was sent to `node`: it will hold the prompt once it has computed it. Recorded at
    /// once, so the next request with the same prefix (the next turn, another user of the same
    /// system prompt) follows it even before this answer ends.
    pub fn sent(&self, model: &str, node: &Node, key: &PromptKey) {
        self.note_registration(node);
        let mut index = self.index.lock();
        if let Some(tokens) = node
            .models
            .iter()
            .find(|m| m.name == model)
            .and_then(|m| m.cache_tokens)
        {
            let blocks = (tokens / TOKENS_PER_BLOCK).clamp(1, 1 << 24) as usize;
            index.set_capacity(model, &node.id, blocks);
        }
        index.record(model, &node.id, &key.blocks);
    }

    /// An answer from `node` for `key` said what it reused: blocks the index believed the node
    /// held beyond that are dropped (the node evicted them), then the prompt is recorded again.
    /// `predicted_tokens` is what the policy expected the node to reuse.
    pub fn answered(
        &self,
        model: &str,
        node_id: &str,
        key: &PromptKey,
        predicted_tokens: u64,
        figures: &AnswerFigures,
    ) {
        let (Some(prompt_tokens), Some(cached_tokens)) =
            (figures.prompt_tokens, figures.cached_tokens)
        else {
            return;
        };
        let reported = cached_blocks(key.bytes, prompt_tokens, cached_tokens).min(key.blocks.len());
        let reported_tokens = blocks_to_tokens(reported);
        self.metrics
            .record_affinity_prediction(predicted_tokens, reported_tokens);
        let mut index = self.index.lock();
        let held = index.match_len(model, node_id, &key.blocks);
        if held > reported {
            let dropped = index.correct(model, node_id, &key.blocks, reported);
            tracing::debug!(
                model,
                node = node_id,
                held,
                reported,
                dropped,
                "the node reused less of the prompt than the index held: stale blocks dropped"
            );
        }
        index.record(model, node_id, &key.blocks);
    }

    /// Forgets what nodes can no longer hold: nodes gone from the fleet, nodes registered again
    /// (restarted), and models no longer ready on a node (its runtime stopped or restarted).
    pub fn sync(&self, snapshot: &Snapshot) {
        let mut registered = self
            .registered
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut restarted = Vec::new();
        registered.retain(|id, at| match snapshot.node(id) {
            Some(node) if node.registered_at == *at => true,
            Some(_) => {
                restarted.push(Arc::clone(id));
                false
            }
            None => false,
        });
        drop(registered);
        self.index.lock().retain(|model, node| {
            !restarted.iter().any(|r| &**r == node)
                && snapshot
                    .node(node)
                    .is_some_and(|n| n.has_ready_model(model))
        });
    }

    /// Blocks held over every model and node.
    pub fn blocks_held(&self) -> usize {
        self.index.lock().blocks_held()
    }

    fn note_registration(&self, node: &Node) {
        let mut registered = self
            .registered
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match registered.get(&node.id) {
            Some(at) if *at == node.registered_at => {}
            Some(_) => {
                // Registered again since the index learnt of it: what it held is gone.
                registered.insert(Arc::clone(&node.id), node.registered_at);
                drop(registered);
                self.index.lock().forget_node(&node.id);
            }
            None => {
                registered.insert(Arc::clone(&node.id), node.registered_at);
            }
        }
    }
}

/// A tracker whose figures go to a [`Metrics`] of its own (tests and benchmarks).
impl Default for Affinity {
    fn default() -> Self {
        Self::new(Arc::new(Metrics::new()))
    }
}

impl std::fmt::Debug for Affinity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Affinity")
            .field("blocks_held", &self.blocks_held())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::registry::testing::node;

    fn affinity() -> Affinity {
        Affinity::with_hasher(PromptHasher::with_seed(3), Arc::new(Metrics::new()))
    }

    fn chat(system: &str, user: &str) -> Vec<u8> {
        json!({"model": "m", "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": user},
        ]})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn chat_and_completion_bodies_are_keyed_and_others_are_not() {
        let a = affinity();
        let system = "You are a helpful assistant. ".repeat(20);
        let k1 = a.key("/v1/chat/completions", &chat(&system, "hi")).unwrap();
        let k2 = a.key("/api/chat", &chat(&system, "bye")).unwrap();
        assert_eq!(
            k1.blocks[..8],
            k2.blocks[..8],
            "same system prompt, same leading blocks"
        );
        let prompt = json!({"model": "m", "prompt": system}).to_string();
        assert!(a.key("/v1/completions", prompt.as_bytes()).is_some());
        assert!(a.key("/v1/embeddings", prompt.as_bytes()).is_none());
        assert!(a.key("/v1/chat/completions", b"{not json").is_none());
        assert!(a.key("/v1/chat/completions", br#"{"model":"m"}"#).is_none());
    }

    #[test]
    fn a_sent_prompt_is_matched_and_a_reported_miss_corrects_it() {
        let a = affinity();
        let n = node("a", 0.0);
        let key = a
            .key("/v1/chat/completions", &chat(&"x".repeat(2000), "q"))
            .unwrap();
        a.sent("m", &n, &key);
        assert_eq!(a.matches("m", &key)[0].blocks, key.blocks.len());
        // The node says it reused nothing of a 500-token prompt: the index drops its blocks,
        // then records the prompt again (the node computed it now).
        a.answered(
            "m",
            &n.id,
            &key,
            blocks_to_tokens(key.blocks.len()),
            &AnswerFigures {
                prompt_tokens: Some(500),
                cached_tokens: Some(0),
                ..AnswerFigures::default()
            },
        );
        assert_eq!(a.matches("m", &key)[0].blocks, key.blocks.len());
        assert_eq!(a.blocks_held(), key.blocks.len());
    }

    #[test]
    fn nodes_that_left_restarted_or_lost_the_model_are_forgotten() {
        let a = affinity();
        let key = a
            .key("/v1/chat/completions", &chat(&"y".repeat(1000), "q"))
            .unwrap();
        let stay = node("stay", 0.0);
        let gone = node("gone", 0.0);
        let mut unloaded = node("unloaded", 0.0);
        for n in [&stay, &gone, &unloaded] {
            a.sent("m", n, &key);
        }
        unloaded.models.clear();
        let snapshot = Snapshot::new(vec![Arc::new(stay.clone()), Arc::new(unloaded)], |_, _| {
            Arc::default()
        });
        a.sync(&snapshot);
        let held: Vec<_> = a.matches("m", &key).into_iter().map(|m| m.node).collect();
        assert_eq!(held, [Arc::from("stay")]);

        // The same node registering again starts empty.
        let mut again = stay.clone();
        again.registered_at += std::time::Duration::from_secs(1);
        a.sync(&Snapshot::new(vec![Arc::new(again)], |_, _| Arc::default()));
        assert!(a.matches("m", &key).is_empty());
    }
}
