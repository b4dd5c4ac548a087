use std::sync::Arc;

use super::*;
use crate::store::HistorySink;

/// 2026-12-03T18:00:00Z
const T0: u64 = 1_796_320_800_000;

fn at_t0() -> u64 {
    T0
}

fn quotas() -> Arc<Quotas> {
    let (sink, _rx) = HistorySink::channel(16);
    Arc::new(Quotas::with_clock(sink, Vec::new(), at_t0))
}

#[test]
fn requests_per_minute_refuse_exactly_past_the_value_and_free_after_a_minute() {
    let q = quotas();
    let limits = KeyLimits {
        requests_per_minute: Some(3),
        ..KeyLimits::default()
    };
    for i in 0..3 {
        drop(q.admit("k", &limits, T0 + i * 1000).unwrap());
    }
    let refused = q.admit("k", &limits, T0 + 10_000).unwrap_err();
    assert_eq!(refused.limit, Limit::RequestsPerMinute);
    assert_eq!(refused.value, 3);
    // The first request leaves the window at T0 + 60 s.
    assert_eq!(refused.retry_after, Duration::from_secs(50));
    assert!(q.admit("other", &limits, T0 + 10_000).is_ok(), "per key");
    assert!(q.admit("k", &limits, T0 + 60_000).is_ok());
}

#[test]
fn concurrency_counts_tickets_alive() {
    let q = quotas();
    let limits = KeyLimits {
        max_concurrent: Some(2),
        ..KeyLimits::default()
    };
    let a = q.admit("k", &limits, T0).unwrap();
    let _b = q.admit("k", &limits, T0).unwrap();
    let refused = q.admit("k", &limits, T0).unwrap_err();
    assert_eq!(refused.limit, Limit::MaxConcurrent);
    drop(a);
    assert!(q.admit("k", &limits, T0).is_ok());
}

#[test]
fn tokens_per_minute_count_what_answers_used() {
    let q = quotas();
    let limits = KeyLimits {
        tokens_per_minute: Some(10),
        ..KeyLimits::default()
    };
    let mut t = q.admit("k", &limits, T0).unwrap();
    t.spent(6);
    drop(t);
    let mut t = q.admit("k", &limits, T0).unwrap();
    t.spent(4);
    drop(t);
    let refused = q.admit("k", &limits, T0).unwrap_err();
    assert_eq!((refused.limit, refused.value), (Limit::TokensPerMinute, 10));
    // Both answers' tokens leave the window at T0 + 60 s.
    assert_eq!(refused.retry_after, Duration::from_secs(60));
    assert!(q.admit("k", &limits, T0 + 60_000).is_ok());
}

#[test]
fn a_budget_refuses_until_its_period_ends_and_is_sent_to_the_store() {
    let (sink, mut rx) = HistorySink::channel(16);
    let q = Arc::new(Quotas::with_clock(sink, Vec::new(), at_t0));
    let limits = KeyLimits {
        token_budget: Some(5),
        budget_period: Some(Period::Day),
        ..KeyLimits::default()
    };
    let mut t = q.admit("k", &limits, T0).unwrap();
    t.spent(5);
    drop(t);
    let refused = q.admit("k", &limits, T0).unwrap_err();
    assert_eq!(refused.limit, Limit::TokenBudget);
    assert_eq!(refused.period.as_deref(), Some("2026-12-03"));
    // 18:00 → midnight UTC.
    assert_eq!(refused.retry_after, Duration::from_secs(6 * 3600));
    assert!(refused.to_string().contains("token_budget = 5"));
    let queued = rx.try_recv().unwrap();
    assert!(matches!(queued.op(), StoreOp::AddSpend { tokens: 5, .. }));
    // Read back from the store, the spend still counts.
    let restarted = Quotas::new(
        HistorySink::channel(1).0,
        vec![SpendRow {
            key_id: "k".into(),
            period: "2026-12-03".into(),
            tokens: 5,
        }],
    );
    let restarted = Arc::new(restarted);
    assert!(restarted.admit("k", &limits, T0).is_err());
    assert!(
        restarted.admit("k", &limits, T0 + 6 * 3600 * 1000).is_ok(),
        "a new day"
    );
}
