//! Bounded everything an outsider controls, against the production router: node credentials
//! checked before a body is read, refused registrations that cannot fill the logs (the real
//! binary's JSON log and stderr), a 30 MB model name kept cut in history, stats and the live
//! feed, endless node answers cut with a 502 naming the node, an admin's drain stored while the
//! history channel is full, and the generated enrolment token stored as a digest only.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{TestRouter, client, expect_openai_error, spawn_router, test_config, wait_until};
use futures_util::StreamExt;
use llm_router::Config;
use llm_router_testkit::{FakeNode, Reply, TEST_ENROLLMENT_TOKEN, TempDir};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// The longest name the router keeps whole, and room for the cut's mark.
const NAME_CAP: usize = 256 + 32;

/// POSTs `body` to `path` with `token` (if any) as `Authorization: Bearer`.
async fn post_raw(
    router: &TestRouter,
    path: &str,
    token: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    let mut request = client()
        .post(router.url(path))
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_credentials_are_checked_before_the_body_is_read() {
    let node = FakeNode::builder("n").model("m").spawn().await.unwrap();
    let router = spawn_router(test_config()).await.unwrap();
    let registered = node.register(&router.base_url()).await.unwrap();

    // Garbage bodies: the missing or wrong credential is what the caller hears about.
    for path in [
        "/api/agents/register",
        "/api/health",
        "/api/tasks/t1/progress",
    ] {
        for token in [None, Some("wrong-token")] {
            let response = post_raw(&router, path, token, "{not json").await;
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{path} with {token:?}"
            );
        }
    }
    // The right credentials still reach the body (and its parser).
    let response = post_raw(
        &router,
        "/api/agents/register",
        Some(TEST_ENROLLMENT_TOKEN),
        "{not json",
    )
    .await;
    expect_openai_error(response, StatusCode::BAD_REQUEST, "invalid_json").await;
    let response = post_raw(
        &router,
        "/api/health",
        Some(registered.node_token.expose()),
        "{not json",
    )
    .await;
    expect_openai_error(response, StatusCode::BAD_REQUEST, "invalid_json").await;
    // The token of one node does not send a heartbeat for another.
    let response = client()
        .post(router.url("/api/health"))
        .bearer_auth(registered.node_token.expose())
        .json(&node.heartbeat_body("someone-else"))
        .send()
        .await
        .unwrap();
    assert_ne!(response.status(), StatusCode::OK);

    // A body that never comes: the refusal does not wait for it.
    let addr = router.base_url().trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(
            b"POST /api/agents/register HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\n\
              Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n{\"machine_name\":\"",
        )
        .await
        .unwrap();
    let mut head = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut head))
        .await
        .expect("no answer while the body was still owed")
        .unwrap();
    assert_eq!(&head, b"HTTP/1.1 401");
}

/// A `llm-router` process whose stderr goes to a file; killed when dropped.
struct LoggingRouter {
    child: Child,
    url: String,
    stderr: PathBuf,
    logs: PathBuf,
    _dir: TempDir,
}

impl Drop for LoggingRouter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl LoggingRouter {
    async fn start() -> LoggingRouter {
        let dir = TempDir::new("log-bomb").unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let stderr = dir.path().join("stderr.log");
        let logs = dir.path().join("logs");
        let child = Command::new(env!("CARGO_BIN_EXE_llm-router"))
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--database-url")
            .arg(format!(
                "sqlite://{}",
                dir.path().join("router.db").display()
            ))
            .arg("--log-dir")
            .arg(&logs)
            .env("LLM_ROUTER_ADMIN_PASSWORD", common::ADMIN_PASSWORD)
            .env("LLM_ROUTER_ENROLLMENT_TOKEN", TEST_ENROLLMENT_TOKEN)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let router = LoggingRouter {
            child,
            url,
            stderr,
            logs,
            _dir: dir,
        };
        let health = format!("{}/health", router.url);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = client().get(&health).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(Instant::now() < deadline, "the router did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        router
    }

    /// Bytes of the JSON log files and of stderr.
    fn logged_bytes(&self) -> u64 {
        let files: u64 = std::fs::read_dir(&self.logs)
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0);
        files + std::fs::metadata(&self.stderr).map_or(0, |m| m.len())
    }
}

