//! A deterministic simulator of routing policies over simulated llama-server nodes, used by
//! `tests/routing_sim.rs` (claims) and `benches/routing_sim.rs` (tables).
//!
//! Each node has prompt and generation speeds, parallel slots and llama-server's prompt cache
//! (`node_cache.rs`: each slot keeps its last sequence; optionally a host RAM cache of saved
//! sequences), over the router's own block hashes. A node shares its time among its
//! active requests (processor sharing). Clients run their conversations turn after turn (a turn
//! is sent 0.5 s after the previous answer); the router queues a request while no node has a free
//! slot. Tokens are bytes / 4, like the router's estimate.

#![allow(dead_code)]

mod node_cache;
pub mod trace;

use std::collections::VecDeque;

use llm_router::affinity::{PrefixIndex, TOKENS_PER_BLOCK, cached_blocks, capacity_blocks};
use llm_router::dispatch::policy::cache_aware::{CostParams, NodeView, Reason, choose};

use node_cache::NodeCache;
use trace::Trace;

pub const MODEL: &str = "m";
const THINK_SECS: f64 = 0.5;
/// What the router assumes a request will generate (it does not know).
const EXPECTED_GEN_TOKENS: u64 = 100;

#[derive(Debug, Clone, Copy)]
pub struct NodeSpec {
    pub prompt_tps: f64,
    pub gen_tps: f64,
    pub slots: u32,
    /// Context per slot, tokens.
    pub slot_context: u64,
    /// The host RAM prompt cache (`--cache-ram`), tokens (0: none).
    pub host_cache_tokens: u64,
}

