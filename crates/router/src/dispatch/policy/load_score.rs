//! `metrics`: the candidate with the lowest load score wins.
//!
//! score = cpu% + mem% + 10 x active requests (+ GPU utilisation% + GPU memory% when the node has
//! GPUs). When every candidate with fresh metrics is above 80% CPU, scores say nothing useful and
//! round robin takes over. Nodes without fresh metrics are used only when no fresh one is free.

use super::{Policy, RoundRobin, SelectContext};
use crate::registry::Candidate;

/// CPU% above which a node counts as saturated.
const SATURATED_CPU: f32 = 80.0;

/// Load score of a candidate: lower is better. Active requests are the larger of what the node
/// last reported and what the router has in flight there for the model right now.
pub fn load_score(c: &Candidate) -> f32 {
    let l = &c.load;
    let active = l.active_requests.max(c.in_flight()) as f32;
    l.cpu_percent + l.memory_percent + l.gpu_percent + l.gpu_memory_percent + active * 10.0
}

#[derive(Debug, Default)]
pub struct LoadScore {
    round_robin: RoundRobin,
}

impl Policy for LoadScore {
    fn name(&self) -> &'static str {
        "metrics"
    }

    fn select(&self, candidates: &[Candidate], ctx: &SelectContext<'_>) -> Option<usize> {
        let fresh = |c: &Candidate| c.load.is_fresh(ctx.now, ctx.metrics_max_age);
        let mut best: Option<(usize, f32)> = None;
        let mut any_fresh_unsaturated = false;
        let mut any_fresh = false;
        for (i, c) in candidates.iter().enumerate() {
            if !c.has_free_slot() || !fresh(c) {
                continue;
            }
            any_fresh = true;
            any_fresh_unsaturated |= c.load.cpu_percent <= SATURATED_CPU;
            let score = load_score(c);
            if best.is_none_or(|(_, s)| score < s) {
                best = Some((i, score));
            }
        }
        match (any_fresh, any_fresh_unsaturated) {
            (true, true) => best.map(|(i, _)| i),
            (true, false) => self.round_robin.next_free(candidates, fresh),
            (false, _) => self.round_robin.next_free(candidates, |_| true),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use llm_router_protocol::node::GpuMetrics;

    use super::*;
    use crate::dispatch::policy::testing::{candidate, node};

    fn ctx() -> SelectContext<'static> {
        SelectContext {
            model: "m",
            now: Instant::now(),
            metrics_max_age: Duration::from_secs(30),
            prompt: None,
        }
    }

    #[test]
    fn metrics_prefers_the_idle_node() {
        let nodes = vec![
            candidate(node("busy", 90.0), 4),
            candidate(node("idle", 10.0), 4),
        ];
        let p = LoadScore::default();
        for _ in 0..5 {
            assert_eq!(p.select(&nodes, &ctx()), Some(1));
        }
    }

    #[test]
    fn metrics_falls_back_to_round_robin_when_all_are_above_80_percent() {
        let nodes = vec![candidate(node("a", 85.0), 4), candidate(node("b", 95.0), 4)];
        let p = LoadScore::default();
        let picks: Vec<_> = (0..4).map(|_| p.select(&nodes, &ctx()).unwrap()).collect();
        assert_eq!(picks.iter().filter(|&&i| i == 0).count(), 2, "{picks:?}");
    }

    #[test]
    fn metrics_puts_nodes_without_fresh_metrics_last() {
        let mut stale = node("stale", 0.0);
        stale.metrics_at = Some(Instant::now() - Duration::from_secs(60));
        let mut never = node("never", 0.0);
        never.metrics_at = None;
        let nodes = vec![
            candidate(stale, 4),
            candidate(never, 4),
            candidate(node("fresh", 70.0), 4),
        ];
        let p = LoadScore::default();
        assert_eq!(p.select(&nodes, &ctx()), Some(2));
        assert!(nodes[2].try_claim() && nodes[2].try_claim());
        assert!(nodes[2].try_claim() && nodes[2].try_claim());
        assert!(
            matches!(p.select(&nodes, &ctx()), Some(0 | 1)),
            "stale ones when fresh is full"
        );
    }

    #[test]
    fn score_counts_active_requests_and_gpus() {
        let mut n = node("g", 10.0);
        n.metrics.active_requests = 2;
        assert_eq!(load_score(&candidate(n.clone(), 4)), 10.0 + 10.0 + 20.0);
        n.metrics.gpus = vec![GpuMetrics {
            index: 0,
            name: "gpu".into(),
            utilization_percent: 50.0,
            memory_used_bytes: 1,
            memory_total_bytes: 4,
            temperature_celsius: None,
        }];
        assert_eq!(load_score(&candidate(n, 4)), 40.0 + 50.0 + 25.0);
    }

    #[test]
    fn score_counts_the_routers_own_in_flight_requests() {
        let c = candidate(node("n", 10.0), 4);
        assert!(c.try_claim() && c.try_claim() && c.try_claim());
        assert_eq!(load_score(&c), 10.0 + 10.0 + 30.0);
    }
}
