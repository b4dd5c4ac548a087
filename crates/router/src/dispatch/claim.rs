//! Step 3 of dispatch: claiming a slot on the candidate the policy chose.

use super::policy::{Decision, Policy, SelectContext};
use crate::registry::Candidate;

/// Asks `policy` for a candidate with a free slot and claims one of its slots (compare-and-swap,
/// never over the node's slot count). When another request took the slot first, the policy is
/// asked again; `None` when every candidate is busy. The policy is told where the request went.
pub(super) fn claim<'a>(
    candidates: &'a [Candidate],
    policy: &dyn Policy,
    ctx: &SelectContext<'_>,
) -> Option<(&'a Candidate, Decision)> {
    // Each failed claim means another request took that slot; bounded by the slot count.
    for _ in 0..=candidates.len() {
        let decision = policy.decide(candidates, ctx)?;
        let candidate = &candidates[decision.index];
        if candidate.try_claim() {
            policy.sent(candidate, ctx);
            return Some((candidate, decision));
        }
    }
    None
}
