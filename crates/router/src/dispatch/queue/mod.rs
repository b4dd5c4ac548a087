//! Step 4 of dispatch, the [`Dispatcher`]: claims a slot on a candidate node for each request, or
//! parks the request in a bounded FIFO queue per model until a slot frees.
//!
//! Waiters are woken by notification, never by polling: a released slot (a [`Lease`] dropped) or a
//! new registry snapshot (a node became ready, a heartbeat raised capacity) runs [`Dispatcher::drain`],
//! which claims slots on behalf of the waiters at the head of the queue and hands each its lease.
//! New requests never overtake waiters of the same model. A waiter whose client goes away is
//! removed at once (its future is dropped) and is never given a node.
//!
//! Within a model's queue, waiters of a higher-priority tenant (an API key's `priority`) are
//! placed ahead of lower ones, FIFO within a priority; a waiter's priority rises every
//! [`PRIORITY_AGEING`] it waits, so low priorities are delayed, never starved.
//!
//! Each request counts against its [`Tenant`] (`shares.rs`): a tenant with its share of the queue
//! waiting is refused, and a tenant holding its share of a model's slots waits while the waiters
//! of other tenants behind it are served first.

mod shares;
mod stats;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

pub use shares::{InFlightLimit, ShareLimits, Tenant};
pub use stats::{QueueStats, QueueStatsView};

pub(super) use shares::InFlightShare;
use shares::{ShareTotals, Shares, SlotShare};

use super::candidates::{Outlook, outlook};
use super::claim::claim;
use super::lease::Lease;
use super::policy::{Policy, SelectContext};
use crate::affinity::PromptKey;
use crate::registry::{Registry, Snapshot};

/// Why no lease was granted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AcquireError {
    #[error("no node knows the model")]
    UnknownModel,
    #[error("every node with the model is offline")]
    NoNode,
    #[error("the wait queue is full ({0} waiting)")]
    QueueFull(usize),
    #[error("no slot freed within {0:?}")]
    TimedOut(Duration),
    #[error("this key already has {0} requests waiting, its share of the wait queue")]
    KeyQueueShare(usize),
}

/// Whether a request may wait for capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// Wait while the model is busy or still loading somewhere (a new request).
    Allowed,
    /// Wait only while candidates exist but are busy, at the head of the queue (a retry after a
    /// failed node: its request already waited its turn).
    Retry,
}

struct Waiter {
    id: u64,
    tx: oneshot::Sender<Lease>,
    /// The request's prompt key, for policies that route by it.
    prompt: Option<Arc<PromptKey>>,
    tenant: Tenant,
    /// The tenant's slot count for the model.
    share: SlotShare,
    /// When it joined the queue (its priority rises as it waits).
    since: Instant,
}

/// A waiter's priority rises by one each time it has waited this long, so a request of low
/// priority is overtaken by later ones of higher priority for a bounded time only (at most
/// `PRIORITY_AGEING` × the difference of priorities): none starves.
pub const PRIORITY_AGEING: Duration = Duration::from_secs(2);

/// A waiter's rank at `now`: its tenant's priority, raised by the time it has waited.
fn rank(priority: u8, since: Instant, now: Instant) -> u64 {
    let steps = now.saturating_duration_since(since).as_millis() / PRIORITY_AGEING.as_millis();
    u64::from(priority).saturating_add(u64::try_from(steps).unwrap_or(u64::MAX))
}

/// Where a new waiter of `priority` joins a queue whose waiters have `ranks` (priority, since):
/// behind every waiter ranking as high or higher now, ahead of the others. With one priority the
/// queue is FIFO; within a priority too.
fn place(
    ranks: impl DoubleEndedIterator<Item = (u8, Instant)> + ExactSizeIterator,
    priority: u8,
    now: Instant,
) -> usize {
    let wanted = u64::from(priority);
    let len = ranks.len();
    ranks
        .rev()
        .position(|(p, since)| rank(p, since, now) >= wanted)
        .map_or(0, |from_end| len - from_end)
}

/// The waiters of every model, and every tenant's counts: one lock.
struct Queues {
    by_model: HashMap<Arc<str>, VecDeque<Waiter>>,
    shares: Shares,
}

/// Where the first waiter at or after `from` that may be served now is (its tenant below its slot
/// share `limit`).
fn first_servable(queue: &VecDeque<Waiter>, from: usize, limit: Option<u32>) -> Option<usize> {
    queue
        .iter()
        .skip(from)
        .position(|w| w.share.has_room(limit))
        .map(|at| at + from)
}

pub struct Dispatcher {
    registry: Arc<Registry>,
    policy: Arc<dyn Policy>,
    queues: Mutex<Queues>,
    waiting: AtomicUsize,
    capacity: usize,
    wait_timeout: Option<Duration>,
    metrics_max_age: Duration,
    next_id: AtomicU64,
    stats: QueueStats,
}

