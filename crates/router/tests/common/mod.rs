//! Shared helpers for the router's integration tests: an in-process router on a random port, an
//! HTTP client, and checks of the OpenAI error shape.
//!
//! The router is started here rather than in `llm-router-testkit`, which must not depend on
//! `llm-router` (a dev-dependency cycle would compile the router twice and make its `Config` two
//! different types).

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;

use llm_router::{Config, Server};
use reqwest::StatusCode;
use serde_json::Value;
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
