//! `cache_aware`: send a request where its prompt costs least, counting the prompt the node already
//! holds, without piling up on one node. [`CacheAware`] is the [`Policy`]; [`choose`] is its
//! decision, pure over [`NodeView`]s (what the simulator and the benchmarks drive).
//!
//! For each candidate with a free slot, the predicted time before it could start answering:
//!
//! ```text
//! cost = (prompt tokens − matched tokens) / prompt speed            this request's prompt work
//!      + backlog prompt tokens / prompt speed                       prompt work already assigned
//!      + backlog generation tokens / generation speed               answers still being written
//! ```
//!
//! The cheapest wins, unless
//! - its match is below `min_match_tokens`: nothing worth keeping, so the least loaded node
//!   takes it (no cost when there is nothing to gain);
//! - the load guard trips: its in-flight count exceeds the least loaded node's by more than
//!   `guard_abs` and more than `guard_rel` times (SGLang's `balance_abs_threshold` and
//!   `balance_rel_threshold`, here between the chosen and the least loaded node). The least loaded
//!   node then takes the request and, computing the prefix, becomes a second home for it.
//!
//! "Least loaded" is the fewest in-flight requests, then the smallest backlog in seconds, then the
//! first from `start` (a rotating offset, so ties spread like round robin).
//!
//! What the policy feeds the decision: matches from the [`Affinity`] tracker; in-flight counts and
//! free slots from the candidates; the prompt backlog, measured speeds and answer lengths from
//! each node's [`CacheStats`](crate::registry::CacheStats) (learnt from the answers' `timings`).
//! A request without a prompt (embeddings) goes to the least loaded node.

use std::sync::Arc;

use super::{Decision, LeastOutstanding, Policy, RoundRobin, SelectContext};
use crate::affinity::{Affinity, blocks_to_tokens};
use crate::registry::{Candidate, Snapshot};

/// Answer length assumed for a node whose answers were not measured yet.
const DEFAULT_ANSWER_TOKENS: f64 = 64.0;

/// The `cache_aware` policy.
#[derive(Debug)]
pub struct CacheAware {
    affinity: Arc<Affinity>,
    params: CostParams,
    round_robin: RoundRobin,
    /// For requests without a prompt.
    least_outstanding: LeastOutstanding,
}

impl CacheAware {
    pub fn new(affinity: Arc<Affinity>) -> Self {
        CacheAware {
            affinity,
            params: CostParams::default(),
            round_robin: RoundRobin::default(),
            least_outstanding: LeastOutstanding::default(),
        }
    }
}

impl Policy for CacheAware {
    fn name(&self) -> &'static str {
        "cache_aware"
    }

    fn select(&self, candidates: &[Candidate], ctx: &SelectContext<'_>) -> Option<usize> {
        self.decide(candidates, ctx).map(|d| d.index)
    }

    fn decide(&self, candidates: &[Candidate], ctx: &SelectContext<'_>) -> Option<Decision> {
        let Some(prompt) = ctx.prompt else {
            return self.least_outstanding.decide(candidates, ctx);
        };
        let held = self.affinity.match_each(
            ctx.model,
            prompt,
            candidates.iter().map(|c| (&*c.node.id, c.node.id_hash)),
        );
        let view = |i: usize| view_of(&candidates[i], held.as_ref().map_or(0, |h| h[i]));
        let start = self.round_robin.next_start(candidates.len());
        let choice = choose_by(
            candidates.len(),
            view,
            prompt.estimated_tokens(),
            &self.params,
            start,
        )?;
        Some(Decision {
            index: choice.index,
            predicted_cached_tokens: Some(choice.predicted_cached_tokens),
            reason: Some(choice.reason.as_str()),
        })
    }

    fn wants_prompt(&self) -> bool {
        true
    }

    fn sent(&self, candidate: &Candidate, ctx: &SelectContext<'_>) {
        self.affinity.sent(ctx.model, &candidate.node);
    }

    fn fleet_changed(&self, snapshot: &Snapshot) {
        self.affinity.sync(snapshot);
    }
}

/// A candidate as the decision sees it, holding `blocks` leading blocks of the prompt.
fn view_of(c: &Candidate, blocks: usize) -> NodeView {
    let in_flight = c.in_flight();
    let cache = &c.node.counters.cache;
    let answer = match cache.answer_tokens() {
        t if t > 0.0 => t,
        _ => DEFAULT_ANSWER_TOKENS,
    };
    NodeView {
        free_slots: c.capacity.saturating_sub(in_flight),
        in_flight,
        backlog_prompt_tokens: cache.backlog_prompt_tokens(),
        backlog_gen_tokens: (f64::from(in_flight) * answer) as u64,
        prompt_tps: cache.prompt_tps(),
        gen_tps: cache.gen_tps(),
        matched_tokens: blocks_to_tokens(blocks),
    }
}

