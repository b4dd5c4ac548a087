//! Who may call what. [`TABLE`] is every route × every kind of credential → the status the router
//! answers; the test walks it against a router with API keys required, with fresh real targets
//! for each call, and checks that README.md shows the same table. The rules the table cannot show
//! are in `access_rules.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use llm_router_testkit::{FakeNode, TEST_ENROLLMENT_TOKEN, TempDir};
use reqwest::StatusCode;
use serde_json::json;

use common::secured::{
    CHAT, OLLAMA_CHAT, PASSWORD, admin_json, as_json, call, newest_request, secured_config,
    universal_reply,
};
use common::{TestRouter, login, spawn_router};

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
const HEARTBEAT: &str = r#"{"node_id":"{node}","metrics":{"cpu_percent":1.0,"memory_percent":1.0,"memory_used_bytes":1,"memory_total_bytes":2,"gpus":[],"active_requests":0,"requests_total":0,"avg_response_ms":null},"models":[{"name":"m","state":"ready","slots_total":1,"slots_free":1,"error":null}]}"#;
const RESPONSES: &str = r#"{"model":"m","input":"hi"}"#;
const MESSAGES: &str =
    r#"{"model":"m","max_tokens":4,"messages":[{"role":"user","content":"hi"}]}"#;
const METRICS: &str = r#"{"cpu_percent":1.0,"memory_percent":1.0,"memory_used_bytes":1,"memory_total_bytes":2,"gpus":[],"active_requests":0,"requests_total":0,"avg_response_ms":null}"#;

/// Every route of the router.
const TABLE: &[Row] = &[
    row("GET", "/health", None, OPEN),
    row("GET", "/", None, OPEN),
    row("GET", "/api/version", None, OPEN),
    row("GET", "/dashboard", None, OPEN),
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
    row("POST", "/v1/responses", Some(RESPONSES), KEY_200),
    row(
        "POST",
        "/v1/responses/input_tokens",
        Some(RESPONSES),
        KEY_200,
    ),
    row("POST", "/v1/messages", Some(MESSAGES), KEY_200),
    row(
        "POST",
        "/v1/messages/count_tokens",
        Some(r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#),
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
    row("GET", "/join.sh", None, OPEN),
    row(
        "GET",
        "/api/bundle/SHA256SUMS",
        None,
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
    row("GET", "/api/aliases", None, VIEWER_200),
    row(
        "PUT",
        "/api/aliases/{unique}",
        Some(r#"{"model":"m"}"#),
        [401, 403, 200, 401, 401, 401],
    ),
    row(
        "DELETE",
        "/api/aliases/{alias}",
        None,
        [401, 403, 204, 401, 401, 401],
    ),
    row(
        "PUT",
        "/api/fallbacks/{unique}",
        Some(r#"{"fallbacks":["m"]}"#),
        [401, 403, 200, 401, 401, 401],
    ),
    row(
        "DELETE",
        "/api/fallbacks/{fallback}",
        None,
        [401, 403, 204, 401, 401, 401],
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
    row("GET", "/api/agents/{node}/logs", None, VIEWER_200),
    row(
        "POST",
        "/api/agents/{node}/drain",
        None,
        [401, 403, 200, 401, 401, 401],
    ),
    row(
        "POST",
        "/api/agents/{node}/resume",
        None,
        [401, 403, 200, 401, 401, 401],
    ),
    row("GET", "/api/logs", None, VIEWER_200),
    // A plain GET is not a WebSocket handshake: a session gets 400, nobody else gets that far.
    row("GET", "/ws/dashboard", None, [401, 400, 400, 401, 401, 401]),
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

struct World {
    router: TestRouter,
    /// Session of a second admin, `root`, which the table's rows never touch.
    setup: String,
    fake: FakeNode,
    viewer_name: String,
    api_key: String,
    request_id: String,
    /// The join bundle the router serves (`/join.sh`, `/api/bundle/*`).
    _bundle: TempDir,
}

async fn world() -> World {
    let fake = FakeNode::builder("node-a")
        .model("m")
        .reply(universal_reply())
        .spawn()
        .await
        .unwrap();
    let bundle = TempDir::new("access-bundle").unwrap();
    std::fs::write(bundle.path().join("join.sh"), "echo @ROUTER_URL@\n").unwrap();
    std::fs::write(bundle.path().join("SHA256SUMS"), "").unwrap();
    let mut config = secured_config();
    config.bundle_dir = Some(bundle.path().to_owned());
    let router = spawn_router(config).await.unwrap();
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
        _bundle: bundle,
    }
}

/// Fresh targets and credentials for one call: registration gives a new node token, logins new
/// sessions, and destructive rows get throwaway users and keys.
async fn call_row(w: &World, r: &Row, credential: Credential, n: usize) -> StatusCode {
    let registration = w.fake.register(&w.router.base_url()).await.unwrap();
    let node_id = registration.node_id.clone();
    // Only the targets the row names are made (a user costs a password hash).
    let names = |placeholder: &str| {
        r.path.contains(placeholder) || r.body.is_some_and(|b| b.contains(placeholder))
    };
    let user = if names("{user}") {
        as_json(
            &w.router,
            &w.setup,
            "POST",
            "/api/users",
            json!({"username": format!("throwaway-{n}"), "password": PASSWORD, "role": "viewer"}),
        )
        .await
    } else {
        json!({"id": ""})
    };
    let key = if names("{key}") {
        as_json(
            &w.router,
            &w.setup,
            "POST",
            "/api/keys",
            json!({"name": format!("throwaway-{n}")}),
        )
        .await
    } else {
        json!({"id": ""})
    };
    let task_id = if names("{task}") {
        let task = as_json(
            &w.router,
            &w.setup,
            "POST",
            &format!("/api/agents/{node_id}/models/pull"),
            json!({"model": "gemma3-270m"}),
        )
        .await;
        task["task_ids"][0].as_str().unwrap().to_owned()
    } else {
        String::new()
    };
    let (alias, fallback) = (format!("alias-{n}"), format!("fallback-{n}"));
    if r.path.contains("{alias}") {
        let path = format!("/api/aliases/{alias}");
        as_json(&w.router, &w.setup, "PUT", &path, json!({"model": "m"})).await;
    }
    if r.path.contains("{fallback}") {
        let path = format!("/api/fallbacks/{fallback}");
        as_json(
            &w.router,
            &w.setup,
            "PUT",
            &path,
            json!({"fallbacks": ["m"]}),
        )
        .await;
    }
    let fill = |s: &str| {
        s.replace("{node}", &node_id)
            .replace("{task}", &task_id)
            .replace("{user}", user["id"].as_str().unwrap())
            .replace("{key}", key["id"].as_str().unwrap())
            .replace("{request}", &w.request_id)
            .replace("{unique}", &format!("unique-{n}"))
            .replace("{alias}", &alias)
            .replace("{fallback}", &fallback)
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
