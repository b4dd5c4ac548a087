//! `GET /join.sh` and `GET /api/bundle/{file}` against hostile callers: the enrolment token is
//! checked before anything is read, only the files of SHA256SUMS are served (no traversal, no
//! unlisted or hidden file), the Host header cannot inject anything into the script, downloads
//! are bounded, and a router without `--bundle-dir` serves nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use llm_router_testkit::{TEST_ENROLLMENT_TOKEN, TempDir, wait_for};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::{TestRouter, client, spawn_router, test_config};

const NODE_BYTES: &[u8] = b"\x7fELF pretend node binary";
const BIG: usize = 32 * 1024 * 1024;

/// A bundle: a join script, `llm-node`, a big file, all listed; plus files that are *not*
/// listed (`secret.txt`) or are hidden (`.hidden`, listed anyway), and one outside the bundle.
fn bundle() -> TempDir {
    let dir = TempDir::new("bundle").unwrap();
    let p = dir.path();
    std::fs::create_dir_all(p.join("b")).unwrap();
    std::fs::write(p.join("b/join.sh"), "ROUTER_URL='@ROUTER_URL@'\n").unwrap();
    std::fs::write(p.join("b/llm-node"), NODE_BYTES).unwrap();
    std::fs::write(p.join("b/big.bin"), vec![7u8; BIG]).unwrap();
    std::fs::write(p.join("b/secret.txt"), "not listed").unwrap();
    std::fs::write(p.join("b/.hidden"), "hidden").unwrap();
    std::fs::write(p.join("outside"), "outside the bundle").unwrap();
    let hash = "0".repeat(64);
    std::fs::write(
        p.join("b/SHA256SUMS"),
        format!(
            "{hash}  llm-node\n{hash} *big.bin\n{hash}  .hidden\n{hash}  ../outside\n{hash}  join.sh\n"
        ),
    )
    .unwrap();
    dir
}

async fn router_with(bundle: Option<&TempDir>) -> TestRouter {
    let mut config = test_config();
    config.bundle_dir = bundle.map(|b| b.path().join("b"));
    spawn_router(config).await.unwrap()
}

async fn get(router: &TestRouter, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = client().get(router.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn the_join_script_names_the_router_as_the_client_reached_it() {
    let bundle = bundle();
    let router = router_with(Some(&bundle)).await;
    let response = get(&router, "/join.sh", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let script = response.text().await.unwrap();
    assert_eq!(script, format!("ROUTER_URL='{}'\n", router.base_url()));
}

/// Sends `GET /join.sh` with a raw `Host` header; the status code.
async fn join_with_host(router: &TestRouter, host: &str) -> u16 {
    let addr = router.base_url().trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET /join.sh HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    socket.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(!text.contains("id)") && !text.contains("rm -rf"), "{text}");
    text.split(' ').nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_hostile_host_header_gets_no_script() {
    let bundle = bundle();
    let router = router_with(Some(&bundle)).await;
    for host in [
        "x'$(id)'",
        "x`id`",
        "x; rm -rf /",
        "x/y",
        "user@x",
        "x:80:80",
    ] {
        assert_eq!(join_with_host(&router, host).await, 400, "{host}");
    }
    assert_eq!(join_with_host(&router, "router.lan:8080").await, 200);
}

#[tokio::test]
async fn bundle_files_need_the_enrolment_token_in_a_header() {
    let bundle = bundle();
    let router = router_with(Some(&bundle)).await;
    for token in [None, Some("wrong-token")] {
        let response = get(&router, "/api/bundle/llm-node", token).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{token:?}");
    }
    // In the URL it is not a credential.
    let path = format!("/api/bundle/llm-node?token={TEST_ENROLLMENT_TOKEN}");
    assert_eq!(
        get(&router, &path, None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let response = get(&router, "/api/bundle/llm-node", Some(TEST_ENROLLMENT_TOKEN)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-length"],
        NODE_BYTES.len().to_string().as_str()
    );
    assert_eq!(response.bytes().await.unwrap(), NODE_BYTES);
    // The manifest itself: the join script's token check.
    let manifest = get(
        &router,
        "/api/bundle/SHA256SUMS",
        Some(TEST_ENROLLMENT_TOKEN),
    )
    .await;
    assert_eq!(manifest.status(), StatusCode::OK);
    // HEAD gives the size (join.sh checks the disk with it) without the body.
    let head = client()
        .head(router.url("/api/bundle/big.bin"))
        .bearer_auth(TEST_ENROLLMENT_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()["content-length"], BIG.to_string().as_str());
}

#[tokio::test]
async fn only_listed_plain_names_are_served() {
    let bundle = bundle();
    let router = router_with(Some(&bundle)).await;
    for path in [
        "/api/bundle/secret.txt",
        "/api/bundle/.hidden",
        "/api/bundle/..%2Foutside",
        "/api/bundle/%2E%2E%2Foutside",
        "/api/bundle/..%2F..%2F..%2Fetc%2Fpasswd",
        "/api/bundle/%2Fetc%2Fpasswd",
        "/api/bundle/..",
        "/api/bundle/missing",
    ] {
        let response = get(&router, path, Some(TEST_ENROLLMENT_TOKEN)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let body = response.text().await.unwrap();
        assert!(
            !body.contains("outside the bundle") && !body.contains("root:"),
            "{body}"
        );
    }
    // Deeper paths do not match the route at all.
    let response = get(
        &router,
        "/api/bundle/../outside",
        Some(TEST_ENROLLMENT_TOKEN),
    )
    .await;
    assert_ne!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn downloads_at_once_are_bounded_and_freed_when_clients_go() {
    let bundle = bundle();
    let router = router_with(Some(&bundle)).await;
    // Eight clients start the big file and do not read it: each holds its download.
    let mut held = Vec::new();
    for _ in 0..8 {
        let response = get(&router, "/api/bundle/big.bin", Some(TEST_ENROLLMENT_TOKEN)).await;
        assert_eq!(response.status(), StatusCode::OK);
        held.push(response);
    }
    let ninth = get(&router, "/api/bundle/llm-node", Some(TEST_ENROLLMENT_TOKEN)).await;
    assert_eq!(ninth.status(), StatusCode::SERVICE_UNAVAILABLE);
    // The clients go away: their permits come back.
    drop(held);
    wait_for("a free download slot", Duration::from_secs(10), || async {
        let response = get(&router, "/api/bundle/llm-node", Some(TEST_ENROLLMENT_TOKEN)).await;
        (response.status() == StatusCode::OK).then_some(())
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn an_oversized_join_script_is_not_served() {
    let bundle = bundle();
    std::fs::write(bundle.path().join("b/join.sh"), vec![b'#'; 65 * 1024]).unwrap();
    let router = router_with(Some(&bundle)).await;
    let response = get(&router, "/join.sh", None).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!response.text().await.unwrap().contains("###"));
}

#[tokio::test]
async fn a_router_without_a_bundle_serves_nothing() {
    let router = router_with(None).await;
    let response = get(&router, "/join.sh", None).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(
        response.text().await.unwrap().contains("--bundle-dir"),
        "says how to get one"
    );
    let response = get(
        &router,
        "/api/bundle/SHA256SUMS",
        Some(TEST_ENROLLMENT_TOKEN),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    // The token is still checked first.
    let response = get(&router, "/api/bundle/SHA256SUMS", None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}
