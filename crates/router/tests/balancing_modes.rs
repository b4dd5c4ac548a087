//! The configured balancing mode decides which node serves each request: `metrics` prefers the
//! least loaded node and takes turns when all are saturated; `round_robin` takes turns. Metrics
//! reach the router in the node's own shape or in the load-balancing task list's `AgentMetrics`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;

use llm_router::Config;
use llm_router::dispatch::BalancerMode;
use llm_router_protocol::node::{NodeMetrics, RegisterResponse};
use llm_router_testkit::FakeNode;
use reqwest::StatusCode;
use serde_json::{Value, json};

use common::{TestRouter, agent, chat, post_chat, served_by, spawn_router, test_config};

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

/// Pushes `body` as the node's metrics; the router's answer.
async fn push(
    router: &TestRouter,
    node: &FakeNode,
    path_id: &str,
    registration: &RegisterResponse,
    body: &Value,
) -> StatusCode {
    node.push_metrics(
        &router.base_url(),
        path_id,
        registration.node_token.expose(),
        body,
    )
    .await
    .unwrap()
    .status()
}

/// The load-balancing task list's `AgentMetrics` for `registration`'s node, taken now.
fn seed_metrics(registration: &RegisterResponse, cpu: f32) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    json!({
        "agent_id": registration.node_id,
        "cpu_usage": cpu,
        "memory_usage": 30.0,
        "active_requests": 1,
        "avg_response_time": 250.0,
        "timestamp": now,
    })
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

#[tokio::test]
async fn seed_shaped_metrics_pushes_steer_the_metrics_policy() {
    let router = router_in_mode(BalancerMode::Metrics).await;
    let (busy, idle) = (fake("busy").await, fake("idle").await);
    let busy_reg = busy.register(&router.base_url()).await.unwrap();
    let idle_reg = idle.register(&router.base_url()).await.unwrap();
    let busy_id = busy_reg.node_id.clone();
    let idle_id = idle_reg.node_id.clone();

    let to_busy = seed_metrics(&busy_reg, 90.0);
    assert_eq!(
        push(&router, &busy, &busy_id, &busy_reg, &to_busy).await,
        StatusCode::NO_CONTENT
    );
    let to_idle = seed_metrics(&idle_reg, 10.0);
    assert_eq!(
        push(&router, &idle, &idle_id, &idle_reg, &to_idle).await,
        StatusCode::NO_CONTENT
    );
    let shown = agent(&router, "busy").await;
    assert_eq!(shown["metrics"]["cpu_percent"], 90.0, "{shown}");
    assert_eq!(shown["metrics"]["memory_percent"], 30.0, "{shown}");
    assert_eq!(shown["metrics"]["avg_response_ms"], 250.0, "{shown}");
    assert_eq!(
        spread(&router, 4).await,
        HashMap::from([("idle".to_owned(), 4)])
    );

    // The busy node cools down: the policy follows the seed-shaped push.
    let cooled = seed_metrics(&busy_reg, 1.0);
    assert_eq!(
        push(&router, &busy, &busy_id, &busy_reg, &cooled).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        spread(&router, 2).await,
        HashMap::from([("busy".to_owned(), 2)])
    );
}

#[tokio::test]
async fn seed_shaped_pushes_for_another_node_or_out_of_time_are_refused() {
    let router = router_in_mode(BalancerMode::Metrics).await;
    let (a, b) = (fake("node-a").await, fake("node-b").await);
    let a_reg = a.register(&router.base_url()).await.unwrap();
    let b_reg = b.register(&router.base_url()).await.unwrap();

    // node-a's token on its own path, but the body names node-b.
    let mut other = seed_metrics(&b_reg, 99.0);
    assert_eq!(
        push(&router, &a, &a_reg.node_id, &a_reg, &other).await,
        StatusCode::FORBIDDEN
    );
    // node-b's path with node-a's token: the token check refuses it before the body is read.
    other["agent_id"] = json!(b_reg.node_id);
    assert_eq!(
        push(&router, &a, &b_reg.node_id, &a_reg, &other).await,
        StatusCode::UNAUTHORIZED
    );
    let mut stale = seed_metrics(&a_reg, 99.0);
    stale["timestamp"] = json!("2020-01-01T00:00:00Z");
    assert_eq!(
        push(&router, &a, &a_reg.node_id, &a_reg, &stale).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        agent(&router, "node-b").await["metrics"]["cpu_percent"],
        0.0
    );
    assert_eq!(
        agent(&router, "node-a").await["metrics"]["cpu_percent"],
        0.0
    );
}
