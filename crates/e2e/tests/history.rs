//! Request history and fleet state end to end: requests through the real router and a real node
//! land in SQLite with the right figures, and survive a router restart (clean and SIGKILL).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use llm_router_testkit::processes::{MODEL, NodeProcess, RouterProcess, Runtime};
use llm_router_testkit::wait_for;
use serde_json::{Value, json};

/// `GET path` as the admin (whose session, like the API key, survives the restarts below).
async fn get(router: &RouterProcess, path: &str) -> Value {
    router.get_as_admin(path).await.unwrap()
}

/// Sends one plain and one streamed chat completion and one unknown-model request; returns the
/// token counts the plain answer reported.
async fn traffic(router: &RouterProcess) -> (u64, u64) {
    let client = router.client().await.unwrap();
    let chat = |stream: bool| {
        json!({"model": MODEL, "messages": [{"role": "user", "content": "Hello"}],
               "max_tokens": 8, "temperature": 0, "stream": stream,
               "stream_options": {"include_usage": true}})
    };
    let plain: Value = client
        .post(format!("{}/v1/chat/completions", router.url))
        .json(&chat(false))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let streamed = client
        .post(format!("{}/v1/chat/completions", router.url))
        .json(&chat(true))
        .send()
        .await
        .unwrap();
    assert_eq!(streamed.status(), 200);
    let _ = streamed.bytes().await.unwrap();
    let unknown = client
        .post(format!("{}/v1/chat/completions", router.url))
        .json(&json!({"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    (
        plain["usage"]["prompt_tokens"].as_u64().unwrap(),
        plain["usage"]["completion_tokens"].as_u64().unwrap(),
    )
}

async fn wait_rows(router: &RouterProcess, n: u64) -> Value {
    wait_for("history rows", Duration::from_secs(10), || async {
        let page = get(router, "/api/requests?limit=10").await;
        (page["total"].as_u64() == Some(n)).then_some(page)
    })
    .await
    .unwrap()
}

async fn check_history_survives(signal: &str) {
    let runtime = Runtime::from_env().unwrap();
    let mut router = RouterProcess::start(&["--node-timeout", "3s", "--heartbeat-interval", "1s"])
        .await
        .unwrap();
    let node = NodeProcess::start(&runtime, &router.url, "node-h", 0, &[]).unwrap();
    router
        .wait_node_status("node-h", "online", Duration::from_secs(90))
        .await
        .unwrap();
    let node_id = router.agents().await.unwrap()[0]["id"].clone();
    let (prompt_tokens, completion_tokens) = traffic(&router).await;

    let page = wait_rows(&router, 3).await;
    let items = page["items"].as_array().unwrap();
    let unknown = &items[0];
    assert_eq!(unknown["status"], 404);
    assert_eq!(unknown["model"], "no-such-model");
    assert!(unknown["node_name"].is_null());
    assert!(unknown["error"].as_str().unwrap().contains("no-such-model"));
    let streamed = &items[1];
    assert_eq!(streamed["streamed"], true);
    assert_eq!(streamed["node_name"], "node-h");
    assert!(
        streamed["completion_tokens"].as_u64().unwrap() > 0,
        "{streamed}"
    );
    assert!(streamed["ttfb_ms"].as_f64().unwrap() <= streamed["latency_ms"].as_f64().unwrap());
    let plain = &items[2];
    assert_eq!(plain["status"], 200);
    assert_eq!(plain["api"], "openai");
    assert_eq!(plain["endpoint"], "/v1/chat/completions");
    assert_eq!(plain["model"], MODEL);
    assert_eq!(plain["node_id"], node_id);
    assert_eq!(plain["streamed"], false);
    assert_eq!(plain["prompt_tokens"].as_u64(), Some(prompt_tokens));
    assert_eq!(plain["completion_tokens"].as_u64(), Some(completion_tokens));
    assert!(plain["latency_ms"].as_f64().unwrap() > 0.0);
    assert!(plain["error"].is_null());

    let stats = get(&router, "/api/stats").await;
    assert_eq!(stats["since_start"]["total"]["requests"], 3, "{stats}");
    assert_eq!(
        stats["since_start"]["by_node"]["node-h"]["requests"], 2,
        "{stats}"
    );
    let metrics = router
        .client()
        .await
        .unwrap()
        .get(format!("{}/metrics", router.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "llm_router_requests_total{{api=\"openai\",model=\"{MODEL}\",node=\"node-h\",status=\"200\"}} 2"
        )),
        "{metrics}"
    );

    router.restart(signal).await.unwrap();
    // Known nodes come back before their node reports in.
    let agents = router.agents().await.unwrap();
    assert_eq!(agents.len(), 1, "{agents:?}");
    assert_eq!(agents[0]["id"], node_id);
    let page = get(&router, "/api/requests").await;
    assert_eq!(page["total"], 3, "history survived SIGTERM/SIGKILL: {page}");
    // The node re-registers under its old id and serves again.
    router
        .wait_node_status("node-h", "online", Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(router.agents().await.unwrap()[0]["id"], node_id);
    traffic(&router).await;
    wait_rows(&router, 6).await;
    drop(node);
}

#[tokio::test(flavor = "multi_thread")]
async fn history_and_fleet_survive_a_clean_router_restart() {
    check_history_survives("TERM").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn committed_history_and_fleet_survive_a_router_sigkill() {
    check_history_survives("KILL").await;
}
