//! Dispatcher behaviour without a network: FIFO hand-over, the bound, abandoned waiters.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::dispatch::policy::LeastOutstanding;
use crate::dispatch::testing::register;
use crate::registry::HealthPolicy;

fn dispatcher(slots: u32, capacity: usize) -> Arc<Dispatcher> {
    let registry = Arc::new(Registry::new(HealthPolicy {
        node_timeout: Duration::from_secs(30),
    }));
    register(&registry, "a", slots);
    Dispatcher::new(
        registry,
        Arc::new(LeastOutstanding::default()),
        capacity,
        None,
        Duration::from_secs(30),
    )
}

#[tokio::test]
async fn released_slot_goes_to_the_oldest_waiter() {
    let d = dispatcher(1, 10);
    let held = d
        .acquire("m", &Tenant::anonymous(), Waiting::Allowed)
        .await
        .unwrap();
    let first = tokio::spawn({
        let d = Arc::clone(&d);
        async move {
            d.acquire("m", &Tenant::anonymous(), Waiting::Allowed)
                .await
                .map(|_| 1)
        }
    });
    while d.depth() < 1 {
        tokio::task::yield_now().await;
    }
    let second = tokio::spawn({
        let d = Arc::clone(&d);
        async move {
            d.acquire("m", &Tenant::anonymous(), Waiting::Allowed)
                .await
                .map(|_| 2)
        }
    });
    while d.depth() < 2 {
        tokio::task::yield_now().await;
    }
    drop(held);
    assert_eq!(first.await.unwrap(), Ok(1));
    // `first`'s lease was dropped when its task ended, which serves `second`.
    assert_eq!(second.await.unwrap(), Ok(2));
    assert_eq!(d.depth(), 0);
    assert_eq!(d.stats().served_after_wait_total, 2);
}

#[tokio::test]
async fn full_queue_refuses_at_once() {
    let d = dispatcher(1, 1);
    let _held = d
        .acquire("m", &Tenant::anonymous(), Waiting::Allowed)
        .await
        .unwrap();
    let waiter = tokio::spawn({
        let d = Arc::clone(&d);
        async move {
            d.acquire("m", &Tenant::anonymous(), Waiting::Allowed)
                .await
                .is_ok()
        }
    });
    while d.depth() < 1 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        d.acquire("m", &Tenant::anonymous(), Waiting::Allowed)
            .await
            .unwrap_err(),
        AcquireError::QueueFull(1)
    );
    waiter.abort();
}

#[tokio::test]
async fn abandoned_waiter_leaves_the_queue_at_once() {
    let d = dispatcher(1, 10);
    let held = d
        .acquire("m", &Tenant::anonymous(), Waiting::Allowed)
        .await
        .unwrap();
    let waiter = tokio::spawn({
        let d = Arc::clone(&d);
        async move {
            d.acquire("m", &Tenant::anonymous(), Waiting::Allowed)
                .await
                .is_ok()
        }
    });
    while d.depth() < 1 {
        tokio::task::yield_now().await;
    }
    waiter.abort();
    let _ = waiter.await;
    assert_eq!(d.depth(), 0);
    assert_eq!(d.stats().abandoned_total, 1);
    drop(held);
    let again = d
        .acquire("m", &Tenant::anonymous(), Waiting::Allowed)
        .await
        .unwrap();
    assert_eq!(again.node().machine_name, "a", "the slot was not leaked");
}

#[tokio::test]
async fn unknown_model_and_timeouts_are_errors() {
    let d = dispatcher(1, 10);
    assert_eq!(
        d.acquire("nope", &Tenant::anonymous(), Waiting::Allowed)
            .await
            .unwrap_err(),
        AcquireError::UnknownModel
    );
    let timed = Dispatcher::new(
        Arc::clone(&d.registry),
        Arc::new(LeastOutstanding::default()),
        10,
        Some(Duration::from_millis(50)),
        Duration::from_secs(30),
    );
    let _held = timed
        .acquire("m", &Tenant::anonymous(), Waiting::Allowed)
        .await
        .unwrap();
    assert!(matches!(
        timed
            .acquire("m", &Tenant::anonymous(), Waiting::Allowed)
            .await,
        Err(AcquireError::TimedOut(_))
    ));
}

/// A dispatcher over one node with `slots` slots for `m`, holding each tenant to `shares`.
fn shared(slots: u32, capacity: usize, shares: ShareLimits) -> Arc<Dispatcher> {
    let registry = Arc::new(Registry::new(HealthPolicy {
        node_timeout: Duration::from_secs(30),
    }));
    register(&registry, "a", slots);
    Dispatcher::with_shares(
        registry,
        Arc::new(LeastOutstanding::default()),
        capacity,
        None,
        Duration::from_secs(30),
        shares,
    )
}

/// Starts `tenant`'s request for `m` in the background and waits until it waits in the queue.
async fn queued(
    d: &Arc<Dispatcher>,
    tenant: &Tenant,
) -> tokio::task::JoinHandle<Result<Lease, AcquireError>> {
    let before = d.depth();
    let task = tokio::spawn({
        let (d, tenant) = (Arc::clone(d), tenant.clone());
        async move { d.acquire("m", &tenant, Waiting::Allowed).await }
    });
    while d.depth() == before {
        tokio::task::yield_now().await;
    }
    task
}

