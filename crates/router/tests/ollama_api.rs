//! The Ollama API through the router, against scripted fake nodes whose runtime speaks OpenAI:
//! what the node is sent, and what the Ollama client gets back.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use llm_router_testkit::{FakeNode, Reply};
use reqwest::StatusCode;
use serde_json::{Value, json};

use common::{TestRouter, agent, client, spawn_router, test_config, wait_until};

async fn router_with(fake: &FakeNode) -> TestRouter {
    let router = spawn_router(test_config()).await.unwrap();
    fake.register(&router.base_url()).await.unwrap();
    router
}

async fn post(router: &TestRouter, path: &str, body: &Value) -> reqwest::Response {
    client()
        .post(router.url(path))
        .json(body)
        .send()
        .await
        .unwrap()
}

fn ndjson(text: &str) -> Vec<Value> {
    assert!(text.ends_with('\n'), "NDJSON ends with a newline: {text:?}");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
        .collect()
}

fn sent_body(fake: &FakeNode) -> Value {
    serde_json::from_slice(&fake.last_body().expect("the node got a request")).unwrap()
}

#[tokio::test]
async fn chat_without_streaming_is_one_ollama_answer_from_an_openai_request() {
    let fake = FakeNode::builder("node-a")
        .model("m")
        .reply(Reply::Json(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "Blue."}}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
            "timings": {"prompt_ms": 50.0, "predicted_ms": 75.5}
        })))
        .spawn()
        .await
        .unwrap();
    let router = router_with(&fake).await;
    let response = post(
        &router,
        "/api/chat",
        &json!({
            "model": "m",
            "messages": [{"role": "system", "content": "Be brief."},
                         {"role": "user", "content": "Sky colour?"}],
            "stream": false,
            "options": {"temperature": 0, "num_predict": 8, "seed": 7, "top_k": 1, "num_ctx": 4096},
            "keep_alive": "5m"
        }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-llm-router-node"], "node-a");
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["model"], "m");
    assert_eq!(
        answer["message"],
        json!({"role": "assistant", "content": "Blue."})
    );
    assert_eq!(answer["done"], true);
    assert_eq!(answer["done_reason"], "stop");
    assert_eq!(answer["prompt_eval_count"], 12);
    assert_eq!(answer["eval_count"], 3);
    assert_eq!(answer["prompt_eval_duration"], 50_000_000);
    assert_eq!(answer["eval_duration"], 75_500_000);
    assert!(answer["total_duration"].as_u64().unwrap() > 0);
    assert!(answer["created_at"].as_str().unwrap().ends_with('Z'));

    let request = fake.last_request().unwrap();
    assert_eq!(request.path, "/v1/chat/completions");
    assert_eq!(
        sent_body(&fake),
        json!({
            "model": "m", "stream": false,
            "messages": [{"role": "system", "content": "Be brief."},
                         {"role": "user", "content": "Sky colour?"}],
            "temperature": 0.0, "max_tokens": 8, "seed": 7, "top_k": 1
        })
    );
}

