//! Slots and the wait queue: a node never gets more requests at once than the slots it announced,
//! the others wait in a bounded FIFO queue (also while the model is still loading), a full queue
//! refuses at once, and a waiter whose client leaves is never forwarded.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use llm_router::Config;
use llm_router_protocol::node::{
    Heartbeat, ModelState, ModelStatus, NodeMetrics, RegisterResponse,
};
use llm_router_testkit::{FakeNode, Reply};
use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;
use serde_json::{Value, json};

use common::{
    TestRouter, chat, client, expect_openai_error, post_chat, queue_stats, served_by, spawn_router,
    test_config, wait_until,
};

/// Deadline for a state the router reaches in milliseconds.
const SOON: Duration = Duration::from_secs(5);

fn answer(text: &str) -> Reply {
    Reply::Json(json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": "stop"
        }]
    }))
}

/// A router with `config` and one fake serving model `m` with one slot, its replies held.
async fn one_held_slot(config: Config) -> (TestRouter, FakeNode) {
    let fake = FakeNode::builder("solo")
        .model("m")
        .slots(Some(1))
        .spawn()
        .await
        .unwrap();
    fake.hold();
    let router = spawn_router(config).await.unwrap();
    fake.register(&router.base_url()).await.unwrap();
    (router, fake)
}

/// Sends a chat request in the background and waits until the fake is answering it.
async fn occupy_the_slot(router: &TestRouter, fake: &FakeNode) -> tokio::task::JoinHandle<()> {
    let url = router.base_url();
    let holder = tokio::spawn(async move {
        let response = post_chat(&url, &chat("m")).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.bytes().await.unwrap();
    });
    wait_until("the first request to reach the node", SOON, || async {
        fake.in_flight() == 1
    })
    .await;
    holder
}