impl Dispatcher {
    pub fn new(
        registry: Arc<Registry>,
        policy: Arc<dyn Policy>,
        capacity: usize,
        wait_timeout: Option<Duration>,
        metrics_max_age: Duration,
    ) -> Arc<Self> {
        Self::with_shares(
            registry,
            policy,
            capacity,
            wait_timeout,
            metrics_max_age,
            ShareLimits::OFF,
        )
    }

    /// A dispatcher that also holds each tenant to `shares`.
    pub fn with_shares(
        registry: Arc<Registry>,
        policy: Arc<dyn Policy>,
        capacity: usize,
        wait_timeout: Option<Duration>,
        metrics_max_age: Duration,
        shares: ShareLimits,
    ) -> Arc<Self> {
        Arc::new(Dispatcher {
            registry,
            policy,
            queues: Mutex::new(Queues {
                by_model: HashMap::new(),
                shares: Shares::new(shares),
            }),
            waiting: AtomicUsize::new(0),
            capacity,
            wait_timeout,
            metrics_max_age,
            next_id: AtomicU64::new(0),
            stats: QueueStats::default(),
        })
    }

    pub fn policy_name(&self) -> &'static str {
        self.policy.name()
    }

    /// Whether requests should bring their prompt key ([`Dispatcher::acquire_for`]).
    pub fn wants_prompt(&self) -> bool {
        self.policy.wants_prompt()
    }

    /// Requests waiting now, over all models.
    pub fn depth(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    pub fn stats(&self) -> QueueStatsView {
        let queues = self.queues();
        let by_model = queues
            .by_model
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(m, q)| (m.to_string(), q.len()))
            .collect();
        let totals = queues.shares.totals();
        drop(queues);
        self.stats
            .view(self.depth(), self.capacity, by_model, totals)
    }

    fn queues(&self) -> MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot on a node with `model` ready for a request of `tenant`: at once when one is free,
    /// nobody who may be served is waiting, and the tenant holds less than its share of the
    /// model's slots; otherwise after waiting in the model's queue.
    pub async fn acquire(
        self: &Arc<Self>,
        model: &str,
        tenant: &Tenant,
        waiting: Waiting,
    ) -> Result<Lease, AcquireError> {
        self.acquire_for(model, tenant, waiting, None).await
    }

    /// [`Dispatcher::acquire`] for a request whose prompt has the key `prompt` (which a
    /// cache-aware policy routes by).
    pub async fn acquire_for(
        self: &Arc<Self>,
        model: &str,
        tenant: &Tenant,
        waiting: Waiting,
        prompt: Option<Arc<PromptKey>>,
    ) -> Result<Lease, AcquireError> {
        let started = Instant::now();
        let rx = {
            let snapshot = self.registry.snapshot();
            let candidates = match outlook(&snapshot, model) {
                Outlook::Never(e) => return Err(e),
                Outlook::Soon if waiting == Waiting::Retry => return Err(AcquireError::NoNode),
                Outlook::Soon => &[][..],
                Outlook::Candidates(candidates) => candidates,
            };
            let mut queues = self.queues();
            let Queues { by_model, shares } = &mut *queues;
            let share = shares.slot_share(tenant, model);
            let limit = shares.in_flight_limit(candidates);
            let ahead = by_model
                .get(model)
                .is_some_and(|q| first_servable(q, 0, limit).is_some());
            if share.has_room(limit)
                && (!ahead || waiting == Waiting::Retry)
                && let Some(lease) = self.try_claim(&snapshot, model, prompt.as_deref())
            {
                return Ok(lease.counted(share.take()));
            }
            if let Err(max) = shares.check_queue(tenant) {
                self.stats.record_key_share_refused();
                return Err(AcquireError::KeyQueueShare(max));
            }
            let depth = self.waiting.load(Ordering::Relaxed);
            if depth >= self.capacity {
                self.stats.record_rejected();
                return Err(AcquireError::QueueFull(depth));
            }
            let (tx, rx) = oneshot::channel();
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let queue = by_model.entry(Arc::from(model)).or_default();
            let waiter = Waiter {
                id,
                tx,
                prompt,
                tenant: tenant.clone(),
                share,
                since: started,
            };
            match waiting {
                Waiting::Allowed => {
                    let ranks = queue.iter().map(|w| (w.tenant.priority(), w.since));
                    let at = place(ranks, tenant.priority(), started);
                    queue.insert(at, waiter);
                }
                Waiting::Retry => queue.push_front(waiter),
            }
            shares.queued(tenant);
            self.waiting.fetch_add(1, Ordering::Relaxed);
            self.stats.record_queued();
            (
                rx,
                WaiterGuard {
                    dispatcher: self,
                    client_left: true,
                    model,
                    id,
                },
            )
        };
        let (rx, mut guard) = rx;
        let lease = match self.wait_timeout {
            None => rx.await.map_err(|_| AcquireError::NoNode),
            Some(limit) => match tokio::time::timeout(limit, rx).await {
                Ok(result) => result.map_err(|_| AcquireError::NoNode),
                Err(_) => {
                    guard.client_left = false;
                    self.stats.record_timed_out();
                    Err(AcquireError::TimedOut(limit))
                }
            },
        }?;
        let waited = started.elapsed();
        self.stats.record_wait(waited);
        Ok(lease.waited(waited))
    }

    /// Picks a candidate with the policy and claims one of its slots.
    fn try_claim(
        self: &Arc<Self>,
        snapshot: &Snapshot,
        model: &str,
        prompt: Option<&PromptKey>,
    ) -> Option<Lease> {
        let Outlook::Candidates(candidates) = outlook(snapshot, model) else {
            return None;
        };
        let ctx = SelectContext {
            model,
            now: Instant::now(),
            metrics_max_age: self.metrics_max_age,
            prompt,
        };
        let claimed = claim(candidates, self.policy.as_ref(), &ctx)?;
        Some(Lease::new(
            claimed,
            candidates.len(),
            prompt.map_or(0, PromptKey::estimated_tokens),
            Arc::from(model),
            Arc::clone(self),
        ))
    }

    /// Hands free slots to the waiters of `model`, in order; fails them all when the model can no
    /// longer be served by anyone.
    pub fn drain(self: &Arc<Self>, model: &str) {
        let mut queues = self.queues();
        let Queues { by_model, shares } = &mut *queues;
        let Some(queue) = by_model.get_mut(model) else {
            return;
        };
        if queue.is_empty() {
            return;
        }
        let snapshot = self.registry.snapshot();
        let candidates = match outlook(&snapshot, model) {
            Outlook::Never(_) => {
                // Dropping the senders fails the waiters with "no node".
                let n = queue.len();
                for waiter in queue.drain(..) {
                    shares.left_queue(&waiter.tenant);
                }
                self.waiting.fetch_sub(n, Ordering::Relaxed);
                return;
            }
            Outlook::Soon => return,
            Outlook::Candidates(candidates) => candidates,
        };
        let limit = shares.in_flight_limit(candidates);
        let mut spare: Option<Lease> = None;
        // Waiters before `from` were passed over (their tenant holds its share): they stay.
        let mut from = 0;
        while let Some(at) = first_servable(queue, from, limit) {
            // A spare lease was chosen for another waiter's prompt: a cache-aware policy chooses
            // again for this one.
            if self.policy.wants_prompt()
                && let Some(lease) = spare.take()
            {
                lease.release_quietly();
            }
            let prompt = queue[at].prompt.as_deref();
            let Some(lease) = spare
                .take()
                .or_else(|| self.try_claim(&snapshot, model, prompt))
            else {
                break;
            };
            let Some(waiter) = queue.remove(at) else {
                spare = Some(lease);
                break;
            };
            from = at;
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            shares.left_queue(&waiter.tenant);
            if let Err(lease) = waiter.tx.send(lease.counted(waiter.share.take())) {
                // The waiter left between its cancellation and its cleanup: the next one gets it.
                spare = Some(lease);
            }
        }
        if let Some(lease) = spare {
            // Nobody left to wake; releasing must not re-enter this (locked) queue.
            lease.release_quietly();
        }
    }

    /// Drains every model with waiters (after the registry changed).
    pub fn drain_all(self: &Arc<Self>) {
        let models: Vec<Arc<str>> = self
            .queues()
            .by_model
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(m, _)| Arc::clone(m))
            .collect();
        for model in models {
            self.drain(&model);
        }
    }

    /// Takes a waiter out of its queue; `client_left` counts it as abandoned.
    fn remove_waiter(&self, model: &str, id: u64, client_left: bool) {
        let mut queues = self.queues();
        let Queues { by_model, shares } = &mut *queues;
        if let Some(queue) = by_model.get_mut(model)
            && let Some(pos) = queue.iter().position(|w| w.id == id)
            && let Some(waiter) = queue.remove(pos)
        {
            shares.left_queue(&waiter.tenant);
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            if client_left {
                self.stats.record_abandoned();
            }
        }
    }
}

/// Removes a waiter from its queue when its request goes away before being served.
struct WaiterGuard<'a> {
    dispatcher: &'a Dispatcher,
    /// False when the router itself gave up on the waiter (timeout).
    client_left: bool,
    model: &'a str,
    id: u64,
}

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.dispatcher
            .remove_waiter(self.model, self.id, self.client_left);
    }
}

/// Wakes waiters whenever the registry publishes a new snapshot, until cancelled.
pub async fn run_waker(dispatcher: Arc<Dispatcher>, cancel: CancellationToken) {
    let mut version = dispatcher.registry.subscribe();
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            changed = version.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
        dispatcher
            .policy
            .fleet_changed(&dispatcher.registry.snapshot());
        dispatcher.drain_all();
    }
}

#[cfg(test)]
mod tests;
