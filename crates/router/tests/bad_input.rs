//! What the router does with bad input: OpenAI-shaped errors for the client, untouched bodies for
//! the node. (Broken nodes: `failover.rs`, `stream_failure.rs`.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use llm_router::Config;
use llm_router_testkit::FakeNode;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use serde_json::{Value, json};

use common::{
    TestRouter, agent, client, expect_openai_error, spawn_router, test_config, wait_until,
};

const CHAT: &str = "/v1/chat/completions";

/// A router with one fake node serving model `m`.
async fn router_with_one_node(config: Config) -> (TestRouter, FakeNode) {
    let fake = FakeNode::builder("node-a")
        .model("m")
        .spawn()
        .await
        .unwrap();
    let router = spawn_router(config).await.unwrap();
    fake.register(&router.base_url()).await.unwrap();
    (router, fake)
}

async fn post_raw(
    router: &TestRouter,
    path: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    client()
        .post(router.url(path))
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test]
async fn malformed_json_is_refused_as_invalid_json() {
    let (router, fake) = router_with_one_node(test_config()).await;
    for body in [
        r#"{"model":"m","messages":["#,
        "{not json}",
        r#"{"model":"m","messages":[{"role":"user","content":"hi"}]} trailing"#,
    ] {
        let response = post_raw(&router, CHAT, body).await;
        let error = expect_openai_error(response, StatusCode::BAD_REQUEST, "invalid_json").await;
        assert_eq!(error["type"], "invalid_request_error", "for {body}");
    }
    assert_eq!(fake.requests(), 0);
}

#[tokio::test]
async fn empty_body_is_refused_as_invalid_json() {
    let (router, fake) = router_with_one_node(test_config()).await;
    for body in ["", "  \n"] {
        let response = post_raw(&router, CHAT, body).await;
        let error = expect_openai_error(response, StatusCode::BAD_REQUEST, "invalid_json").await;
        assert_eq!(error["type"], "invalid_request_error");
    }
    assert_eq!(fake.requests(), 0);
}

#[tokio::test]
async fn fields_of_the_wrong_type_are_refused_as_invalid_request() {
    let (router, fake) = router_with_one_node(test_config()).await;
    let messages = json!([{"role": "user", "content": "hi"}]);
    for body in [
        json!({"model": 5, "messages": messages}),
        json!({"model": "m", "messages": "hi"}),
        json!({"model": "m", "messages": messages, "stream": "yes"}),
    ] {
        let response = post_raw(&router, CHAT, body.to_string()).await;
        let error = expect_openai_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert_eq!(error["type"], "invalid_request_error", "for {body}");
    }
    assert_eq!(fake.requests(), 0);
}

#[tokio::test]
async fn missing_model_is_refused_as_invalid_request() {
    let (router, fake) = router_with_one_node(test_config()).await;
    let body = json!({"messages": [{"role": "user", "content": "hi"}]});
    let response = post_raw(&router, CHAT, body.to_string()).await;
    let error = expect_openai_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert!(
        error["message"].as_str().unwrap().contains("model"),
        "{error}"
    );
    assert_eq!(fake.requests(), 0);
}

