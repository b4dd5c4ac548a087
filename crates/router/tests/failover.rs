//! Failover before the first byte: a node that answers 5xx or refuses connections is skipped for
//! another one, marked suspect, left alone while it is down, and taken back once its `/health`
//! answers again.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use llm_router::Config;
use llm_router_testkit::{FakeNode, Reply};
use reqwest::StatusCode;
use serde_json::Value;

use common::{
    agent, chat, post_chat, queue_stats, served_by, spawn_router, test_config, wait_until,
};

/// Longest a suspect node may take to be probed back online (the first probes are 250 ms apart).
const RECOVERY: Duration = Duration::from_secs(10);

async fn skips_a_node_answering(status: u16) {
    let failing = FakeNode::builder("failing")
        .model("m")
        .reply(Reply::Status(status, r#"{"error":"boom"}"#.to_owned()))
        .spawn()
        .await
        .unwrap();
    let healthy = FakeNode::builder("healthy")
        .model("m")
        .spawn()
        .await
        .unwrap();
    let router = spawn_router(Config {
        max_attempts: 2,
        ..test_config()
    })
    .await
    .unwrap();
    failing.register(&router.base_url()).await.unwrap();
    healthy.register(&router.base_url()).await.unwrap();

    for _ in 0..4 {
        let response = post_chat(&router.base_url(), &chat("m")).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "with a node answering {status}"
        );
        assert_eq!(served_by(&response), "healthy");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(
            answer["choices"][0]["message"]["content"],
            "hello from healthy"
        );
    }
    assert!(failing.requests() >= 1, "the failing node was never tried");
    assert_eq!(healthy.requests(), 4);
    // Every answer of the failing node counted as a failure against it.
    let entry = agent(&router, "failing").await;
    assert_eq!(
        entry["router_failures_total"].as_u64().unwrap(),
        failing.requests(),
        "{entry}"
    );
}

#[tokio::test]
async fn failover_skips_a_node_answering_500() {
    skips_a_node_answering(500).await;
}

#[tokio::test]
async fn failover_skips_a_node_answering_503() {
    skips_a_node_answering(503).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_refusing_connections_is_suspect_until_it_answers_again() {
    let mut gone = FakeNode::builder("gone").model("m").spawn().await.unwrap();
    let alive = FakeNode::builder("alive").model("m").spawn().await.unwrap();
    let router = spawn_router(Config {
        max_attempts: 2,
        ..test_config()
    })
    .await
    .unwrap();
    gone.register(&router.base_url()).await.unwrap();
    alive.register(&router.base_url()).await.unwrap();
    gone.stop().await;
    assert!(
        tokio::net::TcpStream::connect(gone.addr()).await.is_err(),
        "the stopped fake still accepts connections"
    );

    for i in 0..6 {
        let response = post_chat(&router.base_url(), &chat("m")).await;
        assert_eq!(response.status(), StatusCode::OK, "request {i}");
        assert_eq!(served_by(&response), "alive", "request {i}");
        let entry = agent(&router, "gone").await;
        if entry["router_failures_total"].as_u64().unwrap() > 0 {
            assert_eq!(entry["status"], "suspect", "after request {i}: {entry}");
        }
    }
    assert_eq!(alive.requests(), 6);
    // Tried once (nodes take turns on ties), then never again while suspect.
    let entry = agent(&router, "gone").await;
    assert_eq!(entry["status"], "suspect", "{entry}");
    assert_eq!(entry["router_requests_total"], 1, "{entry}");
    assert_eq!(entry["router_failures_total"], 1, "{entry}");

    // It listens again: the router's probe of its /health brings it back, no heartbeat needed.
    gone.restart().await.unwrap();
    wait_until("the restarted node to be online", RECOVERY, || async {
        agent(&router, "gone").await["status"] == "online"
    })
    .await;
    for i in 0..4 {
        let response = post_chat(&router.base_url(), &chat("m")).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "request {i} after recovery"
        );
    }
    assert!(
        gone.requests() >= 1,
        "the recovered node got none of 4 requests"
    );
    assert_eq!(gone.requests() + alive.requests(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slot_freed_by_a_failure_does_not_send_the_next_waiter_to_the_failed_node() {
    let failing = FakeNode::builder("failing")
        .model("m")
        .reply(Reply::Status(503, r#"{"error":"boom"}"#.to_owned()))
        .spawn()
        .await
        .unwrap();
    // Its /health fails too, so no probe brings it back during the test.
    failing.set_healthy(false);
    let healthy = FakeNode::builder("healthy")
        .model("m")
        .spawn()
        .await
        .unwrap();
    let router = spawn_router(test_config()).await.unwrap();
    failing.register(&router.base_url()).await.unwrap();
    healthy.register(&router.base_url()).await.unwrap();
    failing.hold();
    healthy.hold();

    // One request on each node (one slot each), a third one waiting.
    let send = || {
        let url = router.base_url();
        tokio::spawn(async move {
            let response = post_chat(&url, &chat("m")).await;
            (response.status(), served_by(&response))
        })
    };
    let mut requests = vec![send(), send()];
    wait_until("one request on each node", RECOVERY, || async {
        failing.in_flight() == 1 && healthy.in_flight() == 1
    })
    .await;
    requests.push(send());
    wait_until("the third request to wait", RECOVERY, || async {
        queue_stats(&router).await["depth"] == 1
    })
    .await;

    // The failing node answers 503: its request fails over, and the waiter must not get its slot.
    failing.release();
    wait_until("the failing node to be suspect", RECOVERY, || async {
        agent(&router, "failing").await["status"] == "suspect"
    })
    .await;
    healthy.release();
    for request in requests {
        let (status, node) = request.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(node, "healthy");
    }
    assert_eq!(
        failing.requests(),
        1,
        "the slot freed by the failed request was handed to a waiter, which was sent to the \
         node that had just failed"
    );
    assert_eq!(healthy.requests(), 3);
}
