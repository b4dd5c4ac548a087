//! Who may call what. [`TABLE`] is every route × every kind of credential → the status the router
//! answers; the test walks it against a router with API keys required, and checks that README.md
//! shows the same table. Then the rules the table cannot show: enrolment, node tokens speaking
//! only for their own node, revoked and expired keys in each API's error shape, model allow-lists,
//! login throttling, sessions, bodies hidden from viewers, CORS off.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use llm_router::Config;
use llm_router_protocol::Secret;
use llm_router_testkit::{FakeNode, Reply, TEST_ENROLLMENT_TOKEN};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, RETRY_AFTER, SET_COOKIE, WWW_AUTHENTICATE};
use serde_json::{Value, json};

use common::{
    ADMIN_PASSWORD, TestRouter, client, expect_openai_error, login, spawn_router, test_config,
    wait_until,
};

/// Password of every user the test creates (the same as admin's, so one password-change body
/// fits both).
const PASSWORD: &str = ADMIN_PASSWORD;

/// Kinds of credential, in the table's column order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Credential {
    None,
    Viewer,
    Admin,
    ApiKey,
    NodeToken,
    EnrollmentToken,
}

const CREDENTIALS: [Credential; 6] = [
    Credential::None,
    Credential::Viewer,
    Credential::Admin,
    Credential::ApiKey,
    Credential::NodeToken,
    Credential::EnrollmentToken,
];

struct Row {
    method: &'static str,
    /// `{node}`, `{user}`, `{key}`, `{request}`, `{task}` are replaced by a fresh target for each call.
    path: &'static str,
    body: Option<&'static str>,
    /// Status for each credential, in [`CREDENTIALS`] order.
    expect: [u16; 6],
}

const fn row(
    method: &'static str,
    path: &'static str,
    body: Option<&'static str>,
    expect: [u16; 6],
) -> Row {
    Row {
        method,
        path,
        body,
        expect,
    }
}

const OPEN: [u16; 6] = [200; 6];
const KEY_200: [u16; 6] = [401, 401, 401, 200, 401, 401];
const VIEWER_200: [u16; 6] = [401, 200, 200, 401, 401, 401];
const CHAT: &str = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
const OLLAMA_CHAT: &str =
    r#"{"model":"m","stream":false,"messages":[{"role":"user","content":"hi"}]}"#;
const HEARTBEAT: &str = r#"{"node_id":"{node}","metrics":{"cpu_percent":1.0,"memory_percent":1.0,"memory_used_bytes":1,"memory_total_bytes":2,"gpus":[],"active_requests":0,"requests_total":0,"avg_response_ms":null},"models":[{"name":"m","state":"ready","slots_total":1,"slots_free":1,"error":null}]}"#;
const METRICS: &str = r#"{"cpu_percent":1.0,"memory_percent":1.0,"memory_used_bytes":1,"memory_total_bytes":2,"gpus":[],"active_requests":0,"requests_total":0,"avg_response_ms":null}"#;

