//! Shared helpers for the router's integration tests: an in-process router on a random port, an
//! HTTP client, and checks of the OpenAI error shape.
//!
//! The router is started here rather than in `llm-router-testkit`, which must not depend on
//! `llm-router` (a dev-dependency cycle would compile the router twice and make its `Config` two
//! different types).

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use llm_router::{Config, Server};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A router serving on `127.0.0.1:<random port>`; cancelled when dropped.
pub struct TestRouter {
    addr: SocketAddr,
    cancel: CancellationToken,
    _task: JoinHandle<anyhow::Result<()>>,
}

impl TestRouter {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for TestRouter {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// The default configuration, listening on `127.0.0.1:0`.
pub fn test_config() -> Config {
    Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..Config::default()
    }
}

/// Starts the production router built from `config`, on `127.0.0.1:0` whatever `config.listen`
/// says.
pub async fn spawn_router(config: Config) -> anyhow::Result<TestRouter> {
    let config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..config
    };
    let server = Server::bind(config).await?;
    let addr = server.local_addr()?;
    let cancel = CancellationToken::new();
    let task = tokio::spawn(server.run(cancel.clone()));
    Ok(TestRouter {
        addr,
        cancel,
        _task: task,
    })
}

/// A client that ignores proxy settings of the environment.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("reqwest client")
}

/// Asserts `response` is an OpenAI-shaped error with `status` and `error.code == code`; returns
/// the `error` object.
pub async fn expect_openai_error(
    response: reqwest::Response,
    status: StatusCode,
    code: &str,
) -> Value {
    assert_eq!(response.status(), status, "status of {}", response.url());
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "content type {content_type:?}"
    );
    let body: Value = response.json().await.expect("JSON error body");
    let error = body
        .get("error")
        .unwrap_or_else(|| panic!("no 'error' object in {body}"))
        .clone();
    assert!(error["message"].is_string(), "message in {body}");
    assert!(
        !error["message"].as_str().unwrap().is_empty(),
        "message in {body}"
    );
    assert!(error["type"].is_string(), "type in {body}");
    assert!(error.get("param").is_some(), "param in {body}");
    assert_eq!(error["code"], code, "code in {body}");
    error
}

/// How often [`wait_until`] checks its condition.
const POLL: Duration = Duration::from_millis(10);

/// Checks `condition` until it holds; panics naming `what` if it still does not after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if condition().await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// A minimal chat completion request for `model`.
pub fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

/// `POST /v1/chat/completions` with `body`, on a client of its own.
pub async fn post_chat(router_url: &str, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{router_url}/v1/chat/completions"))
        .json(body)
        .send()
        .await
        .expect("the router answered")
}

/// The node that served `response` (`x-llm-router-node`).
pub fn served_by(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-llm-router-node")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no x-llm-router-node in {:?}", response.headers()))
        .to_owned()
}

/// `GET /api/queue`.
pub async fn queue_stats(router: &TestRouter) -> Value {
    client()
        .get(router.url("/api/queue"))
        .send()
        .await
        .expect("GET /api/queue")
        .json()
        .await
        .expect("queue stats JSON")
}

/// The entry of `GET /api/agents` for the node named `machine_name`.
pub async fn agent(router: &TestRouter, machine_name: &str) -> Value {
    let fleet: Value = client()
        .get(router.url("/api/agents"))
        .send()
        .await
        .expect("GET /api/agents")
        .json()
        .await
        .expect("fleet JSON");
    fleet
        .as_array()
        .expect("a list of nodes")
        .iter()
        .find(|n| n["machine_name"] == machine_name)
        .unwrap_or_else(|| panic!("no node '{machine_name}' in {fleet}"))
        .clone()
}
