//! One API key cannot take the router from the others: a key flooding the wait queue is refused
//! beyond its share (429 `key_queue_share` + `Retry-After`, in the OpenAI and the Ollama shape,
//! recorded in the history) while a second key is still served at once; a slowly-read stream
//! holds its key's slot and the key's next request waits, not another key's; the per-key counts
//! return to zero when the answers end or the clients go away.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use llm_router::Config;
use llm_router::dispatch::{InFlightLimit, ShareLimits};
use llm_router_testkit::{FakeNode, Reply};
use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;
use serde_json::{Value, json};

use common::secured::{CHAT, OLLAMA_CHAT, chat_with, expect_ollama_error, new_key, secured_config};
use common::{TestRouter, expect_openai_error, queue_stats, spawn_router, wait_until};

/// Deadline for a state the router reaches in milliseconds.
const SOON: Duration = Duration::from_secs(5);

/// An answer streamed slowly enough to hold its slot for the whole test (40 chunks, 250 ms
/// apart: 10 s).
fn slow_stream() -> Reply {
    let chunk = json!({"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m",
        "choices": [{"index": 0, "delta": {"content": "tok"}, "finish_reason": null}]})
    .to_string();
    Reply::sse(vec![chunk; 40], Duration::from_millis(250))
}

/// A router requiring keys, each key holding at most one of the two slots of one fake node and
/// two places in the queue; the fake answers with `reply`.
async fn fleet(reply: Reply) -> (TestRouter, FakeNode) {
    let fake = FakeNode::builder("shared")
        .model("m")
        .slots(Some(2))
        .reply(reply)
        .spawn()
        .await
        .unwrap();
    let router = spawn_router(Config {
        queue_capacity: 16,
        shares: ShareLimits {
            max_queued: 2,
            max_in_flight: InFlightLimit::Fixed(1),
        },
        ..secured_config()
    })
    .await
    .unwrap();
    fake.register(&router.base_url()).await.unwrap();
    (router, fake)
}

/// `POST /v1/chat/completions` with `key`, in the background; the status once answered (the body
/// read to its end).
fn chat_in_background(
    router: &TestRouter,
    key: &str,
) -> tokio::task::JoinHandle<reqwest::Result<StatusCode>> {
    let (url, key) = (router.url("/v1/chat/completions"), key.to_owned());
    tokio::spawn(async move {
        let response = common::client()
            .post(url)
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(CHAT)
            .send()
            .await?;
        let status = response.status();
        response.bytes().await?;
        Ok(status)
    })
}

async fn wait_for_depth(router: &TestRouter, depth: u64) {
    wait_until(&format!("queue depth {depth}"), SOON, || async {
        queue_stats(router).await["depth"] == depth
    })
    .await;
}

