//! Property tests through the production router's HTTP handlers: malformed bodies (arbitrary
//! bytes, and valid bodies broken by wrong types, missing fields, huge numbers, deep nesting, odd
//! unicode, NUL bytes and lone surrogates) get a 4xx, never a 5xx, on every route that parses
//! outside input; a body the router refuses never reaches a node.
//!
//! One router and one fake node per property, one keep-alive client; a fixed, small number of
//! cases (the router is reached over loopback: it does not expose its route table).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use llm_router_testkit::FakeNode;
use llm_router_testkit::prop::{broken, config};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

use common::{TestRouter, client, spawn_router, test_config};

/// Cases per property.
const CASES: u32 = 96;

/// Dropped in field order: the runtime last.
struct Env {
    router: TestRouter,
    fake: FakeNode,
    http: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

/// A router with one fake llama-server node serving `m`.
fn env() -> Env {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (router, fake) = rt.block_on(async {
        let fake = FakeNode::builder("node-a")
            .model("m")
            .spawn()
            .await
            .unwrap();
        let router = spawn_router(test_config()).await.unwrap();
        fake.register(&router.base_url()).await.unwrap();
        (router, fake)
    });
    Env {
        router,
        fake,
        http: client(),
        rt,
    }
}

impl Env {
    /// `POST path` with `body` (and `token` as bearer); the status and the body.
    fn post(&self, path: &str, body: &[u8], token: Option<&str>) -> (u16, String) {
        self.rt.block_on(async {
            let mut request = self
                .http
                .post(self.router.url(path))
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_vec());
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap_or_default())
        })
    }
}

/// A body as the test shows it on failure.
fn shown(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if text.chars().count() > 300 {
        let start: String = text.chars().take(300).collect();
        format!("{start}… ({} bytes)", body.len())
    } else {
        text.into_owned()
    }
}

/// Bodies for an inference route: arbitrary bytes, or `valid` broken.
fn inference_bodies(valid: Value) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..256),
        4 => broken(valid),
    ]
}

/// Runs `bodies` against `path`: a body that reaches no node gets a 4xx (or a 2xx for what the
/// router answers itself, such as an Ollama load request); no body gets a 500.
fn inference_property(env: &Env, path: &str, valid: Value) {
    let mut runner = TestRunner::new(config(CASES));
    runner
        .run(&inference_bodies(valid), |body| {
            let before = env.fake.requests();
            let (status, answer) = env.post(path, &body, None);
            let reached = env.fake.requests() > before;
            prop_assert_ne!(status, 500, "{} {}: {}", path, shown(&body), answer);
            if !reached {
                prop_assert!(
                    status < 500,
                    "{} answered {} without reaching the node for {}: {}",
                    path,
                    status,
                    shown(&body),
                    answer
                );
            }
            if serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err() {
                prop_assert!(
                    !reached,
                    "malformed JSON reached the node: {}",
                    shown(&body)
                );
                prop_assert_eq!(status, 400, "{}: {}", shown(&body), answer);
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn openai_routes_answer_malformed_bodies_with_4xx() {
    let env = env();
    inference_property(
        &env,
        "/v1/chat/completions",
        json!({"model": "m", "stream": false, "max_tokens": 4,
               "messages": [{"role": "user", "content": "hi"}]}),
    );
    inference_property(
        &env,
        "/v1/completions",
        json!({"model": "m", "prompt": ["a", [1, 2]], "stream": true}),
    );
    inference_property(
        &env,
        "/v1/embeddings",
        json!({"model": "m", "input": ["a", "b"]}),
    );
}

#[test]
fn ollama_routes_answer_malformed_bodies_with_4xx() {
    let env = env();
    inference_property(
        &env,
        "/api/chat",
        json!({"model": "m", "stream": false,
               "messages": [{"role": "user", "content": "hi", "images": ["iVBORw0KGgo"]}],
               "options": {"temperature": 0.5, "num_predict": 4, "stop": ["x"]},
               "format": "json", "think": true, "keep_alive": "5m"}),
    );
    inference_property(
        &env,
        "/api/generate",
        json!({"model": "m", "prompt": "hi", "system": "s", "stream": true,
               "options": {"seed": 1, "num_ctx": 8}, "format": {"type": "object"}}),
    );
    inference_property(
        &env,
        "/api/embed",
        json!({"model": "m", "input": ["a", "b"], "dimensions": 8, "truncate": true}),
    );
    inference_property(
        &env,
        "/api/embeddings",
        json!({"model": "m", "prompt": "a"}),
    );
    inference_property(&env, "/api/show", json!({"model": "m", "verbose": true}));
}

/// Node-facing and login routes: a body the router cannot read gets a 4xx; only a well-formed
/// registration may get the 502 of an unreachable node.
fn node_property(env: &Env, path: &str, valid: Value, token: Option<&str>, may_502: bool) {
    let mut runner = TestRunner::new(config(CASES));
    let strategy = prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..256),
        4 => broken(valid),
    ];
    runner
        .run(&strategy, |body| {
            let (status, answer) = env.post(path, &body, token);
            let well_formed = may_502
                && serde_json::from_slice::<llm_router_protocol::node::RegisterRequest>(&body)
                    .is_ok();
            prop_assert!(
                status < 500 || (well_formed && status == 502),
                "{} answered {} for {}: {}",
                path,
                status,
                shown(&body),
                answer
            );
            Ok(())
        })
        .unwrap();
}

#[test]
fn node_routes_answer_malformed_bodies_with_4xx() {
    let env = env();
    let registration = serde_json::to_value(env.fake.register_request()).unwrap();
    let token = llm_router_testkit::TEST_ENROLLMENT_TOKEN;
    node_property(
        &env,
        "/api/agents/register",
        registration.clone(),
        Some(token),
        true,
    );
    node_property(&env, "/api/agents/register", registration, None, false);

    let registered = env
        .rt
        .block_on(env.fake.register(&env.router.base_url()))
        .unwrap();
    let node_token = registered.node_token.expose().to_owned();
    let heartbeat = serde_json::to_value(env.fake.heartbeat_body(&registered.node_id)).unwrap();
    node_property(&env, "/api/health", heartbeat, Some(&node_token), false);
    let native = json!({"cpu_percent": 1.0, "memory_percent": 1.0, "memory_used_bytes": 1,
        "memory_total_bytes": 2, "gpus": [{"index": 0, "name": "g", "utilization_percent": 1.0,
        "memory_used_bytes": 1, "memory_total_bytes": 2, "temperature_celsius": null}],
        "active_requests": 0, "requests_total": 0, "avg_response_ms": null});
    let path = format!("/api/agents/{}/metrics", registered.node_id);
    node_property(&env, &path, native, Some(&node_token), false);
    let seed = json!({"agent_id": registered.node_id, "cpu_usage": 1.5, "memory_usage": 2,
        "active_requests": 0, "avg_response_time": null, "timestamp": 1_800_000_000});
    node_property(&env, &path, seed, Some(&node_token), false);
}

#[test]
fn login_answers_malformed_bodies_with_4xx() {
    let env = env();
    node_property(
        &env,
        "/api/auth/login",
        json!({"username": "nobody", "password": "wrong"}),
        None,
        false,
    );
}
