//! `cache_aware` routing through the real router, with fake nodes (scripted answers that say what
//! they reused, as llama-server's `usage` does): a prompt follows the node that holds its prefix,
//! the load guard sends the overflow elsewhere, the choice is explained in the headers, the
//! history and the fleet API, and a node's reported miss shows in the prediction metrics.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use llm_router::Config;
use llm_router::dispatch::BalancerMode;
use llm_router_testkit::{FakeNode, Reply, wait_for};
use reqwest::StatusCode;
use serde_json::{Value, json};

use common::{
    TestRouter, agent, client, post_chat, served_by, spawn_router, test_config, wait_until,
};

async fn cache_aware_router() -> TestRouter {
    spawn_router(Config {
        load_balancer_mode: BalancerMode::CacheAware,
        ..test_config()
    })
    .await
    .unwrap()
}

/// A fake node whose answers say the node reused `cached` of 800 prompt tokens.
async fn fake(name: &str, cached: u64) -> FakeNode {
    FakeNode::builder(name)
        .model("m")
        .slots(Some(4))
        .reply(answer(name, cached))
        .spawn()
        .await
        .unwrap()
}

fn answer(name: &str, cached: u64) -> Reply {
    Reply::Json(json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "model": "m",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": format!("hello from {name}")}}],
        "usage": {"prompt_tokens": 800, "completion_tokens": 4,
                  "prompt_tokens_details": {"cached_tokens": cached}},
        "timings": {"cache_n": cached, "prompt_n": 800 - cached, "prompt_ms": 1000.0,
                    "predicted_n": 4, "predicted_ms": 200.0}
    }))
}

/// A system prompt of ~2 KB (about 500 tokens), different for each `tenant`.
fn system_prompt(tenant: &str) -> String {
    format!("You are the assistant of {tenant}. ").repeat(60)
}

