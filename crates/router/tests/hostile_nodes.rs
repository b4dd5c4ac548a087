//! Hostile nodes get nowhere: a node that redirects the router elsewhere is a failed node (the
//! redirect is not followed, nothing from its target reaches the client), a registration cannot
//! bend the URL the router builds from its `address` or point the router at itself, and a failed
//! registration check tells the registering party nothing a port scanner could use.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use llm_router::Config;
use llm_router_protocol::node::RegisterRequest;
use llm_router_testkit::{FakeNode, Reply, TEST_ENROLLMENT_TOKEN};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use common::{
    TestRouter, agent, chat, client, expect_openai_error, post_chat, served_by, spawn_router,
    test_config,
};

/// What the server behind the redirect holds; it must never reach an API client.
const SECRET: &str = "secret-behind-the-redirect-5f0c";

/// A server the router must never be made to fetch from: a fake whose every inference answer
/// holds [`SECRET`].
async fn secret_holder() -> FakeNode {
    FakeNode::builder("secret-holder")
        .reply(Reply::Json(json!({"secret": SECRET})))
        .spawn()
        .await
        .unwrap()
}

/// A node with model `m` answering every inference request with `307 Location: <target>`.
async fn redirecting_node(name: &str, target: &FakeNode) -> FakeNode {
    let location = format!("{}/v1/chat/completions", target.base_url());
    FakeNode::builder(name)
        .model("m")
        .reply(Reply::redirect(location))
        .spawn()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_redirecting_node_is_a_failed_node_and_its_target_is_never_fetched() {
    let secret = secret_holder().await;
    let node = redirecting_node("redirecting", &secret).await;
    let router = spawn_router(test_config()).await.unwrap();
    node.register(&router.base_url()).await.unwrap();
    // The probe must not clear the node before the test looks at it.
    node.set_healthy(false);

    let response = post_chat(&router.base_url(), &chat("m")).await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert!(
        response.headers().get(reqwest::header::LOCATION).is_none(),
        "the node's Location was relayed: {:?}",
        response.headers()
    );
    let text = response.text().await.unwrap();
    assert!(!text.contains(SECRET), "the secret leaked: {text}");
    assert!(!text.contains(&secret.addr().port().to_string()), "{text}");
    let error: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(error["error"]["code"], "upstream_error", "{text}");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("307"), "{text}");
    assert_eq!(node.requests(), 1, "the node was asked once");
    assert_eq!(secret.requests(), 0, "the router followed the redirect");
    let entry = agent(&router, "redirecting").await;
    assert_eq!(entry["status"], "suspect", "{entry}");
    assert_eq!(entry["router_failures_total"], 1, "{entry}");
}

