//! Round robin: an atomic counter over the candidates.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Policy, SelectContext};
use crate::registry::Node;

#[derive(Debug, Default)]
pub struct RoundRobin {
    next: AtomicUsize,
}

impl Policy for RoundRobin {
    fn name(&self) -> &'static str {
        "round_robin"
    }

    fn select(&self, candidates: &[Arc<Node>], _ctx: &SelectContext<'_>) -> Option<usize> {
        if candidates.is_empty() {
            return None;
        }
        Some(self.next.fetch_add(1, Ordering::Relaxed) % candidates.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balancer::testing::nodes;

    #[test]
    fn round_robin_spreads_nine_requests_three_each() {
        let nodes = nodes(3);
        let rr = RoundRobin::default();
        let ctx = SelectContext { model: "m" };
        let mut counts = [0; 3];
        for _ in 0..9 {
            counts[rr.select(&nodes, &ctx).unwrap()] += 1;
        }
        assert_eq!(counts, [3, 3, 3]);
    }

    #[test]
    fn round_robin_over_no_candidates_selects_none() {
        let rr = RoundRobin::default();
        assert_eq!(rr.select(&[], &SelectContext { model: "m" }), None);
    }
}