/// Every route of the router.
const TABLE: &[Row] = &[
    row("GET", "/health", None, OPEN),
    row("GET", "/", None, OPEN),
    row("GET", "/api/version", None, OPEN),
    row(
        "POST",
        "/api/auth/login",
        Some(r#"{"username":"admin","password":"test-admin-password"}"#),
        OPEN,
    ),
    row("GET", "/v1/models", None, KEY_200),
    row("GET", "/v1/models/m", None, KEY_200),
    row("POST", "/v1/chat/completions", Some(CHAT), KEY_200),
    row(
        "POST",
        "/v1/completions",
        Some(r#"{"model":"m","prompt":"hi"}"#),
        KEY_200,
    ),
    row(
        "POST",
        "/v1/embeddings",
        Some(r#"{"model":"m","input":"hi"}"#),
        KEY_200,
    ),
    row("GET", "/api/tags", None, KEY_200),
    row("GET", "/api/ps", None, KEY_200),
    row("POST", "/api/show", Some(r#"{"model":"m"}"#), KEY_200),
    row("POST", "/api/chat", Some(OLLAMA_CHAT), KEY_200),
    row(
        "POST",
        "/api/generate",
        Some(r#"{"model":"m","prompt":"hi","stream":false}"#),
        KEY_200,
    ),
    row(
        "POST",
        "/api/embed",
        Some(r#"{"model":"m","input":"hi"}"#),
        KEY_200,
    ),
    row(
        "POST",
        "/api/embeddings",
        Some(r#"{"model":"m","prompt":"hi"}"#),
        KEY_200,
    ),
    row(
        "POST",
        "/api/pull",
        Some(r#"{"model":"m"}"#),
        [401, 401, 401, 501, 401, 401],
    ),
    row(
        "POST",
        "/api/agents/register",
        Some("{registration}"),
        [401, 401, 401, 401, 401, 200],
    ),
    row(
        "POST",
        "/api/health",
        Some(HEARTBEAT),
        [401, 401, 401, 401, 200, 401],
    ),
    row(
        "POST",
        "/api/agents/{node}/metrics",
        Some(METRICS),
        [401, 401, 401, 401, 204, 401],
    ),
    row("GET", "/metrics", None, [401, 200, 200, 200, 401, 401]),
    row("GET", "/api/auth/me", None, VIEWER_200),
    row(
        "PUT",
        "/api/auth/password",
        Some(r#"{"current_password":"test-admin-password","new_password":"test-admin-password"}"#),
        [401, 204, 204, 401, 401, 401],
    ),
    row(
        "POST",
        "/api/auth/logout",
        None,
        [401, 204, 204, 401, 401, 401],
    ),
    row(
        "GET",
        "/api/auth/enrollment-token",
        None,
        [401, 403, 200, 401, 401, 401],
    ),
    row("GET", "/api/users", None, [401, 403, 200, 401, 401, 401]),
    row(
        "POST",
        "/api/users",
        Some(r#"{"username":"{unique}","password":"test-admin-password","role":"viewer"}"#),
        [401, 403, 201, 401, 401, 401],
    ),
    row(
        "PATCH",
        "/api/users/{user}",
        Some(r#"{"role":"admin"}"#),
        [401, 403, 200, 401, 401, 401],
    ),
    row(
        "DELETE",
        "/api/users/{user}",
        None,
        [401, 403, 204, 401, 401, 401],
    ),
    row("GET", "/api/keys", None, [401, 403, 200, 401, 401, 401]),
    row(
        "POST",
        "/api/keys",
        Some(r#"{"name":"{unique}"}"#),
        [401, 403, 201, 401, 401, 401],
    ),
    row(
        "DELETE",
        "/api/keys/{key}",
        None,
        [401, 403, 200, 401, 401, 401],
    ),
    row("GET", "/api/agents", None, VIEWER_200),
    row("GET", "/api/agents/{node}", None, VIEWER_200),
    row(
        "DELETE",
        "/api/agents/{node}",
        None,
        [401, 403, 204, 401, 401, 401],
    ),
    row(
        "GET",
        "/api/agents/{node}/metrics/history",
        None,
        VIEWER_200,
    ),
    row("GET", "/api/queue", None, VIEWER_200),
    row("GET", "/api/stats", None, VIEWER_200),
    row("GET", "/api/requests", None, VIEWER_200),
    row("GET", "/api/requests/export", None, VIEWER_200),
    row("GET", "/api/requests/{request}", None, VIEWER_200),
    row("GET", "/api/models/available", None, VIEWER_200),
    row(
        "POST",
        "/api/models/distribute",
        Some(r#"{"model":"gemma3-270m","target":"{node}"}"#),
        [401, 403, 202, 401, 401, 401],
    ),
    row("GET", "/api/agents/{node}/models", None, VIEWER_200),
    row(
        "POST",
        "/api/agents/{node}/models/pull",
        Some(r#"{"model":"gemma3-270m"}"#),
        [401, 403, 202, 401, 401, 401],
    ),
    row("GET", "/api/tasks", None, VIEWER_200),
    row("GET", "/api/tasks/{task}", None, VIEWER_200),
    row(
        "POST",
        "/api/tasks/{task}/progress",
        Some(
            r#"{"node_id":"{node}","status":"downloading","bytes_done":1,"bytes_total":2,"bytes_per_sec":1,"error":null}"#,
        ),
        [401, 401, 401, 401, 204, 401],
    ),
];

/// The table as README.md shows it.
fn markdown() -> String {
    let mut out = String::from(
        "| route | no credentials | viewer | admin | API key | node token | enrolment token |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for r in TABLE {
        let cells: Vec<String> = r.expect.iter().map(u16::to_string).collect();
        out.push_str(&format!(
            "| `{} {}` | {} |\n",
            r.method,
            r.path,
            cells.join(" | ")
        ));
    }
    out
}

/// A fake reply every inference route can read: chat, completion and embedding fields at once.
fn universal_reply() -> Reply {
    Reply::Json(json!({
        "id": "x", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                     "text": "hi", "finish_reason": "stop"}],
        "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    }))
}

/// A router requiring API keys (the default), with the test's admin password and enrolment token.
fn secured_config() -> Config {
    let mut config = test_config();
    config.auth.allow_anonymous_inference = false;
    config
}

async fn call(
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

async fn admin_json(router: &TestRouter, method: &str, path: &str, body: Value) -> Value {
    let token = router.admin_token().await;
    as_json(router, &token, method, path, body).await
}

async fn as_json(router: &TestRouter, token: &str, method: &str, path: &str, body: Value) -> Value {
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

struct World {
    router: TestRouter,
    /// Session of a second admin, `root`, which the table's rows never touch.
    setup: String,
    fake: FakeNode,
    viewer_name: String,
    api_key: String,
    request_id: String,
}

async fn world() -> World {
    let fake = FakeNode::builder("node-a")
        .model("m")
        .reply(universal_reply())
        .spawn()
        .await
        .unwrap();
    let router = spawn_router(secured_config()).await.unwrap();
    fake.register(&router.base_url()).await.unwrap();
    admin_json(
        &router,
        "POST",
        "/api/users",
        json!({"username": "viewer", "password": PASSWORD, "role": "viewer"}),
    )
    .await;
    admin_json(
        &router,
        "POST",
        "/api/users",
        json!({"username": "root", "password": PASSWORD, "role": "admin"}),
    )
    .await;
    let setup = login(&router, "root", PASSWORD).await;
    let key = admin_json(&router, "POST", "/api/keys", json!({"name": "table"})).await;
    let api_key = key["key"].as_str().unwrap().to_owned();
    let response = call(
        &router,
        "POST",
        "/v1/chat/completions",
        Some(CHAT.to_owned()),
        Some(("authorization", format!("Bearer {api_key}"))),
    )
    .await;
    assert_eq!(response.status(), 200);
    let request_id = newest_request(&router).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    World {
        router,
        setup,
        fake,
        viewer_name: "viewer".to_owned(),
        api_key,
        request_id,
    }
}

/// The newest row of the history as the admin sees it, once there is one.
async fn newest_request(router: &TestRouter) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let page: Value = router
            .get_as_admin("/api/requests")
            .await
            .json()
            .await
            .unwrap();
        if page["items"][0].is_object() {
            return page["items"][0].clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no request in the history"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Fresh targets and credentials for one call: registration gives a new node token, logins new
/// sessions, and destructive rows get throwaway users and keys.
async fn call_row(w: &World, r: &Row, credential: Credential, n: usize) -> StatusCode {
    let registration = w.fake.register(&w.router.base_url()).await.unwrap();
    let node_id = registration.node_id.clone();
    let user = as_json(
        &w.router,
        &w.setup,
        "POST",
        "/api/users",
        json!({"username": format!("throwaway-{n}"), "password": PASSWORD, "role": "viewer"}),
    )
    .await;
    let key = as_json(
        &w.router,
        &w.setup,
        "POST",
        "/api/keys",
        json!({"name": format!("throwaway-{n}")}),
    )
    .await;
    let task = as_json(
        &w.router,
        &w.setup,
        "POST",
        &format!("/api/agents/{node_id}/models/pull"),
        json!({"model": "gemma3-270m"}),
    )
    .await;
    let task_id = task["task_ids"][0].as_str().unwrap().to_owned();
    let fill = |s: &str| {
        s.replace("{node}", &node_id)
            .replace("{task}", &task_id)
            .replace("{user}", user["id"].as_str().unwrap())
            .replace("{key}", key["id"].as_str().unwrap())
            .replace("{request}", &w.request_id)
            .replace("{unique}", &format!("unique-{n}"))
    };
    let body = r.body.map(|b| {
        if b == "{registration}" {
            serde_json::to_string(&w.fake.register_request()).unwrap()
        } else {
            fill(b)
        }
    });
    let bearer = |t: &str| Some(("authorization", format!("Bearer {t}")));
    let auth = match credential {
        Credential::None => None,
        Credential::Viewer => bearer(&login(&w.router, &w.viewer_name, PASSWORD).await),
        Credential::Admin => bearer(&login(&w.router, "admin", PASSWORD).await),
        Credential::ApiKey => bearer(&w.api_key),
        Credential::NodeToken => bearer(registration.node_token.expose()),
        Credential::EnrollmentToken => bearer(TEST_ENROLLMENT_TOKEN),
    };
    let response = call(&w.router, r.method, &fill(r.path), body, auth).await;
    let status = response.status();
    // Clean up what a call removed, so later rows find the node and the admin session works.
    if status == StatusCode::NO_CONTENT && r.path == "/api/agents/{node}" {
        w.fake.register(&w.router.base_url()).await.unwrap();
    }
    status
}

#[tokio::test]
async fn every_route_answers_each_credential_as_the_table_says() {
    let w = world().await;
    let mut mismatches = Vec::new();
    let mut n = 0;
    for r in TABLE {
        for (i, credential) in CREDENTIALS.iter().enumerate() {
            n += 1;
            let status = call_row(&w, r, *credential, n).await.as_u16();
            if status != r.expect[i] {
                mismatches.push(format!(
                    "{} {} with {credential:?}: expected {}, got {status}",
                    r.method, r.path, r.expect[i]
                ));
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert_eq!(
        w.fake.unauthorized_requests(),
        0,
        "the router always sent the node's token"
    );
}

#[test]
fn readme_shows_the_table_the_test_walks() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let table = markdown();
    assert!(
        readme.contains(&table),
        "README.md must contain this table (regenerate it from crates/router/tests/access.rs):\n{table}"
    );
}

#[test]
fn no_route_but_the_open_ones_answers_2xx_without_credentials() {
    for r in TABLE {
        let open = r.expect == OPEN;
        assert!(
            open || r.expect[0] == 401,
            "{} {} must refuse anonymous callers",
            r.method,
            r.path
        );
    }
}

#[tokio::test]
async fn a_node_without_the_enrolment_token_is_refused_and_never_listed() {
    let router = spawn_router(secured_config()).await.unwrap();
    let fake = FakeNode::builder("intruder")
        .model("m")
        .spawn()
        .await
        .unwrap();
    for token in [None, Some("wrong-token")] {
        let response = fake
            .send_registration(&router.base_url(), token)
            .await
            .unwrap();
        let code = if token.is_none() {
            "missing_enrollment_token"
        } else {
            "invalid_enrollment_token"
        };
        expect_openai_error(response, StatusCode::UNAUTHORIZED, code).await;
    }
    let fleet: Value = router
        .get_as_admin("/api/agents")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fleet, json!([]), "no node listed");
    assert_eq!(fake.requests(), 0);
    assert_eq!(
        fake.unauthorized_requests(),
        0,
        "the router never even called it"
    );
}

#[tokio::test]
async fn a_node_token_speaks_only_for_its_own_node() {
    let router = spawn_router(secured_config()).await.unwrap();
    let a = FakeNode::builder("node-a")
        .model("m")
        .spawn()
        .await
        .unwrap();
    let b = FakeNode::builder("node-b")
        .model("m")
        .spawn()
        .await
        .unwrap();
    let reg_a = a.register(&router.base_url()).await.unwrap();
    let reg_b = b.register(&router.base_url()).await.unwrap();

    let forged = a
        .send_heartbeat(
            &router.base_url(),
            &reg_b.node_id,
            reg_a.node_token.expose(),
        )
        .await
        .unwrap();
    expect_openai_error(forged, StatusCode::UNAUTHORIZED, "invalid_node_token").await;
    let forged = a
        .push_metrics(
            &router.base_url(),
            &reg_b.node_id,
            reg_a.node_token.expose(),
            &Default::default(),
        )
        .await
        .unwrap();
    expect_openai_error(forged, StatusCode::UNAUTHORIZED, "invalid_node_token").await;
    let own = a
        .send_heartbeat(
            &router.base_url(),
            &reg_a.node_id,
            reg_a.node_token.expose(),
        )
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
}

/// Creates a key as admin with `body`; the key.
async fn new_key(router: &TestRouter, body: Value) -> (String, String) {
    let created = admin_json(router, "POST", "/api/keys", body).await;
    (
        created["id"].as_str().unwrap().to_owned(),
        created["key"].as_str().unwrap().to_owned(),
    )
}

async fn chat_with(router: &TestRouter, path: &str, body: &str, key: &str) -> reqwest::Response {
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
async fn expect_ollama_error(response: reqwest::Response, status: StatusCode, needle: &str) {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    let message = body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("Ollama error shape: {body}"));
    assert!(message.contains(needle), "{message}");
    assert_eq!(body.as_object().unwrap().len(), 1, "only 'error': {body}");
}

#[tokio::test]
async fn revoked_and_expired_keys_get_401_in_each_apis_shape() {
    let fake = FakeNode::builder("node-a")
        .model("m")
        .reply(universal_reply())
        .spawn()
        .await
        .unwrap();
    let router = spawn_router(secured_config()).await.unwrap();
    fake.register(&router.base_url()).await.unwrap();

    let (id, key) = new_key(&router, json!({"name": "to revoke"})).await;
    assert_eq!(
        chat_with(&router, "/v1/chat/completions", CHAT, &key)
            .await
            .status(),
        200
    );
    assert_eq!(
        chat_with(&router, "/api/chat", OLLAMA_CHAT, &key)
            .await
            .status(),
        200
    );
    admin_json(&router, "DELETE", &format!("/api/keys/{id}"), json!(null)).await;
    let response = chat_with(&router, "/v1/chat/completions", CHAT, &key).await;
    assert_eq!(response.headers()[WWW_AUTHENTICATE], "Bearer");
    let error = expect_openai_error(response, StatusCode::UNAUTHORIZED, "invalid_api_key").await;
    assert!(
        error["message"].as_str().unwrap().contains("revoked"),
        "{error}"
    );
    expect_ollama_error(
        chat_with(&router, "/api/chat", OLLAMA_CHAT, &key).await,
        StatusCode::UNAUTHORIZED,
        "revoked",
    )
    .await;
    let listed = admin_json(&router, "GET", "/api/keys", json!(null)).await;
    let entry = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id)
        .unwrap();
    assert_eq!(entry["status"], "revoked");
    assert!(
        entry["last_used_at_ms"].as_u64().is_some(),
        "last use recorded: {entry}"
    );
    assert!(
        entry.get("key").is_none(),
        "the key is never listed: {entry}"
    );

    let (_, short) = new_key(&router, json!({"name": "short", "expires_in_secs": 1})).await;
    assert_eq!(
        chat_with(&router, "/v1/chat/completions", CHAT, &short)
            .await
            .status(),
        200
    );
    wait_until("the key to expire", Duration::from_secs(5), || async {
        chat_with(&router, "/v1/chat/completions", CHAT, &short)
            .await
            .status()
            == 401
    })
    .await;
    let error = expect_openai_error(
        chat_with(&router, "/v1/chat/completions", CHAT, &short).await,
        StatusCode::UNAUTHORIZED,
        "invalid_api_key",
    )
    .await;
    assert!(
        error["message"].as_str().unwrap().contains("expired"),
        "{error}"
    );
    expect_ollama_error(
        chat_with(
            &router,
            "/api/generate",
            r#"{"model":"m","prompt":"x"}"#,
            &short,
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "expired",
    )
    .await;

    // No key at all, and X-API-Key as the other way to send one.
    let missing = call(
        &router,
        "POST",
        "/v1/chat/completions",
        Some(CHAT.to_owned()),
        None,
    )
    .await;
    expect_openai_error(missing, StatusCode::UNAUTHORIZED, "missing_api_key").await;
    let (_, other) = new_key(&router, json!({"name": "header"})).await;
    let via_header = call(
        &router,
        "POST",
        "/v1/chat/completions",
        Some(CHAT.to_owned()),
        Some(("x-api-key", other)),
    )
    .await;
    assert_eq!(via_header.status(), 200);
}

#[tokio::test]
async fn a_key_limited_to_some_models_sees_and_uses_only_those() {
    let fake = FakeNode::builder("node-a")
        .model("m")
        .model("other")
        .reply(universal_reply())
        .spawn()
        .await
        .unwrap();
    let router = spawn_router(secured_config()).await.unwrap();
    fake.register(&router.base_url()).await.unwrap();
    let (_, key) = new_key(&router, json!({"name": "only m", "models": ["m"]})).await;

    let models: Value = call(
        &router,
        "GET",
        "/v1/models",
        None,
        Some(("authorization", format!("Bearer {key}"))),
    )
    .await
    .json()
    .await
    .unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["m"]);
    assert_eq!(
        chat_with(&router, "/v1/chat/completions", CHAT, &key)
            .await
            .status(),
        200
    );
    let other = CHAT.replace("\"m\"", "\"other\"");
    expect_openai_error(
        chat_with(&router, "/v1/chat/completions", &other, &key).await,
        StatusCode::FORBIDDEN,
        "model_not_allowed",
    )
    .await;
    expect_ollama_error(
        chat_with(
            &router,
            "/api/chat",
            &OLLAMA_CHAT.replace("\"m\"", "\"other\""),
            &key,
        )
        .await,
        StatusCode::FORBIDDEN,
        "other",
    )
    .await;
}

#[tokio::test]
async fn failed_logins_are_throttled_and_sessions_end_on_logout() {
    let router = spawn_router(secured_config()).await.unwrap();
    let wrong = json!({"username": "admin", "password": "not-the-password"}).to_string();
    for _ in 0..5 {
        let r = call(
            &router,
            "POST",
            "/api/auth/login",
            Some(wrong.clone()),
            None,
        )
        .await;
        expect_openai_error(r, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    let throttled = call(&router, "POST", "/api/auth/login", Some(wrong), None).await;
    assert!(throttled.headers().contains_key(RETRY_AFTER));
    expect_openai_error(
        throttled,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
    )
    .await;
    // Even the right password waits out the window from this address.
    let right = json!({"username": "admin", "password": ADMIN_PASSWORD}).to_string();
    let r = call(&router, "POST", "/api/auth/login", Some(right), None).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);

    // A second router (fresh limiter): the cookie works like the bearer token, and logout ends it.
    let router = spawn_router(secured_config()).await.unwrap();
    let r = call(
        &router,
        "POST",
        "/api/auth/login",
        Some(json!({"username": "admin", "password": ADMIN_PASSWORD}).to_string()),
        None,
    )
    .await;
    let cookie = r.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_owned();
    let me = call(
        &router,
        "GET",
        "/api/auth/me",
        None,
        Some((COOKIE.as_str(), pair.clone())),
    )
    .await;
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["role"], "admin");
    let out = call(
        &router,
        "POST",
        "/api/auth/logout",
        None,
        Some((COOKIE.as_str(), pair.clone())),
    )
    .await;
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    let after = call(
        &router,
        "GET",
        "/api/auth/me",
        None,
        Some((COOKIE.as_str(), pair)),
    )
    .await;
    expect_openai_error(after, StatusCode::UNAUTHORIZED, "invalid_session").await;
}

#[tokio::test]
async fn viewers_never_see_stored_bodies_and_the_last_admin_stays() {
    let fake = FakeNode::builder("node-a")
        .model("m")
        .reply(universal_reply())
        .spawn()
        .await
        .unwrap();
    let mut config = secured_config();
    config.store_bodies = true;
    let router = spawn_router(config).await.unwrap();
    fake.register(&router.base_url()).await.unwrap();
    let (_, key) = new_key(&router, json!({"name": "k"})).await;
    assert_eq!(
        chat_with(&router, "/v1/chat/completions", CHAT, &key)
            .await
            .status(),
        200
    );
    admin_json(
        &router,
        "POST",
        "/api/users",
        json!({"username": "watcher", "password": PASSWORD, "role": "viewer"}),
    )
    .await;
    let viewer = login(&router, "watcher", PASSWORD).await;
    let admin_row = newest_request(&router).await;
    assert!(
        admin_row["request_body"].as_str().unwrap().contains("hi"),
        "{admin_row}"
    );
    let as_viewer = |path: String| {
        let viewer = viewer.clone();
        let router = &router;
        async move {
            call(
                router,
                "GET",
                &path,
                None,
                Some(("authorization", format!("Bearer {viewer}"))),
            )
            .await
            .text()
            .await
            .unwrap()
        }
    };
    let id = admin_row["id"].as_str().unwrap();
    for path in [
        "/api/requests".to_owned(),
        format!("/api/requests/{id}"),
        "/api/requests/export?format=jsonl".to_owned(),
    ] {
        let text = as_viewer(path.clone()).await;
        assert!(text.contains(id), "{path}: {text}");
        assert!(
            !text.contains("\"content\""),
            "{path} shows a body to a viewer: {text}"
        );
    }

    let admins: Value = admin_json(&router, "GET", "/api/users", json!(null)).await;
    let admin_id = admins
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "admin")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = call(
        &router,
        "DELETE",
        &format!("/api/users/{admin_id}"),
        None,
        Some((
            "authorization",
            format!("Bearer {}", router.admin_token().await),
        )),
    )
    .await;
    expect_openai_error(r, StatusCode::CONFLICT, "conflict").await;
}

#[tokio::test]
async fn cors_is_off_and_secrets_stay_out_of_debug_output() {
    let router = spawn_router(secured_config()).await.unwrap();
    let r = client()
        .get(router.url("/health"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let preflight = client()
        .request(reqwest::Method::OPTIONS, router.url("/v1/chat/completions"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    let config = secured_config();
    let shown = format!("{config:?}");
    assert!(!shown.contains(ADMIN_PASSWORD), "{shown}");
    assert!(!shown.contains(TEST_ENROLLMENT_TOKEN), "{shown}");
    assert_eq!(format!("{:?}", Secret::new("x")), "Secret(***)");
}
