//! The access rules the route table of `access.rs` cannot show: enrolment, node tokens speaking
//! only for their own node, revoked and expired keys in each API's error shape, model allow-lists,
//! login throttling, sessions and cookies, bodies hidden from viewers, the last admin, CORS off,
//! secrets out of Debug output.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use llm_router_protocol::Secret;
use llm_router_testkit::{FakeNode, TEST_ENROLLMENT_TOKEN};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, RETRY_AFTER, SET_COOKIE, WWW_AUTHENTICATE};
use serde_json::{Value, json};

use common::secured::{
    CHAT, OLLAMA_CHAT, PASSWORD, admin_json, call, chat_with, expect_ollama_error, new_key,
    newest_request, secured_config, universal_reply,
};
use common::{ADMIN_PASSWORD, client, expect_openai_error, login, spawn_router, wait_until};

#[tokio::test]
async fn a_node_without_the_enrolment_token_is_refused_and_never_listed() {
    let router = spawn_router(secured_config()).await.unwrap();
    let fake = FakeNode::builder("intruder")
        .model("m")
        .spawn()
        .await
        .unwrap();
    for token in [None, Some("wrong-token")] {
        let response = fake
            .send_registration(&router.base_url(), token)
            .await
            .unwrap();
        let code = if token.is_none() {
            "missing_enrollment_token"
        } else {
            "invalid_enrollment_token"
        };
        expect_openai_error(response, StatusCode::UNAUTHORIZED, code).await;
    }
    let fleet: Value = router
        .get_as_admin("/api/agents")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fleet, json!([]), "no node listed");
    assert_eq!(fake.requests(), 0);
    assert_eq!(
        fake.unauthorized_requests(),
        0,
        "the router never even called it"
    );
}

#[tokio::test]
async fn a_node_token_speaks_only_for_its_own_node() {
    let router = spawn_router(secured_config()).await.unwrap();
    let a = FakeNode::builder("node-a")
        .model("m")
        .spawn()
        .await
        .unwrap();
    let b = FakeNode::builder("node-b")
        .model("m")
        .spawn()
        .await
        .unwrap();
    let reg_a = a.register(&router.base_url()).await.unwrap();
    let reg_b = b.register(&router.base_url()).await.unwrap();

    let forged = a
        .send_heartbeat(
            &router.base_url(),
            &reg_b.node_id,
            reg_a.node_token.expose(),
        )
        .await
        .unwrap();
    expect_openai_error(forged, StatusCode::UNAUTHORIZED, "invalid_node_token").await;
    let forged = a
        .push_metrics(
            &router.base_url(),
            &reg_b.node_id,
            reg_a.node_token.expose(),
            &llm_router_protocol::node::NodeMetrics::default(),
        )
        .await
        .unwrap();
    expect_openai_error(forged, StatusCode::UNAUTHORIZED, "invalid_node_token").await;
    let own = a
        .send_heartbeat(
            &router.base_url(),
            &reg_a.node_id,
            reg_a.node_token.expose(),
        )
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
}

