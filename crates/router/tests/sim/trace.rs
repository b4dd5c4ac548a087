//! Generated multi-tenant traces: conversations whose prompts grow turn by turn, rendered and
//! hashed with the router's own prompt key.

use llm_router::affinity::{PromptHasher, PromptKey};
use serde_json::{Value, json};

/// One request of a conversation.
pub struct Turn {
    /// The prompt as the router keys it.
    pub prompt: PromptKey,
    /// The blocks the node holds once it has answered (prompt and answer).
    pub after: Vec<u64>,
    pub gen_tokens: u64,
}

/// Conversations, and which client runs each (clients run theirs one after the other).
pub struct Trace {
    pub name: &'static str,
    pub conversations: Vec<Vec<Turn>>,
    pub clients: usize,
}

impl Trace {
    pub fn requests(&self) -> usize {
        self.conversations.iter().map(Vec::len).sum()
    }
}

/// What kind of traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Tenants with long system prompts, conversations of growing turns.
    Shared,
    /// The same, but 70 % of the conversations belong to one tenant with a very long prompt.
    Hot,
    /// Single-turn requests that share nothing.
    Unshared,
}

/// Deterministic xorshift.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const WORDS: &[&str] = &[
    "the",
    "router",
    "node",
    "cache",
    "prompt",
    "token",
    "slot",
    "model",
    "answer",
    "request",
    "fleet",
    "policy",
    "tenant",
    "system",
    "user",
    "assistant",
    "latency",
    "memory",
    "context",
    "block",
    "hash",
    "prefix",
    "balance",
    "queue",
    "stream",
    "weather",
    "invoice",
    "customer",
    "order",
    "refund",
    "shipping",
    "account",
    "password",
    "report",
    "summary",
    "table",
    "figure",
];

/// About `bytes` bytes of words.
fn text(rng: &mut Rng, bytes: usize) -> String {
    let mut out = String::with_capacity(bytes + 16);
    while out.len() < bytes {
        out.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
        out.push(' ');
    }
    out
}

/// A trace for `nodes` nodes: 4 tenants per node, 2 conversations each, 6 turns, 2 clients per
/// node (the no-shared-prefix trace: 6 times as many single-turn requests).
pub fn generate(shape: Shape, nodes: usize, seed: u64, hasher: &PromptHasher) -> Trace {
    generate_with(shape, nodes, 2, 4, seed, hasher)
}

/// [`generate`] with `clients_per_node` clients and `tenants_per_node` tenants per node.
pub fn generate_with(
    shape: Shape,
    nodes: usize,
    clients_per_node: usize,
    tenants_per_node: usize,
    seed: u64,
    hasher: &PromptHasher,
) -> Trace {
    let mut rng = Rng::new(seed);
    let tenants = tenants_per_node.max(1) * nodes.max(1);
    let per_tenant = 2;
    let turns = if shape == Shape::Unshared { 1 } else { 6 };
    // ~500 words (~3 000 bytes, ~750 tokens) per system prompt; the hot one is ~2 000 tokens.
    let systems: Vec<String> = (0..tenants)
        .map(|t| {
            let len = if shape == Shape::Hot && t == 0 {
                8000
            } else {
                3000
            };
            text(&mut rng, len)
        })
        .collect();
    let count = match shape {
        Shape::Unshared => tenants * per_tenant * 6,
        _ => tenants * per_tenant,
    };
    let mut conversations = Vec::with_capacity(count);
    for c in 0..count {
        let tenant = match shape {
            Shape::Hot if rng.below(10) < 7 => 0,
            _ => c % tenants,
        };
        let system = match shape {
            // Nothing shared: each request has its own opening.
            Shape::Unshared => text(&mut rng, 3000),
            _ => systems[tenant].clone(),
        };
        let mut messages: Vec<Value> = vec![json!({"role": "system", "content": system})];
        let mut conversation = Vec::with_capacity(turns);
        for _ in 0..turns {
            let question = 100 + rng.below(300) as usize;
            messages.push(json!({"role": "user", "content": text(&mut rng, question)}));
            let prompt = hasher.chat(&messages);
            let gen_tokens = 50 + rng.below(100);
            let answer = text(&mut rng, gen_tokens as usize * 4);
            messages.push(json!({"role": "assistant", "content": answer}));
            let after = hasher.chat(&messages).blocks;
            conversation.push(Turn {
                prompt,
                after,
                gen_tokens,
            });
        }
        conversations.push(conversation);
    }
    Trace {
        name: match shape {
            Shape::Shared => "shared prefix",
            Shape::Hot => "hot prefix",
            Shape::Unshared => "no shared prefix",
        },
        conversations,
        clients: clients_per_node.max(1) * nodes.max(1),
    }
}
