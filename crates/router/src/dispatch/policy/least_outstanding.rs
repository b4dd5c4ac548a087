//! `auto` (the default): least outstanding work.
//!
//! The candidate with the fewest of the router's own in-flight requests for the model wins (only
//! candidates under their runtime's slot count are eligible); ties go to the lower metrics score
//! (nodes without fresh metrics score worst), then to the next candidate in round-robin order.

use super::{Policy, RoundRobin, SelectContext, load_score};
use crate::registry::Candidate;

#[derive(Debug, Default)]
pub struct LeastOutstanding {
    round_robin: RoundRobin,
}

impl Policy for LeastOutstanding {
    fn name(&self) -> &'static str {
        "auto"
    }

    fn select(&self, candidates: &[Candidate], ctx: &SelectContext<'_>) -> Option<usize> {
        let n = candidates.len();
        let start = self.round_robin.next_start(n);
        let mut best: Option<(usize, u32, f32)> = None;
        for i in (0..n).map(|k| (start + k) % n) {
            let c = &candidates[i];
            let in_flight = c.in_flight();
            if in_flight >= c.capacity {
                continue;
            }
            if best.is_some_and(|(_, b, _)| in_flight > b) {
                continue;
            }
            let score = if c.load.is_fresh(ctx.now, ctx.metrics_max_age) {
                load_score(c)
            } else {
                f32::INFINITY
            };
            let better = match best {
                None => true,
                Some((_, b_flight, b_score)) => in_flight < b_flight || score < b_score,
            };
            if better {
                best = Some((i, in_flight, score));
            }
        }
        best.map(|(i, _, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

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
    fn least_outstanding_picks_the_node_with_fewest_in_flight() {
        let nodes = vec![candidate(node("a", 0.0), 4), candidate(node("b", 50.0), 4)];
        assert!(nodes[0].try_claim());
        assert_eq!(LeastOutstanding::default().select(&nodes, &ctx()), Some(1));
    }

    #[test]
    fn least_outstanding_skips_node_at_capacity() {
        let nodes = vec![candidate(node("a", 0.0), 1), candidate(node("b", 0.0), 3)];
        assert!(nodes[0].try_claim());
        let p = LeastOutstanding::default();
        assert_eq!(p.select(&nodes, &ctx()), Some(1));
        assert!(nodes[1].try_claim() && nodes[1].try_claim() && nodes[1].try_claim());
        assert_eq!(p.select(&nodes, &ctx()), None);
    }

    #[test]
    fn least_outstanding_breaks_ties_by_metrics_score() {
        let nodes = vec![
            candidate(node("hot", 70.0), 4),
            candidate(node("cool", 5.0), 4),
        ];
        let p = LeastOutstanding::default();
        for _ in 0..4 {
            assert_eq!(p.select(&nodes, &ctx()), Some(1));
        }
    }

    #[test]
    fn least_outstanding_rotates_among_equal_nodes() {
        let nodes = vec![candidate(node("a", 10.0), 4), candidate(node("b", 10.0), 4)];
        let p = LeastOutstanding::default();
        let picks: Vec<_> = (0..4).map(|_| p.select(&nodes, &ctx()).unwrap()).collect();
        assert_eq!(picks.iter().filter(|&&i| i == 0).count(), 2, "{picks:?}");
    }

    #[test]
    fn least_outstanding_ranks_nodes_without_fresh_metrics_last_on_ties() {
        let mut stale = node("stale", 0.0);
        stale.metrics_at = None;
        let nodes = vec![candidate(stale, 4), candidate(node("fresh", 60.0), 4)];
        let p = LeastOutstanding::default();
        for _ in 0..3 {
            assert_eq!(p.select(&nodes, &ctx()), Some(1));
        }
    }
}
