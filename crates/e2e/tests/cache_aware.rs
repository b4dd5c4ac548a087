//! `cache_aware` end to end: the real router in front of two real nodes, each with a real
//! `llama-server` and the real model. A conversation's next turn goes back to the node that holds
//! its prefix, and what that node's llama-server reports it reused (`timings.cache_n`) reaches the
//! answer, the history row, the fleet API and the metrics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use llm_router_testkit::processes::{MODEL, NodeProcess, RouterProcess, Runtime};
use llm_router_testkit::wait_for;
use serde_json::{Value, json};

/// About 300 tokens of instructions, as a tenant's system prompt would be.
fn system_prompt() -> String {
    "You are the support assistant of a small bakery. Answer in one short sentence, politely, \
     and never invent opening hours, prices or ingredients that are not listed here. "
        .repeat(8)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_next_turn_goes_where_its_prefix_is_and_the_reuse_is_reported() {
    let runtime = Runtime::from_env().unwrap();
    let router = RouterProcess::start(&[
        "--load-balancer-mode",
        "cache_aware",
        "--heartbeat-interval",
        "1s",
    ])
    .await
    .unwrap();
    let a = NodeProcess::start(&runtime, &router.url, "node-a", 0, &[]).unwrap();
    let b = NodeProcess::start(&runtime, &router.url, "node-b", 0, &[]).unwrap();
    for node in [&a, &b] {
        router
            .wait_node_status(&node.name, "online", Duration::from_secs(90))
            .await
            .unwrap();
    }
    let client = router.client().await.unwrap();
    let url = format!("{}/v1/chat/completions", router.url);
    let mut messages = vec![
        json!({"role": "system", "content": system_prompt()}),
        json!({"role": "user", "content": "Do you sell bread?"}),
    ];

    let mut homes = Vec::new();
    let mut reused = Vec::new();
    for turn in 0..3 {
        let response = client
            .post(&url)
            .json(&json!({"model": MODEL, "messages": messages,
                          "max_tokens": 12, "temperature": 0}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "turn {turn}");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        assert_eq!(
            header("x-llm-router-policy").as_deref(),
            Some("cache_aware")
        );
        let reason = header("x-llm-router-reason").unwrap();
        homes.push(header("x-llm-router-node").unwrap());
        let body: Value = response.json().await.unwrap();
        let cache_n = body["timings"]["cache_n"].as_u64().unwrap_or(0);
        eprintln!(
            "turn {turn}: {reason} on {}, cache_n {cache_n}",
            homes[turn]
        );
        reused.push(cache_n);
        if turn > 0 {
            assert_eq!(reason, "affinity", "turn {turn}");
        }
        let answer = body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_owned();
        messages.push(json!({"role": "assistant", "content": answer}));
        messages.push(json!({"role": "user", "content": format!("And question {turn}?")}));
    }
    assert!(
        homes.iter().all(|h| *h == homes[0]),
        "every turn on one node: {homes:?}"
    );
    // The system prompt alone is ~300 tokens: later turns reuse at least that.
    assert!(
        reused[1..].iter().all(|&n| n >= 250),
        "reused tokens per turn: {reused:?}"
    );

    // The history row of the last turn says how it was routed and what the node reused.
    let last = wait_for("3 history rows", Duration::from_secs(10), || async {
        let page = router.get_as_admin("/api/requests?limit=5").await.ok()?;
        let items = page["items"].as_array()?;
        (items.len() == 3).then(|| items[0].clone())
    })
    .await
    .unwrap();
    assert_eq!(last["routing"]["policy"], "cache_aware");
    assert_eq!(last["routing"]["reason"], "affinity");
    assert!(last["routing"]["predicted_cached_tokens"].as_u64().unwrap() > 0);
    assert_eq!(last["cached_tokens"].as_u64(), Some(reused[2]));

    // The node's hit rate, in the fleet API and the metrics.
    let agents = router.agents().await.unwrap();
    let home = agents
        .iter()
        .find(|n| n["machine_name"] == homes[0].as_str())
        .unwrap();
    let hit_rate = home["router_cache"]["hit_rate"].as_f64().unwrap();
    assert!(hit_rate > 0.3, "hit rate {hit_rate}");
    let metrics = client
        .get(format!("{}/metrics", router.url))
        .bearer_auth(router.admin_token().await.unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "llm_router_node_cached_prompt_tokens{{node=\"{}\"}}",
            homes[0]
        )),
        "{metrics}"
    );
}