#[tokio::test]
async fn generate_streams_by_default_and_asks_the_node_for_usage() {
    let chunks = [
        json!({"choices": [{"index": 0, "text": " Paris", "finish_reason": null}]}),
        json!({"choices": [{"index": 0, "text": ".", "finish_reason": "length"}],
               "usage": {"prompt_tokens": 6, "completion_tokens": 2}}),
    ];
    let fake = FakeNode::builder("node-a")
        .model("m")
        .reply(Reply::sse(
            chunks.iter().map(Value::to_string),
            Duration::ZERO,
        ))
        .spawn()
        .await
        .unwrap();
    let router = router_with(&fake).await;
    let response = post(
        &router,
        "/api/generate",
        &json!({"model": "m", "prompt": "The capital of France is", "system": "Answer."}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let lines = ndjson(&response.text().await.unwrap());
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["response"], " Paris");
    assert_eq!(lines[0]["done"], false);
    assert_eq!(lines[2]["done"], true);
    assert_eq!(lines[2]["done_reason"], "length");
    assert_eq!(lines[2]["eval_count"], 2);
    assert_eq!(lines[2]["prompt_eval_count"], 6);

    assert_eq!(fake.last_request().unwrap().path, "/v1/completions");
    let sent = sent_body(&fake);
    assert_eq!(sent["stream"], true);
    assert_eq!(sent["stream_options"], json!({"include_usage": true}));
    assert_eq!(sent["prompt"], "Answer.\n\nThe capital of France is");
}

#[tokio::test]
async fn a_model_asked_for_with_the_latest_tag_is_found_and_echoed() {
    let fake = FakeNode::builder("node-a")
        .model("m")
        .reply(Reply::Json(
            json!({"choices": [{"text": "x", "finish_reason": "stop"}]}),
        ))
        .spawn()
        .await
        .unwrap();
    let router = router_with(&fake).await;
    let response = post(
        &router,
        "/api/generate",
        &json!({"model": "m:latest", "prompt": "p", "stream": false}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["model"], "m:latest");
    assert_eq!(answer["response"], "x");
    assert_eq!(sent_body(&fake)["model"], "m");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_dying_mid_stream_ends_the_ndjson_with_an_error_line() {
    let chunks = (0..3).map(|i| {
        json!({"choices": [{"index": 0, "delta": {"content": format!("t{i}")}}]}).to_string()
    });
    let fake = FakeNode::builder("dying")
        .model("m")
        .reply(Reply::sse_aborted(chunks, Duration::from_millis(50)))
        .spawn()
        .await
        .unwrap();
    let router = router_with(&fake).await;
    let response = post(
        &router,
        "/api/chat",
        &json!({"model": "m", "messages": [{"role": "user", "content": "go"}]}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    // The body ends cleanly: no transport error for the client.
    let lines = ndjson(&response.text().await.expect("a clean end of the response"));
    assert_eq!(lines.len(), 4, "{lines:?}");
    for (i, line) in lines[..3].iter().enumerate() {
        assert_eq!(line["message"]["content"], format!("t{i}"));
    }
    let last = lines[3].as_object().unwrap();
    assert_eq!(last.len(), 1, "{last:?}");
    assert!(
        last["error"]
            .as_str()
            .unwrap()
            .contains("failed mid-stream"),
        "{last:?}"
    );

    let entry = agent(&router, "dying").await;
    assert_eq!(entry["router_failures_total"], 1, "{entry}");
    wait_until(
        "the broken stream's slot to be freed",
        Duration::from_secs(5),
        || async { agent(&router, "dying").await["router_in_flight"] == 0 },
    )
    .await;
}

#[tokio::test]
async fn a_node_refusing_the_request_is_an_ollama_error_with_its_status() {
    let fake = FakeNode::builder("node-a")
        .model("m")
        .reply(Reply::Status(
            400,
            json!({"error": {"message": "the model 'm' does not support images", "type": "invalid_request_error"}}).to_string(),
        ))
        .spawn()
        .await
        .unwrap();
    let router = router_with(&fake).await;
    for stream in [false, true] {
        let response = post(
            &router,
            "/api/chat",
            &json!({"model": "m", "stream": stream, "messages": [
                {"role": "user", "content": "what is it?", "images": ["iVBORw0KGgo="]}]}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body,
            json!({"error": "the model 'm' does not support images"})
        );
    }
    let sent = sent_body(&fake);
    assert_eq!(
        sent["messages"][0]["content"][1],
        json!({"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}})
    );
}

#[tokio::test]
async fn embed_answers_vectors_in_input_order_and_embeddings_one_vector() {
    let fake = FakeNode::builder("node-a")
        .model("e")
        .reply(Reply::Json(json!({
            "object": "list", "model": "e",
            "data": [{"object": "embedding", "index": 1, "embedding": [0.5, -0.25]},
                     {"object": "embedding", "index": 0, "embedding": [0.125, 1.0]}],
            "usage": {"prompt_tokens": 4, "total_tokens": 4}
        })))
        .spawn()
        .await
        .unwrap();
    let router = router_with(&fake).await;
    let response = post(
        &router,
        "/api/embed",
        &json!({"model": "e", "input": ["a", "b"]}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["model"], "e");
    assert_eq!(answer["embeddings"], json!([[0.125, 1.0], [0.5, -0.25]]));
    assert_eq!(answer["prompt_eval_count"], 4);
    assert_eq!(fake.last_request().unwrap().path, "/v1/embeddings");
    assert_eq!(sent_body(&fake)["input"], json!(["a", "b"]));

    let response = post(
        &router,
        "/api/embeddings",
        &json!({"model": "e", "prompt": "a"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer, json!({"embedding": [0.125, 1.0]}));
    assert_eq!(sent_body(&fake)["input"], "a");
}

#[tokio::test]
async fn load_and_unload_requests_are_answered_without_a_node() {
    let fake = FakeNode::builder("node-a")
        .model("m")
        .spawn()
        .await
        .unwrap();
    let router = router_with(&fake).await;
    let answer: Value = post(&router, "/api/generate", &json!({"model": "m"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["done"], true);
    assert_eq!(answer["done_reason"], "load");
    assert_eq!(answer["response"], "");
    let answer: Value = post(
        &router,
        "/api/chat",
        &json!({"model": "m", "messages": [], "keep_alive": 0}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(answer["done_reason"], "unload");
    assert_eq!(
        answer["message"],
        json!({"role": "assistant", "content": ""})
    );
    let answer: Value = post(&router, "/api/embed", &json!({"model": "m", "input": []}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["embeddings"], json!([]));
    assert_eq!(fake.requests(), 0);
}

#[tokio::test]
async fn tags_ps_and_show_describe_the_fleet() {
    let a = FakeNode::builder("node-a")
        .model("m")
        .spawn()
        .await
        .unwrap();
    let b = FakeNode::builder("node-b")
        .model("m")
        .model("n")
        .spawn()
        .await
        .unwrap();
    let router = spawn_router(test_config()).await.unwrap();
    a.register(&router.base_url()).await.unwrap();
    b.register(&router.base_url()).await.unwrap();

    let tags: Value = client()
        .get(router.url("/api/tags"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let models = tags["models"].as_array().unwrap();
    let names: Vec<&str> = models.iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["m", "n"], "each model once: {tags}");
    for model in models {
        assert_eq!(model["model"], model["name"]);
        assert!(
            model["modified_at"].as_str().unwrap().ends_with('Z'),
            "{model}"
        );
        assert!(model["size"].is_u64(), "{model}");
        assert!(model["digest"].is_string(), "{model}");
        assert_eq!(model["details"]["format"], "gguf", "{model}");
    }

    let ps: Value = client()
        .get(router.url("/api/ps"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let m = &ps["models"][0];
    assert_eq!(m["name"], "m");
    assert_eq!(m["nodes"], json!(["node-a", "node-b"]));
    assert!(
        m["expires_at"].is_string() && m["size_vram"].is_u64(),
        "{m}"
    );
    assert_eq!(ps["models"][1]["nodes"], json!(["node-b"]));

    let show: Value = post(&router, "/api/show", &json!({"model": "n"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(show["capabilities"], json!(["completion"]));
    assert!(show["model_info"].is_object(), "{show}");
    assert!(
        show["modelfile"].as_str().unwrap().contains("FROM n"),
        "{show}"
    );
    assert_eq!(show["details"]["format"], "gguf");
    // The older spelling of the field.
    let response = post(&router, "/api/show", &json!({"name": "m:latest"})).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn root_and_version_answer_as_ollama_does() {
    let router = spawn_router(test_config()).await.unwrap();
    let response = client().get(router.url("/")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "Ollama is running");
    let response = client().head(router.url("/")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let version: Value = client()
        .get(router.url("/api/version"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        version["version"].as_str().unwrap().split('.').count() == 3,
        "{version}"
    );
}
