//! Bad input on every Ollama route: the client gets an Ollama-shaped error (`{"error": "..."}`)
//! with a precise status, and no request reaches a node.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use llm_router::Config;
use llm_router_testkit::FakeNode;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use serde_json::{Value, json};

use common::{TestRouter, agent, client, spawn_router, test_config, wait_until};

/// The Ollama routes that take a JSON body, each with a valid body for model `m`.
fn json_routes() -> Vec<(&'static str, Value)> {
    vec![
        (
            "/api/chat",
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
        ),
        ("/api/generate", json!({"model": "m", "prompt": "hi"})),
        ("/api/embed", json!({"model": "m", "input": "hi"})),
        ("/api/embeddings", json!({"model": "m", "prompt": "hi"})),
        ("/api/show", json!({"model": "m"})),
    ]
}

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

async fn post(
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

/// Asserts `response` is Ollama's error shape with `status`; returns the message.
async fn expect_ollama_error(response: reqwest::Response, status: StatusCode) -> String {
    let url = response.url().clone();
    assert_eq!(response.status(), status, "status of {url}");
    let content_type = response.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "content type {content_type:?} of {url}"
    );
    let body: Value = response.json().await.expect("a JSON error body");
    let object = body
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {body}"));
    assert_eq!(object.len(), 1, "only 'error' in {body} from {url}");
    let message = body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("'error' is not a string in {body} from {url}"));
    assert!(!message.is_empty(), "empty message from {url}");
    message.to_owned()
}

#[tokio::test]
async fn malformed_json_on_every_route_is_a_400_ollama_error() {
    let (router, fake) = router_with_one_node(test_config()).await;
    for (path, _) in json_routes() {
        for body in [
            r#"{"model":"m","#,
            "{not json}",
            r#"{"model":"m"} trailing"#,
        ] {
            let message =
                expect_ollama_error(post(&router, path, body).await, StatusCode::BAD_REQUEST).await;
            assert!(message.contains("JSON"), "{path} {body}: {message}");
        }
    }
    assert_eq!(fake.requests(), 0);
}

#[tokio::test]
async fn empty_body_on_every_route_is_a_400_ollama_error() {
    let (router, fake) = router_with_one_node(test_config()).await;
    for (path, _) in json_routes() {
        for body in ["", " \n"] {
            expect_ollama_error(post(&router, path, body).await, StatusCode::BAD_REQUEST).await;
        }
    }
    assert_eq!(fake.requests(), 0);
}

#[tokio::test]
async fn missing_or_empty_model_on_every_route_is_model_is_required() {
    let (router, fake) = router_with_one_node(test_config()).await;
    for (path, valid) in json_routes() {
        for model in [None, Some(json!("")), Some(Value::Null)] {
            let mut body = valid.clone();
            match &model {
                None => {
                    body.as_object_mut().unwrap().remove("model");
                }
                Some(value) => body["model"] = value.clone(),
            }
            let message = expect_ollama_error(
                post(&router, path, body.to_string()).await,
                StatusCode::BAD_REQUEST,
            )
            .await;
            assert!(
                message.contains("model is required"),
                "{path} {body}: {message}"
            );
        }
    }
    assert_eq!(fake.requests(), 0);
}