/// A registration body of `node` under another machine name.
fn registration(node: &FakeNode, machine_name: &str) -> Vec<u8> {
    let mut request = node.register_request();
    request.machine_name = machine_name.to_owned();
    serde_json::to_vec(&request).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_registrations_with_huge_names_barely_grow_the_logs() {
    let node = FakeNode::builder("n").model("m").spawn().await.unwrap();
    let router = LoggingRouter::start().await;
    // Let start-up logging settle before measuring.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = router.logged_bytes();
    let huge = registration(&node, &"A".repeat(5 << 20));
    let large = registration(&node, &"B".repeat(60 << 10));
    let url = format!("{}/api/agents/register", router.url);
    let send = |body: Vec<u8>, token: Option<&'static str>| {
        let mut request = client()
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    for _ in 0..10 {
        for token in [None, Some("wrong-token"), Some(TEST_ENROLLMENT_TOKEN)] {
            // Refused (413) as soon as the headers are read: the client may still be writing
            // the body when the connection closes.
            match send(huge.clone(), token).await {
                Ok(response) => assert_eq!(
                    response.status(),
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "5 MiB with {token:?}"
                ),
                Err(e) => assert!(e.is_request(), "5 MiB with {token:?}: {e}"),
            }
        }
        for token in [None, Some("wrong-token")] {
            let status = send(large.clone(), token).await.unwrap().status();
            assert_eq!(status, StatusCode::UNAUTHORIZED, "60 KiB with {token:?}");
        }
        let status = send(large.clone(), Some(TEST_ENROLLMENT_TOKEN))
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::BAD_REQUEST, "60 KiB name, right token");
    }
    // Logs are written by a background thread: give it time to catch up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let grown = router.logged_bytes() - before;
    assert!(
        grown < 100 * 1024,
        "60 refused registrations grew the logs by {grown} bytes"
    );
}

