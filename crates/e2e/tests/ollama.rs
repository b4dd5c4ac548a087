//! The official `ollama` Python client, unchanged, against the real `llm-router` in front of two
//! real `llm-node`s, each supervising a real `llama-server` (embeddings on) with the real Gemma 3
//! 270M model: chat and generate (streamed and not), list, ps, show, embed, and clear errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use llm_router_testkit::processes::{MODEL, NodeProcess, RouterProcess, Runtime};
use serde_json::Value;

const READY_TIMEOUT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread")]
async fn official_ollama_client_works_through_the_router_against_two_llama_server_nodes() {
    let runtime = Runtime::from_env().unwrap();
    let router = RouterProcess::start(&["--heartbeat-interval", "1s"])
        .await
        .unwrap();
    let embeddings = ["--embeddings", "true"];
    let a = NodeProcess::start(&runtime, &router.url, "node-a", 0, &embeddings).unwrap();
    let b = NodeProcess::start(&runtime, &router.url, "node-b", 0, &embeddings).unwrap();
    for node in [&a, &b] {
        router
            .wait_node_status(&node.name, "online", READY_TIMEOUT)
            .await
            .unwrap();
    }

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients/ollama_client.py");
    let output = Command::new(&runtime.python)
        .arg(&script)
        .args([&router.url, MODEL])
        .env("LLM_ROUTER_API_KEY", router.api_key().await.unwrap())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "ollama client checks failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    eprintln!("ollama client summary: {summary}");
    assert_eq!(
        summary["generate"], summary["openai_completion"],
        "{summary}"
    );
    assert!(
        summary["generate_lines"].as_u64().unwrap() >= 3,
        "{summary}"
    );

    // Both nodes served Ollama traffic.
    let served: Vec<u64> = vec![
        a.health().await.unwrap().requests_total,
        b.health().await.unwrap().requests_total,
    ];
    assert!(
        served.iter().all(|n| *n > 0),
        "requests per node: {served:?}"
    );
}
