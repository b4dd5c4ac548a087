//! How long a node takes to join: from starting `llm-node` to the router listing it `online` with
//! its model ready (the task list's T087 asks for under 5 s), on a warm cache — the real binaries,
//! a real `llama-server` and the small model. The node's own log says where the time goes: the
//! node starting, the runtime starting, the model loading, the registration round trip, and the
//! heartbeat that reports the model ready.
//!
//! The figures are printed (and copied to the README), not asserted: timings on these shared
//! machines move by 30 %. The test asserts that the steps happen, in order, and end `online`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::{Duration, SystemTime};

use llm_router_testkit::processes::{NodeProcess, RouterProcess, Runtime};
use llm_router_testkit::wait_for_every;
use serde_json::Value;

const RUNS: usize = 3;
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// The node's log lines that mark each step. The node registers (as `initializing`) while its
/// runtime starts, so those two race; the model is ready last, and its heartbeat makes it online.
const STEPS: [(&str, &str); 4] = [
    ("llm-node listening", "node listening"),
    ("registered with the router", "registered"),
    ("runtime started", "runtime started"),
    ("model ready", "model ready"),
];

#[tokio::test(flavor = "multi_thread")]
async fn a_node_is_online_with_its_model_within_seconds_of_starting() {
    let runtime = Runtime::from_env().unwrap();
    let router = RouterProcess::start(&[]).await.unwrap();
    let mut rows = Vec::new();
    for run in 0..RUNS {
        let name = format!("join-{run}");
        let started = SystemTime::now();
        let node = NodeProcess::start(&runtime, &router.url, &name, 0, &[]).unwrap();
        wait_for_every(
            &format!("{name} to be online"),
            READY_TIMEOUT,
            Duration::from_millis(10),
            || async {
                (router.node_status(&name).await.ok()?.as_deref() == Some("online")).then_some(())
            },
        )
        .await
        .unwrap();
        let online = started.elapsed().unwrap();
        let steps = step_times(&node.log_dir, started);
        let mut last = Duration::ZERO;
        for ((_, label), at) in STEPS.iter().zip(&steps) {
            assert!(
                *at >= last,
                "{label} logged before the step before it: {steps:?}"
            );
            assert!(
                *at <= online,
                "{label} logged after the node was online: {steps:?}"
            );
            last = *at;
        }
        rows.push((online, steps));
        // Stops the node and its runtime before the next run (the router still lists it).
        drop(node);
    }
    print_table(&rows);
}

/// When each of [`STEPS`] was logged, counted from `started`.
fn step_times(log_dir: &Path, started: SystemTime) -> Vec<Duration> {
    let lines = log_lines(log_dir);
    STEPS
        .iter()
        .map(|(message, label)| {
            let line = lines
                .iter()
                .find(|l| l["fields"]["message"] == *message)
                .unwrap_or_else(|| panic!("no '{message}' ({label}) in the node's log"));
            let at = humantime::parse_rfc3339_weak(line["timestamp"].as_str().unwrap()).unwrap();
            at.duration_since(started).unwrap_or_default()
        })
        .collect()
}

/// The node's JSON log lines, oldest first.
fn log_lines(log_dir: &Path) -> Vec<Value> {
    let mut files: Vec<_> = std::fs::read_dir(log_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect::<Vec<Value>>()
        })
        .collect()
}

fn print_table(rows: &[(Duration, Vec<Duration>)]) {
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    println!("\nregistration time, llm-node start -> online with its model ready (ms from start)");
    print!("run ");
    for (_, label) in STEPS {
        print!("| {label:>16} ");
    }
    println!("| {:>8}", "online");
    for (i, (online, steps)) in rows.iter().enumerate() {
        print!("{i:>3} ");
        for at in steps {
            print!("| {:>16.0} ", ms(at));
        }
        println!("| {:>8.0}", ms(online));
    }
}
