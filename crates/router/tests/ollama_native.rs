//! Nodes whose runtime is Ollama itself get the client's Ollama request unchanged (no double
//! translation) and their NDJSON is passed through; what nodes say of their models reaches
//! `/api/tags` and `/api/show`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::{get, post};
use llm_router_protocol::Secret;
use llm_router_protocol::node::{
    Hardware, ModelState, ModelStatus, RegisterRequest, RuntimeInfo, RuntimeKind,
};
use llm_router_testkit::TEST_ENROLLMENT_TOKEN;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use common::{TestRouter, client, spawn_router, test_config};

/// Requests a fake received: path and body.
type Received = Arc<Mutex<Vec<(String, Bytes)>>>;

/// A FAKE node whose runtime is (said to be) Ollama: it answers `/api/chat` natively and
/// describes its model on `/api/tags`. It records the bodies it received.
struct FakeOllamaNode {
    addr: SocketAddr,
    received: Received,
}

const NATIVE_LINES: &str = concat!(
    "{\"model\":\"m\",\"created_at\":\"2025-01-01T00:00:00Z\",\"message\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"done\":false}\n",
    "{\"model\":\"m\",\"created_at\":\"2025-01-01T00:00:00Z\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",\"total_duration\":5,\"load_duration\":1,\"prompt_eval_count\":2,\"prompt_eval_duration\":1,\"eval_count\":1,\"eval_duration\":1}\n",
);

impl FakeOllamaNode {
    async fn spawn() -> FakeOllamaNode {
        let received: Received = Arc::default();
        let record = |path: &'static str| {
            move |State(received): State<Received>, body: Bytes| async move {
                received.lock().unwrap().push((path.to_owned(), body));
                ([("content-type", "application/x-ndjson")], NATIVE_LINES)
            }
        };
        let app = Router::new()
            .route(
                "/v1/models",
                get(|| async { axum::Json(json!({"object": "list", "data": [{"id": "m", "object": "model", "created": 0, "owned_by": "fake"}]})) }),
            )
            .route("/api/chat", post(record("/api/chat")))
            .route(
                "/api/tags",
                get(|| async {
                    axum::Json(json!({"models": [{
                        "name": "m", "model": "m", "modified_at": "2025-02-03T04:05:06Z",
                        "size": 253113024, "digest": "abc123",
                        "details": {"parent_model": "", "format": "gguf", "family": "gemma3",
                                    "families": ["gemma3"], "parameter_size": "268.10M",
                                    "quantization_level": "Q4_K_M"},
                        "capabilities": ["completion", "tools"], "context_length": 2048,
                        "model_info": {"general.architecture": "gemma3", "gemma3.context_length": 32768}
                    }]}))
                }),
            )
            .with_state(Arc::clone(&received));
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeOllamaNode { addr, received }
    }

    async fn register(&self, router: &TestRouter) {
        let request = RegisterRequest {
            machine_name: "ollama-node".into(),
            address: self.addr.ip().to_string(),
            port: self.addr.port(),
            node_version: "fake".into(),
            runtime: RuntimeInfo {
                kind: RuntimeKind::Ollama,
                version: Some("0.12.0".into()),
                backend: None,
            },
            hardware: Hardware {
                cpu_cores: 1,
                memory_total_bytes: 1 << 30,
                gpus: vec![],
            },
            models: vec![ModelStatus {
                name: "m".into(),
                state: ModelState::Ready,
                slots_total: Some(2),
                slots_free: Some(2),
                error: None,
                cache_tokens: None,
            }],
            api_token: Secret::new("fake-ollama-node-token"),
            scheme: llm_router_protocol::node::Scheme::Http,
        };
        let response = client()
            .post(router.url("/api/agents/register"))
            .bearer_auth(TEST_ENROLLMENT_TOKEN)
            .json(&request)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{:?}",
            response.text().await
        );
    }
}

#[tokio::test]
async fn an_ollama_node_gets_the_request_unchanged_and_its_lines_pass_through() {
    let fake = FakeOllamaNode::spawn().await;
    let router = spawn_router(test_config()).await.unwrap();
    fake.register(&router).await;

    let body = r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"options":{"num_ctx":8192},"x_extra":[1]}"#;
    let response = client()
        .post(router.url("/api/chat"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-llm-router-node"], "ollama-node");
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    assert_eq!(response.text().await.unwrap(), NATIVE_LINES);
    let received = fake.received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].0, "/api/chat");
    assert_eq!(
        received[0].1,
        Bytes::from_static(body.as_bytes()),
        "forwarded byte for byte"
    );
}

#[tokio::test]
async fn the_latest_tag_is_rewritten_for_an_ollama_node() {
    let fake = FakeOllamaNode::spawn().await;
    let router = spawn_router(test_config()).await.unwrap();
    fake.register(&router).await;
    let response = client()
        .post(router.url("/api/chat"))
        .json(&json!({"model": "m:latest", "messages": [{"role": "user", "content": "hi"}], "stream": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let received = fake.received.lock().unwrap().clone();
    let sent: Value = serde_json::from_slice(&received[0].1).unwrap();
    assert_eq!(sent["model"], "m");
    assert_eq!(sent["stream"], true);
}

#[tokio::test]
async fn what_a_node_says_of_its_model_reaches_tags_ps_and_show() {
    let fake = FakeOllamaNode::spawn().await;
    let router = spawn_router(test_config()).await.unwrap();
    fake.register(&router).await;

    let tags: Value = client()
        .get(router.url("/api/tags"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let m = &tags["models"][0];
    assert_eq!(m["size"], 253113024);
    assert_eq!(m["digest"], "abc123");
    assert_eq!(m["modified_at"], "2025-02-03T04:05:06Z");
    assert_eq!(m["details"]["family"], "gemma3");
    assert_eq!(m["details"]["quantization_level"], "Q4_K_M");
    assert!(
        m.get("capabilities").is_none(),
        "not part of Ollama's listing: {m}"
    );
    assert!(
        m.get("model_info").is_none(),
        "not part of Ollama's listing: {m}"
    );

    let ps: Value = client()
        .get(router.url("/api/ps"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ps["models"][0]["context_length"], 2048);
    assert_eq!(ps["models"][0]["size"], 253113024);

    let show: Value = client()
        .post(router.url("/api/show"))
        .json(&json!({"model": "m"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(show["capabilities"], json!(["completion", "tools"]));
    assert_eq!(show["model_info"]["general.architecture"], "gemma3");
    assert_eq!(show["model_info"]["gemma3.context_length"], 32768);
    assert_eq!(show["details"]["parameter_size"], "268.10M");
}