/// One candidate as the decision sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NodeView {
    pub free_slots: u32,
    pub in_flight: u32,
    /// Prompt tokens still to compute for requests already sent to the node (queued or in flight).
    pub backlog_prompt_tokens: u64,
    /// Tokens still to generate for requests in flight (estimated).
    pub backlog_gen_tokens: u64,
    /// Measured prompt processing speed, tokens per second (0 or less: unknown).
    pub prompt_tps: f64,
    /// Measured generation speed, tokens per second (0 or less: unknown).
    pub gen_tps: f64,
    /// Leading prompt tokens the node is believed to hold (the index's match).
    pub matched_tokens: u64,
}

/// The decision's thresholds and the speeds assumed for nodes not measured yet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostParams {
    /// A smaller match counts as none (4 blocks of 16 tokens).
    pub min_match_tokens: u64,
    /// The load guard's absolute in-flight difference.
    pub guard_abs: u32,
    /// The load guard's ratio of in-flight counts.
    pub guard_rel: f64,
    pub default_prompt_tps: f64,
    pub default_gen_tps: f64,
}

impl Default for CostParams {
    fn default() -> Self {
        CostParams {
            min_match_tokens: 64,
            guard_abs: 2,
            guard_rel: 1.5,
            // A small CPU node (the issue's measurements: ~120 prompt tokens/s, ~20 generated).
            default_prompt_tps: 120.0,
            default_gen_tps: 20.0,
        }
    }
}

/// Why a node was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The cheapest node, counting the prompt it holds.
    Affinity,
    /// No useful match anywhere: the least loaded node.
    LeastLoaded,
    /// The cheapest node was too loaded next to the least loaded one, which took the request.
    Guard,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Affinity => "affinity",
            Reason::LeastLoaded => "least_loaded",
            Reason::Guard => "guard",
        }
    }
}

/// The chosen candidate and why.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    pub index: usize,
    pub reason: Reason,
    /// Prompt tokens the chosen node is predicted to reuse.
    pub predicted_cached_tokens: u64,
    /// Candidates considered (with or without a free slot).
    pub candidates: usize,
    /// The chosen node's predicted cost, seconds.
    pub cost: f64,
}

/// Chooses among `nodes` for a prompt of `prompt_tokens`; `None` when no node has a free slot.
pub fn choose(
    nodes: &[NodeView],
    prompt_tokens: u64,
    params: &CostParams,
    start: usize,
) -> Option<Choice> {
    choose_by(nodes.len(), |i| nodes[i], prompt_tokens, params, start)
}

/// [`choose`] over `n` candidates seen through `view` (called once per candidate, and again for
/// the chosen one), so the running policy builds no list of views.
pub fn choose_by(
    n: usize,
    view: impl Fn(usize) -> NodeView,
    prompt_tokens: u64,
    params: &CostParams,
    start: usize,
) -> Option<Choice> {
    let start = if n == 0 { 0 } else { start % n };
    let mut least: Option<(usize, u32, f64)> = None;
    let mut cheapest: Option<(usize, f64, u64)> = None;
    for i in (start..n).chain(0..start) {
        let node = view(i);
        if node.free_slots == 0 {
            continue;
        }
        // `backlog_secs` and the prompt's own work with one division (the loop's main cost
        // over a thousand candidates): a/p + b/g = (a·g + b·p) / (p·g).
        let prompt_speed = speed(node.prompt_tps, params.default_prompt_tps);
        let gen_speed = speed(node.gen_tps, params.default_gen_tps);
        let per = 1.0 / (prompt_speed * gen_speed);
        let backlog = (node.backlog_prompt_tokens as f64 * gen_speed
            + node.backlog_gen_tokens as f64 * prompt_speed)
            * per;
        if least.is_none_or(|(_, f, b)| node.in_flight < f || (node.in_flight == f && backlog < b))
        {
            least = Some((i, node.in_flight, backlog));
        }
        let matched = useful_match(&node, prompt_tokens, params);
        let cost = (prompt_tokens - matched) as f64 * gen_speed * per + backlog;
        if cheapest.is_none_or(|(_, c, _)| cost < c) {
            cheapest = Some((i, cost, matched));
        }
    }
    let (least, least_flight, _) = least?;
    let (best, _, best_match) = cheapest?;
    let reason = if best_match == 0 {
        Reason::LeastLoaded
    } else if overloaded(view(best).in_flight, least_flight, params) {
        Reason::Guard
    } else {
        Reason::Affinity
    };
    let index = if reason == Reason::Affinity {
        best
    } else {
        least
    };
    let node = view(index);
    let matched = node.matched_tokens.min(prompt_tokens);
    Some(Choice {
        index,
        reason,
        predicted_cached_tokens: matched,
        candidates: n,
        cost: (prompt_tokens - matched) as f64 / speed(node.prompt_tps, params.default_prompt_tps)
            + backlog_secs(&node, params),
    })
}

/// The load guard: `load` is above `least` by more than the absolute and the relative threshold.
pub fn overloaded(load: u32, least: u32, params: &CostParams) -> bool {
    load.saturating_sub(least) > params.guard_abs
        && f64::from(load) > params.guard_rel * f64::from(least)
}

fn useful_match(node: &NodeView, prompt_tokens: u64, params: &CostParams) -> u64 {
    let matched = node.matched_tokens.min(prompt_tokens);
    if matched < params.min_match_tokens {
        0
    } else {
        matched
    }
}

