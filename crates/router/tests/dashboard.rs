//! The dashboard's back end: the live feed on `/ws/dashboard` (fake nodes, real router), node
//! draining, the log APIs (a fake node's log relayed, its failures mapped to 502/413) and the
//! static files.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{
    TestRouter, chat, client, expect_openai_error, post_chat, served_by, spawn_router, test_config,
};
use futures_util::StreamExt;
use llm_router_testkit::{FakeNode, LogReply, TempDir};
use reqwest::StatusCode;
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Longest wait for a frame; changes are sent within about a second.
const FRAME_WAIT: Duration = Duration::from_secs(5);

async fn connect(router: &TestRouter, origin: Option<&str>) -> Result<Socket, tungstenite::Error> {
    let url = router.url("/ws/dashboard").replace("http://", "ws://");
    let mut request = url.into_client_request().unwrap();
    let token = router.admin_token().await;
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(socket, _)| socket)
}

/// The next frame whose `type` is `kind` and that satisfies `want` (other frames are skipped).
async fn frame(socket: &mut Socket, kind: &str, want: impl Fn(&Value) -> bool) -> Value {
    let wait = async {
        while let Some(message) = socket.next().await {
            let Message::Text(text) = message.expect("a frame") else {
                continue;
            };
            let value: Value = serde_json::from_str(&text).expect("frames are JSON");
            if value["type"] == kind && want(&value) {
                return value;
            }
        }
        panic!("the socket closed while waiting for a '{kind}' frame");
    };
    tokio::time::timeout(FRAME_WAIT, wait)
        .await
        .unwrap_or_else(|_| panic!("no matching '{kind}' frame within {FRAME_WAIT:?}"))
}

