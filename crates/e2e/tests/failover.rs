//! Failover end to end: a real node is SIGKILLed while a bounded load runs through the router.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use llm_router_testkit::processes::{MODEL, NodeProcess, RouterProcess, Runtime};
use llm_router_testkit::{wait_for, wait_for_every};
use serde_json::{Value, json};

const REQUESTS: usize = 40;
const CONCURRENCY: usize = 4;

#[tokio::test(flavor = "multi_thread")]
async fn killing_a_node_under_load_loses_no_request_and_takes_it_out_of_rotation_fast() {
    let runtime = Runtime::from_env().unwrap();
    let router = RouterProcess::start(&["--node-timeout", "3s", "--heartbeat-interval", "1s"])
        .await
        .unwrap();
    let a = NodeProcess::start(&runtime, &router.url, "node-a", 0, &[]).unwrap();
    let mut b = NodeProcess::start(&runtime, &router.url, "node-b", 0, &[]).unwrap();
    for node in [&a, &b] {
        router
            .wait_node_status(&node.name, "online", Duration::from_secs(90))
            .await
            .unwrap();
    }

    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let client = router.client().await.unwrap();
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (next, done, client) = (next.clone(), done.clone(), client.clone());
            let url = format!("{}/v1/completions", router.url);
            tokio::spawn(async move {
                let mut results = Vec::new();
                while next.fetch_add(1, Ordering::SeqCst) < REQUESTS {
                    let response = client
                        .post(&url)
                        .json(&json!({"model": MODEL, "prompt": "Once upon a time",
                                      "max_tokens": 24, "temperature": 0}))
                        .send()
                        .await
                        .unwrap();
                    let status = response.status().as_u16();
                    let node = response
                        .headers()
                        .get("x-llm-router-node")
                        .map(|v| v.to_str().unwrap().to_owned());
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    done.fetch_add(1, Ordering::SeqCst);
                    results.push((status, node, body));
                }
                results
            })
        })
        .collect();

    // Kill node-b once the load is well under way, then time how long it stays in rotation.
    wait_for("8 answered requests", Duration::from_secs(120), || async {
        (done.load(Ordering::SeqCst) >= 8).then_some(())
    })
    .await
    .unwrap();
    b.process.kill().unwrap();
    let killed_at = Instant::now();
    let (took, status) = wait_for_every(
        "node-b to leave the rotation after SIGKILL",
        Duration::from_secs(10),
        Duration::from_millis(10),
        || async {
            let status = router.node_status("node-b").await.unwrap();
            (status.as_deref() != Some("online")).then(|| (killed_at.elapsed(), status))
        },
    )
    .await
    .unwrap();
    eprintln!("node-b out of rotation {took:?} after SIGKILL (status {status:?})");
    assert!(took < Duration::from_secs(5), "took {took:?}");

    let mut served_by_a_after_kill = 0;
    let mut results = Vec::new();
    for worker in workers {
        results.extend(worker.await.unwrap());
    }
    assert_eq!(results.len(), REQUESTS);
    for (status, node, body) in &results {
        assert_eq!(*status, 200, "every request succeeds: {body}");
        assert_eq!(body["object"], "text_completion", "{body}");
        if node.as_deref() == Some("node-a") {
            served_by_a_after_kill += 1;
        }
    }
    assert!(served_by_a_after_kill > REQUESTS / 2, "node-a took over");
    let agents = router.agents().await.unwrap();
    let b_entry = agents
        .iter()
        .find(|n| n["machine_name"] == "node-b")
        .unwrap();
    assert!(
        b_entry["router_failures_total"].as_u64().unwrap() >= 1,
        "{b_entry}"
    );
    drop(a);
}
