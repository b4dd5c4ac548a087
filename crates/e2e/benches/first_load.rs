//! First load of the dashboard with a big fleet: a real router with 100 registered (fake) nodes
//! and 10 000 requests in its history; `tests/browser/load.mjs` opens the dashboard in a fresh
//! headless Chromium context each time (cold cache) and measures, from navigation start, until the
//! 100 node rows and the history total are shown; it prints min / median / max and the same for
//! `DOMContentLoaded`. The test `the_first_load_with_100_nodes_and_10000_requests` checks the same
//! page once, untimed.
//!
//! Run: `cargo build --release --bins && cargo bench -p llm-router-e2e --bench first_load`
//! (env: RUNS, cold loads measured, default 5; Chromium and playwright-core as for the browser
//! tests: `eval "$(scripts/install-browser.sh)"`).

use llm_router_e2e::browser::{browser_env, run_script};
use llm_router_e2e::fleet::Fleet;

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let runs = std::env::var("RUNS").unwrap_or_else(|_| "5".to_owned());
    let mut env = browser_env()?;
    let fleet = Fleet::start().await?;
    env.extend(fleet.load_script_env());
    env.push(("BENCH_RUNS", runs));
    run_script("load.mjs", &env).await
}