/// The `request` frames of the live feed as they come.
async fn request_frame(router: &TestRouter) -> impl std::future::Future<Output = Value> {
    let url = router.url("/ws/dashboard").replace("http://", "ws://");
    let mut request = url.into_client_request().unwrap();
    let token = router.admin_token().await;
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    async move {
        let wait = async {
            while let Some(message) = socket.next().await {
                let Message::Text(text) = message.unwrap() else {
                    continue;
                };
                let value: Value = serde_json::from_str(&text).unwrap();
                if value["type"] == "request" {
                    return value;
                }
            }
            panic!("the feed closed");
        };
        tokio::time::timeout(Duration::from_secs(30), wait)
            .await
            .expect("no request frame")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_30_mb_model_name_is_refused_and_kept_cut_everywhere() {
    let node = FakeNode::builder("n").model("m").spawn().await.unwrap();
    let router = spawn_router(test_config()).await.unwrap();
    node.register(&router.base_url()).await.unwrap();
    let frame = request_frame(&router).await;
    let huge = "M".repeat(30 << 20);

    let body = json!({"model": huge, "messages": [{"role": "user", "content": "hi"}]});
    let response = client()
        .post(router.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let error = expect_openai_error(response, StatusCode::NOT_FOUND, "model_not_found").await;
    let message = error["message"].as_str().unwrap();
    assert!(message.len() < 1024, "message of {} bytes", message.len());
    assert!(message.contains("…[+"), "{message}");

    let shown = frame.await;
    let model = shown["request"]["model"].as_str().unwrap().to_owned();
    assert!(
        model.len() <= NAME_CAP,
        "feed: model of {} bytes",
        model.len()
    );
    assert!(
        model.starts_with("MMMM") && model.contains("…[+"),
        "{model}"
    );

    // Ollama's shape.
    let response = client()
        .post(router.url("/api/chat"))
        .json(&json!({"model": huge, "messages": [], "stream": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: Value = response.json().await.unwrap();
    let message = body["error"].as_str().unwrap();
    assert!(message.len() < 1024 && message.contains("…[+"), "{message}");

    wait_until("both rows stored", Duration::from_secs(10), || async {
        let rows: Value = router
            .get_as_admin("/api/requests")
            .await
            .json()
            .await
            .unwrap();
        rows["total"] == 2
    })
    .await;
    let rows: Value = router
        .get_as_admin("/api/requests")
        .await
        .json()
        .await
        .unwrap();
    for row in rows["items"].as_array().unwrap() {
        let stored = row["model"].as_str().unwrap();
        assert!(
            stored.len() <= NAME_CAP,
            "row: model of {} bytes",
            stored.len()
        );
        assert_eq!(stored, model);
        let error = row["error"].as_str().unwrap_or_default();
        assert!(error.len() < 4096, "row: error of {} bytes", error.len());
    }
    let stats: Value = router
        .get_as_admin("/api/stats")
        .await
        .json()
        .await
        .unwrap();
    let groups = stats["since_start"]["by_model"].as_object().unwrap();
    assert!(!groups.is_empty(), "{stats}");
    for name in groups.keys() {
        assert!(
            name.len() <= NAME_CAP,
            "stats: group of {} bytes",
            name.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_whole_answer_is_cut_with_a_502_naming_the_node() {
    let node = FakeNode::builder("endless-node")
        .model("m")
        .reply(Reply::Endless(200))
        .spawn()
        .await
        .unwrap();
    let router = spawn_router(test_config()).await.unwrap();
    node.register(&router.base_url()).await.unwrap();
    let ask = |path: &'static str, body: Value| {
        client()
            .post(router.url(path))
            .json(&body)
            .timeout(Duration::from_secs(60))
            .send()
    };
    let chat =
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": false});
    let response = ask("/api/chat", chat.clone()).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let body: Value = response.json().await.unwrap();
    let message = body["error"].as_str().unwrap();
    assert!(message.contains("endless-node"), "{message}");
    assert!(message.contains("larger than"), "{message}");

    // An endless error body: a server error with a short message.
    node.set_reply(Reply::Endless(500));
    let response = ask("/api/chat", chat).await.unwrap();
    assert!(response.status().is_server_error(), "{}", response.status());
    let body: Value = response.json().await.unwrap();
    let message = body["error"].as_str().unwrap();
    assert!(message.len() < 4096, "error of {} bytes", message.len());
}

/// Every file of `dir`, concatenated.
fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.path().is_file() {
            out.extend(std::fs::read(entry.path()).unwrap());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_is_stored_even_when_the_history_channel_is_full() {
    let dir = TempDir::new("drain-full").unwrap();
    let url = format!("sqlite://{}", dir.path().join("router.db").display());
    let node = FakeNode::builder("n").model("m").spawn().await.unwrap();
    let router = spawn_router(Config {
        database_url: url.clone(),
        history_buffer: 1,
        ..test_config()
    })
    .await
    .unwrap();
    let id = node.register(&router.base_url()).await.unwrap().node_id;
    let token = router.admin_token().await;
    let store = llm_router::store::SqliteStore::open(&url).await.unwrap();
    let stored_draining = || async {
        use llm_router::store::Store;
        store
            .nodes()
            .await
            .unwrap()
            .iter()
            .find(|n| n.id == id)
            .map(|n| n.draining)
    };
    wait_until("the node row stored", Duration::from_secs(10), || async {
        stored_draining().await == Some(false)
    })
    .await;

    // Another connection holds SQLite's write lock: the writer stalls on its next batch, and the
    // one-row channel behind it fills with request rows.
    use sqlx::Connection;
    let mut lock = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut lock)
        .await
        .unwrap();
    for _ in 0..5 {
        let response = common::post_chat(&router.base_url(), &common::chat("m")).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let drain = tokio::spawn({
        let url = router.url(&format!("/api/agents/{id}/drain"));
        async move {
            client()
                .post(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    sqlx::query("COMMIT").execute(&mut lock).await.unwrap();
    drop(lock);
    assert_eq!(drain.await.unwrap(), StatusCode::OK);
    // Answered after it was stored.
    assert_eq!(stored_draining().await, Some(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generated_enrolment_token_is_stored_as_a_digest_only() {
    let dir = TempDir::new("enrol-hash").unwrap();
    let url = format!("sqlite://{}", dir.path().join("router.db").display());
    let mut config = Config {
        database_url: url,
        ..test_config()
    };
    config.auth.enrollment_token = None;
    let node = FakeNode::builder("n").model("m").spawn().await.unwrap();

    let router = spawn_router(config.clone()).await.unwrap();
    let shown: Value = router
        .get_as_admin("/api/auth/enrollment-token")
        .await
        .json()
        .await
        .unwrap();
    let token = shown["token"].as_str().unwrap().to_owned();
    assert!(token.len() >= 32, "{token}");
    let registered = node
        .send_registration(&router.base_url(), Some(&token))
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::OK);
    let files = all_bytes(dir.path());
    assert!(
        !files.windows(token.len()).any(|w| w == token.as_bytes()),
        "the enrolment token is in the database files"
    );
    drop(router);

    let router = spawn_router(config).await.unwrap();
    let again = node
        .send_registration(&router.base_url(), Some(&token))
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::OK, "after a restart");
    let wrong = node
        .send_registration(&router.base_url(), Some("llme_wrong"))
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    // Not known any more, so not shown.
    let response = router.get_as_admin("/api/auth/enrollment-token").await;
    expect_openai_error(response, StatusCode::CONFLICT, "conflict").await;
    let files = all_bytes(dir.path());
    assert!(!files.windows(token.len()).any(|w| w == token.as_bytes()));
}

/// A node (holding a real node token) reporting a model name of 40 KB and a 20 KB error text:
/// the router keeps neither whole — the model is left out, the error is cut and marked — and the
/// report is still taken (the node stays registered with its other model).
#[tokio::test]
async fn a_nodes_heartbeat_with_huge_strings_is_kept_bounded() {
    let router = spawn_router(test_config()).await.unwrap();
    let node = FakeNode::builder("reporter")
        .model("m")
        .spawn()
        .await
        .unwrap();
    let registered = node.register(&router.base_url()).await.unwrap();
    let heartbeat = json!({
        "node_id": registered.node_id,
        "metrics": {"cpu_percent": 0.0, "memory_percent": 0.0, "memory_used_bytes": 0,
                    "memory_total_bytes": 0, "gpus": [], "active_requests": 0,
                    "requests_total": 0, "avg_response_ms": null},
        "models": [
            {"name": "m".repeat(40_000), "state": "ready", "slots_total": 1, "slots_free": 1, "error": null},
            {"name": "broken", "state": "failed", "slots_total": null, "slots_free": null,
             "error": "e".repeat(20_000)}
        ]
    });
    let response = client()
        .post(router.url("/api/health"))
        .bearer_auth(registered.node_token.expose())
        .json(&heartbeat)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let agents: Value = router
        .get_as_admin("/api/agents")
        .await
        .json()
        .await
        .unwrap();
    let models = agents[0]["models"].as_array().unwrap();
    assert_eq!(models.len(), 1, "{models:?}");
    assert_eq!(models[0]["name"], "broken");
    let error = models[0]["error"].as_str().unwrap();
    assert!(
        error.len() < 2048 + 32,
        "error kept whole: {} bytes",
        error.len()
    );
    assert!(error.ends_with(" bytes]"), "the cut is not marked");
}