fn conversation(tenant: &str, question: &str) -> Value {
    json!({"model": "m", "messages": [
        {"role": "system", "content": system_prompt(tenant)},
        {"role": "user", "content": question},
    ]})
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn a_shared_prefix_follows_its_node_and_the_choice_is_explained() {
    let router = cache_aware_router().await;
    let (a, b) = (fake("node-a", 640).await, fake("node-b", 640).await);
    a.register(&router.base_url()).await.unwrap();
    b.register(&router.base_url()).await.unwrap();

    let first = post_chat(&router.base_url(), &conversation("acme", "hello")).await;
    assert_eq!(first.status(), StatusCode::OK);
    let home = served_by(&first);
    assert_eq!(header(&first, "x-llm-router-policy"), Some("cache_aware"));
    assert_eq!(header(&first, "x-llm-router-reason"), Some("least_loaded"));
    assert_eq!(
        header(&first, "x-llm-router-predicted-cached-tokens"),
        Some("0")
    );
    assert_eq!(header(&first, "x-llm-router-candidates"), Some("2"));
    assert_eq!(header(&first, "x-llm-router-attempts"), Some("1"));

    // Other questions of the same tenant, one at a time: all go where its system prompt is.
    for question in ["how are you", "what is 2+2", "tell me a joke"] {
        let next = post_chat(&router.base_url(), &conversation("acme", question)).await;
        assert_eq!(next.status(), StatusCode::OK);
        assert_eq!(served_by(&next), home, "{question}");
        assert_eq!(header(&next, "x-llm-router-reason"), Some("affinity"));
        let predicted: u64 = header(&next, "x-llm-router-predicted-cached-tokens")
            .unwrap()
            .parse()
            .unwrap();
        // The whole system prompt (~2 KB, 16 tokens per 64-byte block) and no more.
        assert!((400..=600).contains(&predicted), "predicted {predicted}");
    }

    // The history keeps how each request was routed and what the node reused.
    let url = router.url("/api/requests?limit=10");
    let token = router.admin_token().await;
    let page = wait_for("4 history rows", Duration::from_secs(5), || {
        let request = client().get(&url).bearer_auth(&token);
        async move {
            let page: Value = request.send().await.ok()?.json().await.ok()?;
            (page["items"].as_array()?.len() == 4).then_some(page)
        }
    })
    .await
    .unwrap();
    let newest = &page["items"][0];
    assert_eq!(newest["routing"]["policy"], "cache_aware");
    assert_eq!(newest["routing"]["reason"], "affinity");
    assert_eq!(newest["routing"]["candidates"], 2);
    assert_eq!(newest["routing"]["attempts"], 1);
    assert!(
        newest["routing"]["predicted_cached_tokens"]
            .as_u64()
            .unwrap()
            >= 400
    );
    assert_eq!(newest["cached_tokens"], 640);
    assert_eq!(newest["prompt_tokens"], 800);
    let detail: Value = router
        .get_as_admin(&format!("/api/requests/{}", newest["id"].as_str().unwrap()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detail["routing"], newest["routing"]);

    // The fleet API shows the node's hit rate and the speeds learnt from its timings.
    let node = agent(&router, &home).await;
    let cache = &node["router_cache"];
    assert_eq!(cache["prompt_tokens"], 3200);
    assert_eq!(cache["cached_tokens"], 2560);
    assert_eq!(cache["hit_rate"], 0.8);
    assert!(cache["prompt_tokens_per_second"].as_f64().unwrap() > 0.0);
}

#[tokio::test]
async fn tenants_with_different_prompts_spread_and_each_keeps_its_node() {
    let router = cache_aware_router().await;
    let (a, b) = (fake("node-a", 640).await, fake("node-b", 640).await);
    a.register(&router.base_url()).await.unwrap();
    b.register(&router.base_url()).await.unwrap();
    let mut homes = Vec::new();
    for tenant in ["t1", "t2"] {
        let r = post_chat(&router.base_url(), &conversation(tenant, "hello")).await;
        homes.push(served_by(&r));
    }
    // Both idle: no match, least loaded, turns taken: one tenant per node.
    assert_ne!(homes[0], homes[1]);
    for round in 0..3 {
        for (tenant, home) in ["t1", "t2"].iter().zip(&homes) {
            let r = post_chat(
                &router.base_url(),
                &conversation(tenant, &format!("question {round}")),
            )
            .await;
            assert_eq!(&served_by(&r), home, "{tenant} round {round}");
        }
    }
}

#[tokio::test]
async fn the_load_guard_sends_the_overflow_of_a_hot_prefix_to_another_node() {
    let router = cache_aware_router().await;
    let (a, b) = (fake("node-a", 640).await, fake("node-b", 640).await);
    a.register(&router.base_url()).await.unwrap();
    b.register(&router.base_url()).await.unwrap();
    let first = post_chat(&router.base_url(), &conversation("hot", "warm up")).await;
    let home_name = served_by(&first);
    let (home, other) = if home_name == "node-a" {
        (&a, &b)
    } else {
        (&b, &a)
    };

    // The home node holds every answer: its in-flight count grows with each request.
    home.hold();
    let url = router.base_url();
    let mut pending = Vec::new();
    for i in 1..=3 {
        let url = url.clone();
        pending.push(tokio::spawn(async move {
            post_chat(&url, &conversation("hot", &format!("q{i}"))).await
        }));
        wait_until(
            "the request reached the home node",
            Duration::from_secs(5),
            || {
                let n = home.in_flight();
                async move { n == i }
            },
        )
        .await;
    }
    // Three in flight on the home node, none elsewhere: more than 2 apart and more than 1.5
    // times: the guard sends the next one to the other node.
    let overflow = post_chat(&url, &conversation("hot", "q4")).await;
    assert_eq!(served_by(&overflow), other.machine_name());
    assert_eq!(header(&overflow, "x-llm-router-reason"), Some("guard"));
    home.release();
    for p in pending {
        assert_eq!(served_by(&p.await.unwrap()), home_name);
    }
}

#[tokio::test]
async fn a_reported_miss_shows_in_the_prediction_error_and_requests_without_a_prompt_still_route() {
    let router = cache_aware_router().await;
    // The node never reuses anything (as one whose cache is too small would).
    let a = fake("node-a", 0).await;
    a.register(&router.base_url()).await.unwrap();
    for question in ["one", "two"] {
        let r = post_chat(&router.base_url(), &conversation("acme", question)).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let metrics = router.get_as_admin("/metrics").await.text().await.unwrap();
    let count = metrics
        .lines()
        .find_map(|l| l.strip_prefix("llm_router_affinity_overpredicted_tokens_count "))
        .unwrap_or_else(|| panic!("no overprediction count in\n{metrics}"));
    assert_eq!(count, "1", "the second request expected a hit and got none");
    assert!(
        metrics.contains("llm_router_node_cached_prompt_tokens{node=\"node-a\"} 0"),
        "{metrics}"
    );

    // Embeddings carry no prompt to match: the least loaded node, no reason given.
    a.set_reply(Reply::Json(
        json!({"object": "list", "data": [], "model": "m"}),
    ));
    let r = client()
        .post(router.url("/v1/embeddings"))
        .json(&json!({"model": "m", "input": "hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "x-llm-router-policy"), Some("cache_aware"));
    assert_eq!(header(&r, "x-llm-router-reason"), None);
}

#[tokio::test]
async fn ollama_chats_are_routed_by_their_prompt_too() {
    let router = cache_aware_router().await;
    let (a, b) = (fake("node-a", 640).await, fake("node-b", 640).await);
    a.register(&router.base_url()).await.unwrap();
    b.register(&router.base_url()).await.unwrap();
    let ask = |question: &str| {
        client()
            .post(router.url("/api/chat"))
            .json(&json!({"model": "m", "stream": false, "messages": [
                {"role": "system", "content": system_prompt("ollama-user")},
                {"role": "user", "content": question},
            ]}))
            .send()
    };
    let first = ask("hello").await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let home = served_by(&first);
    let second = ask("again").await.unwrap();
    assert_eq!(served_by(&second), home);
    assert_eq!(header(&second, "x-llm-router-reason"), Some("affinity"));

    // Streamed, the client gets Ollama lines without llama.cpp's `timings`: what the node reused
    // is read from the node's own stream and reaches the history.
    let stream = Reply::sse(
        [
            json!({"choices": [{"index": 0, "delta": {"content": "hi"}}]}).to_string(),
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                   "usage": {"prompt_tokens": 500, "completion_tokens": 1},
                   "timings": {"cache_n": 450, "prompt_n": 50, "prompt_ms": 100.0}})
            .to_string(),
        ],
        Duration::from_millis(5),
    );
    a.set_reply(stream.clone());
    b.set_reply(stream);
    let streamed = client()
        .post(router.url("/api/chat"))
        .json(&json!({"model": "m", "messages": [
            {"role": "system", "content": system_prompt("ollama-user")},
            {"role": "user", "content": "streamed"},
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(served_by(&streamed), home);
    let lines = streamed.text().await.unwrap();
    assert!(!lines.contains("cache_n"), "{lines}");
    let newest = wait_for(
        "the streamed request's row",
        Duration::from_secs(5),
        || async {
            let page: Value = router
                .get_as_admin("/api/requests?limit=1")
                .await
                .json()
                .await
                .ok()?;
            let newest = page["items"][0].clone();
            (newest["cached_tokens"] == 450).then_some(newest)
        },
    )
    .await
    .unwrap();
    assert_eq!(newest["api"], "ollama");
    assert_eq!(newest["cached_tokens"], 450, "{newest}");
}
