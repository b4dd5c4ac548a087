//! Node selection on the hot path: each policy over 10 to 10 000 candidates, the full
//! claim-and-release of a slot through the dispatcher, and the cache-aware decision for a
//! 4 000-token prompt over 1 000 nodes (prompt hashing, index match and cost included).
//!
//! Run: `cargo bench -p llm-router --bench selection`

#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use llm_router::affinity::{Affinity, PromptHasher};
use llm_router::dispatch::policy::testing::candidates;
use llm_router::dispatch::{BalancerMode, SelectContext};
use serde_json::{Value, json};

const SIZES: [usize; 4] = [10, 100, 1_000, 10_000];

fn affinity() -> Arc<Affinity> {
    Arc::new(Affinity::default())
}

fn select(c: &mut Criterion) {
    for mode in [
        BalancerMode::RoundRobin,
        BalancerMode::Metrics,
        BalancerMode::Auto,
    ] {
        let policy = mode.build(&affinity());
        let mut group = c.benchmark_group(format!("select/{}", policy.name()));
        for n in SIZES {
            let nodes = candidates(n);
            // Half of the slots taken, so capacity checks do real work.
            for (i, c) in nodes.iter().enumerate() {
                for _ in 0..(i % 4) {
                    c.try_claim();
                }
            }
            group.bench_with_input(BenchmarkId::from_parameter(n), &nodes, |b, nodes| {
                b.iter(|| {
                    let ctx = SelectContext {
                        model: "m",
                        now: Instant::now(),
                        metrics_max_age: Duration::from_secs(30),
                        prompt: None,
                    };
                    black_box(policy.select(black_box(nodes), &ctx))
                });
            });
        }
        group.finish();
    }
}

fn select_claim_release(c: &mut Criterion) {
    let policy = BalancerMode::Auto.build(&affinity());
    let mut group = c.benchmark_group("select_claim_release/auto");
    for n in SIZES {
        let nodes = candidates(n);
        group.bench_with_input(BenchmarkId::from_parameter(n), &nodes, |b, nodes| {
            b.iter(|| {
                let ctx = SelectContext {
                    model: "m",
                    now: Instant::now(),
                    metrics_max_age: Duration::from_secs(30),
                    prompt: None,
                };
                if let Some(i) = policy.select(nodes, &ctx)
                    && nodes[i].try_claim()
                {
                    nodes[i].slots.release();
                }
            });
        });
    }
    group.finish();
}

/// Words up to `bytes` bytes, different for each `salt`.
fn words(bytes: usize, salt: usize) -> String {
    const W: [&str; 8] = [
        "cache", "prompt", "router", "node", "token", "tenant", "answer", "slot",
    ];
    let mut out = String::new();
    let mut x = (salt as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while out.len() < bytes {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push_str(W[(x % 8) as usize]);
        out.push(' ');
    }
    out
}

/// A chat of about `bytes` bytes: a 3 000-byte system prompt, then turns of ~600 bytes.
fn conversation(system: &str, bytes: usize, salt: usize) -> Vec<Value> {
    let mut messages = vec![json!({"role": "system", "content": system})];
    let mut len = system.len();
    let mut turn = 0;
    while len < bytes {
        let role = if turn % 2 == 0 { "user" } else { "assistant" };
        let text = words(600, salt * 1000 + turn);
        len += text.len();
        messages.push(json!({"role": role, "content": text}));
        turn += 1;
    }
    messages
}

fn select_cache_aware(c: &mut Criterion) {
    let hasher = PromptHasher::with_seed(7);
    let nodes = candidates(1_000);
    for (i, c) in nodes.iter().enumerate() {
        for _ in 0..(i % 4) {
            c.try_claim();
        }
    }
    // The request: ~16 KB (~4 000 tokens), its conversation up to its last turn on node 500;
    // every node holds 4 other conversations of its own. Its system prompt is on 8 nodes, or (the
    // worst case for the index) on all 1 000. Measured through the production path: the body
    // parsed and its prompt keyed by the `Affinity` tracker, then `CacheAware::decide`.
    let system = words(3000, 1);
    let request = conversation(&system, 16_000, 2);
    let body = serde_json::to_vec(&json!({"model": "m", "messages": request})).unwrap();
    let path = "/v1/chat/completions";
    let mut group = c.benchmark_group("select/cache_aware");
    group.bench_function("prompt_key_16KB", |b| {
        b.iter(|| black_box(hasher.chat(black_box(&request))));
    });
    for (label, every) in [("system_prompt_on_8", 125), ("system_prompt_on_all", 1)] {
        let affinity = Arc::new(Affinity::with_hasher(hasher, Default::default()));
        let policy = BalancerMode::CacheAware.build(&affinity);
        let key_of = |messages: &[Value]| hasher.chat(messages);
        for (i, c) in nodes.iter().enumerate() {
            for k in 0..4 {
                let other = conversation(&words(3000, 10 + i * 4 + k), 4_000, i);
                affinity.holds("m", &c.node.id, &key_of(&other));
            }
            if i % every == 0 {
                affinity.holds("m", &c.node.id, &key_of(&request[..1]));
            }
        }
        affinity.holds(
            "m",
            &nodes[500].node.id,
            &key_of(&request[..request.len() - 1]),
        );
        let decide = |body: &[u8]| {
            let key = affinity.key(path, body);
            let ctx = SelectContext {
                model: "m",
                now: Instant::now(),
                metrics_max_age: Duration::from_secs(30),
                prompt: key.as_ref(),
            };
            policy.decide(&nodes, &ctx)
        };
        let choice = decide(&body);
        assert!(
            choice.is_some_and(
                |c| c.index == 500 && c.predicted_cached_tokens.is_some_and(|t| t > 3_000)
            ),
            "{choice:?}"
        );
        group.bench_function(format!("1000_nodes_4000_tokens/{label}"), |b| {
            b.iter(|| black_box(decide(black_box(&body))));
        });
    }
    group.finish();
}

criterion_group!(benches, select, select_claim_release, select_cache_aware);
criterion_main!(benches);