#[tokio::test]
async fn wrong_types_on_every_route_are_a_400_ollama_error() {
    let (router, fake) = router_with_one_node(test_config()).await;
    let cases = [
        ("/api/chat", json!({"model": 5, "messages": []})),
        ("/api/chat", json!({"model": "m", "messages": "hi"})),
        (
            "/api/chat",
            json!({"model": "m", "messages": [{"content": "no role"}]}),
        ),
        (
            "/api/chat",
            json!({"model": "m", "messages": [], "stream": "yes"}),
        ),
        (
            "/api/chat",
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "options": {"temperature": "hot"}}),
        ),
        (
            "/api/chat",
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "format": 7}),
        ),
        ("/api/generate", json!({"model": "m", "prompt": 5})),
        (
            "/api/generate",
            json!({"model": "m", "prompt": "x", "images": "not-a-list"}),
        ),
        (
            "/api/generate",
            json!({"model": "m", "prompt": "x", "options": {"num_predict": "ten"}}),
        ),
        ("/api/embed", json!({"model": "m", "input": [1, 2]})),
        (
            "/api/embed",
            json!({"model": "m", "input": "x", "truncate": "yes"}),
        ),
        ("/api/embeddings", json!({"model": "m", "prompt": ["a"]})),
        ("/api/show", json!({"model": ["m"]})),
        ("/api/chat", json!(["not", "an", "object"])),
    ];
    for (path, body) in cases {
        expect_ollama_error(
            post(&router, path, body.to_string()).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    assert_eq!(fake.requests(), 0);
}

#[tokio::test]
async fn an_invalid_format_name_is_a_400_ollama_error() {
    let (router, fake) = router_with_one_node(test_config()).await;
    let body = json!({"model": "m", "prompt": "x", "format": "yaml"});
    let message = expect_ollama_error(
        post(&router, "/api/generate", body.to_string()).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(message.contains("yaml"), "{message}");
    assert_eq!(fake.requests(), 0);
}

#[tokio::test]
async fn unknown_model_on_every_route_is_a_404_ollama_error() {
    let (router, fake) = router_with_one_node(test_config()).await;
    for (path, mut body) in json_routes() {
        body["model"] = json!("no-such-model");
        let message = expect_ollama_error(
            post(&router, path, body.to_string()).await,
            StatusCode::NOT_FOUND,
        )
        .await;
        assert!(
            message.contains("no-such-model") && message.contains("not found"),
            "{path}: {message}"
        );
    }
    // A streamed request fails the same way, before any line is sent.
    let body = json!({"model": "nope", "prompt": "hi", "stream": true});
    expect_ollama_error(
        post(&router, "/api/generate", body.to_string()).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(fake.requests(), 0);
}

#[tokio::test]
async fn wrong_method_on_every_ollama_route_is_a_405_ollama_error() {
    let router = spawn_router(test_config()).await.unwrap();
    for path in [
        "/api/chat",
        "/api/generate",
        "/api/embed",
        "/api/embeddings",
        "/api/show",
    ] {
        let response = client().get(router.url(path)).send().await.unwrap();
        expect_ollama_error(response, StatusCode::METHOD_NOT_ALLOWED).await;
    }
    for path in ["/api/tags", "/api/ps", "/api/version", "/"] {
        let response = client().post(router.url(path)).send().await.unwrap();
        expect_ollama_error(response, StatusCode::METHOD_NOT_ALLOWED).await;
    }
}

#[tokio::test]
async fn body_over_the_limit_is_a_413_ollama_error() {
    let config = Config {
        max_body_bytes: 1024,
        ..test_config()
    };
    let (router, fake) = router_with_one_node(config).await;
    let big = json!({"model": "m", "prompt": "x".repeat(2048)});
    expect_ollama_error(
        post(&router, "/api/generate", big.to_string()).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    assert_eq!(fake.requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_known_only_to_offline_nodes_is_a_503_with_retry_after() {
    let fake = FakeNode::builder("silent")
        .model("m")
        .spawn()
        .await
        .unwrap();
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
    for (path, body) in json_routes().into_iter().filter(|(p, _)| *p != "/api/show") {
        let response = post(&router, path, body.to_string()).await;
        assert!(response.headers().contains_key(RETRY_AFTER), "{path}");
        expect_ollama_error(response, StatusCode::SERVICE_UNAVAILABLE).await;
    }
    assert_eq!(fake.requests(), 0);
}

#[tokio::test]
async fn model_management_routes_answer_an_ollama_shaped_501() {
    let router = spawn_router(test_config()).await.unwrap();
    for path in [
        "/api/pull",
        "/api/push",
        "/api/create",
        "/api/copy",
        "/api/blobs/sha256:abc",
    ] {
        let response = post(&router, path, json!({"model": "m"}).to_string()).await;
        let message = expect_ollama_error(response, StatusCode::NOT_IMPLEMENTED).await;
        assert!(message.contains(path), "{message}");
    }
    let response = client()
        .delete(router.url("/api/delete"))
        .json(&json!({"model": "m"}))
        .send()
        .await
        .unwrap();
    expect_ollama_error(response, StatusCode::NOT_IMPLEMENTED).await;
}
