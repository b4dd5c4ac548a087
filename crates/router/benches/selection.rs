//! Node selection on the hot path: each policy over 10 to 10 000 candidates, and the full
//! claim-and-release of a slot through the dispatcher.
//!
//! Run: `cargo bench -p llm-router --bench selection`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use llm_router::dispatch::policy::testing::candidates;
use llm_router::dispatch::{BalancerMode, SelectContext};

const SIZES: [usize; 4] = [10, 100, 1_000, 10_000];

fn select(c: &mut Criterion) {
    for mode in [
        BalancerMode::RoundRobin,
        BalancerMode::Metrics,
        BalancerMode::Auto,
    ] {
        let policy = mode.build();
        let mut group = c.benchmark_group(format!("select/{}", policy.name()));
        for n in SIZES {
            let nodes = candidates(n);
            // Half of the slots taken, so capacity checks do real work.
            for (i, c) in nodes.iter().enumerate() {
                for _ in 0..(i % 4) {
                    c.try_claim();
                }
            }
            group.bench_with_input(BenchmarkId::from_parameter(n), &nodes, |b, nodes| {
                b.iter(|| {
                    let ctx = SelectContext {
                        model: "m",
                        now: Instant::now(),
                        metrics_max_age: Duration::from_secs(30),
                    };
                    black_box(policy.select(black_box(nodes), &ctx))
                });
            });
        }
        group.finish();
    }
}

fn select_claim_release(c: &mut Criterion) {
    let policy = BalancerMode::Auto.build();
    let mut group = c.benchmark_group("select_claim_release/auto");
    for n in SIZES {
        let nodes = candidates(n);
        group.bench_with_input(BenchmarkId::from_parameter(n), &nodes, |b, nodes| {
            b.iter(|| {
                let ctx = SelectContext {
                    model: "m",
                    now: Instant::now(),
                    metrics_max_age: Duration::from_secs(30),
                };
                if let Some(i) = policy.select(nodes, &ctx)
                    && nodes[i].try_claim()
                {
                    nodes[i].slots.release();
                }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, select, select_claim_release);
criterion_main!(benches);
