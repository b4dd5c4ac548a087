//! Per-key limits through the production router against a fake node: requests per minute, tokens
//! per minute, concurrent requests and a token budget each refuse exactly once reached, with 429,
//! `Retry-After` and the limit named in each API's error shape; the budget survives a restart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use llm_router_testkit::{FakeNode, Reply, TempDir, wait_for};
use reqwest::StatusCode;
use serde_json::{Value, json};

use common::TestRouter;
use common::secured::{CHAT, OLLAMA_CHAT, admin_json, call, secured_config, universal_reply};

const MESSAGES: &str =
    r#"{"model":"m","max_tokens":4,"messages":[{"role":"user","content":"hi"}]}"#;

async fn fleet(config: llm_router::Config) -> (TestRouter, FakeNode) {
    let router = common::spawn_router(config).await.unwrap();
    let fake = FakeNode::builder("node-a")
        .model("m")
        .slots(Some(4))
        .reply(universal_reply())
        .spawn()
        .await
        .unwrap();
    fake.register(&router.base_url()).await.unwrap();
    (router, fake)
}

async fn key_with(router: &TestRouter, limits: Value) -> String {
    let key = admin_json(
        router,
        "POST",
        "/api/keys",
        json!({"name": "limited", "limits": limits}),
    )
    .await;
    key["key"].as_str().unwrap().to_owned()
}

async fn chat(router: &TestRouter, key: &str) -> reqwest::Response {
    let bearer = Some(("authorization", format!("Bearer {key}")));
    call(
        router,
        "POST",
        "/v1/chat/completions",
        Some(CHAT.into()),
        bearer,
    )
    .await
}

/// A 429 naming `limit` in OpenAI's shape, with a `Retry-After`; its value in seconds.
async fn refused(response: reqwest::Response, limit: &str) -> u64 {
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], limit, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains(limit),
        "{body}"
    );
    retry
}

