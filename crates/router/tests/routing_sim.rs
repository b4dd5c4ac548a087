//! The routing simulator's claims (see `sim/`): cache-aware routing computes far fewer prompt
//! tokens than round robin on shared-prefix traffic, stays balanced, the load guard keeps a hot
//! prefix from swamping one node, and it costs nothing when there is nothing shared.
//!
//! Tables for the README: `cargo bench -p llm-router --bench routing_sim`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sim;

use llm_router::affinity::PromptHasher;
use llm_router::dispatch::policy::cache_aware::CostParams;
use sim::trace::{Shape, generate, generate_with};
use sim::{NodeSpec, Policy, Report, run};

fn runs(shape: Shape, nodes: usize) -> Vec<Report> {
    let trace = generate(shape, nodes, 42, &PromptHasher::with_seed(1));
    runs_of(&trace, &vec![NodeSpec::measured(); nodes])
}

/// Round robin, least loaded, cache aware, and cache aware without its load guard.
fn runs_of(trace: &sim::trace::Trace, specs: &[NodeSpec]) -> Vec<Report> {
    let nodes = specs.len();
    let reports: Vec<Report> = [
        Policy::RoundRobin,
        Policy::LeastLoaded,
        Policy::CacheAware(CostParams::default()),
        Policy::CacheAware(CostParams {
            guard_abs: u32::MAX,
            ..CostParams::default()
        }),
    ]
    .into_iter()
    .map(|p| run(trace, specs, p))
    .collect();
    println!(
        "{} trace, {nodes} nodes, {} requests",
        trace.name,
        trace.requests()
    );
    for r in &reports {
        println!(
            "  {:<24} computed {:>7} reused {:>7}  ttft mean {:>6.2}s p90 {:>6.2}s  makespan {:>7.1}s  max share {:>4.0}%  reasons {:?}  pred err {:.0}",
            r.policy,
            r.computed_tokens,
            r.reused_tokens,
            r.ttft_mean,
            r.ttft_p90,
            r.makespan,
            100.0 * r.max_share,
            r.reasons,
            r.prediction_error
        );
    }
    reports
}

#[test]
fn cache_aware_computes_three_times_fewer_prompt_tokens_than_round_robin_and_stays_balanced() {
    let r = runs(Shape::Shared, 2);
    let (rr, ca) = (&r[0], &r[2]);
    assert!(
        rr.computed_tokens >= 3 * ca.computed_tokens,
        "round robin {} vs cache aware {}",
        rr.computed_tokens,
        ca.computed_tokens
    );
    assert!(ca.ttft_mean < rr.ttft_mean);
    assert!(ca.max_share <= 0.60, "max share {}", ca.max_share);
}

#[test]
fn a_hot_prefix_does_not_swamp_one_node() {
    for nodes in [2, 8] {
        let r = runs(Shape::Hot, nodes);
        let ca = &r[2];
        let limit = if nodes == 2 { 0.60 } else { 0.20 };
        assert!(
            ca.max_share <= limit,
            "{nodes} nodes: max share {}",
            ca.max_share
        );
        assert!(ca.computed_tokens < r[0].computed_tokens);
    }
}

#[test]
fn under_heavy_load_the_guard_trips_and_the_hot_prefix_stays_spread() {
    // 8 clients and 16 slots per node: the hot tenant's node is often the busiest.
    let nodes = 8;
    let trace = generate_with(Shape::Hot, nodes, 8, 4, 42, &PromptHasher::with_seed(1));
    let spec = NodeSpec {
        slots: 16,
        ..NodeSpec::measured()
    };
    let r = runs_of(&trace, &vec![spec; nodes]);
    let (ca, unguarded) = (&r[2], &r[3]);
    assert!(ca.reasons[2] > 0, "the guard tripped");
    assert_eq!(unguarded.reasons[2], 0);
    assert!(ca.max_share <= 0.20, "max share {}", ca.max_share);
}

#[test]
fn with_nothing_shared_cache_aware_is_within_five_percent_of_least_loaded() {
    let r = runs(Shape::Unshared, 4);
    let (ll, ca) = (&r[1], &r[2]);
    assert!(
        ca.makespan <= 1.05 * ll.makespan,
        "{} vs {}",
        ca.makespan,
        ll.makespan
    );
    assert!(
        ca.ttft_mean <= 1.05 * ll.ttft_mean,
        "{} vs {}",
        ca.ttft_mean,
        ll.ttft_mean
    );
}

#[test]
fn the_simulation_is_deterministic() {
    let trace = generate(Shape::Shared, 2, 7, &PromptHasher::with_seed(1));
    let specs = vec![NodeSpec::measured(); 2];
    let policy = Policy::CacheAware(CostParams::default());
    let (a, b) = (run(&trace, &specs, policy), run(&trace, &specs, policy));
    assert_eq!(a.computed_tokens, b.computed_tokens);
    assert_eq!(a.makespan.to_bits(), b.makespan.to_bits());
}
