//! Hostile clients against the node's API, the production `Node` in-process (no model, a stand-in
//! runtime binary, no router): 2 000 half-sent requests closed within the header-read timeout while
//! `GET /health` still answers, and connections over the cap closed at once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use llm_node::{Config, Node, Settings};
use llm_router_protocol::Secret;
use llm_router_testkit::TempDir;
use llm_router_testkit::hostile::{
    closed_by_server, flood_size, half_sent, raise_open_files_limit, still_open,
};
use llm_router_testkit::processes::free_port;
use reqwest::StatusCode;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const HEADER_TIMEOUT: Duration = Duration::from_secs(2);

/// How late past the timeout a connection may still be closed (a loaded two-core machine).
const SLACK: Duration = Duration::from_secs(3);

/// A node serving on a free loopback port; stopped when dropped.
struct TestNode {
    addr: SocketAddr,
    stop: CancellationToken,
    task: Option<JoinHandle<Result<(), llm_node::NodeError>>>,
    _dir: TempDir,
}

impl TestNode {
    async fn start(max_connections: usize) -> TestNode {
        let dir = TempDir::new("node-hostile").unwrap();
        // A runtime binary that exists; no model is configured, so it is never started.
        let runtime = dir.path().join("llama-server");
        std::fs::write(&runtime, "#!/bin/sh\nexit 0\n").unwrap();
        make_executable(&runtime);
        let port = free_port().unwrap();
        let settings = Settings {
            // Nobody listens there: the node keeps trying to register, which is fine here.
            router_url: Some(format!("http://127.0.0.1:{}", free_port().unwrap())),
            port: Some(port),
            llama_server: Some(runtime),
            enrollment_token: Some(Secret::new("e")),
            models_dir: Some(dir.path().join("models")),
            log_dir: Some(dir.path().join("logs")),
            runtimes_dir: Some(dir.path().join("runtimes")),
            header_read_timeout: Some(HEADER_TIMEOUT),
            max_connections: Some(max_connections),
            ..Settings::default()
        };
        let config = Config::try_from(settings).unwrap();
        let node = Node::bind(config).await.unwrap();
        let stop = CancellationToken::new();
        let task = tokio::spawn(node.run(stop.clone()));
        let node = TestNode {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            stop,
            task: Some(task),
            _dir: dir,
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while node.health().await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the node never answered"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        node
    }

    async fn health(&self) -> Result<StatusCode, reqwest::Error> {
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(format!("http://{}/health", self.addr))
            .timeout(Duration::from_secs(1))
            .send()
            .await
            .map(|r| r.status())
    }

    /// Stops the node and checks it stopped cleanly (graceful shutdown still works).
    async fn stop(mut self) {
        self.stop.cancel();
        let task = self.task.take().unwrap();
        tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("the node stops")
            .unwrap()
            .unwrap();
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn make_executable(path: &PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_half_sent_requests_are_closed_within_the_header_timeout_while_health_answers()
{
    let open_files = raise_open_files_limit();
    let n = flood_size(2_000, open_files);
    eprintln!("open-files limit {open_files}: a flood of {n} half-sent requests");
    assert!(
        n >= 400,
        "open-files limit {open_files} too low for a flood"
    );
    // The cap above the flood: this test is about the timeout.
    let node = TestNode::start(4_096).await;

    let mut flood = Vec::with_capacity(n);
    for i in 0..n {
        flood.push(half_sent(node.addr).await.unwrap());
        if i % 500 == 499 {
            assert_eq!(node.health().await.unwrap(), StatusCode::OK, "after {i}");
        }
    }
    assert_eq!(node.health().await.unwrap(), StatusCode::OK);

    let waits: Vec<_> = flood
        .into_iter()
        .map(|(stream, sent)| {
            tokio::spawn(async move {
                let closed = closed_by_server(stream, sent + HEADER_TIMEOUT + SLACK).await;
                closed.map(|at| at - sent)
            })
        })
        .collect();
    let mut longest = Duration::ZERO;
    let mut shortest = Duration::MAX;
    for (i, wait) in waits.into_iter().enumerate() {
        let open_for = wait.await.unwrap().unwrap_or_else(|| {
            panic!(
                "connection {i} still open {:?} after its request",
                HEADER_TIMEOUT + SLACK
            )
        });
        longest = longest.max(open_for);
        shortest = shortest.min(open_for);
    }
    eprintln!("{n} connections closed after {shortest:?} to {longest:?}");
    assert!(shortest + Duration::from_millis(500) >= HEADER_TIMEOUT);
    assert_eq!(node.health().await.unwrap(), StatusCode::OK);
    node.stop().await;
}

#[tokio::test]
async fn connections_over_the_cap_are_closed_at_once() {
    const CAP: usize = 10;
    let node = TestNode::start(CAP).await;
    let mut held = Vec::with_capacity(CAP);
    for _ in 0..CAP {
        held.push(half_sent(node.addr).await.unwrap().0);
    }
    let (over, sent) = half_sent(node.addr).await.unwrap();
    assert!(
        closed_by_server(over, sent + Duration::from_secs(1))
            .await
            .is_some(),
        "a connection over the cap stayed open"
    );
    assert!(still_open(&mut held[0], Duration::from_millis(200)).await);
    drop(held);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while node.health().await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the node never answered again"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    node.stop().await;
}