/// Waits until no key has anything waiting or held, and the queue is empty.
async fn wait_for_no_key_counts(router: &TestRouter) {
    wait_until("per-key counts back to zero", SOON, || async {
        let stats = queue_stats(router).await;
        stats["depth"] == 0
            && stats["per_key"]["keys"] == 0
            && stats["per_key"]["waiting"] == 0
            && stats["per_key"]["in_flight"] == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_flooding_the_queue_is_refused_past_its_share_while_another_key_is_served() {
    let (router, fake) = fleet(slow_stream()).await;
    let (_, flooder) = new_key(&router, json!({"name": "flooder"})).await;
    let (_, other) = new_key(&router, json!({"name": "other"})).await;

    // The flooder's first request holds one slot (its share); the next two wait.
    let mut flood = vec![chat_in_background(&router, &flooder)];
    wait_until("the first request to reach the node", SOON, || async {
        fake.in_flight() == 1
    })
    .await;
    for _ in 0..2 {
        flood.push(chat_in_background(&router, &flooder));
    }
    wait_for_depth(&router, 2).await;

    // Past its share of the queue, the flooder is refused at once, in each API's shape.
    let refused = chat_with(&router, "/v1/chat/completions", CHAT, &flooder).await;
    assert_eq!(
        refused.headers()[RETRY_AFTER],
        "2",
        "{:?}",
        refused.headers()
    );
    let error =
        expect_openai_error(refused, StatusCode::TOO_MANY_REQUESTS, "key_queue_share").await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("max_queued_per_key"),
        "{error}"
    );
    let refused = chat_with(&router, "/api/chat", OLLAMA_CHAT, &flooder).await;
    assert_eq!(
        refused.headers()[RETRY_AFTER],
        "2",
        "{:?}",
        refused.headers()
    );
    expect_ollama_error(refused, StatusCode::TOO_MANY_REQUESTS, "max_queued_per_key").await;

    // The other key is not refused, nor does it wait: the free slot is its.
    let served = tokio::time::timeout(
        SOON,
        chat_with(&router, "/v1/chat/completions", CHAT, &other),
    )
    .await
    .expect("the other key was not answered");
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.headers()["x-llm-router-queue-ms"], "0");
    drop(served);

    let stats = queue_stats(&router).await;
    assert_eq!(stats["per_key"]["refused_total"], 2, "{stats}");
    assert_eq!(
        stats["rejected_total"], 0,
        "the queue itself is not full: {stats}"
    );

    // Both refusals are in the history, with their status.
    wait_until("both refusals in the history", SOON, || async {
        let page: Value = router
            .get_as_admin("/api/requests")
            .await
            .json()
            .await
            .unwrap();
        let rows = page["items"].as_array().cloned().unwrap_or_default();
        rows.iter().filter(|row| row["status"] == 429).count() == 2
    })
    .await;

    // The flooder's accepted requests all end; nothing stays counted.
    for request in flood {
        request.abort();
    }
    wait_for_no_key_counts(&router).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowly_read_stream_holds_its_keys_slot_and_only_that_key_waits() {
    let (router, fake) = fleet(slow_stream()).await;
    let (_, reader) = new_key(&router, json!({"name": "slow reader"})).await;
    let (_, other) = new_key(&router, json!({"name": "other"})).await;

    // A stream whose client reads its headers and then nothing more.
    let stream = common::client()
        .post(router.url("/v1/chat/completions"))
        .bearer_auth(&reader)
        .header("content-type", "application/json")
        .body(r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let stats = queue_stats(&router).await;
    assert_eq!(stats["per_key"]["in_flight"], 1, "{stats}");

    // The reader's next request waits though a slot is free: the stream counts.
    let next = chat_in_background(&router, &reader);
    wait_for_depth(&router, 1).await;
    assert_eq!(fake.requests(), 1, "the reader got a second slot");

    // Another key takes the free slot at once.
    let served = tokio::time::timeout(
        SOON,
        chat_with(&router, "/v1/chat/completions", CHAT, &other),
    )
    .await
    .expect("the other key was not answered");
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.headers()["x-llm-router-queue-ms"], "0");
    drop(served);

    // The reader goes away: its slot is freed and its waiting request is served.
    drop(stream);
    wait_until(
        "the reader's waiting request to reach the node",
        SOON,
        || async { fake.requests() == 3 },
    )
    .await;
    assert_eq!(queue_stats(&router).await["depth"], 0);
    next.abort();
    wait_for_no_key_counts(&router).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_return_to_zero_after_answers_end() {
    let fast = Reply::Json(json!({
        "id": "x", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                     "finish_reason": "stop"}]
    }))
    .delayed(Duration::from_millis(50));
    let (router, fake) = fleet(fast).await;
    let (_, key) = new_key(&router, json!({"name": "busy"})).await;
    // More requests than the key's slot and queue shares hold: some are refused, the rest served.
    let requests: Vec<_> = (0..6).map(|_| chat_in_background(&router, &key)).collect();
    let mut statuses = Vec::new();
    for request in requests {
        statuses.push(request.await.unwrap().unwrap());
    }
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let served = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert!(served >= 3, "{statuses:?}");
    assert_eq!(
        fake.max_in_flight(),
        1,
        "the key held more than its one slot"
    );
    wait_for_no_key_counts(&router).await;
}
