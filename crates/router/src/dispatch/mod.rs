//! Dispatch: which node gets a request, read in order.
//!
//! 1. `candidates.rs` — the nodes with the model ready (online, not draining, model loaded), from
//!    the registry's lock-free snapshot; none at all fails the request, none yet lets it wait.
//! 2. [`policy`] — the configured [`Policy`] (`auto`, `round_robin`, `metrics`) picks one that has
//!    a free slot.
//! 3. `claim.rs` — its slot is taken with compare-and-swap; a [`Lease`] (`lease.rs`) holds it and
//!    frees it when dropped (it rides on the response body).
//! 4. `queue/` — when every candidate is busy, the [`Dispatcher`] parks the request in a bounded
//!    FIFO queue per model and hands it a lease when a slot frees or a node becomes ready. Each
//!    request counts against its [`Tenant`] (its API key): one key may hold only its share of the
//!    queue and of a model's slots (`queue/shares.rs`).
//! 5. `failover.rs` — the [`Forwarder`] sends the request through a [`NodeClient`]
//!    (`node_client.rs`); a node that fails before the first byte is reported (`failure.rs`, also
//!    used by the relay for a node that breaks off later) and the request is tried on another
//!    node, up to `max_attempts`.
//!
//! Relaying the answer is [`crate::proxy`]'s job.

mod candidates;
mod claim;
mod failover;
mod failure;
mod lease;
mod node_client;
pub mod policy;
mod queue;

#[cfg(test)]
mod failover_tests;
#[cfg(test)]
mod testing;

pub use failover::{Dispatched, Forwarder, Upstream};
pub use failure::{Phase, report_failure};
pub use lease::Lease;
pub use node_client::{HttpNodeClient, NodeClient};
pub use policy::{BalancerMode, CacheAware, Decision, Policy, SelectContext};
pub use queue::{
    AcquireError, Dispatcher, InFlightLimit, QueueStats, QueueStatsView, ShareLimits, Tenant,
    Waiting, run_waker,
};
