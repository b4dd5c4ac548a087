//! Ollama NDJSON reaches the client as the node produces it: each line when its chunk arrives,
//! not when the node finishes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use llm_router_testkit::{FakeNode, Reply};
use serde_json::{Value, json};

use common::{client, spawn_router, test_config};

const CHUNKS: usize = 5;
const INTERVAL: Duration = Duration::from_millis(200);
/// Smallest gap accepted between two lines sent `INTERVAL` apart (room for a slow machine).
const MIN_GAP: Duration = Duration::from_millis(120);

/// Reads an NDJSON response; each complete line with the time it arrived.
async fn lines_with_arrival(response: reqwest::Response) -> Vec<(Value, Instant)> {
    let mut buffer = Vec::new();
    let mut lines = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(piece) = stream.next().await {
        let now = Instant::now();
        buffer.extend_from_slice(&piece.unwrap());
        while let Some(end) = buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            let value = serde_json::from_slice(&line[..line.len() - 1]).unwrap_or_else(|e| {
                panic!(
                    "not a JSON line ({e}): {:?}",
                    String::from_utf8_lossy(&line)
                )
            });
            lines.push((value, now));
        }
    }
    assert!(buffer.is_empty(), "the stream ended mid-line: {buffer:?}");
    lines
}

fn assert_paced(arrivals: &[Instant], sent: Instant) {
    let gaps: Vec<Duration> = arrivals.windows(2).map(|p| p[1] - p[0]).collect();
    eprintln!(
        "first line after {:?}, then gaps {gaps:?}",
        arrivals[0] - sent
    );
    for (i, pair) in arrivals.windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= MIN_GAP,
            "line {} arrived {gap:?} after line {i}; the node sent them {INTERVAL:?} apart",
            i + 1
        );
    }
    let first = arrivals[0] - sent;
    assert!(
        first < INTERVAL * (CHUNKS as u32 - 1),
        "the first line only arrived after {first:?}: it was held back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_lines_reach_the_client_as_the_node_sends_its_chunks() {
    let chunks: Vec<String> = (0..CHUNKS)
        .map(|i| {
            let finish = if i == CHUNKS - 1 {
                json!("stop")
            } else {
                Value::Null
            };
            json!({"object": "text_completion",
                   "choices": [{"index": 0, "text": format!(" t{i}"), "finish_reason": finish}]})
            .to_string()
        })
        .collect();
    let fake = FakeNode::builder("slow")
        .model("m")
        .reply(Reply::sse(chunks, INTERVAL))
        .spawn()
        .await
        .unwrap();
    let router = spawn_router(test_config()).await.unwrap();
    fake.register(&router.base_url()).await.unwrap();

    let sent = Instant::now();
    let response = client()
        .post(router.url("/api/generate"))
        .json(&json!({"model": "m", "prompt": "count"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    assert_eq!(response.headers()["x-llm-router-node"], "slow");
    let lines = lines_with_arrival(response).await;

    assert_eq!(lines.len(), CHUNKS + 1, "{lines:?}");
    let text: String = lines
        .iter()
        .map(|(l, _)| l["response"].as_str().unwrap())
        .collect();
    assert_eq!(text, " t0 t1 t2 t3 t4");
    let (last, last_at) = lines.last().unwrap();
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "stop");
    let pieces: Vec<Instant> = lines[..CHUNKS].iter().map(|(_, t)| *t).collect();
    assert_paced(&pieces, sent);
    assert!(
        *last_at - pieces[CHUNKS - 1] < MIN_GAP,
        "the final line came {:?} after the last piece",
        *last_at - pieces[CHUNKS - 1]
    );
    // The router measured the whole stream: about four intervals.
    let total = Duration::from_nanos(last["total_duration"].as_u64().unwrap());
    assert!(
        total >= MIN_GAP * (CHUNKS as u32 - 1),
        "total_duration {total:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_lines_reach_the_client_as_the_node_sends_its_chunks() {
    let chunks: Vec<String> = (0..CHUNKS)
        .map(|i| {
            json!({"object": "chat.completion.chunk",
                   "choices": [{"index": 0, "delta": {"content": format!("w{i} ")}}]})
            .to_string()
        })
        .chain([
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}).to_string(),
        ])
        .collect();
    let fake = FakeNode::builder("slow")
        .model("m")
        .reply(Reply::sse(chunks, INTERVAL))
        .spawn()
        .await
        .unwrap();
    let router = spawn_router(test_config()).await.unwrap();
    fake.register(&router.base_url()).await.unwrap();

    let sent = Instant::now();
    let response = client()
        .post(router.url("/api/chat"))
        .json(&json!({"model": "m", "messages": [{"role": "user", "content": "count"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let lines = lines_with_arrival(response).await;
    assert_eq!(lines.len(), CHUNKS + 1, "{lines:?}");
    assert!(
        lines[..CHUNKS]
            .iter()
            .all(|(l, _)| l["done"] == false && l["message"]["role"] == "assistant")
    );
    assert_eq!(lines[CHUNKS].0["done_reason"], "length");
    let pieces: Vec<Instant> = lines[..CHUNKS].iter().map(|(_, t)| *t).collect();
    assert_paced(&pieces, sent);
}
