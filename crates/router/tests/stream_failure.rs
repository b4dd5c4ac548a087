//! A node that dies in the middle of a streamed answer: the client gets what the node sent, then a
//! well-formed SSE error event, and a clean end of the response.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use futures_util::StreamExt;
use llm_router_testkit::{FakeNode, Reply};
use serde_json::{Value, json};

use common::{agent, client, served_by, spawn_router, test_config, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_dying_mid_stream_ends_the_stream_with_an_upstream_disconnected_event() {
    let chunks: Vec<String> = (0..3)
        .map(|i| {
            json!({
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {"content": format!("token{i}")}}]
            })
            .to_string()
        })
        .collect();
    let reply = Reply::sse_aborted(chunks, Duration::from_millis(50));
    let fake = FakeNode::builder("dying")
        .model("m")
        .reply(reply.clone())
        .spawn()
        .await
        .unwrap();
    let router = spawn_router(test_config()).await.unwrap();
    fake.register(&router.base_url()).await.unwrap();

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
    assert_eq!(served_by(&response), "dying");
    assert_eq!(response.headers()["content-type"], "text/event-stream");

    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(piece) = stream.next().await {
        let piece = piece.expect("the response ended with a transport error");
        body.extend_from_slice(&piece);
    }
    let body = String::from_utf8(body).unwrap();

    let sent = reply.body_text();
    let rest = body
        .strip_prefix(&sent)
        .unwrap_or_else(|| panic!("the chunks the node sent are not all there: {body:?}"));
    assert!(
        !body.contains("[DONE]"),
        "a [DONE] after a failure: {body:?}"
    );
    let data = rest
        .strip_prefix("data: ")
        .and_then(|r| r.strip_suffix("\n\n"))
        .unwrap_or_else(|| panic!("not one final SSE event: {rest:?}"));
    let event: Value = serde_json::from_str(data).unwrap();
    assert_eq!(event["error"]["code"], "upstream_disconnected", "{event}");
    assert_eq!(event["error"]["type"], "server_error", "{event}");
    assert!(event["error"]["message"].is_string(), "{event}");

    let entry = agent(&router, "dying").await;
    assert_eq!(entry["router_failures_total"], 1, "{entry}");
    wait_until(
        "the slot of the broken stream to be freed",
        Duration::from_secs(5),
        || async { agent(&router, "dying").await["router_in_flight"] == 0 },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_leaving_mid_stream_frees_the_slot_and_stops_the_node_stream() {
    let chunks: Vec<String> = (0..100).map(|i| format!("\"token{i}\"")).collect();
    let fake = FakeNode::builder("streamer")
        .model("m")
        .slots(Some(1))
        .reply(Reply::sse(chunks, Duration::from_millis(50)))
        .spawn()
        .await
        .unwrap();
    let router = spawn_router(test_config()).await.unwrap();
    fake.register(&router.base_url()).await.unwrap();
    let body =
        json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "go"}]});

    let response = client()
        .post(router.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    assert!(first.starts_with(b"data: "), "{first:?}");
    assert_eq!(fake.in_flight(), 1);
    drop(stream);

    wait_until(
        "the router to free the slot and close the node's stream",
        Duration::from_secs(5),
        || async {
            agent(&router, "streamer").await["router_in_flight"] == 0 && fake.in_flight() == 0
        },
    )
    .await;
    // The single slot serves the next request.
    fake.set_reply(Reply::sse(["\"done\""], Duration::ZERO));
    let response = client()
        .post(router.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.text().await.unwrap(),
        "data: \"done\"\n\ndata: [DONE]\n\n"
    );
    assert_eq!(fake.requests(), 2);
}
