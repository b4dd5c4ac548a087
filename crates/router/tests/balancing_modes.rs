//! The configured balancing mode decides which node serves each request: `metrics` prefers the
//! least loaded node and takes turns when all are saturated; `round_robin` takes turns.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;

use llm_router::Config;
use llm_router::dispatch::BalancerMode;
use llm_router_protocol::node::{NodeMetrics, RegisterResponse};
use llm_router_testkit::FakeNode;
use reqwest::StatusCode;

use common::{TestRouter, chat, post_chat, served_by, spawn_router, test_config};

async fn router_in_mode(mode: BalancerMode) -> TestRouter {
    spawn_router(Config {
        load_balancer_mode: mode,
        ..test_config()
    })
    .await
    .unwrap()
}

async fn fake(name: &str) -> FakeNode {
    FakeNode::builder(name).model("m").spawn().await.unwrap()
}

/// Pushes `cpu`% CPU as the node's current metrics.
async fn push_cpu(router: &TestRouter, node: &FakeNode, registration: &RegisterResponse, cpu: f32) {
    let metrics = NodeMetrics {
        cpu_percent: cpu,
        ..NodeMetrics::default()
    };
    let response = node
        .push_metrics(
            &router.base_url(),
            &registration.node_id,
            registration.node_token.expose(),
            &metrics,
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

/// Sends `n` requests one after the other; how many each node served.
async fn spread(router: &TestRouter, n: usize) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for _ in 0..n {
        let response = post_chat(&router.base_url(), &chat("m")).await;
        assert_eq!(response.status(), StatusCode::OK);
        *counts.entry(served_by(&response)).or_default() += 1;
        response.bytes().await.unwrap();
    }
    counts
}

#[tokio::test]
async fn metrics_mode_prefers_the_idle_node_then_takes_turns_when_all_are_saturated() {
    let router = router_in_mode(BalancerMode::Metrics).await;
    let (busy, idle) = (fake("busy").await, fake("idle").await);
    let busy_reg = busy.register(&router.base_url()).await.unwrap();
    let idle_reg = idle.register(&router.base_url()).await.unwrap();

    push_cpu(&router, &busy, &busy_reg, 90.0).await;
    push_cpu(&router, &idle, &idle_reg, 10.0).await;
    let counts = spread(&router, 5).await;
    assert_eq!(counts, HashMap::from([("idle".to_owned(), 5)]));

    push_cpu(&router, &busy, &busy_reg, 85.0).await;
    push_cpu(&router, &idle, &idle_reg, 95.0).await;
    let counts = spread(&router, 4).await;
    assert_eq!(
        counts,
        HashMap::from([("busy".to_owned(), 2), ("idle".to_owned(), 2)])
    );
}

#[tokio::test]
async fn round_robin_mode_spreads_nine_requests_three_per_node() {
    let router = router_in_mode(BalancerMode::RoundRobin).await;
    let nodes = [
        fake("node-a").await,
        fake("node-b").await,
        fake("node-c").await,
    ];
    for node in &nodes {
        node.register(&router.base_url()).await.unwrap();
    }
    let counts = spread(&router, 9).await;
    for node in &nodes {
        assert_eq!(counts.get(node.machine_name()), Some(&3), "{counts:?}");
        assert_eq!(node.requests(), 3);
    }
}