#[tokio::test]
async fn revoked_and_expired_keys_get_401_in_each_apis_shape() {
    let fake = FakeNode::builder("node-a")
        .model("m")
        .reply(universal_reply())
        .spawn()
        .await
        .unwrap();
    let router = spawn_router(secured_config()).await.unwrap();
    fake.register(&router.base_url()).await.unwrap();

    let (id, key) = new_key(&router, json!({"name": "to revoke"})).await;
    assert_eq!(
        chat_with(&router, "/v1/chat/completions", CHAT, &key)
            .await
            .status(),
        200
    );
    assert_eq!(
        chat_with(&router, "/api/chat", OLLAMA_CHAT, &key)
            .await
            .status(),
        200
    );
    admin_json(&router, "DELETE", &format!("/api/keys/{id}"), json!(null)).await;
    let response = chat_with(&router, "/v1/chat/completions", CHAT, &key).await;
    assert_eq!(response.headers()[WWW_AUTHENTICATE], "Bearer");
    let error = expect_openai_error(response, StatusCode::UNAUTHORIZED, "invalid_api_key").await;
    assert!(
        error["message"].as_str().unwrap().contains("revoked"),
        "{error}"
    );
    expect_ollama_error(
        chat_with(&router, "/api/chat", OLLAMA_CHAT, &key).await,
        StatusCode::UNAUTHORIZED,
        "revoked",
    )
    .await;
    let listed = admin_json(&router, "GET", "/api/keys", json!(null)).await;
    let entry = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id)
        .unwrap();
    assert_eq!(entry["status"], "revoked");
    assert!(
        entry["last_used_at_ms"].as_u64().is_some(),
        "last use recorded: {entry}"
    );
    assert!(
        entry.get("key").is_none(),
        "the key is never listed: {entry}"
    );

    let (_, short) = new_key(&router, json!({"name": "short", "expires_in_secs": 1})).await;
    assert_eq!(
        chat_with(&router, "/v1/chat/completions", CHAT, &short)
            .await
            .status(),
        200
    );
    wait_until("the key to expire", Duration::from_secs(5), || async {
        chat_with(&router, "/v1/chat/completions", CHAT, &short)
            .await
            .status()
            == 401
    })
    .await;
    let error = expect_openai_error(
        chat_with(&router, "/v1/chat/completions", CHAT, &short).await,
        StatusCode::UNAUTHORIZED,
        "invalid_api_key",
    )
    .await;
    assert!(
        error["message"].as_str().unwrap().contains("expired"),
        "{error}"
    );
    expect_ollama_error(
        chat_with(
            &router,
            "/api/generate",
            r#"{"model":"m","prompt":"x"}"#,
            &short,
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "expired",
    )
    .await;

    // No key at all, and X-API-Key as the other way to send one.
    let missing = call(
        &router,
        "POST",
        "/v1/chat/completions",
        Some(CHAT.to_owned()),
        None,
    )
    .await;
    expect_openai_error(missing, StatusCode::UNAUTHORIZED, "missing_api_key").await;
    let (_, other) = new_key(&router, json!({"name": "header"})).await;
    let via_header = call(
        &router,
        "POST",
        "/v1/chat/completions",
        Some(CHAT.to_owned()),
        Some(("x-api-key", other)),
    )
    .await;
    assert_eq!(via_header.status(), 200);
}

#[tokio::test]
async fn a_key_limited_to_some_models_sees_and_uses_only_those() {
    let fake = FakeNode::builder("node-a")
        .model("m")
        .model("other")
        .reply(universal_reply())
        .spawn()
        .await
        .unwrap();
    let router = spawn_router(secured_config()).await.unwrap();
    fake.register(&router.base_url()).await.unwrap();
    let (_, key) = new_key(&router, json!({"name": "only m", "models": ["m"]})).await;

    let models: Value = call(
        &router,
        "GET",
        "/v1/models",
        None,
        Some(("authorization", format!("Bearer {key}"))),
    )
    .await
    .json()
    .await
    .unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["m"]);
    assert_eq!(
        chat_with(&router, "/v1/chat/completions", CHAT, &key)
            .await
            .status(),
        200
    );
    let other = CHAT.replace("\"m\"", "\"other\"");
    expect_openai_error(
        chat_with(&router, "/v1/chat/completions", &other, &key).await,
        StatusCode::FORBIDDEN,
        "model_not_allowed",
    )
    .await;
    expect_ollama_error(
        chat_with(
            &router,
            "/api/chat",
            &OLLAMA_CHAT.replace("\"m\"", "\"other\""),
            &key,
        )
        .await,
        StatusCode::FORBIDDEN,
        "other",
    )
    .await;
}

