//! The agent routes (`/v1/responses`, `/v1/messages`) through the production router against fake
//! nodes: each API's error shape for what the router refuses and what the node answers, and each
//! API's own error event when the node dies mid-stream; hostile bodies bounded like every
//! inference route's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use llm_router_testkit::{FakeNode, Reply};
use reqwest::StatusCode;
use serde_json::{Value, json};

use common::{TestRouter, client, spawn_router, test_config};

async fn post(
    router: &TestRouter,
    path: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    client()
        .post(router.url(path))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Anthropic's `{"type":"error","error":{"type","message"}}` with `kind`.
async fn anthropic_error(response: reqwest::Response, status: u16, kind: &str) -> String {
    assert_eq!(response.status().as_u16(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], kind, "{body}");
    body["error"]["message"].as_str().unwrap().to_owned()
}

const MESSAGES: &str =
    r#"{"model":"m","max_tokens":4,"messages":[{"role":"user","content":"hi"}]}"#;

#[tokio::test]
async fn refusals_on_the_messages_routes_take_anthropics_shape_and_responses_openais() {
    let config = llm_router::Config {
        max_body_bytes: 4096,
        ..test_config()
    };
    let router = spawn_router(config).await.unwrap();
    let _fake = FakeNode::builder("node-a")
        .model("m")
        .spawn()
        .await
        .unwrap();
    _fake.register(&router.base_url()).await.unwrap();

    anthropic_error(
        post(&router, "/v1/messages", "{\"model\":").await,
        400,
        "invalid_request_error",
    )
    .await;
    anthropic_error(
        post(
            &router,
            "/v1/messages",
            r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#,
        )
        .await,
        400,
        "invalid_request_error",
    )
    .await;
    let unknown = MESSAGES.replace("\"m\"", "\"nope\"");
    let message = anthropic_error(
        post(&router, "/v1/messages", unknown).await,
        404,
        "not_found_error",
    )
    .await;
    assert!(message.contains("nope"), "{message}");
    anthropic_error(
        post(
            &router,
            "/v1/messages/count_tokens",
            r#"{"model":"nope","messages":[{"role":"user","content":"x"}]}"#,
        )
        .await,
        404,
        "not_found_error",
    )
    .await;
    // A body over the inference limit: 413 before the handler, in the API's shape.
    let big = format!(
        r#"{{"model":"m","max_tokens":4,"messages":[{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(8192)
    );
    anthropic_error(
        post(&router, "/v1/messages", big.clone()).await,
        413,
        "request_too_large",
    )
    .await;
    let too_large = post(&router, "/v1/responses", big).await;
    assert_eq!(too_large.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = too_large.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large", "{body}");
    let wrong = post(&router, "/v1/responses", r#"{"model":"m","input":3}"#).await;
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_request", "{body}");
}

#[tokio::test]
async fn a_nodes_error_answer_reaches_anthropic_clients_in_anthropics_shape() {
    let router = spawn_router(test_config()).await.unwrap();
    let fake = FakeNode::builder("node-a")
        .model("m")
        .reply(Reply::Status(
            400,
            json!({"error": {"code": 400, "message": "Field 'max_tokens': bad", "type": "invalid_request_error"}})
                .to_string(),
        ))
        .spawn()
        .await
        .unwrap();
    fake.register(&router.base_url()).await.unwrap();
    let message = anthropic_error(
        post(&router, "/v1/messages", MESSAGES).await,
        400,
        "invalid_request_error",
    )
    .await;
    assert_eq!(message, "Field 'max_tokens': bad");
    // The OpenAI routes get the node's body as it is.
    let responses = post(&router, "/v1/responses", r#"{"model":"m","input":"x"}"#).await;
    assert_eq!(responses.status(), StatusCode::BAD_REQUEST);
    let body: Value = responses.json().await.unwrap();
    assert_eq!(body["error"]["code"], 400, "{body}");
}

/// The body of a streamed request whose node dies after two events.
async fn broken_stream(path: &str, body: &str) -> String {
    let router = spawn_router(test_config()).await.unwrap();
    let fake = FakeNode::builder("dying")
        .model("m")
        .reply(Reply::sse_aborted(
            vec![r#"{"type":"x"}"#, r#"{"type":"y"}"#],
            Duration::from_millis(20),
        ))
        .spawn()
        .await
        .unwrap();
    fake.register(&router.base_url()).await.unwrap();
    let response = post(&router, path, body.to_owned()).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

/// The JSON of the last SSE event of `text`, checked to be an `error` event.
fn last_error_event(text: &str) -> Value {
    let last = text.trim_end().rsplit("\n\n").next().unwrap();
    let data = last
        .strip_prefix("event: error\ndata: ")
        .unwrap_or_else(|| panic!("not an error event at the end: {text:?}"));
    serde_json::from_str(data).unwrap()
}

#[tokio::test]
async fn a_node_dying_mid_stream_ends_each_api_with_its_own_error_event() {
    let anthropic = broken_stream(
        "/v1/messages",
        r#"{"model":"m","max_tokens":4,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    let event = last_error_event(&anthropic);
    assert_eq!(event["type"], "error");
    assert_eq!(event["error"]["type"], "api_error", "{event}");
    let responses = broken_stream(
        "/v1/responses",
        r#"{"model":"m","input":"x","stream":true}"#,
    )
    .await;
    let event = last_error_event(&responses);
    assert_eq!(event["type"], "error");
    assert_eq!(event["code"], "upstream_disconnected", "{event}");
}