fn backlog_secs(node: &NodeView, params: &CostParams) -> f64 {
    node.backlog_prompt_tokens as f64 / speed(node.prompt_tps, params.default_prompt_tps)
        + node.backlog_gen_tokens as f64 / speed(node.gen_tps, params.default_gen_tps)
}

fn speed(measured: f64, default: f64) -> f64 {
    if measured.is_finite() && measured > 0.0 {
        measured
    } else {
        default
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idle() -> NodeView {
        NodeView {
            free_slots: 4,
            prompt_tps: 100.0,
            gen_tps: 10.0,
            ..NodeView::default()
        }
    }

    fn busy(in_flight: u32) -> NodeView {
        NodeView {
            in_flight,
            free_slots: 4 - in_flight.min(4),
            backlog_gen_tokens: 100 * u64::from(in_flight),
            ..idle()
        }
    }

    fn matched(mut n: NodeView, tokens: u64) -> NodeView {
        n.matched_tokens = tokens;
        n
    }

    #[test]
    fn affinity_wins_when_the_saved_prompt_work_outweighs_the_backlog() {
        // 2 000 of 2 100 tokens held (20 s saved) against one request's answer (10 s of backlog).
        let nodes = [idle(), matched(busy(1), 2000), idle()];
        let c = choose(&nodes, 2100, &CostParams::default(), 0).unwrap();
        assert_eq!((c.index, c.reason), (1, Reason::Affinity));
        assert_eq!(c.predicted_cached_tokens, 2000);
        assert_eq!(c.candidates, 3);
        assert!((c.cost - (1.0 + 10.0)).abs() < 1e-9);
    }

    #[test]
    fn affinity_loses_when_it_does_not_pay() {
        // 200 tokens held (2 s saved) against 30 s of backlog: an idle node is cheaper.
        let nodes = [matched(busy(3), 200), idle()];
        let c = choose(&nodes, 1000, &CostParams::default(), 0).unwrap();
        assert_eq!((c.index, c.reason), (1, Reason::LeastLoaded));
        assert_eq!(c.predicted_cached_tokens, 0);
    }

    #[test]
    fn the_guard_sends_to_the_least_loaded_when_the_match_is_too_loaded() {
        let mut hot = matched(busy(3), 20_000);
        hot.free_slots = 5;
        let nodes = [hot, idle(), busy(1)];
        let c = choose(&nodes, 20_100, &CostParams::default(), 0).unwrap();
        assert_eq!((c.index, c.reason), (1, Reason::Guard));
        // Within the thresholds (3 vs 1: not more than 1.5x + 2 apart), affinity holds.
        let nodes = [hot, busy(1), busy(1)];
        let c = choose(&nodes, 20_100, &CostParams::default(), 0).unwrap();
        assert_eq!((c.index, c.reason), (0, Reason::Affinity));
    }

    #[test]
    fn no_useful_match_goes_to_the_least_loaded() {
        let params = CostParams::default();
        let nodes = [
            busy(2),
            matched(busy(1), params.min_match_tokens - 1),
            busy(1),
        ];
        let c = choose(&nodes, 5000, &params, 0).unwrap();
        assert_eq!(c.reason, Reason::LeastLoaded);
        assert!(c.index == 1 || c.index == 2);
        // Ties rotate with `start`.
        let nodes = [idle(), idle(), idle()];
        let picks: Vec<usize> = (0..3)
            .map(|s| choose(&nodes, 5000, &params, s).unwrap().index)
            .collect();
        assert_eq!(picks, [0, 1, 2]);
    }

    #[test]
    fn a_node_without_a_free_slot_is_never_chosen() {
        let mut full = matched(idle(), 10_000);
        full.free_slots = 0;
        let nodes = [full, busy(3)];
        let c = choose(&nodes, 10_000, &CostParams::default(), 0).unwrap();
        assert_eq!(c.index, 1);
        assert_eq!(choose(&[full, full], 10, &CostParams::default(), 0), None);
        assert_eq!(choose(&[], 10, &CostParams::default(), 0), None);
    }

    #[test]
    fn a_slow_nodes_backlog_counts_more() {
        let mut slow = busy(1);
        slow.gen_tps = 2.0;
        let fast = busy(1);
        let nodes = [slow, fast];
        let c = choose(&nodes, 100, &CostParams::default(), 0).unwrap();
        assert_eq!(c.index, 1);
    }

    #[test]
    fn unknown_speeds_use_the_defaults() {
        let params = CostParams::default();
        let unknown = NodeView {
            free_slots: 1,
            backlog_prompt_tokens: 120,
            prompt_tps: f64::NAN,
            ..NodeView::default()
        };
        let c = choose(&[unknown], 240, &params, 0).unwrap();
        assert!((c.cost - 3.0).abs() < 1e-9);
    }

    #[test]
    fn the_guard_needs_both_thresholds() {
        let p = CostParams::default();
        assert!(overloaded(3, 0, &p));
        assert!(!overloaded(2, 0, &p));
        assert!(!overloaded(12, 9, &p), "3 apart but only 1.33x");
        assert!(overloaded(14, 9, &p));
    }
}