#[tokio::test]
async fn unknown_model_is_not_found() {
    let (router, fake) = router_with_one_node(test_config()).await;
    let response = post_raw(&router, CHAT, chat("no-such-model").to_string()).await;
    let error = expect_openai_error(response, StatusCode::NOT_FOUND, "model_not_found").await;
    assert_eq!(error["type"], "invalid_request_error");
    assert_eq!(fake.requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_known_only_to_offline_nodes_is_unavailable_with_retry_after() {
    let fake = FakeNode::builder("silent")
        .model("m")
        .spawn()
        .await
        .unwrap();
    // No heartbeat ever comes: the node goes offline soon after registering.
    let router = spawn_router(Config {
        heartbeat_interval: Duration::from_millis(100),
        node_timeout: Duration::from_millis(300),
        ..test_config()
    })
    .await
    .unwrap();
    fake.register(&router.base_url()).await.unwrap();
    wait_until(
        "the silent node to go offline",
        Duration::from_secs(5),
        || async { agent(&router, "silent").await["status"] == "offline" },
    )
    .await;

    let response = post_raw(&router, CHAT, chat("m").to_string()).await;
    assert!(
        response.headers().contains_key(RETRY_AFTER),
        "no Retry-After in {:?}",
        response.headers()
    );
    let error = expect_openai_error(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "no_node_available",
    )
    .await;
    assert_eq!(error["type"], "server_error");
    assert_eq!(fake.requests(), 0);
}

#[tokio::test]
async fn body_over_the_limit_is_refused_as_payload_too_large() {
    let config = Config {
        max_body_bytes: 1024,
        ..test_config()
    };
    let (router, fake) = router_with_one_node(config).await;
    let big = json!({
        "model": "m",
        "messages": [{"role": "user", "content": "x".repeat(2048)}]
    });
    let response = post_raw(&router, CHAT, big.to_string()).await;
    expect_openai_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert_eq!(fake.requests(), 0);

    // A request under the limit still goes through.
    let response = post_raw(&router, CHAT, chat("m").to_string()).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn chunked_body_over_the_limit_is_refused_as_payload_too_large() {
    let config = Config {
        max_body_bytes: 1024,
        ..test_config()
    };
    let (router, fake) = router_with_one_node(config).await;
    let big = json!({
        "model": "m",
        "messages": [{"role": "user", "content": "x".repeat(2048)}]
    })
    .to_string()
    .into_bytes();
    let (head, tail) = big.split_at(600);
    let pieces: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::copy_from_slice(head)),
        Ok(Bytes::copy_from_slice(tail)),
    ];
    // No Content-Length: the limit must hold while the body is read.
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(pieces));
    let response = post_raw(&router, CHAT, body).await;
    expect_openai_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert_eq!(fake.requests(), 0);
}

#[tokio::test]
async fn unknown_route_is_an_openai_shaped_not_found() {
    let router = spawn_router(test_config()).await.unwrap();
    let response = client().get(router.url("/v1/nope")).send().await.unwrap();
    let error = expect_openai_error(response, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(error["type"], "invalid_request_error");
    let response = client()
        .post(router.url("/no/such/route"))
        .send()
        .await
        .unwrap();
    expect_openai_error(response, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn unknown_fields_reach_the_node_byte_for_byte() {
    let (router, fake) = router_with_one_node(test_config()).await;
    // Odd spacing, key order, escapes and fields the router has never heard of.
    let body = concat!(
        "{ \"messages\" : [ {\"role\":\"user\",\"content\":\"h\\u00e9llo\", \"name\": \"x\"} ],\n",
        "  \"x_vendor_extension\": {\"nested\": [1, 2.50, null, true], \"k\": \"v\"},\n",
        "  \"model\":\"m\", \"temperature\": 0.70, \"top_k\": 40, \"cache_prompt\": true }"
    );
    let response = post_raw(&router, CHAT, body).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-llm-router-node"], "node-a");
    let answer: Value = response.json().await.unwrap();
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        "hello from node-a"
    );

    let received = fake.last_request().expect("the node got the request");
    assert_eq!(received.path, CHAT);
    assert_eq!(received.body, Bytes::from_static(body.as_bytes()));
    assert_eq!(fake.requests(), 1);
}

#[tokio::test]
async fn models_list_names_a_model_once_when_two_nodes_serve_it() {
    let a = FakeNode::builder("node-a")
        .model("m")
        .spawn()
        .await
        .unwrap();
    let b = FakeNode::builder("node-b")
        .model("m")
        .model("n")
        .spawn()
        .await
        .unwrap();
    let router = spawn_router(test_config()).await.unwrap();
    a.register(&router.base_url()).await.unwrap();
    b.register(&router.base_url()).await.unwrap();

    let response = client().get(router.url("/v1/models")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let list: Value = response.json().await.unwrap();
    assert_eq!(list["object"], "list");
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["m", "n"]);
}

#[tokio::test]
async fn heartbeat_with_a_wrong_token_is_unauthorized() {
    let fake = FakeNode::builder("node-a")
        .model("m")
        .spawn()
        .await
        .unwrap();
    let router = spawn_router(test_config()).await.unwrap();
    let registration = fake.register(&router.base_url()).await.unwrap();

    let response = fake
        .send_heartbeat(&router.base_url(), &registration.node_id, "not-the-token")
        .await
        .unwrap();
    let error = expect_openai_error(response, StatusCode::UNAUTHORIZED, "invalid_node_token").await;
    assert_eq!(error["type"], "authentication_error");

    let response = fake
        .send_heartbeat(
            &router.base_url(),
            &registration.node_id,
            registration.node_token.expose(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
