//! A claimed slot on a node, released when dropped.

use std::sync::Arc;
use std::time::Duration;

use super::policy::Decision;
use super::queue::{Dispatcher, InFlightShare};
use crate::registry::Candidate;
use crate::registry::{InFlightGuard, Node, SlotCounter};

/// The right to send one request to one node. Dropping it frees the slot and wakes the next
/// waiter of the model; it rides on the response body, so the slot is held until the stream ends
/// or the client goes away.
pub struct Lease {
    node: Arc<Node>,
    slots: Arc<SlotCounter>,
    model: Arc<str>,
    dispatcher: Option<Arc<Dispatcher>>,
    waited: Duration,
    /// The slot counted against the tenant that holds it (its per-key share).
    share: Option<InFlightShare>,
    /// What the policy chose and expected, and among how many candidates.
    decision: Decision,
    candidates: u32,
    /// Prompt tokens the node was expected to compute, counted in its backlog until its answer
    /// starts (or the lease ends).
    prompt_backlog: u64,
    _node_in_flight: InFlightGuard,
}

impl Lease {
    /// Wraps a slot already claimed on `candidate`, chosen by `decision` among `candidates`, for a
    /// prompt of `prompt_tokens` (estimated; 0 when unknown).
    pub(super) fn new(
        (candidate, decision): (&Candidate, Decision),
        candidates: usize,
        prompt_tokens: u64,
        model: Arc<str>,
        dispatcher: Arc<Dispatcher>,
    ) -> Lease {
        let prompt_backlog =
            prompt_tokens.saturating_sub(decision.predicted_cached_tokens.unwrap_or(0));
        if prompt_backlog > 0 {
            candidate.node.counters.cache.start_prompt(prompt_backlog);
        }
        Lease {
            node: Arc::clone(&candidate.node),
            slots: Arc::clone(&candidate.slots),
            model,
            dispatcher: Some(dispatcher),
            waited: Duration::ZERO,
            share: None,
            decision,
            candidates: u32::try_from(candidates).unwrap_or(u32::MAX),
            prompt_backlog,
            _node_in_flight: candidate.node.counters.start_request(),
        }
    }

    /// What the policy chose and expected.
    pub fn decision(&self) -> &Decision {
        &self.decision
    }

    /// Candidates the policy chose among.
    pub fn candidates(&self) -> u32 {
        self.candidates
    }

    /// The node's answer started: its prompt is computed, no longer in its backlog.
    /// Free when there is none (policies that do not route by prompt, every chunk after the
    /// first): no atomic is touched.
    pub fn prompt_done(&mut self) {
        if self.prompt_backlog > 0 {
            self.node
                .counters
                .cache
                .finish_prompt(std::mem::take(&mut self.prompt_backlog));
        }
    }

    pub(super) fn waited(mut self, waited: Duration) -> Lease {
        self.waited = waited;
        self
    }

    /// Counts the slot against a tenant (replacing the tenant it was counted against, if any).
    pub(super) fn counted(mut self, share: InFlightShare) -> Lease {
        self.share = Some(share);
        self
    }

    /// The node this lease is for.
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// Time the request spent in the queue.
    pub fn queue_time(&self) -> Duration {
        self.waited
    }

    /// Frees the slot without waking anyone (the caller holds the queue lock).
    pub(super) fn release_quietly(mut self) {
        self.dispatcher = None;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // The tenant's count first: the waiter the slot goes to may be the tenant's own.
        self.share = None;
        self.prompt_done();
        self.slots.release();
        if let Some(dispatcher) = self.dispatcher.take() {
            dispatcher.drain(&self.model);
        }
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("node", &self.node.machine_name)
            .field("model", &self.model)
            .field("waited", &self.waited)
            .finish()
    }
}
