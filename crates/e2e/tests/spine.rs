//! The spine end to end: the real `llm-router` and two real `llm-node`s, each supervising a real
//! `llama-server` with the real Gemma 3 270M model, on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use llm_router_testkit::processes::{
    MODEL, NodeProcess, RouterProcess, Runtime, is_alive, live_children,
};
use llm_router_testkit::wait_for;
use serde_json::{Value, json};

const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// A round-robin router (3 s node timeout) and two nodes, both online.
async fn fleet(runtime: &Runtime) -> (RouterProcess, NodeProcess, NodeProcess) {
    let router = RouterProcess::start(&[
        "--node-timeout",
        "3s",
        "--heartbeat-interval",
        "1s",
        "--load-balancer-mode",
        "round_robin",
    ])
    .await
    .unwrap();
    let a = NodeProcess::start(runtime, &router.url, "node-a", 0, &[]).unwrap();
    let b = NodeProcess::start(runtime, &router.url, "node-b", 0, &[]).unwrap();
    for node in [&a, &b] {
        router
            .wait_node_status(&node.name, "online", READY_TIMEOUT)
            .await
            .unwrap();
    }
    (router, a, b)
}

/// Sends `n` short completions one after another; returns how many each node served, read from
/// the `x-llm-router-node` header.
async fn completions(router: &RouterProcess, n: usize) -> HashMap<String, usize> {
    let client = router.client().await.unwrap();
    let mut served = HashMap::new();
    for i in 0..n {
        let response = client
            .post(format!("{}/v1/completions", router.url))
            .json(&json!({"model": MODEL, "prompt": format!("Count: {i}"), "max_tokens": 4, "temperature": 0}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "request {i}");
        let node = response.headers()["x-llm-router-node"]
            .to_str()
            .unwrap()
            .to_owned();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["object"], "text_completion", "{body}");
        *served.entry(node).or_default() += 1;
    }
    served
}

#[tokio::test(flavor = "multi_thread")]
async fn openai_client_works_through_router_and_requests_alternate_between_two_nodes() {
    let runtime = Runtime::from_env().unwrap();
    let (router, a, b) = fleet(&runtime).await;

    let models: Value = router
        .client()
        .await
        .unwrap()
        .get(format!("{}/v1/models", router.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![MODEL],
        "the model is listed once though both nodes serve it"
    );

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients/openai_spine.py");
    let output = Command::new(&runtime.python)
        .arg(&script)
        .args([&router.url, MODEL])
        .env("LLM_ROUTER_API_KEY", router.api_key().await.unwrap())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "openai client checks failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(summary["chat_chunks"].as_u64().unwrap() >= 2, "{summary}");

    let before = (
        a.health().await.unwrap().requests_total,
        b.health().await.unwrap().requests_total,
    );
    let served = completions(&router, 10).await;
    let after = (
        a.health().await.unwrap().requests_total,
        b.health().await.unwrap().requests_total,
    );
    assert_eq!(served.get("node-a"), Some(&5), "{served:?}");
    assert_eq!(served.get("node-b"), Some(&5), "{served:?}");
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (5, 5),
        "each node's own counter saw 5 requests"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_node_goes_offline_gets_no_traffic_and_comes_back_when_restarted() {
    let runtime = Runtime::from_env().unwrap();
    let (router, a, mut b) = fleet(&runtime).await;
    let b_runtimes = live_children(b.process.pid().unwrap());
    assert_eq!(b_runtimes.len(), 1, "node-b supervises one llama-server");

    b.process.kill().unwrap();
    let took = router
        .wait_node_status("node-b", "offline", Duration::from_secs(10))
        .await
        .unwrap();
    eprintln!("node-b offline {took:?} after SIGKILL (timeout 3 s)");
    wait_for(
        "node-b's llama-server to die with it",
        Duration::from_secs(5),
        || async { (!is_alive(b_runtimes[0])).then_some(()) },
    )
    .await
    .unwrap();

    let served = completions(&router, 4).await;
    assert_eq!(served.get("node-a"), Some(&4), "{served:?}");

    let b = NodeProcess::start(&runtime, &router.url, "node-b", b.port, &[]).unwrap();
    router
        .wait_node_status("node-b", "online", READY_TIMEOUT)
        .await
        .unwrap();
    let agents = router.agents().await.unwrap();
    assert_eq!(agents.len(), 2, "node-b re-registered under its old entry");
    let served = completions(&router, 4).await;
    assert_eq!(served.get("node-a"), Some(&2), "{served:?}");
    assert_eq!(served.get("node-b"), Some(&2), "{served:?}");

    // SIGTERM stops a node and its runtime: no orphan llama-server.
    let mut a = a;
    let a_runtimes = live_children(a.process.pid().unwrap());
    assert_eq!(a_runtimes.len(), 1);
    let status = a.process.terminate(Duration::from_secs(20)).unwrap();
    assert!(status.success(), "node exits cleanly on SIGTERM: {status}");
    assert!(
        !is_alive(a_runtimes[0]),
        "llama-server stopped with its node"
    );
    drop(b);
}
