//! The [`Affinity`] tracker: the prefix index as the running router uses it. Keys requests from
//! the bodies sent to nodes, records where each prompt went, corrects itself from what each
//! answer says the node reused, and forgets what a node can no longer hold.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use super::index::{DEFAULT_CAPACITY_BLOCKS, NodeMatch, PrefixIndex, SharedIndex};
use super::prompt::{PromptHasher, PromptKey, TOKENS_PER_BLOCK, blocks_to_tokens, cached_blocks};
use crate::metrics::Metrics;
use crate::registry::{AnswerFigures, Node, Snapshot};

/// Blocks a reported reuse may fall short of the prediction without counting as a miss (at least;
/// a quarter of the prediction for long ones).
const MISS_SLACK_BLOCKS: usize = 4;

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
    /// Ollama's `/api/chat`; the Responses API's and Anthropic's prompts read as chats), or a
    /// completion prompt (`/v1/completions`, Ollama's `/api/generate`
    /// with its `system`). `None` for other paths, bodies without a prompt, or unparsable bodies
    /// (which the node will refuse anyway).
    pub fn key(&self, path: &str, body: &[u8]) -> Option<PromptKey> {
        if !matches!(
            path,
            "/v1/chat/completions"
                | "/v1/completions"
                | "/api/chat"
                | "/api/generate"
                | "/v1/responses"
                | "/v1/messages"
        ) {
            return None;
        }
        let key = self.hasher.body(body)?;
        (!key.blocks.is_empty()).then_some(key)
    }

    /// For each node holding the start of `key` for `model`, how many leading blocks it holds.
    pub fn matches(&self, model: &str, key: &PromptKey) -> Vec<NodeMatch> {
        self.index.lock().matches(model, &key.blocks)
    }

    /// For each of `nodes` (ids and their `node_hash`, in the caller's order), how many leading blocks of `key` it holds
    /// for `model`; `None` when none holds any.
    pub fn match_each<'n>(
        &self,
        model: &str,
        key: &PromptKey,
        nodes: impl IntoIterator<Item = (&'n str, u64)>,
    ) -> Option<Vec<usize>> {
        self.index.lock().match_each(model, &key.blocks, nodes)
    }

    /// A request for `model` was sent to `node`: the index follows the node's registration (a
    /// node registered again starts empty) and its cache size (`cache_tokens`). The prompt itself
    /// is recorded when the answer ends ([`Affinity::answered`]): until the node has computed it,
    /// another request sent there for the same prefix would compute it a second time in a slot
    /// of its own, not reuse it.
    pub fn sent(&self, model: &str, node: &Node) {
        self.note_registration(node);
        if let Some(tokens) = node
            .models
            .iter()
            .find(|m| m.name == model)
            .and_then(|m| m.cache_tokens)
        {
            let blocks = (tokens / TOKENS_PER_BLOCK).clamp(1, 1 << 24) as usize;
            self.index.lock().set_capacity(model, &node.id, blocks);
        }
    }

    /// `node` started answering `key`: it now holds the prompt, which is recorded (as its most
    /// recent). When the answer said what the node reused, the prediction error is measured; a
    /// reuse well short of the prediction is logged as a miss but drops nothing else the node was
    /// believed to hold: on llama-server a miss means as often that the slot holding the prefix
    /// was busy and another slot took the request (the prefix is still there) as that it was
    /// evicted, and dropping the node's older prompts on such misses cost more reuse than it saved
    /// (measured with `scripts/bench-routing.sh`). Evictions are modelled by the node's LRU,
    /// bounded by the cache size it reports.
    pub fn answered(
        &self,
        model: &str,
        node_id: &str,
        key: &PromptKey,
        predicted_tokens: u64,
        figures: &AnswerFigures,
    ) {
        let mut index = self.index.lock();
        if let (Some(prompt_tokens), Some(cached_tokens)) =
            (figures.prompt_tokens, figures.cached_tokens)
        {
            let reported =
                cached_blocks(key.bytes, prompt_tokens, cached_tokens).min(key.blocks.len());
            let reported_tokens = blocks_to_tokens(reported);
            self.metrics
                .record_affinity_prediction(predicted_tokens, reported_tokens);
            let predicted = (predicted_tokens / TOKENS_PER_BLOCK) as usize;
            // The node's count is scaled to the router's rendering, which is not token for token
            // (the chat template adds tokens, bytes per token vary): a few blocks short of the
            // prediction is that scaling, not an eviction. A miss is well short of it.
            let slack = (predicted / 4).max(MISS_SLACK_BLOCKS);
            if reported + slack < predicted {
                tracing::debug!(
                    model,
                    node = node_id,
                    predicted,
                    reported,
                    "the node reused less of the prompt than expected"
                );
            }
        }
        index.record(model, node_id, &key.blocks);
    }

    /// `node` holds the prompt `key` for `model` (what an answer records; also for seeding an
    /// index in benchmarks).
    pub fn holds(&self, model: &str, node_id: &str, key: &PromptKey) {
        self.index.lock().record(model, node_id, &key.blocks);
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
    fn responses_and_anthropic_bodies_are_keyed_like_the_same_chat() {
        let a = affinity();
        let system = "You are a coding agent. ".repeat(40);
        let question = "What does this repository do?";
        let body = chat(&system, question);
        let chat = a.key("/v1/chat/completions", &body).unwrap();
        let responses = json!({"model": "m", "instructions": system, "input": question});
        let responses = a
            .key("/v1/responses", responses.to_string().as_bytes())
            .unwrap();
        assert_eq!(responses, chat);
        let items = json!({"model": "m", "instructions": system, "input": [
            {"role": "user", "content": [{"type": "input_text", "text": question}]}]});
        let items = a
            .key("/v1/responses", items.to_string().as_bytes())
            .unwrap();
        assert_eq!(
            items.blocks[..2],
            chat.blocks[..2],
            "the same system prompt"
        );
        let messages = json!({"model": "m", "max_tokens": 8, "system": system,
            "messages": [{"role": "user", "content": question}]});
        let messages = a
            .key("/v1/messages", messages.to_string().as_bytes())
            .unwrap();
        assert_eq!(messages, chat);
        let blocks = json!({"model": "m", "max_tokens": 8,
            "system": [{"type": "text", "text": system}],
            "messages": [{"role": "user", "content": question}]});
        assert!(
            a.key("/v1/messages", blocks.to_string().as_bytes())
                .is_some()
        );
        assert!(a.key("/v1/responses", b"{\"model\":\"m\"}").is_none());
        assert!(a.key("/v1/messages/count_tokens", &body).is_none());
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

    fn reused(prompt_tokens: u64, cached_tokens: u64) -> AnswerFigures {
        AnswerFigures {
            prompt_tokens: Some(prompt_tokens),
            cached_tokens: Some(cached_tokens),
            ..AnswerFigures::default()
        }
    }

    #[test]
    fn a_prompt_is_matched_once_answered_and_a_reported_miss_corrects_the_node() {
        let a = affinity();
        let n = node("a", 0.0);
        let key = |system: &str, q: &str| a.key("/v1/chat/completions", &chat(system, q)).unwrap();
        let (old, x) = (key(&"o".repeat(2000), "q"), key(&"x".repeat(2000), "q"));
        a.sent("m", &n);
        assert!(
            a.matches("m", &x).is_empty(),
            "not before the node computed it"
        );
        // A cold answer (nothing expected, nothing reused) drops nothing.
        a.answered("m", &n.id, &old, 0, &reused(500, 0));
        a.answered("m", &n.id, &x, 0, &reused(500, 0));
        assert_eq!(a.matches("m", &x)[0].blocks, x.blocks.len());
        assert_eq!(a.blocks_held(), old.blocks.len() + x.blocks.len());
        // Expected to reuse all of x, the node reused nothing (another slot took it): a miss in
        // the metrics; x is recorded again (the node computed it now) and `old` stays.
        let predicted = blocks_to_tokens(x.blocks.len());
        a.answered("m", &n.id, &x, predicted, &reused(500, 0));
        assert_eq!(a.matches("m", &x)[0].blocks, x.blocks.len());
        assert_eq!(a.matches("m", &old)[0].blocks, old.blocks.len());
        assert_eq!(a.blocks_held(), old.blocks.len() + x.blocks.len());
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
            a.answered("m", &n.id, &key, 0, &AnswerFigures::default());
            a.sent("m", n);
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
