//! The router relays a node's stream as it comes: each SSE event reaches the client when the node
//! sends it, not when the node finishes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use llm_router_testkit::{FakeNode, Reply};
use serde_json::json;

use common::{client, spawn_router, test_config};

const CHUNKS: usize = 5;
const INTERVAL: Duration = Duration::from_millis(200);
/// Smallest gap accepted between two events sent `INTERVAL` apart (leaves room for a slow machine).
const MIN_GAP: Duration = Duration::from_millis(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_chunks_reach_the_client_as_the_node_sends_them() {
    let chunks: Vec<String> = (0..CHUNKS)
        .map(|i| {
            json!({
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {"content": format!("token{i}")}}]
            })
            .to_string()
        })
        .collect();
    let reply = Reply::sse(chunks.clone(), INTERVAL);
    let fake = FakeNode::builder("streamer")
        .model("m")
        .reply(reply.clone())
        .spawn()
        .await
        .unwrap();
    let router = spawn_router(test_config()).await.unwrap();
    fake.register(&router.base_url()).await.unwrap();

    let sent = Instant::now();
    let response = client()
        .post(router.url("/v1/chat/completions"))
        .json(&json!({
            "model": "m",
            "stream": true,
            "messages": [{"role": "user", "content": "count"}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-llm-router-node"], "streamer");
    assert_eq!(response.headers()["content-type"], "text/event-stream");

    // Arrival time of each complete SSE event, in order.
    let mut body = Vec::new();
    let mut arrivals: Vec<(String, Instant)> = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(piece) = stream.next().await {
        let piece = piece.unwrap();
        let now = Instant::now();
        body.extend_from_slice(&piece);
        let text = std::str::from_utf8(&body).unwrap();
        let complete: Vec<&str> = text.split_terminator("\n\n").collect();
        let complete_events = if text.ends_with("\n\n") {
            complete.len()
        } else {
            complete.len() - 1
        };
        for event in &complete[arrivals.len()..complete_events] {
            arrivals.push(((*event).to_owned(), now));
        }
    }

    assert_eq!(String::from_utf8(body).unwrap(), reply.body_text());
    let events: Vec<&str> = arrivals.iter().map(|(e, _)| e.as_str()).collect();
    let mut expected: Vec<String> = chunks.iter().map(|c| format!("data: {c}")).collect();
    expected.push("data: [DONE]".to_owned());
    assert_eq!(events, expected);

    let times: Vec<Instant> = arrivals.iter().take(CHUNKS).map(|(_, t)| *t).collect();
    for (i, pair) in times.windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= MIN_GAP,
            "chunk {} arrived {gap:?} after chunk {i}; expected about {INTERVAL:?}",
            i + 1
        );
    }
    let first = times[0] - sent;
    let last = times[CHUNKS - 1] - sent;
    assert!(
        last - first >= MIN_GAP * (CHUNKS as u32 - 1),
        "first chunk at {first:?}, last at {last:?}: the stream was bunched up"
    );
    assert!(
        first < INTERVAL * (CHUNKS as u32 - 1),
        "first chunk only arrived after {first:?}; it was held back"
    );
}