impl NodeSpec {
    /// The measurements (Gemma 3 270M on 2 cores: 1 708 tokens in 14.3 s), llama-server's
    /// default 4 slots of 4 096 tokens, no host RAM cache.
    pub fn measured() -> Self {
        NodeSpec {
            prompt_tps: 120.0,
            gen_tps: 20.0,
            slots: 4,
            slot_context: 4096,
            host_cache_tokens: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Policy {
    RoundRobin,
    LeastLoaded,
    CacheAware(CostParams),
}

impl Policy {
    pub fn name(&self) -> &'static str {
        match self {
            Policy::RoundRobin => "round_robin",
            Policy::LeastLoaded => "least_loaded",
            Policy::CacheAware(p) if p.guard_abs == u32::MAX => "cache_aware (no guard)",
            Policy::CacheAware(_) => "cache_aware",
        }
    }
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Report {
    pub policy: &'static str,
    pub nodes: usize,
    pub requests: usize,
    pub computed_tokens: u64,
    pub reused_tokens: u64,
    pub ttft_mean: f64,
    pub ttft_p90: f64,
    pub makespan: f64,
    /// The largest share of requests one node served.
    pub max_share: f64,
    /// Decisions by reason (cache_aware only): affinity, least loaded, guard.
    pub reasons: [usize; 3],
    /// Mean |predicted − reused| cached tokens (cache_aware only).
    pub prediction_error: f64,
}

struct Active {
    conversation: usize,
    turn: usize,
    arrived: f64,
    prefill_left: f64,
    gen_left: f64,
    gen_secs: f64,
    predicted_blocks: usize,
    predicted_prompt_tokens: u64,
    /// Prompt tokens the node reused (what its answer reports).
    cached_tokens: u64,
    slot: usize,
}

struct SimNode {
    spec: NodeSpec,
    name: String,
    active: Vec<Active>,
    cache: NodeCache,
    served: usize,
}

/// Runs `trace` over `specs` with `policy`.
pub fn run(trace: &Trace, specs: &[NodeSpec], policy: Policy) -> Report {
    let mut nodes: Vec<SimNode> = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| SimNode {
            spec: *spec,
            name: format!("node-{i}"),
            active: Vec::new(),
            cache: NodeCache::new(
                spec.slots,
                (spec.host_cache_tokens / TOKENS_PER_BLOCK) as usize,
            ),
            served: 0,
        })
        .collect();
    let mut index = PrefixIndex::default();
    for n in &nodes {
        let s = n.spec;
        index.set_capacity(
            MODEL,
            &n.name,
            capacity_blocks(s.slots, s.slot_context, s.host_cache_tokens),
        );
    }
    // Each client's conversations, in order; (conversation, next turn, ready at).
    let mut client_queue: Vec<VecDeque<usize>> = vec![VecDeque::new(); trace.clients];
    for c in 0..trace.conversations.len() {
        client_queue[c % trace.clients].push_back(c);
    }
    let mut ready: Vec<Option<(usize, usize, f64)>> = client_queue
        .iter_mut()
        .map(|q| q.pop_front().map(|c| (c, 0, 0.0)))
        .collect();
    let client_of = |c: usize| c % trace.clients;

    let mut queue: VecDeque<(usize, usize, f64)> = VecDeque::new();
    let mut now = 0.0f64;
    let mut rr = 0usize;
    let mut ttfts = Vec::with_capacity(trace.requests());
    let (mut computed, mut reused) = (0u64, 0u64);
    let mut reasons = [0usize; 3];
    let (mut error_sum, mut error_n) = (0f64, 0usize);

    loop {
        // Arrivals due now.
        for slot in ready.iter_mut() {
            if let Some((c, t, at)) = *slot
                && at <= now + 1e-12
            {
                queue.push_back((c, t, at));
                *slot = None;
            }
        }
        // Dispatch from the head of the queue while a node takes it.
        while let Some(&(c, t, arrived)) = queue.front() {
            let turn = &trace.conversations[c][t];
            let prompt_tokens = turn.prompt.estimated_tokens();
            let pick = match policy {
                Policy::RoundRobin => {
                    let n = nodes.len();
                    let found = (0..n)
                        .map(|k| (rr + k) % n)
                        .find(|&i| (nodes[i].active.len() as u32) < nodes[i].spec.slots);
                    if let Some(i) = found {
                        rr = i + 1;
                    }
                    found.map(|i| (i, 0))
                }
                Policy::LeastLoaded => {
                    let n = nodes.len();
                    let found = (0..n)
                        .map(|k| (rr + k) % n)
                        .filter(|&i| (nodes[i].active.len() as u32) < nodes[i].spec.slots)
                        .min_by_key(|&i| nodes[i].active.len());
                    rr += 1;
                    found.map(|i| (i, 0))
                }
                Policy::CacheAware(params) => {
                    let matches = index.matches(MODEL, &turn.prompt.blocks);
                    let views: Vec<NodeView> = nodes
                        .iter()
                        .map(|n| view(n, &matches, prompt_tokens))
                        .collect();
                    let choice = choose(&views, prompt_tokens, &params, rr);
                    rr += 1;
                    choice.map(|ch| {
                        reasons[match ch.reason {
                            Reason::Affinity => 0,
                            Reason::LeastLoaded => 1,
                            Reason::Guard => 2,
                        }] += 1;
                        (ch.index, ch.predicted_cached_tokens)
                    })
                }
            };
            let Some((i, predicted_tokens)) = pick else {
                break;
            };
            let node = &mut nodes[i];
            let Some((slot, held)) = node.cache.start(&turn.prompt.blocks) else {
                break;
            };
            queue.pop_front();
            let cached = (held as u64 * TOKENS_PER_BLOCK).min(prompt_tokens);
            computed += prompt_tokens - cached;
            reused += cached;
            if matches!(policy, Policy::CacheAware(_)) {
                error_sum += (predicted_tokens as f64 - cached as f64).abs();
                error_n += 1;
            }
            node.served += 1;
            node.active.push(Active {
                conversation: c,
                turn: t,
                arrived,
                prefill_left: (prompt_tokens - cached) as f64 / node.spec.prompt_tps,
                gen_left: turn.gen_tokens as f64 / node.spec.gen_tps,
                gen_secs: turn.gen_tokens as f64 / node.spec.gen_tps,
                predicted_blocks: (predicted_tokens / TOKENS_PER_BLOCK) as usize,
                predicted_prompt_tokens: prompt_tokens - predicted_tokens,
                cached_tokens: cached,
                slot,
            });
        }

        // The next event: a phase ending on a node, or a client's next turn.
        let mut dt = f64::INFINITY;
        for n in &nodes {
            let k = n.active.len() as f64;
            for a in &n.active {
                let left = if a.prefill_left > 0.0 {
                    a.prefill_left
                } else {
                    a.gen_left
                };
                dt = dt.min(left * k);
            }
        }
        for &(_, _, at) in ready.iter().flatten() {
            dt = dt.min((at - now).max(0.0));
        }
        if !dt.is_finite() {
            break;
        }
        now += dt;
        for n in nodes.iter_mut() {
            let k = n.active.len() as f64;
            let mut i = 0;
            while i < n.active.len() {
                let a = &mut n.active[i];
                // dt ends at the first phase boundary: no request crosses one within it.
                let spent = dt / k;
                if a.prefill_left > 0.0 {
                    a.prefill_left -= spent;
                    if a.prefill_left <= 1e-9 {
                        a.prefill_left = 0.0;
                        ttfts.push(now - a.arrived);
                    }
                } else {
                    a.gen_left -= spent;
                }
                if a.prefill_left == 0.0 && a.gen_left <= 1e-9 {
                    let a = n.active.swap_remove(i);
                    let turn = &trace.conversations[a.conversation][a.turn];
                    n.cache.finish(a.slot, &turn.after);
                    // Feedback: what the node reused, then what it now holds.
                    let prompt_tokens = turn.prompt.estimated_tokens();
                    let reported = cached_blocks(turn.prompt.bytes, prompt_tokens, a.cached_tokens);
                    if reported < a.predicted_blocks {
                        index.correct(MODEL, &n.name, &turn.prompt.blocks, reported);
                    }
                    index.record(MODEL, &n.name, &turn.prompt.blocks);
                    let client = client_of(a.conversation);
                    ready[client] = if a.turn + 1 < trace.conversations[a.conversation].len() {
                        Some((a.conversation, a.turn + 1, now + THINK_SECS))
                    } else {
                        client_queue[client]
                            .pop_front()
                            .map(|c| (c, 0, now + THINK_SECS))
                    };
                    continue;
                }
                i += 1;
            }
        }
    }

    let requests = trace.requests();
    ttfts.sort_by(f64::total_cmp);
    let max_served = nodes.iter().map(|n| n.served).max().unwrap_or(0);
    Report {
        policy: policy.name(),
        nodes: nodes.len(),
        requests,
        computed_tokens: computed,
        reused_tokens: reused,
        ttft_mean: ttfts.iter().sum::<f64>() / ttfts.len().max(1) as f64,
        ttft_p90: ttfts
            .get((ttfts.len() * 9 / 10).min(ttfts.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0),
        makespan: now,
        max_share: max_served as f64 / requests.max(1) as f64,
        reasons,
        prediction_error: error_sum / error_n.max(1) as f64,
    }
}

/// The router's view of a node: its in-flight requests' predicted prompt work and expected
/// generation, its speeds (as measured from timings) and the index's match.
fn view(n: &SimNode, matches: &[llm_router::affinity::NodeMatch], prompt_tokens: u64) -> NodeView {
    let in_flight = n.active.len() as u32;
    let mut backlog_prompt = 0;
    let mut backlog_gen = 0;
    for a in &n.active {
        if a.prefill_left > 0.0 {
            backlog_prompt += a.predicted_prompt_tokens;
            backlog_gen += EXPECTED_GEN_TOKENS;
        } else {
            let done = ((a.gen_secs - a.gen_left) * n.spec.gen_tps) as u64;
            backlog_gen += EXPECTED_GEN_TOKENS.saturating_sub(done);
        }
    }
    let matched_blocks = matches
        .iter()
        .find(|m| *m.node == *n.name)
        .map_or(0, |m| m.blocks);
    NodeView {
        free_slots: n.spec.slots.saturating_sub(in_flight),
        in_flight,
        backlog_prompt_tokens: backlog_prompt,
        backlog_gen_tokens: backlog_gen,
        prompt_tps: n.spec.prompt_tps,
        gen_tps: n.spec.gen_tps,
        matched_tokens: (matched_blocks as u64 * TOKENS_PER_BLOCK).min(prompt_tokens),
    }
}