#[tokio::test]
async fn a_redirect_fails_over_to_another_node() {
    let secret = secret_holder().await;
    let redirecting = redirecting_node("redirecting", &secret).await;
    let healthy = FakeNode::builder("healthy")
        .model("m")
        .spawn()
        .await
        .unwrap();
    let router = spawn_router(Config {
        max_attempts: 2,
        ..test_config()
    })
    .await
    .unwrap();
    redirecting.register(&router.base_url()).await.unwrap();
    healthy.register(&router.base_url()).await.unwrap();
    redirecting.set_healthy(false);

    for _ in 0..3 {
        let response = post_chat(&router.base_url(), &chat("m")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(served_by(&response), "healthy");
        let text = response.text().await.unwrap();
        assert!(!text.contains(SECRET), "the secret leaked: {text}");
    }
    assert_eq!(secret.requests(), 0, "the router followed the redirect");
    assert!(
        redirecting.requests() <= 1,
        "a suspect node was asked again"
    );
}

#[tokio::test]
async fn a_redirect_on_the_ollama_api_is_a_502_without_the_target() {
    let secret = secret_holder().await;
    let node = redirecting_node("redirecting", &secret).await;
    let router = spawn_router(test_config()).await.unwrap();
    node.register(&router.base_url()).await.unwrap();
    node.set_healthy(false);

    let response = client()
        .post(router.url("/api/chat"))
        .json(&json!({"model": "m", "stream": false, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let text = response.text().await.unwrap();
    assert!(!text.contains(SECRET), "the secret leaked: {text}");
    assert_eq!(secret.requests(), 0, "the router followed the redirect");
}

/// Sends `request` as a registration with the test enrolment token.
async fn send_registration(router: &TestRouter, request: &RegisterRequest) -> reqwest::Response {
    client()
        .post(router.url("/api/agents/register"))
        .bearer_auth(TEST_ENROLLMENT_TOKEN)
        .json(request)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn addresses_that_are_not_a_host_are_refused() {
    let node = FakeNode::builder("n").model("m").spawn().await.unwrap();
    let router = spawn_router(test_config()).await.unwrap();
    let long = "a".repeat(300);
    for bad in [
        "evil/x",
        "a?b",
        "a#b",
        "user@host",
        "host:1",
        "a b",
        long.as_str(),
        "",
        "127.0.0.1/v1/chat/completions?",
        "[::1",
    ] {
        let mut request = node.register_request();
        request.address = bad.to_owned();
        let response = send_registration(&router, &request).await;
        let error = expect_openai_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
        let message = error["message"].as_str().unwrap();
        assert!(message.contains("'address'"), "{bad:?}: {message}");
    }
    // Nothing was registered and the node was never called.
    let fleet: Value = router
        .get_as_admin("/api/agents")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fleet, json!([]));
}

#[tokio::test]
async fn the_router_refuses_to_register_itself() {
    let node = FakeNode::builder("n").model("m").spawn().await.unwrap();
    let router = spawn_router(test_config()).await.unwrap();
    let port: u16 = router
        .base_url()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // The URL parser reads `127.1` and `2130706433` as 127.0.0.1; `localhost` resolves to it.
    for own in [
        "127.0.0.1",
        "127.1",
        "2130706433",
        "0.0.0.0",
        "::ffff:127.0.0.1",
        "localhost",
    ] {
        let mut request = node.register_request();
        request.address = own.to_owned();
        request.port = port;
        let response = send_registration(&router, &request).await;
        let error = expect_openai_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert!(
            error["message"].as_str().unwrap().contains("own"),
            "{own}: {error}"
        );
    }
    let fleet: Value = router
        .get_as_admin("/api/agents")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fleet, json!([]));
    // The node's own address and port still register.
    node.register(&router.base_url()).await.unwrap();
}

/// Words of reqwest's and the OS's error texts, and of timings, none of which a registering party
/// may see.
const LEAKY: [&str; 9] = [
    "error sending request",
    "connection refused",
    "tcp connect",
    "os error",
    "timed out",
    "timeout",
    "client error",
    "elapsed",
    "http://",
];

async fn assert_generic_check_failure(response: reqwest::Response, port: u16) {
    let error = expect_openai_error(response, StatusCode::BAD_GATEWAY, "upstream_error").await;
    let message = error["message"].as_str().unwrap().to_lowercase();
    assert!(
        message.contains("could not reach the node's api"),
        "{message}"
    );
    for word in LEAKY {
        assert!(!message.contains(word), "{word:?} in {message}");
    }
    // It names what it tried: the address and port the node sent, nothing more.
    assert!(
        message.contains(&format!("at 127.0.0.1:{port} (")),
        "{message}"
    );
}

#[tokio::test]
async fn a_refused_check_answers_without_the_error_text() {
    let node = FakeNode::builder("n").model("m").spawn().await.unwrap();
    let router = spawn_router(test_config()).await.unwrap();
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut request = node.register_request();
    request.port = closed;
    let response = send_registration(&router, &request).await;
    assert_generic_check_failure(response, closed).await;
}

#[tokio::test]
async fn a_silent_port_answers_without_the_timing() {
    let node = FakeNode::builder("n").model("m").spawn().await.unwrap();
    let router = spawn_router(Config {
        registration_timeout: Duration::from_millis(300),
        ..test_config()
    })
    .await
    .unwrap();
    // Accepts connections and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let mut request = node.register_request();
    request.port = port;
    let response = send_registration(&router, &request).await;
    assert_generic_check_failure(response, port).await;
    held.abort();
}

/// A server on `127.0.0.1:<random port>` answering every request with `307 Location: location`.
async fn redirecting_server(location: String) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().fallback(move || {
        let location = location.clone();
        async move { axum::response::Redirect::temporary(&location) }
    });
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (port, task)
}

#[tokio::test]
async fn a_node_whose_check_answers_a_redirect_is_not_registered() {
    // Where the redirect points: an open `/v1/models` listing a model, counting its callers.
    let fetched = Arc::new(AtomicU64::new(0));
    let target = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target_url = format!("http://{}/v1/models", target.local_addr().unwrap());
    let count = Arc::clone(&fetched);
    let app = axum::Router::new().fallback(move || {
        count.fetch_add(1, Ordering::SeqCst);
        async {
            axum::Json(json!({"object": "list", "data": [{"id": "stolen", "object": "model"}]}))
        }
    });
    let target_task = tokio::spawn(async move {
        axum::serve(target, app).await.unwrap();
    });
    let (port, redirect_task) = redirecting_server(target_url).await;
    let node = FakeNode::builder("redirecting")
        .model("m")
        .spawn()
        .await
        .unwrap();
    let router = spawn_router(test_config()).await.unwrap();

    let mut request = node.register_request();
    request.port = port;
    let response = send_registration(&router, &request).await;
    assert_generic_check_failure(response, port).await;
    assert_eq!(
        fetched.load(Ordering::SeqCst),
        0,
        "the redirect was followed"
    );
    let fleet: Value = router
        .get_as_admin("/api/agents")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fleet, json!([]));
    redirect_task.abort();
    target_task.abort();
}
