//! Hostile clients against the production router, over raw TCP where a well-behaved HTTP client
//! would not do it: 2 000 half-sent requests (closed within the header-read timeout while
//! `/health` still answers), an idle keep-alive connection, a flood over the connection cap (closed
//! at once and logged), and bodies over the 64 KiB limit of the non-inference routes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use common::{TestRouter, client, expect_openai_error, spawn_router, test_config, wait_until};
use llm_router::Config;
use llm_router_testkit::FakeNode;
use llm_router_testkit::hostile::{
    closed_by_server, flood_size, half_sent, raise_open_files_limit, still_open,
};
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The header-read timeout of these tests' routers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);

/// How late past the timeout a connection may still be closed (a loaded two-core machine).
const SLACK: Duration = Duration::from_secs(3);

/// 100 KiB: over the 64 KiB limit of login and the other small routes, far under inference's.
const BIG: usize = 100 * 1024;

fn addr(router: &TestRouter) -> SocketAddr {
    router
        .base_url()
        .trim_start_matches("http://")
        .parse()
        .unwrap()
}

async fn health(router: &TestRouter) -> Result<StatusCode, reqwest::Error> {
    client()
        .get(router.url("/health"))
        .timeout(Duration::from_secs(1))
        .send()
        .await
        .map(|r| r.status())
}

/// What the whole test process logged so far (one global subscriber, installed once).
fn logged() -> String {
    String::from_utf8_lossy(&log_buffer().lock().unwrap_or_else(PoisonError::into_inner))
        .into_owned()
}

fn log_buffer() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(|| LogWriter)
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        Mutex::new(Vec::new())
    })
}

struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        log_buffer()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_half_sent_requests_are_closed_within_the_header_timeout_while_health_answers()
{
    let open_files = raise_open_files_limit();
    // Both ends of every connection are in this process.
    let n = flood_size(2_000, open_files);
    eprintln!("open-files limit {open_files}: a flood of {n} half-sent requests");
    assert!(
        n >= 400,
        "open-files limit {open_files} too low for a flood"
    );
    let router = spawn_router(Config {
        header_read_timeout: HEADER_TIMEOUT,
        ..test_config()
    })
    .await
    .unwrap();
    let addr = addr(&router);

    let mut flood = Vec::with_capacity(n);
    for i in 0..n {
        flood.push(half_sent(addr).await.unwrap());
        if i % 500 == 499 {
            assert_eq!(health(&router).await.unwrap(), StatusCode::OK, "after {i}");
        }
    }
    assert_eq!(
        health(&router).await.unwrap(),
        StatusCode::OK,
        "with {n} half-sent requests open"
    );

    let waits: Vec<_> = flood
        .into_iter()
        .map(|(stream, sent)| {
            tokio::spawn(async move {
                let closed = closed_by_server(stream, sent + HEADER_TIMEOUT + SLACK).await;
                closed.map(|at| at - sent)
            })
        })
        .collect();
    let mut longest = Duration::ZERO;
    let mut shortest = Duration::MAX;
    for (i, wait) in waits.into_iter().enumerate() {
        let open_for = wait.await.unwrap().unwrap_or_else(|| {
            panic!(
                "connection {i} still open {:?} after its request",
                HEADER_TIMEOUT + SLACK
            )
        });
        longest = longest.max(open_for);
        shortest = shortest.min(open_for);
    }
    eprintln!("{n} connections closed after {shortest:?} to {longest:?}");
    assert!(
        shortest + Duration::from_millis(500) >= HEADER_TIMEOUT,
        "a connection was closed after {shortest:?}, before the timeout"
    );
    assert_eq!(health(&router).await.unwrap(), StatusCode::OK);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
    let router = spawn_router(Config {
        header_read_timeout: HEADER_TIMEOUT,
        ..test_config()
    })
    .await
    .unwrap();
    let mut stream = TcpStream::connect(addr(&router)).await.unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 512];
    let read = stream.read(&mut answer).await.unwrap();
    assert!(
        answer[..read].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer[..read])
    );
    let idle_since = Instant::now();
    let closed = closed_by_server(stream, idle_since + HEADER_TIMEOUT + SLACK)
        .await
        .expect("the idle connection is closed");
    assert!(closed - idle_since + Duration::from_millis(500) >= HEADER_TIMEOUT);
}

#[tokio::test]
async fn connections_over_the_cap_are_closed_at_once_and_logged() {
    log_buffer();
    const CAP: usize = 20;
    let router = spawn_router(Config {
        max_connections: CAP,
        ..test_config()
    })
    .await
    .unwrap();
    let addr = addr(&router);
    // Held open: the default 30 s header timeout does not end them during the test.
    let mut held = Vec::with_capacity(CAP);
    for _ in 0..CAP {
        held.push(half_sent(addr).await.unwrap().0);
    }
    for _ in 0..5 {
        let (over, sent) = half_sent(addr).await.unwrap();
        let closed = closed_by_server(over, sent + Duration::from_secs(2)).await;
        assert!(closed.is_some(), "a connection over the cap stayed open");
    }
    assert!(
        health(&router).await.is_err(),
        "/health is a connection over the cap too"
    );
    assert!(still_open(&mut held[0], Duration::from_millis(200)).await);
    let log = logged();
    assert!(
        log.contains("connection limit reached") && log.contains("max_connections=20"),
        "{log}"
    );
    assert_eq!(
        log.matches("connection limit reached").count(),
        1,
        "one warning per burst: {log}"
    );

    drop(held);
    wait_until("/health answers again", Duration::from_secs(5), || async {
        health(&router).await.is_ok_and(|s| s == StatusCode::OK)
    })
    .await;
    let log = logged();
    assert!(log.contains("below the connection limit again"), "{log}");
}

#[tokio::test]
async fn a_100_kib_login_is_refused_and_a_100_kib_chat_accepted() {
    let node = FakeNode::builder("n").model("m").spawn().await.unwrap();
    let router = spawn_router(test_config()).await.unwrap();
    node.register(&router.base_url()).await.unwrap();
    let filler = "x".repeat(BIG);

    let login = client()
        .post(router.url("/api/auth/login"))
        .json(&json!({"username": "admin", "password": filler}))
        .send()
        .await
        .unwrap();
    expect_openai_error(login, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;

    // Before any credential: a node's heartbeat, and an admin request with a session.
    let heartbeat = client()
        .post(router.url("/api/health"))
        .json(&json!({"node_id": filler}))
        .send()
        .await
        .unwrap();
    assert_eq!(heartbeat.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let create_user = client()
        .post(router.url("/api/users"))
        .bearer_auth(router.admin_token().await)
        .json(&json!({"username": "u", "password": filler, "role": "viewer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(create_user.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let chat = json!({"model": "m", "messages": [{"role": "user", "content": filler}]});
    let openai = client()
        .post(router.url("/v1/chat/completions"))
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(openai.status(), StatusCode::OK);
    assert!(
        node.last_body().unwrap().len() > BIG,
        "the whole body relayed"
    );
    let ollama = client()
        .post(router.url("/api/chat"))
        .json(&json!({"model": "m", "stream": false, "messages": [{"role": "user", "content": filler}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(ollama.status(), StatusCode::OK);
}
