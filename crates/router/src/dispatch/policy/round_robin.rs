//! Round robin: an atomic counter over the candidates, skipping busy ones.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Policy, SelectContext};
use crate::registry::Candidate;

#[derive(Debug, Default)]
pub struct RoundRobin {
    next: AtomicUsize,
}

impl RoundRobin {
    /// The first candidate with a free slot, starting from the next position in turn.
    pub fn next_free(
        &self,
        candidates: &[Candidate],
        eligible: impl Fn(&Candidate) -> bool,
    ) -> Option<usize> {
        let n = candidates.len();
        if n == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        (0..n)
            .map(|i| (start + i) % n)
            .find(|&i| candidates[i].has_free_slot() && eligible(&candidates[i]))
    }

    /// The next starting position (for tie-breaking in other policies).
    pub fn next_start(&self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            self.next.fetch_add(1, Ordering::Relaxed) % n
        }
    }
}

impl Policy for RoundRobin {
    fn name(&self) -> &'static str {
        "round_robin"
    }

    fn select(&self, candidates: &[Candidate], _ctx: &SelectContext<'_>) -> Option<usize> {
        self.next_free(candidates, |_| true)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::dispatch::policy::testing::{candidate, candidates, node};

    fn ctx() -> SelectContext<'static> {
        SelectContext {
            model: "m",
            now: Instant::now(),
            metrics_max_age: Duration::from_secs(30),
            prompt: None,
        }
    }

    #[test]
    fn round_robin_spreads_nine_requests_three_each() {
        let nodes = candidates(3);
        let rr = RoundRobin::default();
        let mut counts = [0; 3];
        for _ in 0..9 {
            counts[rr.select(&nodes, &ctx()).unwrap()] += 1;
        }
        assert_eq!(counts, [3, 3, 3]);
    }

    #[test]
    fn round_robin_skips_a_node_without_free_slot() {
        let nodes = vec![candidate(node("a", 0.0), 1), candidate(node("b", 0.0), 1)];
        assert!(nodes[0].try_claim());
        let rr = RoundRobin::default();
        for _ in 0..4 {
            assert_eq!(rr.select(&nodes, &ctx()), Some(1));
        }
        assert!(nodes[1].try_claim());
        assert_eq!(rr.select(&nodes, &ctx()), None, "all busy");
    }

    #[test]
    fn round_robin_over_no_candidates_selects_none() {
        let rr = RoundRobin::default();
        assert_eq!(rr.select(&[], &ctx()), None);
    }
}
