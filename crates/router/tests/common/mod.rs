//! Shared helpers for the router's integration tests: an in-process router on a random port, an
//! HTTP client, and checks of the OpenAI error shape.
//!
//! The router is started here rather than in `llm-router-testkit`, which must not depend on
//! `llm-router` (a dev-dependency cycle would compile the router twice and make its `Config` two
//! different types).

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod secured;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use llm_router::{Config, Server};
use llm_router_protocol::Secret;
use llm_router_testkit::{TEST_ENROLLMENT_TOKEN, wait_for_every};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Password of the `admin` user of test routers.
pub const ADMIN_PASSWORD: &str = "test-admin-password";

/// A router serving on `127.0.0.1:<random port>`; cancelled when dropped.
pub struct TestRouter {
    addr: SocketAddr,
    cancel: CancellationToken,
    _task: JoinHandle<Result<(), llm_router::ServerError>>,
    session: tokio::sync::OnceCell<String>,
}

impl TestRouter {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A session token of `admin` (logged in once).
    pub async fn admin_token(&self) -> String {
        self.session
            .get_or_init(|| async { login(self, "admin", ADMIN_PASSWORD).await })
            .await
            .clone()
    }

    /// `GET path` as the admin.
    pub async fn get_as_admin(&self, path: &str) -> reqwest::Response {
        client()
            .get(self.url(path))
            .bearer_auth(self.admin_token().await)
            .send()
            .await
            .expect("the router answered")
    }
}

/// Logs `username` in; the session token.
pub async fn login(router: &TestRouter, username: &str, password: &str) -> String {
    let response = client()
        .post(router.url("/api/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .expect("the router answered");
    assert_eq!(response.status(), StatusCode::OK, "login of {username}");
    let body: Value = response.json().await.expect("login JSON");
    body["token"].as_str().expect("a session token").to_owned()
}

impl Drop for TestRouter {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// The default configuration, listening on `127.0.0.1:0`, with a known admin password and
/// enrolment token. Inference needs no API key here (these tests are about routing; `access.rs`
/// tests the keys).
pub fn test_config() -> Config {
    let mut config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..Config::default()
    };
    config.auth.admin_password = Some(Secret::new(ADMIN_PASSWORD));
    config.auth.enrollment_token = Some(Secret::new(TEST_ENROLLMENT_TOKEN));
    config.auth.allow_anonymous_inference = true;
    // Fakes have no GPU: placement would send them the small model.
    config.auto_distribute = false;
    config
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
        session: tokio::sync::OnceCell::new(),
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
    wait_for_every(what, timeout, POLL, || {
        let holds = condition();
        async move { holds.await.then_some(()) }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
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
    router
        .get_as_admin("/api/queue")
        .await
        .json()
        .await
        .expect("queue stats JSON")
}

/// The entry of `GET /api/agents` for the node named `machine_name`.
pub async fn agent(router: &TestRouter, machine_name: &str) -> Value {
    let fleet: Value = router
        .get_as_admin("/api/agents")
        .await
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
