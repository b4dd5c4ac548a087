//! What a web page of another site, or a spreadsheet, can do with the router: nothing.
//!
//! - The dashboard's files carry a content security policy (scripts, styles and connections from
//!   the router only, no framing), `nosniff` and no referrer.
//! - A change made with the session cookie from a page of another origin (cross-site request
//!   forgery, including another port of the same host) is refused; the same change from the
//!   dashboard's origin, or with the session token in `Authorization`, goes through.
//! - A model name or error text that a spreadsheet would run as a formula is exported as text.
//! - The SQLite files and the directory the router creates for them are the service user's only.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use llm_router::Config;
use llm_router_testkit::{FakeNode, TempDir};
use reqwest::StatusCode;
use serde_json::json;

use common::{client, spawn_router, test_config, wait_until};

#[tokio::test]
async fn dashboard_files_carry_a_content_security_policy() {
    let router = spawn_router(test_config()).await.unwrap();
    for path in ["/dashboard", "/dashboard/app.js"] {
        let response = client().get(router.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let h = response.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
    }
}

#[tokio::test]
async fn cookie_changes_from_another_origin_are_refused() {
    let router = spawn_router(test_config()).await.unwrap();
    let node = FakeNode::builder("victim")
        .model("m")
        .spawn()
        .await
        .unwrap();
    let registered = node.register(&router.base_url()).await.unwrap();
    let drain = router.url(&format!("/api/agents/{}/drain", registered.node_id));
    let session = router.admin_token().await;
    let cookie = format!("llm_router_session={session}");
    let host = router.base_url().trim_start_matches("http://").to_owned();

    // A form or fetch from another site, another port of this host, or a browser saying so.
    let other_port = format!("http://{}:1", host.split(':').next().unwrap());
    for (header, value) in [
        ("origin", "http://evil.example".to_owned()),
        ("origin", other_port),
        ("sec-fetch-site", "same-site".to_owned()),
        ("sec-fetch-site", "cross-site".to_owned()),
    ] {
        let response = client()
            .post(&drain)
            .header("cookie", &cookie)
            .header(header, &value)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "{header}: {value}"
        );
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "forbidden");
    }
    let agents = router.get_as_admin("/api/agents").await;
    let agents: serde_json::Value = agents.json().await.unwrap();
    assert_eq!(
        agents[0]["draining"], false,
        "a refused drain drained: {agents}"
    );

    // The dashboard's own page: the same origin.
    let response = client()
        .post(&drain)
        .header("cookie", &cookie)
        .header("origin", format!("http://{host}"))
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // A script with the session token in `Authorization` is no forged browser request.
    let resume = router.url(&format!("/api/agents/{}/resume", registered.node_id));
    let response = client()
        .post(&resume)
        .bearer_auth(&session)
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // Reading with the cookie from elsewhere changes nothing and stays allowed (CORS keeps the
    // answer from the other page).
    let response = client()
        .get(router.url("/api/agents"))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn exported_history_cells_never_run_as_formulas() {
    let router = spawn_router(test_config()).await.unwrap();
    let formula = "=HYPERLINK(\"http://evil.example\",\"x\")";
    let response = client()
        .post(router.url("/v1/chat/completions"))
        .json(&json!({"model": formula, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let export = "/api/requests/export?format=csv";
    wait_until(
        "the request in the history",
        Duration::from_secs(10),
        || async {
            let text = router.get_as_admin(export).await.text().await.unwrap();
            text.contains("HYPERLINK")
        },
    )
    .await;
    let csv = router.get_as_admin(export).await.text().await.unwrap();
    let row = csv.lines().find(|l| l.contains("HYPERLINK")).unwrap();
    assert!(
        row.contains("\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\""),
        "the model cell is not neutralised: {row}"
    );
    assert!(
        !row.contains(",=HYPERLINK") && !row.contains(",\"=HYPERLINK"),
        "{row}"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn the_database_is_readable_by_the_service_user_only() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = TempDir::new("db-mode").unwrap();
    let dir = tmp.path().join("state");
    let db = dir.join("router.db");
    let router = spawn_router(Config {
        database_url: format!("sqlite://{}", db.display()),
        ..test_config()
    })
    .await
    .unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "the directory the router created");
    assert_eq!(mode(&db), 0o600);
    for suffix in ["-wal", "-shm"] {
        let side = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        if side.exists() {
            assert_eq!(mode(&side), 0o600, "{}", side.display());
        }
    }
    drop(router);
}