#[tokio::test]
async fn failed_logins_are_throttled_and_sessions_end_on_logout() {
    let router = spawn_router(secured_config()).await.unwrap();
    let wrong = json!({"username": "admin", "password": "not-the-password"}).to_string();
    for _ in 0..5 {
        let r = call(
            &router,
            "POST",
            "/api/auth/login",
            Some(wrong.clone()),
            None,
        )
        .await;
        expect_openai_error(r, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    let throttled = call(&router, "POST", "/api/auth/login", Some(wrong), None).await;
    assert!(throttled.headers().contains_key(RETRY_AFTER));
    expect_openai_error(
        throttled,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
    )
    .await;
    // Even the right password waits out the window from this address.
    let right = json!({"username": "admin", "password": ADMIN_PASSWORD}).to_string();
    let r = call(&router, "POST", "/api/auth/login", Some(right), None).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);

    // A second router (fresh limiter): the cookie works like the bearer token, and logout ends it.
    let router = spawn_router(secured_config()).await.unwrap();
    let r = call(
        &router,
        "POST",
        "/api/auth/login",
        Some(json!({"username": "admin", "password": ADMIN_PASSWORD}).to_string()),
        None,
    )
    .await;
    let cookie = r.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_owned();
    let me = call(
        &router,
        "GET",
        "/api/auth/me",
        None,
        Some((COOKIE.as_str(), pair.clone())),
    )
    .await;
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["role"], "admin");
    let out = call(
        &router,
        "POST",
        "/api/auth/logout",
        None,
        Some((COOKIE.as_str(), pair.clone())),
    )
    .await;
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    let after = call(
        &router,
        "GET",
        "/api/auth/me",
        None,
        Some((COOKIE.as_str(), pair)),
    )
    .await;
    expect_openai_error(after, StatusCode::UNAUTHORIZED, "invalid_session").await;
}

#[tokio::test]
async fn viewers_never_see_stored_bodies_and_the_last_admin_stays() {
    let fake = FakeNode::builder("node-a")
        .model("m")
        .reply(universal_reply())
        .spawn()
        .await
        .unwrap();
    let mut config = secured_config();
    config.store_bodies = true;
    let router = spawn_router(config).await.unwrap();
    fake.register(&router.base_url()).await.unwrap();
    let (_, key) = new_key(&router, json!({"name": "k"})).await;
    assert_eq!(
        chat_with(&router, "/v1/chat/completions", CHAT, &key)
            .await
            .status(),
        200
    );
    admin_json(
        &router,
        "POST",
        "/api/users",
        json!({"username": "watcher", "password": PASSWORD, "role": "viewer"}),
    )
    .await;
    let viewer = login(&router, "watcher", PASSWORD).await;
    let admin_row = newest_request(&router).await;
    assert!(
        admin_row["request_body"].as_str().unwrap().contains("hi"),
        "{admin_row}"
    );
    let as_viewer = |path: String| {
        let viewer = viewer.clone();
        let router = &router;
        async move {
            call(
                router,
                "GET",
                &path,
                None,
                Some(("authorization", format!("Bearer {viewer}"))),
            )
            .await
            .text()
            .await
            .unwrap()
        }
    };
    let id = admin_row["id"].as_str().unwrap();
    for path in [
        "/api/requests".to_owned(),
        format!("/api/requests/{id}"),
        "/api/requests/export?format=jsonl".to_owned(),
    ] {
        let text = as_viewer(path.clone()).await;
        assert!(text.contains(id), "{path}: {text}");
        assert!(
            !text.contains("\"content\""),
            "{path} shows a body to a viewer: {text}"
        );
    }

    let admins: Value = admin_json(&router, "GET", "/api/users", json!(null)).await;
    let admin_id = admins
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "admin")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = call(
        &router,
        "DELETE",
        &format!("/api/users/{admin_id}"),
        None,
        Some((
            "authorization",
            format!("Bearer {}", router.admin_token().await),
        )),
    )
    .await;
    expect_openai_error(r, StatusCode::CONFLICT, "conflict").await;
}

#[tokio::test]
async fn cors_is_off_and_secrets_stay_out_of_debug_output() {
    let router = spawn_router(secured_config()).await.unwrap();
    let r = client()
        .get(router.url("/health"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let preflight = client()
        .request(reqwest::Method::OPTIONS, router.url("/v1/chat/completions"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    let config = secured_config();
    let shown = format!("{config:?}");
    assert!(!shown.contains(ADMIN_PASSWORD), "{shown}");
    assert!(!shown.contains(TEST_ENROLLMENT_TOKEN), "{shown}");
    assert_eq!(format!("{:?}", Secret::new("x")), "Secret(***)");
}