#[tokio::test]
async fn a_key_at_its_queue_share_is_refused_and_another_key_still_waits() {
    let d = shared(
        1,
        10,
        ShareLimits {
            max_queued: 2,
            max_in_flight: InFlightLimit::Off,
        },
    );
    let (a, b) = (Tenant::key("a"), Tenant::key("b"));
    let held = d.acquire("m", &a, Waiting::Allowed).await.unwrap();
    let a1 = queued(&d, &a).await;
    let a2 = queued(&d, &a).await;
    assert_eq!(
        d.acquire("m", &a, Waiting::Allowed).await.unwrap_err(),
        AcquireError::KeyQueueShare(2)
    );
    let b1 = queued(&d, &b).await;
    assert_eq!(d.depth(), 3);
    assert_eq!(d.stats().per_key.refused_total, 1);
    assert_eq!(d.stats().rejected_total, 0, "not counted as a full queue");
    drop(held);
    for waiter in [a1, a2, b1] {
        drop(waiter.await.unwrap().unwrap());
    }
}

#[tokio::test]
async fn a_key_holding_its_slot_share_waits_while_another_key_takes_a_free_slot() {
    let d = shared(
        2,
        10,
        ShareLimits {
            max_queued: 0,
            max_in_flight: InFlightLimit::Fixed(1),
        },
    );
    let (a, b) = (Tenant::key("a"), Tenant::key("b"));
    let a_held = d.acquire("m", &a, Waiting::Allowed).await.unwrap();
    // `a` holds its share: its second request waits though a slot is free...
    let a_next = queued(&d, &a).await;
    // ...and `b` gets the free slot at once, past `a`'s waiter.
    let b_held = tokio::time::timeout(Duration::from_secs(1), d.acquire("m", &b, Waiting::Allowed))
        .await
        .expect("b was not served at once")
        .unwrap();
    // A slot `b` frees goes to `b`'s waiter, not to `a`'s (still at its share) ahead of it.
    let b_next = queued(&d, &b).await;
    drop(b_held);
    let b_next = b_next.await.unwrap().unwrap();
    assert!(!a_next.is_finished(), "a got a second slot");
    // Once `a`'s own answer ends, its waiter is served.
    drop(a_held);
    let a_next = a_next.await.unwrap().unwrap();
    let stats = d.stats();
    assert_eq!(stats.per_key.in_flight, 2, "{stats:?}");
    drop((a_next, b_next));
    let stats = d.stats();
    assert_eq!(
        (
            stats.per_key.keys,
            stats.per_key.waiting,
            stats.per_key.in_flight
        ),
        (0, 0, 0),
        "{stats:?}"
    );
}

#[tokio::test]
async fn per_key_counts_return_to_zero_after_abandoned_and_timed_out_waiters() {
    let registry = Arc::new(Registry::new(HealthPolicy {
        node_timeout: Duration::from_secs(30),
    }));
    register(&registry, "a", 1);
    let d = Dispatcher::with_shares(
        registry,
        Arc::new(LeastOutstanding::default()),
        10,
        Some(Duration::from_millis(100)),
        Duration::from_secs(30),
        ShareLimits {
            max_queued: 1,
            max_in_flight: InFlightLimit::Auto,
        },
    );
    let a = Tenant::key("a");
    let held = d.acquire("m", &a, Waiting::Allowed).await.unwrap();
    let gone = queued(&d, &a).await;
    gone.abort();
    let _ = gone.await;
    // The abandoned waiter no longer counts: `a` may wait again (and times out).
    assert!(matches!(
        d.acquire("m", &a, Waiting::Allowed).await,
        Err(AcquireError::TimedOut(_))
    ));
    assert_eq!(d.stats().per_key.waiting, 0);
    assert_eq!(d.stats().per_key.in_flight, 1);
    drop(held);
    let stats = d.stats();
    assert_eq!(
        (
            stats.per_key.keys,
            stats.per_key.waiting,
            stats.per_key.in_flight
        ),
        (0, 0, 0),
        "{stats:?}"
    );
}

#[test]
fn waiters_are_placed_by_priority_fifo_within_one_and_aged() {
    let now = Instant::now();
    let ago = |secs: u64| now.checked_sub(Duration::from_secs(secs)).unwrap_or(now);
    // One priority: always at the end (FIFO).
    let flat = [(0, ago(1)), (0, now)];
    assert_eq!(place(flat.into_iter(), 0, now), 2);
    // A higher priority goes ahead of lower ones that have not waited long.
    let low = [(0, now), (0, now)];
    assert_eq!(place(low.into_iter(), 3, now), 0);
    // ...behind the higher or equal ones, in arrival order.
    let mixed = [(5, now), (3, now), (0, now)];
    assert_eq!(place(mixed.into_iter(), 3, now), 2);
    // A low-priority waiter that has waited 3 ageing steps ranks as priority 3: a new request
    // of priority 3 queues behind it.
    let aged = [
        (0, now.checked_sub(3 * PRIORITY_AGEING).unwrap_or(now)),
        (0, now),
    ];
    assert_eq!(place(aged.into_iter(), 3, now), 1);
    assert_eq!(place([].into_iter(), 9, now), 0);
}

#[tokio::test]
async fn a_released_slot_goes_to_the_higher_priority_waiter_first() {
    let d = dispatcher(1, 10);
    let held = d
        .acquire("m", &Tenant::key("low"), Waiting::Allowed)
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for (i, tenant) in [
        Tenant::key("low"),
        Tenant::key("low"),
        Tenant::key("high").with_priority(5),
    ]
    .into_iter()
    .enumerate()
    {
        let shared = Arc::clone(&d);
        let tx = tx.clone();
        tokio::spawn(async move {
            let lease = shared
                .acquire("m", &tenant, Waiting::Allowed)
                .await
                .unwrap();
            tx.send(i).unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
            drop(lease);
        });
        while d.depth() < i + 1 {
            tokio::task::yield_now().await;
        }
    }
    drop(held);
    let mut order = Vec::new();
    for _ in 0..3 {
        order.push(rx.recv().await.unwrap());
    }
    assert_eq!(order, [2, 0, 1], "the priority-5 waiter first, then FIFO");
}
