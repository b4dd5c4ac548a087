//! Per-key shares: how many of the wait queue's places, and how many of a model's slots, one
//! [`Tenant`] (an API key, or a client address when no key is needed) may hold at once.
//!
//! A tenant at its queue share is refused at once (429 `key_queue_share`). A tenant at its slot
//! share for a model is not refused: its requests wait in the queue, and the waiters of other
//! tenants are served before them, until one of its own answers ends. Others are never refused
//! for it.
//!
//! The counts live under the dispatcher's queue lock (taken once per request anyway); a held slot
//! is counted by an [`InFlightShare`] riding on the [`Lease`](super::Lease), which gives it back
//! on drop without a lock.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::registry::Candidate;

/// Who a request counts against for the per-key shares, and the priority its waiters get in the
/// queue (equal tenants are the same key or address, whatever the priority).
#[derive(Debug, Clone)]
pub struct Tenant {
    id: Arc<str>,
    priority: u8,
}

impl PartialEq for Tenant {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for Tenant {}

impl std::hash::Hash for Tenant {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

impl Tenant {
    fn new(id: Arc<str>) -> Tenant {
        Tenant { id, priority: 0 }
    }

    /// Requests made with the API key of id `id`.
    pub fn key(id: &str) -> Tenant {
        Tenant::new(Arc::from(format!("key:{id}")))
    }

    /// Requests without a key (anonymous inference) from `ip`.
    pub fn address(ip: IpAddr) -> Tenant {
        Tenant::new(Arc::from(format!("addr:{ip}")))
    }

    /// Requests without a key and without a known address: one bucket for all of them.
    pub fn anonymous() -> Tenant {
        Tenant::new(Arc::from("anonymous"))
    }

    /// The tenant whose waiters rank `priority` in the queue (0, the default, is the lowest).
    pub fn with_priority(mut self, priority: u8) -> Tenant {
        self.priority = priority;
        self
    }

    pub fn priority(&self) -> u8 {
        self.priority
    }
}

/// How many slots of a model one tenant may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InFlightLimit {
    /// No per-tenant limit.
    Off,
    /// At most this many slots per model.
    Fixed(u32),
    /// Three quarters of the model's slots over the ready nodes, rounded up: from 4 slots on, at
    /// least a quarter stays for other tenants; nodes that do not report slots set no limit.
    Auto,
}

/// The per-tenant limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareLimits {
    /// Places in the wait queue per tenant; 0 = no limit.
    pub max_queued: usize,
    pub max_in_flight: InFlightLimit,
}

impl ShareLimits {
    /// No per-tenant limit at all.
    pub const OFF: ShareLimits = ShareLimits {
        max_queued: 0,
        max_in_flight: InFlightLimit::Off,
    };
}

/// A slot held by a tenant, given back when dropped.
#[derive(Debug)]
pub(in crate::dispatch) struct InFlightShare(Arc<AtomicU32>);

impl InFlightShare {
    fn take(counter: &Arc<AtomicU32>) -> InFlightShare {
        counter.fetch_add(1, Ordering::Relaxed);
        InFlightShare(Arc::clone(counter))
    }
}

impl Drop for InFlightShare {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One tenant's counts.
#[derive(Debug, Default)]
struct Account {
    waiting: usize,
    /// Slots held per model.
    in_flight: HashMap<Arc<str>, Arc<AtomicU32>>,
}

impl Account {
    fn is_idle(&self) -> bool {
        // A counter held by a lease or a waiter has another owner.
        self.waiting == 0 && self.in_flight.values().all(|c| Arc::strong_count(c) == 1)
    }
}

/// A tenant's slot counter for one model: what a waiter keeps to know whether it may be served.
#[derive(Debug, Clone)]
pub(super) struct SlotShare(Arc<AtomicU32>);

impl SlotShare {
    /// True when the tenant holds fewer than `limit` slots (`None`: no limit).
    pub(super) fn has_room(&self, limit: Option<u32>) -> bool {
        limit.is_none_or(|limit| self.0.load(Ordering::Relaxed) < limit)
    }

    /// Counts one more slot held.
    pub(super) fn take(&self) -> InFlightShare {
        InFlightShare::take(&self.0)
    }
}

/// Idle accounts are swept once the map has grown past this many entries (and then past twice
/// its size after the last sweep).
const SWEEP_FLOOR: usize = 256;

/// Every tenant's counts; kept under the dispatcher's queue lock.
#[derive(Debug)]
pub(super) struct Shares {
    limits: ShareLimits,
    accounts: HashMap<Tenant, Account>,
    sweep_at: usize,
}

/// Totals over every tenant, for `GET /api/queue`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShareTotals {
    /// Tenants with a request waiting or holding a slot.
    pub tenants: usize,
    pub waiting: usize,
    pub in_flight: u64,
}

impl Shares {
    pub(super) fn new(limits: ShareLimits) -> Shares {
        Shares {
            limits,
            accounts: HashMap::new(),
            sweep_at: SWEEP_FLOOR,
        }
    }

    /// `tenant`'s slot counter for `model`.
    pub(super) fn slot_share(&mut self, tenant: &Tenant, model: &str) -> SlotShare {
        if self.accounts.len() >= self.sweep_at {
            self.sweep();
        }
        let account = self.accounts.entry(tenant.clone()).or_default();
        let counter = match account.in_flight.get(model) {
            Some(counter) => Arc::clone(counter),
            None => {
                let counter = Arc::new(AtomicU32::new(0));
                account
                    .in_flight
                    .insert(Arc::from(model), Arc::clone(&counter));
                counter
            }
        };
        SlotShare(counter)
    }