/// The code and reason of the close frame the router sends (within 10 s).
async fn close_frame(socket: &mut Socket) -> (u16, String) {
    let wait = async {
        while let Some(message) = socket.next().await {
            match message.expect("a frame") {
                Message::Close(Some(frame)) => {
                    return (u16::from(frame.code), frame.reason.to_string());
                }
                Message::Close(None) => panic!("a close frame without a code"),
                _ => {}
            }
        }
        panic!("the socket ended without a close frame");
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .expect("a close frame within 10 s")
}

#[tokio::test]
async fn the_feed_shows_nodes_requests_stats_and_drains() {
    let router = spawn_router(test_config()).await.unwrap();
    let mut socket = connect(&router, Some(&router.base_url())).await.unwrap();
    let hello = frame(&mut socket, "hello", |_| true).await;
    assert_eq!(hello["user"]["username"], "admin");
    assert_eq!(hello["user"]["role"], "admin");
    assert_eq!(hello["nodes"].as_array().unwrap().len(), 0);
    assert_eq!(hello["stats"]["requests_total"], 0);

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
    let a_id = a.register(&router.base_url()).await.unwrap().node_id;
    b.register(&router.base_url()).await.unwrap();
    for name in ["node-a", "node-b"] {
        let joined = frame(&mut socket, "node_joined", |f| {
            f["node"]["machine_name"] == name
        })
        .await;
        assert_eq!(joined["node"]["draining"], false);
    }

    let response = post_chat(&router.base_url(), &chat("m")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let request = frame(&mut socket, "request", |_| true).await;
    assert_eq!(request["request"]["model"], "m");
    assert_eq!(request["request"]["status"], 200);
    assert!(request["request"]["request_body"].is_null());
    let stats = frame(&mut socket, "stats", |f| f["stats"]["requests_total"] == 1).await;
    assert_eq!(stats["stats"]["nodes"]["online"], 2);
    assert_eq!(stats["stats"]["success_rate"], 1.0);
    assert!(stats["stats"]["p95_latency_ms"].as_f64().unwrap() > 0.0);

    // Drained: no new requests; node-b serves them all. Resumed: node-a serves again.
    let token = router.admin_token().await;
    let drained: Value = client()
        .post(router.url(&format!("/api/agents/{a_id}/drain")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(drained["draining"], true);
    frame(&mut socket, "node_changed", |f| {
        f["node"]["id"] == a_id.as_str() && f["node"]["draining"] == true
    })
    .await;
    let before = a.requests();
    for _ in 0..4 {
        let response = post_chat(&router.base_url(), &chat("m")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(served_by(&response), "node-b");
    }
    assert_eq!(a.requests(), before, "a drained node got a request");
    let status = client()
        .post(router.url(&format!("/api/agents/{a_id}/resume")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);
    let mut served = Vec::new();
    for _ in 0..4 {
        served.push(served_by(&post_chat(&router.base_url(), &chat("m")).await));
    }
    assert!(served.iter().any(|n| n == "node-a"), "served by {served:?}");

    let status = client()
        .delete(router.url(&format!("/api/agents/{a_id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::NO_CONTENT);
    frame(&mut socket, "node_left", |f| f["id"] == a_id.as_str()).await;
}

#[tokio::test]
async fn the_feed_needs_a_session_and_a_page_of_this_router() {
    let router = spawn_router(test_config()).await.unwrap();
    let url = router.url("/ws/dashboard").replace("http://", "ws://");
    match tokio_tungstenite::connect_async(url).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("expected a 401 handshake, got {other:?}"),
    }
    match connect(&router, Some("http://evil.example")).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("expected a 403 handshake, got {other:?}"),
    }
    // A client that is not a browser sends no Origin.
    connect(&router, None).await.unwrap();
    // A plain GET is no handshake: a clear error in the router's shape.
    let response = router.get_as_admin("/ws/dashboard").await;
    let error = expect_openai_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert!(
        error["message"].as_str().unwrap().contains("WebSocket"),
        "{error}"
    );
}

#[tokio::test]
async fn a_node_log_is_relayed_and_its_failures_are_named() {
    let router = spawn_router(test_config()).await.unwrap();
    let mut fake = FakeNode::builder("node-log")
        .model("m")
        .spawn()
        .await
        .unwrap();
    let id = fake.register(&router.base_url()).await.unwrap().node_id;
    let path = format!("/api/agents/{id}/logs?tail=5");

    let response = router.get_as_admin(&path).await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(text.contains("fake node node-log ready"), "{text}");

    fake.set_log(LogReply::Oversized(10 * 1024 * 1024 + 1));
    let response = router.get_as_admin(&path).await;
    expect_openai_error(
        response,
        StatusCode::PAYLOAD_TOO_LARGE,
        "upstream_too_large",
    )
    .await;

    fake.set_log(LogReply::Status(500));
    let response = router.get_as_admin(&path).await;
    let error = expect_openai_error(response, StatusCode::BAD_GATEWAY, "upstream_error").await;
    assert!(
        error["message"].as_str().unwrap().contains("node-log"),
        "{error}"
    );

    fake.stop().await;
    let response = router.get_as_admin(&path).await;
    let error = expect_openai_error(response, StatusCode::BAD_GATEWAY, "upstream_error").await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("cannot read the log"),
        "{error}"
    );

    let response = router.get_as_admin("/api/agents/nope/logs").await;
    expect_openai_error(response, StatusCode::NOT_FOUND, "node_not_found").await;
    let response = router
        .get_as_admin(&format!("/api/agents/{id}/logs?tail=x"))
        .await;
    expect_openai_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
}

#[tokio::test]
async fn the_router_log_is_the_tail_of_its_files() {
    let dir = TempDir::new("router-log").unwrap();
    std::fs::write(
        dir.path().join("llm-router.2026-11-20.log"),
        "{\"n\":1}\n{\"n\":2}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("llm-router.2026-11-21.log"), "{\"n\":3}\n").unwrap();
    let mut config = test_config();
    config.log_dir = Some(dir.path().to_owned());
    let router = spawn_router(config).await.unwrap();
    let response = router.get_as_admin("/api/logs?tail=2").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "{\"n\":2}\n{\"n\":3}\n");

    // No log directory: an empty log, not an error.
    let router = spawn_router(test_config()).await.unwrap();
    let response = router.get_as_admin("/api/logs").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "");
}

#[tokio::test]
async fn the_dashboard_files_are_served_with_etags() {
    let router = spawn_router(test_config()).await.unwrap();
    let response = client().get(router.url("/dashboard")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let etag = response.headers()["etag"].clone();
    let html = response.text().await.unwrap();
    assert!(html.contains("<html"), "{html}");
    let response = client()
        .get(router.url("/dashboard"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    for path in [
        "/dashboard/nope.js",
        "/dashboard/.hidden",
        "/dashboard/../Cargo.toml",
    ] {
        let response = client().get(router.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn a_socket_closes_when_its_session_ends() {
    let router = spawn_router(test_config()).await.unwrap();
    let mut socket = connect(&router, None).await.unwrap();
    frame(&mut socket, "hello", |_| true).await;
    let status = client()
        .post(router.url("/api/auth/logout"))
        .bearer_auth(router.admin_token().await)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (code, reason) = close_frame(&mut socket).await;
    assert_eq!(code, 1008, "close code 'policy violation'");
    assert_eq!(reason, "the session ended: log in again");
}

#[tokio::test]
async fn sockets_are_told_when_the_router_shuts_down() {
    let router = spawn_router(test_config()).await.unwrap();
    let mut socket = connect(&router, None).await.unwrap();
    frame(&mut socket, "hello", |_| true).await;
    drop(router);
    let (code, _) = close_frame(&mut socket).await;
    assert_eq!(code, 1001, "close code 'going away'");
}

#[tokio::test]
async fn a_drain_survives_a_router_restart() {
    let dir = TempDir::new("drain-restart").unwrap();
    let url = format!("sqlite://{}", dir.path().join("router.db").display());
    let config = llm_router::Config {
        database_url: url.clone(),
        // The only node is drained: a request waits this long, then gets 503.
        queue_timeout: Some(Duration::from_millis(300)),
        ..test_config()
    };
    let fake = FakeNode::builder("node-d")
        .model("m")
        .spawn()
        .await
        .unwrap();
    let router = spawn_router(config.clone()).await.unwrap();
    let id = fake.register(&router.base_url()).await.unwrap().node_id;
    let status = client()
        .post(router.url(&format!("/api/agents/{id}/drain")))
        .bearer_auth(router.admin_token().await)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);
    // Stored (the writer batches), then the router goes and a new one starts on the same file.
    let store = llm_router::store::SqliteStore::open(&url).await.unwrap();
    common::wait_until("the drain stored", Duration::from_secs(10), || async {
        use llm_router::store::Store;
        store
            .nodes()
            .await
            .unwrap()
            .iter()
            .any(|n| n.id == id && n.draining)
    })
    .await;
    drop(router);
    let router = spawn_router(config).await.unwrap();
    fake.register(&router.base_url()).await.unwrap();
    let node: Value = router
        .get_as_admin(&format!("/api/agents/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(node["draining"], true, "{node}");
    assert_eq!(node["status"], "online", "{node}");
    let response = post_chat(&router.base_url(), &chat("m")).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        fake.requests(),
        0,
        "a drained node got a request after the restart"
    );
}