async fn wait_for_depth(router: &TestRouter, depth: u64) {
    wait_until(&format!("queue depth {depth}"), SOON, || async {
        queue_stats(router).await["depth"] == depth
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_slot_nodes_never_serve_two_requests_at_once() {
    let delay = Duration::from_millis(300);
    let a = FakeNode::builder("node-a")
        .model("m")
        .slots(Some(1))
        .reply(answer("a").delayed(delay))
        .spawn()
        .await
        .unwrap();
    let b = FakeNode::builder("node-b")
        .model("m")
        .slots(Some(1))
        .reply(answer("b").delayed(delay))
        .spawn()
        .await
        .unwrap();
    let router = spawn_router(test_config()).await.unwrap();
    a.register(&router.base_url()).await.unwrap();
    b.register(&router.base_url()).await.unwrap();

    let requests: Vec<_> = (0..10)
        .map(|_| {
            let url = router.base_url();
            tokio::spawn(async move {
                let response = post_chat(&url, &chat("m")).await;
                let status = response.status();
                let node = served_by(&response);
                let queue_ms: u64 = response.headers()["x-llm-router-queue-ms"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                let body: Value = response.json().await.unwrap();
                (status, node, queue_ms, body)
            })
        })
        .collect();
    let mut waited = 0;
    for request in requests {
        let (status, node, queue_ms, body) = request.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        let expected = if node == "node-a" { "a" } else { "b" };
        assert_eq!(body["choices"][0]["message"]["content"], expected);
        if queue_ms > 0 {
            waited += 1;
        }
    }

    assert_eq!(a.requests() + b.requests(), 10);
    assert_eq!(a.max_in_flight(), 1, "node-a served two requests at once");
    assert_eq!(b.max_in_flight(), 1, "node-b served two requests at once");
    assert!(
        waited > 0,
        "no response reported time in the queue (x-llm-router-queue-ms)"
    );
    let stats = queue_stats(&router).await;
    assert_eq!(stats["depth"], 0, "{stats}");
    assert!(
        stats["served_after_wait_total"].as_u64().unwrap() >= waited,
        "{stats}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_refuses_at_once_with_retry_after() {
    let (router, fake) = one_held_slot(Config {
        queue_capacity: 3,
        ..test_config()
    })
    .await;
    let holder = occupy_the_slot(&router, &fake).await;
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let url = router.base_url();
            tokio::spawn(async move { post_chat(&url, &chat("m")).await.status() })
        })
        .collect();
    wait_for_depth(&router, 3).await;

    let started = Instant::now();
    let response = tokio::time::timeout(SOON, post_chat(&router.base_url(), &chat("m")))
        .await
        .expect("a request beyond the queue bound waited instead of being refused");
    let elapsed = started.elapsed();
    assert!(
        response.headers().contains_key(RETRY_AFTER),
        "no Retry-After in {:?}",
        response.headers()
    );
    expect_openai_error(response, StatusCode::SERVICE_UNAVAILABLE, "queue_full").await;
    assert!(
        elapsed < Duration::from_secs(1),
        "the refusal took {elapsed:?}"
    );
    let stats = queue_stats(&router).await;
    assert_eq!(stats["rejected_total"], 1, "{stats}");
    assert_eq!(stats["depth"], 3, "{stats}");
    assert_eq!(fake.requests(), 1, "only the slot holder reached the node");

    // The requests that did get a place are all served once the node answers.
    fake.release();
    holder.await.unwrap();
    for waiter in waiters {
        assert_eq!(waiter.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(fake.requests(), 4);
    assert_eq!(fake.max_in_flight(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiter_whose_client_leaves_is_never_forwarded() {
    let (router, fake) = one_held_slot(test_config()).await;
    let holder = occupy_the_slot(&router, &fake).await;

    let url = router.base_url();
    let waiter = tokio::spawn(async move { post_chat(&url, &chat("m")).await.status() });
    wait_for_depth(&router, 1).await;
    // Dropping the request future closes its connection: the client is gone.
    waiter.abort();
    wait_until("the abandoned waiter to leave the queue", SOON, || async {
        let stats = queue_stats(&router).await;
        stats["depth"] == 0 && stats["abandoned_total"] == 1
    })
    .await;

    fake.release();
    holder.await.unwrap();
    assert_eq!(fake.requests(), 1, "the abandoned request reached the node");

    // The slot the waiter would have taken serves the next request.
    let response = post_chat(&router.base_url(), &chat("m")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(fake.requests(), 2);
    let stats = queue_stats(&router).await;
    assert_eq!(stats["abandoned_total"], 1, "{stats}");
    assert_eq!(stats["depth"], 0, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiter_past_the_queue_timeout_counts_as_timed_out_not_abandoned() {
    let (router, fake) = one_held_slot(Config {
        queue_timeout: Some(Duration::from_millis(200)),
        ..test_config()
    })
    .await;
    let holder = occupy_the_slot(&router, &fake).await;

    let response = tokio::time::timeout(SOON, post_chat(&router.base_url(), &chat("m")))
        .await
        .expect("the queue timeout did not end the wait");
    expect_openai_error(response, StatusCode::SERVICE_UNAVAILABLE, "queue_timeout").await;

    let stats = queue_stats(&router).await;
    assert_eq!(stats["depth"], 0, "{stats}");
    assert_eq!(stats["timed_out_total"], 1, "{stats}");
    assert_eq!(
        stats["abandoned_total"], 0,
        "a timed-out waiter's client did not go away: {stats}"
    );
    fake.release();
    holder.await.unwrap();
    assert_eq!(fake.requests(), 1);
}

/// A router with `config` and a fake that announces model `m` as still loading.
async fn model_still_loading(config: Config) -> (TestRouter, FakeNode, RegisterResponse) {
    let fake = FakeNode::builder("loader")
        .loading_model("m")
        .spawn()
        .await
        .unwrap();
    let router = spawn_router(config).await.unwrap();
    let registration = fake.register(&router.base_url()).await.unwrap();
    (router, fake, registration)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_for_a_loading_model_is_served_once_a_heartbeat_reports_it_ready() {
    let (router, fake, registration) = model_still_loading(test_config()).await;
    let url = router.base_url();
    let waiter = tokio::spawn(async move {
        let response = post_chat(&url, &chat("m")).await;
        (response.status(), served_by(&response))
    });
    wait_for_depth(&router, 1).await;
    assert_eq!(fake.requests(), 0);

    let ready = Heartbeat {
        node_id: registration.node_id.clone(),
        metrics: NodeMetrics::default(),
        models: vec![ModelStatus {
            name: "m".to_owned(),
            state: ModelState::Ready,
            slots_total: Some(1),
            slots_free: Some(1),
            error: None,
            cache_tokens: None,
        }],
    };
    let response = client()
        .post(router.url("/api/health"))
        .bearer_auth(registration.node_token.expose())
        .json(&ready)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let (status, node) = tokio::time::timeout(SOON, waiter)
        .await
        .expect("the waiter was not woken when the model became ready")
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(node, "loader");
    assert_eq!(fake.requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_for_a_loading_model_times_out_with_retry_after() {
    let (router, fake, _) = model_still_loading(Config {
        queue_timeout: Some(Duration::from_millis(200)),
        ..test_config()
    })
    .await;
    let response = tokio::time::timeout(SOON, post_chat(&router.base_url(), &chat("m")))
        .await
        .expect("the queue timeout did not end the wait");
    assert!(
        response.headers().contains_key(RETRY_AFTER),
        "no Retry-After in {:?}",
        response.headers()
    );
    expect_openai_error(response, StatusCode::SERVICE_UNAVAILABLE, "queue_timeout").await;
    assert_eq!(fake.requests(), 0);
}