    /// The most slots of a model one tenant may hold, given the model's `candidates`.
    pub(super) fn in_flight_limit(&self, candidates: &[Candidate]) -> Option<u32> {
        match self.limits.max_in_flight {
            InFlightLimit::Off | InFlightLimit::Fixed(0) => None,
            InFlightLimit::Fixed(n) => Some(n),
            InFlightLimit::Auto => auto_limit(candidates.iter().map(|c| c.capacity)),
        }
    }

    /// `Err(limit)` when `tenant` already has its share of the queue waiting.
    pub(super) fn check_queue(&self, tenant: &Tenant) -> Result<(), usize> {
        let max = self.limits.max_queued;
        let waiting = self.accounts.get(tenant).map_or(0, |a| a.waiting);
        if max > 0 && waiting >= max {
            Err(max)
        } else {
            Ok(())
        }
    }

    /// One more request of `tenant` waits.
    pub(super) fn queued(&mut self, tenant: &Tenant) {
        self.accounts.entry(tenant.clone()).or_default().waiting += 1;
    }

    /// A request of `tenant` left the queue (served, timed out, gone, failed).
    pub(super) fn left_queue(&mut self, tenant: &Tenant) {
        if let Some(account) = self.accounts.get_mut(tenant) {
            account.waiting = account.waiting.saturating_sub(1);
        }
    }

    /// Drops the accounts of tenants with nothing waiting or held.
    fn sweep(&mut self) {
        self.accounts.retain(|_, account| !account.is_idle());
        self.sweep_at = SWEEP_FLOOR.max(self.accounts.len() * 2);
    }

    pub(super) fn totals(&self) -> ShareTotals {
        let mut totals = ShareTotals::default();
        for account in self.accounts.values() {
            let held: u64 = account
                .in_flight
                .values()
                .map(|c| u64::from(c.load(Ordering::Relaxed)))
                .sum();
            if account.waiting > 0 || held > 0 {
                totals.tenants += 1;
            }
            totals.waiting += account.waiting;
            totals.in_flight += held;
        }
        totals
    }
}

/// Three quarters of the total of `capacities`, rounded up; `None` when a node does not report
/// its slots (`u32::MAX`) or there are none.
fn auto_limit(capacities: impl Iterator<Item = u32>) -> Option<u32> {
    let mut total: u64 = 0;
    for capacity in capacities {
        if capacity == u32::MAX {
            return None;
        }
        total += u64::from(capacity);
    }
    if total == 0 {
        return None;
    }
    u32::try_from((total * 3).div_ceil(4)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_queued: usize, max_in_flight: InFlightLimit) -> Shares {
        Shares::new(ShareLimits {
            max_queued,
            max_in_flight,
        })
    }

    #[test]
    fn auto_keeps_a_quarter_of_four_slots_or_more_for_others() {
        let auto = |caps: &[u32]| auto_limit(caps.iter().copied());
        assert_eq!(auto(&[1]), Some(1));
        assert_eq!(auto(&[2]), Some(2));
        assert_eq!(auto(&[3]), Some(3));
        assert_eq!(auto(&[4]), Some(3));
        assert_eq!(auto(&[4, 4]), Some(6));
        assert_eq!(auto(&[64]), Some(48));
        assert_eq!(auto(&[]), None);
        assert_eq!(auto(&[4, u32::MAX]), None, "a node without a slot count");
    }

    #[test]
    fn queue_share_refuses_the_tenant_at_its_share_only() {
        let mut shares = limits(2, InFlightLimit::Off);
        let (a, b) = (Tenant::key("a"), Tenant::key("b"));
        shares.queued(&a);
        assert_eq!(shares.check_queue(&a), Ok(()));
        shares.queued(&a);
        assert_eq!(shares.check_queue(&a), Err(2));
        assert_eq!(shares.check_queue(&b), Ok(()), "another key is not refused");
        shares.left_queue(&a);
        assert_eq!(shares.check_queue(&a), Ok(()));
    }

    #[test]
    fn zero_means_no_limit() {
        let mut shares = limits(0, InFlightLimit::Fixed(0));
        let a = Tenant::key("a");
        for _ in 0..10_000 {
            shares.queued(&a);
        }
        assert_eq!(shares.check_queue(&a), Ok(()));
        assert_eq!(shares.in_flight_limit(&[]), None);
    }

    #[test]
    fn held_slots_are_counted_per_model_and_given_back_on_drop() {
        let mut shares = limits(0, InFlightLimit::Fixed(2));
        let a = Tenant::key("a");
        let m = shares.slot_share(&a, "m");
        let held = [m.take(), m.take()];
        assert!(!m.has_room(shares.in_flight_limit(&[])));
        assert!(
            shares.slot_share(&a, "other").has_room(Some(2)),
            "another model has its own count"
        );
        assert!(shares.slot_share(&Tenant::key("b"), "m").has_room(Some(2)));
        assert_eq!(shares.totals().in_flight, 2);
        drop(held);
        assert!(m.has_room(Some(2)));
        assert_eq!(shares.totals(), ShareTotals::default());
    }

    #[test]
    fn idle_accounts_are_swept_and_busy_ones_kept() {
        let mut shares = limits(0, InFlightLimit::Off);
        let busy = Tenant::key("busy");
        let held = shares.slot_share(&busy, "m").take();
        shares.queued(&Tenant::key("waiting"));
        for i in 0..SWEEP_FLOOR * 4 {
            let _ = shares.slot_share(&Tenant::key(&i.to_string()), "m");
        }
        assert!(
            shares.accounts.len() <= SWEEP_FLOOR * 2 + 2,
            "{} accounts kept",
            shares.accounts.len()
        );
        assert!(shares.accounts.contains_key(&busy));
        assert!(shares.accounts.contains_key(&Tenant::key("waiting")));
        assert_eq!(shares.totals().in_flight, 1);
        drop(held);
    }
}
