//! Dispatcher behaviour without a network: FIFO hand-over, the bound, abandoned waiters.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::dispatch::policy::BalancerMode;
use crate::dispatch::testing::register;
use crate::registry::HealthPolicy;

fn dispatcher(slots: u32, capacity: usize) -> Arc<Dispatcher> {
    let registry = Arc::new(Registry::new(HealthPolicy {
        node_timeout: Duration::from_secs(30),
    }));
    register(&registry, "a", slots);
    Dispatcher::new(
        registry,
        BalancerMode::Auto.build(),
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
        BalancerMode::Auto.build(),
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
