//! The agent protocols end to end: OpenAI's Responses API and Anthropic's Messages API through the
//! real router and two real nodes, each supervising a real `llama-server` (which serves both
//! itself), driven by the official `openai` and `anthropic` Python clients, unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use llm_router_testkit::processes::{MODEL, NodeProcess, RouterProcess, Runtime};
use llm_router_testkit::wait_for;
use serde_json::{Value, json};

const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// The history rows of `endpoint`, oldest first.
fn rows<'a>(items: &'a [Value], endpoint: &str) -> Vec<&'a Value> {
    items
        .iter()
        .rev()
        .filter(|r| r["endpoint"] == endpoint)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn official_openai_and_anthropic_clients_speak_responses_and_messages_through_the_router() {
    let runtime = Runtime::from_env().unwrap();
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
    let a = NodeProcess::start(&runtime, &router.url, "node-a", 0, &[]).unwrap();
    let b = NodeProcess::start(&runtime, &router.url, "node-b", 0, &[]).unwrap();
    for node in [&a, &b] {
        router
            .wait_node_status(&node.name, "online", READY_TIMEOUT)
            .await
            .unwrap();
    }
    let key = router.api_key().await.unwrap();
    let limited: Value = reqwest::Client::new()
        .post(format!("{}/api/keys", router.url))
        .bearer_auth(router.admin_token().await.unwrap())
        .json(&json!({"name": "limited", "limits": {"requests_per_minute": 1}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients/agent_protocols.py");
    let output = Command::new(&runtime.python)
        .arg(&script)
        .args([&router.url, MODEL])
        .env("LLM_ROUTER_API_KEY", &key)
        .env("LLM_ROUTER_LIMITED_KEY", limited["key"].as_str().unwrap())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "client checks failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    eprintln!("client summary: {summary}");
    let n = |k: &str| summary[k].as_u64().unwrap();
    assert!((1..=60).contains(&n("limited_retry_after")), "{summary}");

    // Rows of the script's requests: responses 3 + 2 refused + 1 over the limit; messages 3 + 1
    // unknown model + 1 empty; count_tokens 1 + 1 unknown model + 2 of the limited key (the wrong
    // key is refused by the guard: no row).
    let page = wait_for("the history rows", Duration::from_secs(10), || async {
        let page = router.get_as_admin("/api/requests?limit=100").await.ok()?;
        (page["total"].as_u64()? >= 15).then_some(page)
    })
    .await
    .unwrap();
    let items = page["items"].as_array().unwrap();
    let responses = rows(items, "/v1/responses");
    assert_eq!(responses.len(), 6, "{responses:#?}");
    assert_eq!(responses[5]["status"], 429);
    let (plain, streamed) = (responses[0], responses[1]);
    assert_eq!(plain["api"], "openai");
    assert_eq!(plain["status"], 200);
    assert_eq!(plain["streamed"], false);
    assert_eq!(plain["prompt_tokens"], n("responses_input_tokens"));
    assert_eq!(plain["completion_tokens"], n("responses_output_tokens"));
    assert_eq!(streamed["streamed"], true);
    assert_eq!(streamed["error"], Value::Null, "{streamed}");
    assert_eq!(streamed["prompt_tokens"], n("responses_input_tokens"));
    assert_eq!(
        streamed["completion_tokens"],
        n("responses_stream_output_tokens")
    );
    assert_eq!(responses[3]["status"], 404);
    assert_eq!(responses[4]["status"], 400);

    let messages = rows(items, "/v1/messages");
    assert_eq!(messages.len(), 5, "{messages:#?}");
    let prompt = n("messages_input_tokens") + n("messages_cache_read_tokens");
    for row in &messages[..3] {
        assert_eq!(row["api"], "anthropic");
        assert_eq!(row["status"], 200);
        assert_eq!(row["error"], Value::Null, "{row}");
        assert_eq!(
            row["completion_tokens"],
            n("messages_output_tokens"),
            "{row}"
        );
        assert!(row["prompt_tokens"].as_u64().unwrap() > 0, "{row}");
    }
    assert_eq!(messages[0]["prompt_tokens"], prompt);
    assert_eq!(messages[1]["streamed"], true);
    assert_eq!(messages[3]["status"], 404);
    assert_eq!(messages[4]["status"], 400);
    let counted = rows(items, "/v1/messages/count_tokens");
    assert_eq!(counted.len(), 4);
    assert_eq!(counted[3]["status"], 429);
    assert_eq!(counted[0]["status"], 200);
    assert_eq!(counted[1]["status"], 404);

    // Balanced like every inference route: both nodes serve Anthropic clients (x-api-key).
    let client = reqwest::Client::new();
    let mut served = HashSet::new();
    for i in 0..4 {
        let response = client
            .post(format!("{}/v1/messages", router.url))
            .header("x-api-key", &key)
            .header("anthropic-version", "2023-06-01")
            .json(&json!({"model": MODEL, "max_tokens": 2,
                "messages": [{"role": "user", "content": format!("Count {i}")}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        served.insert(response.headers()["x-llm-router-node"].clone());
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["type"], "message", "{body}");
    }
    assert_eq!(served.len(), 2, "{served:?}");

    // Without a key: Anthropic's shape, on its routes only.
    let refused = client
        .post(format!("{}/v1/messages/count_tokens", router.url))
        .json(&json!({"model": MODEL, "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "authentication_error");
    let refused = client
        .post(format!("{}/v1/responses", router.url))
        .json(&json!({"model": MODEL, "input": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "missing_api_key", "{body}");
}
