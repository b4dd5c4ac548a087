//! Model aliases and fallbacks through the production router against fake nodes: an alias is
//! served by its model and recorded under both names; a fallback serves a model without a ready
//! node, and is never taken once an answer has started; the admin API's entries survive a restart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use llm_router::aliases::ModelTable;
use llm_router_testkit::{FakeNode, Reply, TempDir, wait_for};
use reqwest::StatusCode;
use serde_json::{Value, json};

use common::{TestRouter, chat, client, post_chat, served_by, spawn_router, test_config};

fn config(aliases: &str, fallbacks: &str) -> llm_router::Config {
    llm_router::Config {
        models: ModelTable::from_settings(
            Some(aliases.parse().unwrap()),
            Some(fallbacks.parse().unwrap()),
        )
        .unwrap(),
        ..test_config()
    }
}

async fn node(name: &str, model: &str, router: &TestRouter) -> FakeNode {
    let fake = FakeNode::builder(name).model(model).spawn().await.unwrap();
    fake.register(&router.base_url()).await.unwrap();
    fake
}

/// The newest history row, once there are `n`.
async fn newest_row(router: &TestRouter, n: u64) -> Value {
    wait_for("history rows", Duration::from_secs(10), || async {
        let page: Value = router
            .get_as_admin("/api/requests?limit=10")
            .await
            .json()
            .await
            .ok()?;
        (page["total"].as_u64() == Some(n)).then(|| page["items"][0].clone())
    })
    .await
    .unwrap()
}

fn sent_model(fake: &FakeNode) -> String {
    let body: Value = serde_json::from_slice(&fake.last_body().unwrap()).unwrap();
    body["model"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_alias_is_served_by_its_model_listed_and_recorded_under_both_names() {
    let router = spawn_router(config("gpt-4o-mini=m", "")).await.unwrap();
    let fake = node("node-a", "m", &router).await;

    let response = post_chat(&router.base_url(), &chat("gpt-4o-mini")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-llm-router-model"], "m");
    assert_eq!(sent_model(&fake), "m", "the node gets its own model name");
    let row = newest_row(&router, 1).await;
    assert_eq!(row["model"], "m");
    assert_eq!(row["requested_model"], "gpt-4o-mini");
    // Searching the history by either name finds it.
    let by_alias: Value = router
        .get_as_admin("/api/requests?model=gpt-4o-mini")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_alias["total"], 1);

    // Listed as models by both APIs, and found by id.
    let models: Value = client()
        .get(router.url("/v1/models"))
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
    assert_eq!(ids, ["m", "gpt-4o-mini"]);
    let one = client()
        .get(router.url("/v1/models/gpt-4o-mini"))
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), StatusCode::OK);
    let tags: Value = client()
        .get(router.url("/api/tags"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = tags["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["m", "gpt-4o-mini"]);

    // The other APIs resolve it too.
    let messages = client()
        .post(router.url("/v1/messages"))
        .json(&json!({"model": "gpt-4o-mini", "max_tokens": 2,
            "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(messages.status(), StatusCode::OK);
    assert_eq!(sent_model(&fake), "m");
    let row = newest_row(&router, 2).await;
    assert_eq!(
        (row["api"].as_str(), row["requested_model"].as_str()),
        (Some("anthropic"), Some("gpt-4o-mini"))
    );
}

#[tokio::test]
async fn a_fallback_serves_a_model_that_has_no_ready_node() {
    let router = spawn_router(config("coder=big", "big=m|other"))
        .await
        .unwrap();
    let small = node("node-small", "m", &router).await;
    // `big` is known to the fleet but still loading: no node has it ready.
    let loading = FakeNode::builder("node-big")
        .loading_model("big")
        .spawn()
        .await
        .unwrap();
    loading.register(&router.base_url()).await.unwrap();

    let response = post_chat(&router.base_url(), &chat("coder")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(served_by(&response), "node-small");
    assert_eq!(response.headers()["x-llm-router-model"], "m");
    assert_eq!(sent_model(&small), "m");
    assert_eq!(loading.requests(), 0);
    let row = newest_row(&router, 1).await;
    assert_eq!(
        (row["model"].as_str(), row["requested_model"].as_str()),
        (Some("m"), Some("coder"))
    );

    // Once `big` is ready somewhere, it serves its own requests.
    let ready = node("node-big-2", "big", &router).await;
    let response = post_chat(&router.base_url(), &chat("big")).await;
    assert_eq!(served_by(&response), "node-big-2");
    assert!(response.headers().get("x-llm-router-model").is_none());
    assert_eq!(ready.requests(), 1);
}

#[tokio::test]
async fn no_fallback_is_taken_after_the_first_byte() {
    let router = spawn_router(config("", "big=m")).await.unwrap();
    let chunk = json!({"object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": "x"}}]})
    .to_string();
    let dying = FakeNode::builder("node-big")
        .model("big")
        .reply(Reply::sse_aborted(
            vec![chunk.clone(), chunk],
            Duration::from_millis(20),
        ))
        .spawn()
        .await
        .unwrap();
    dying.register(&router.base_url()).await.unwrap();
    let small = node("node-small", "m", &router).await;

    let mut body = chat("big");
    body["stream"] = json!(true);
    let response = post_chat(&router.base_url(), &body).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(served_by(&response), "node-big");
    let text = response.text().await.unwrap_or_default();
    assert!(text.contains("upstream_disconnected"), "{text}");
    assert_eq!(small.requests(), 0, "the fallback never saw the request");
}

#[tokio::test]
async fn aliases_set_through_the_admin_api_are_checked_and_survive_a_restart() {
    let dir = TempDir::new("aliases-restart").unwrap();
    let url = format!("sqlite://{}", dir.path().join("router.db").display());
    let config = llm_router::Config {
        database_url: url,
        ..config("fixed=m", "")
    };
    let router = spawn_router(config.clone()).await.unwrap();
    let admin = router.admin_token().await;
    let put = |path: &str, body: Value| {
        client()
            .put(router.url(path))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    assert_eq!(
        put("/api/aliases/coder", json!({"model": "m"}))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        put("/api/fallbacks/big", json!({"fallbacks": ["m"]}))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    // An alias of an alias, a name with a newline, and a configured alias's removal are refused.
    let chained = put("/api/aliases/x", json!({"model": "coder"}))
        .await
        .unwrap();
    assert_eq!(chained.status(), StatusCode::BAD_REQUEST);
    let bad = put("/api/aliases/a%0Ab", json!({"model": "m"}))
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let fixed = client()
        .delete(router.url("/api/aliases/fixed"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(fixed.status(), StatusCode::CONFLICT);

    drop(router);
    let router = spawn_router(config).await.unwrap();
    let listing: Value = router
        .get_as_admin("/api/aliases")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        listing["aliases"],
        json!([{"name": "coder", "model": "m", "source": "api"},
               {"name": "fixed", "model": "m", "source": "config"}])
    );
    assert_eq!(
        listing["fallbacks"],
        json!([{"model": "big", "fallbacks": ["m"], "source": "api"}])
    );
    let fake = node("node-a", "m", &router).await;
    let response = post_chat(&router.base_url(), &chat("coder")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(sent_model(&fake), "m");
}
