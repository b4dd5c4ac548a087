//! Helpers for tests against a router that requires credentials (`access.rs`, `access_rules.rs`).

use std::time::Duration;

use llm_router::Config;
use llm_router_testkit::{Reply, wait_for_every};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{ADMIN_PASSWORD, TestRouter, client, test_config};

/// Password of every user the tests create (the same as admin's, so one password-change body
/// fits both).
pub const PASSWORD: &str = ADMIN_PASSWORD;
pub const CHAT: &str = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
pub const OLLAMA_CHAT: &str =
    r#"{"model":"m","stream":false,"messages":[{"role":"user","content":"hi"}]}"#;

/// A fake reply every inference route can read: chat, completion and embedding fields at once.
pub fn universal_reply() -> Reply {
    Reply::Json(json!({
        "id": "x", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                     "text": "hi", "finish_reason": "stop"}],
        "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    }))
}

/// A router requiring API keys (the default), with the test's admin password and enrolment token.
pub fn secured_config() -> Config {
    let mut config = test_config();
    config.auth.allow_anonymous_inference = false;
    config
}

pub async fn call(
    router: &TestRouter,
    method: &str,
    path: &str,
    body: Option<String>,
    auth: Option<(&str, String)>,
) -> reqwest::Response {
    let mut request = client().request(method.parse().unwrap(), router.url(path));
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    if let Some((name, value)) = auth {
        request = request.header(name, value);
    }
    request.send().await.expect("the router answered")
}

pub async fn admin_json(router: &TestRouter, method: &str, path: &str, body: Value) -> Value {
    let token = router.admin_token().await;
    as_json(router, &token, method, path, body).await
}

pub async fn as_json(
    router: &TestRouter,
    token: &str,
    method: &str,
    path: &str,
    body: Value,
) -> Value {
    let response = call(
        router,
        method,
        path,
        Some(body.to_string()),
        Some(("authorization", format!("Bearer {token}"))),
    )
    .await;
    assert!(
        response.status().is_success(),
        "{method} {path}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

/// The newest row of the history as the admin sees it, once there is one.
pub async fn newest_request(router: &TestRouter) -> Value {
    wait_for_every(
        "a request in the history",
        Duration::from_secs(5),
        Duration::from_millis(20),
        || async {
            let page: Value = router
                .get_as_admin("/api/requests")
                .await
                .json()
                .await
                .unwrap();
            page["items"][0]
                .is_object()
                .then(|| page["items"][0].clone())
        },
    )
    .await
    .unwrap()
}

/// Creates a key as admin with `body`; the key.
pub async fn new_key(router: &TestRouter, body: Value) -> (String, String) {
    let created = admin_json(router, "POST", "/api/keys", body).await;
    (
        created["id"].as_str().unwrap().to_owned(),
        created["key"].as_str().unwrap().to_owned(),
    )
}

pub async fn chat_with(
    router: &TestRouter,
    path: &str,
    body: &str,
    key: &str,
) -> reqwest::Response {
    call(
        router,
        "POST",
        path,
        Some(body.to_owned()),
        Some(("authorization", format!("Bearer {key}"))),
    )
    .await
}

/// Asserts an Ollama-shaped error: `{"error": "<message containing needle>"}`.
pub async fn expect_ollama_error(response: reqwest::Response, status: StatusCode, needle: &str) {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    let message = body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("Ollama error shape: {body}"));
    assert!(message.contains(needle), "{message}");
    assert_eq!(body.as_object().unwrap().len(), 1, "only 'error': {body}");
}
