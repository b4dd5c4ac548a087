//! The routing simulator's tables (see `tests/sim/`): round robin, least loaded and cache-aware
//! routing over 2 to 64 simulated nodes, on shared-prefix, hot-prefix and no-shared-prefix
//! traffic, and the sensitivity to slots, host cache and load at 2 nodes. Deterministic.
//!
//! Run: `cargo bench -p llm-router --bench routing_sim`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/sim/mod.rs"]
mod sim;

use llm_router::affinity::PromptHasher;
use llm_router::dispatch::policy::cache_aware::CostParams;
use sim::trace::{Shape, Trace, generate, generate_with};
use sim::{NodeSpec, Policy, Report, run};

const POLICIES: [Policy; 3] = [
    Policy::RoundRobin,
    Policy::LeastLoaded,
    Policy::CacheAware(CostParams {
        min_match_tokens: 64,
        guard_abs: 2,
        guard_rel: 1.5,
        default_prompt_tps: 120.0,
        default_gen_tps: 20.0,
    }),
];

fn header() {
    println!(
        "| nodes | policy | prompt tokens computed | reused | TTFT mean | TTFT p90 | makespan | max share |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|");
}

fn row(r: &Report) {
    println!(
        "| {} | {} | {} | {:.0} % | {:.2} s | {:.2} s | {:.0} s | {:.0} % |",
        r.nodes,
        r.policy,
        r.computed_tokens,
        100.0 * r.reused_tokens as f64 / (r.reused_tokens + r.computed_tokens).max(1) as f64,
        r.ttft_mean,
        r.ttft_p90,
        r.makespan,
        100.0 * r.max_share
    );
}

fn table(trace_of: impl Fn(usize) -> Trace, spec: NodeSpec) {
    header();
    for nodes in [2, 4, 8, 16, 32, 64] {
        let trace = trace_of(nodes);
        for policy in POLICIES {
            row(&run(&trace, &vec![spec; nodes], policy));
        }
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let hasher = PromptHasher::with_seed(1);
    let spec = NodeSpec::measured();
    for shape in [Shape::Shared, Shape::Hot, Shape::Unshared] {
        println!(
            "\n### {} (2 clients and 4 tenants per node; nodes: {} prompt tok/s, {} gen tok/s, {} slots of {} tokens, host cache {} tokens)\n",
            generate(shape, 2, 42, &hasher).name,
            spec.prompt_tps,
            spec.gen_tps,
            spec.slots,
            spec.slot_context,
            spec.host_cache_tokens
        );
        table(|nodes| generate(shape, nodes, 42, &hasher), spec);
    }
    println!("\n### shared prefix at 2 nodes: slots, host cache, clients per node\n");
    println!(
        "| slots | host cache | clients/node | round robin computed | least loaded | cache aware | RR / CA | TTFT RR / CA |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (slots, host) in [(1, 0), (2, 0), (4, 0), (4, 65_536), (8, 0)] {
        for clients in [1, 2, 4] {
            let trace = generate_with(Shape::Shared, 2, clients, 4, 42, &hasher);
            let s = NodeSpec {
                slots,
                host_cache_tokens: host,
                ..spec
            };
            let r: Vec<Report> = POLICIES.iter().map(|p| run(&trace, &[s, s], *p)).collect();
            println!(
                "| {slots} | {host} | {clients} | {} | {} | {} | {:.2} | {:.2} |",
                r[0].computed_tokens,
                r[1].computed_tokens,
                r[2].computed_tokens,
                r[0].computed_tokens as f64 / r[2].computed_tokens.max(1) as f64,
                r[0].ttft_mean / r[2].ttft_mean.max(1e-9)
            );
        }
    }
}