#[tokio::test]
async fn requests_per_minute_refuse_the_request_past_the_value_in_every_api_shape() {
    let (router, _fake) = fleet(secured_config()).await;
    let key = key_with(&router, json!({"requests_per_minute": 3})).await;
    for _ in 0..3 {
        assert_eq!(chat(&router, &key).await.status(), StatusCode::OK);
    }
    let retry = refused(chat(&router, &key).await, "requests_per_minute").await;
    assert!((1..=60).contains(&retry), "{retry}");
    // Anthropic's shape, and its key header.
    let messages = call(
        &router,
        "POST",
        "/v1/messages",
        Some(MESSAGES.into()),
        Some(("x-api-key", key.clone())),
    )
    .await;
    assert_eq!(messages.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(messages.headers().contains_key("retry-after"));
    let body: Value = messages.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
    // Ollama's shape.
    let ollama = call(
        &router,
        "POST",
        "/api/chat",
        Some(OLLAMA_CHAT.into()),
        Some(("authorization", format!("Bearer {key}"))),
    )
    .await;
    assert_eq!(ollama.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = ollama.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("requests_per_minute"),
        "{body}"
    );
    // Another key is not limited by this one.
    let other = key_with(&router, json!({"requests_per_minute": 1})).await;
    assert_eq!(chat(&router, &other).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn concurrent_requests_are_refused_past_the_value_and_admitted_when_one_ends() {
    let (router, fake) = fleet(secured_config()).await;
    let key = key_with(&router, json!({"max_concurrent": 2})).await;
    fake.hold();
    let held: Vec<_> = (0..2)
        .map(|_| {
            let url = router.url("/v1/chat/completions");
            let key = key.clone();
            tokio::spawn(async move {
                common::client()
                    .post(url)
                    .bearer_auth(key)
                    .header("content-type", "application/json")
                    .body(CHAT)
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    wait_for(
        "2 requests at the node",
        Duration::from_secs(10),
        || async { (fake.in_flight() == 2).then_some(()) },
    )
    .await
    .unwrap();
    refused(chat(&router, &key).await, "max_concurrent").await;
    fake.release();
    for h in held {
        assert_eq!(h.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(chat(&router, &key).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn tokens_per_minute_count_each_answers_usage() {
    let (router, _fake) = fleet(secured_config()).await;
    // Each fake answer uses 2 tokens (1 prompt + 1 completion).
    let key = key_with(&router, json!({"tokens_per_minute": 4})).await;
    for _ in 0..2 {
        let ok = chat(&router, &key).await;
        assert_eq!(ok.status(), StatusCode::OK);
        let _ = ok.bytes().await.unwrap();
    }
    refused(chat(&router, &key).await, "tokens_per_minute").await;
}

#[tokio::test]
async fn a_token_budget_is_spent_shown_and_kept_across_a_restart() {
    let dir = TempDir::new("budget-restart").unwrap();
    let url = format!("sqlite://{}", dir.path().join("router.db").display());
    let config = llm_router::Config {
        database_url: url.clone(),
        ..secured_config()
    };
    let (router, fake) = fleet(config.clone()).await;
    let key = key_with(&router, json!({"token_budget": 4, "budget_period": "day"})).await;
    for _ in 0..2 {
        let ok = chat(&router, &key).await;
        assert_eq!(ok.status(), StatusCode::OK);
        let _ = ok.bytes().await.unwrap();
    }
    let retry = refused(chat(&router, &key).await, "token_budget").await;
    assert!(retry <= 86_400, "until the end of the UTC day: {retry}");
    let keys = admin_json(&router, "GET", "/api/keys", Value::Null).await;
    let limited = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "limited")
        .unwrap()
        .clone();
    assert_eq!(limited["spend"]["tokens"], 4, "{limited}");
    assert_eq!(limited["spend"]["budget"], 4);
    assert_eq!(limited["limits"]["token_budget"], 4);

    // Stored (the writer batches), then a new router on the same file still refuses.
    let store = llm_router::store::SqliteStore::open(&url).await.unwrap();
    wait_for("the spend stored", Duration::from_secs(10), || async {
        use llm_router::store::Store;
        let spend = store.credentials(0).await.ok()?.key_spend;
        (spend.iter().map(|r| r.tokens).sum::<u64>() == 4).then_some(())
    })
    .await
    .unwrap();
    drop(router);
    let router = common::spawn_router(config).await.unwrap();
    fake.register(&router.base_url()).await.unwrap();
    refused(chat(&router, &key).await, "token_budget").await;
}

#[tokio::test]
async fn bad_limits_are_refused_when_the_key_is_created() {
    let (router, _fake) = fleet(secured_config()).await;
    let token = router.admin_token().await;
    for limits in [
        json!({"requests_per_minute": 0}),
        json!({"budget_period": "day"}),
        json!({"rpm": 3}),
        json!({"token_budget": 5, "budget_period": "week"}),
    ] {
        let response = call(
            &router,
            "POST",
            "/api/keys",
            Some(json!({"name": "bad", "limits": limits}).to_string()),
            Some(("authorization", format!("Bearer {token}"))),
        )
        .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{limits}");
    }
}

#[tokio::test]
async fn a_waiting_request_of_a_higher_priority_key_is_served_before_earlier_low_ones() {
    let router = common::spawn_router(secured_config()).await.unwrap();
    // One slot, each answer 150 ms: the waiters are served one after another.
    let fake = FakeNode::builder("node-a")
        .model("m")
        .slots(Some(1))
        .reply(Reply::Delayed(
            Duration::from_millis(150),
            Box::new(universal_reply()),
        ))
        .spawn()
        .await
        .unwrap();
    fake.register(&router.base_url()).await.unwrap();
    let low = key_with(&router, json!({})).await;
    let high = key_with(&router, json!({"priority": 5})).await;
    fake.hold();
    let send = |name: &'static str, key: String| {
        let url = router.url("/v1/chat/completions");
        tokio::spawn(async move {
            let status = common::client()
                .post(url)
                .bearer_auth(key)
                .header("content-type", "application/json")
                .body(CHAT)
                .send()
                .await
                .unwrap()
                .status();
            (name, status, std::time::Instant::now())
        })
    };
    let first = send("low-0", low.clone());
    wait_for(
        "one request at the node",
        Duration::from_secs(10),
        || async { (fake.in_flight() == 1).then_some(()) },
    )
    .await
    .unwrap();
    let mut waiting = Vec::new();
    for (i, (name, key)) in [("low-1", &low), ("low-2", &low), ("high", &high)]
        .into_iter()
        .enumerate()
    {
        waiting.push(send(name, key.clone()));
        let depth = i as u64 + 1;
        wait_for("queued", Duration::from_secs(10), || async {
            let stats: Value = router.get_as_admin("/api/queue").await.json().await.ok()?;
            (stats["depth"].as_u64() == Some(depth)).then_some(())
        })
        .await
        .unwrap();
    }
    fake.release();
    let mut done = vec![first.await.unwrap()];
    for w in waiting {
        done.push(w.await.unwrap());
    }
    assert!(done.iter().all(|(_, status, _)| *status == StatusCode::OK));
    done.sort_by_key(|(_, _, at)| *at);
    let order: Vec<&str> = done.iter().map(|(name, _, _)| *name).collect();
    assert_eq!(order, ["low-0", "high", "low-1", "low-2"]);
}
