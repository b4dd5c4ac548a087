//! The dashboard in a real headless Chromium (Debian's `chromium`, driven by `playwright-core`;
//! `scripts/install-browser.sh` installs both). The browser scripts live in `tests/browser/`;
//! these tests start what they look at and run them:
//!
//! - a real router, two real nodes serving the real model with `llama-server`, and a throttled
//!   file server the router's catalog points a second copy of the model at: the script logs in,
//!   watches requests, a node's log, a download and a node dying, and saves the screenshots in
//!   `docs/screenshots/`;
//! - a real router with 100 registered fake nodes (`FakeNode`, scripted) and 10 000 requests in
//!   its history: the script measures the dashboard's first load (reported, not asserted).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use llm_router_testkit::processes::{
    MODEL, NodeProcess, RouterProcess, Runtime, TEST_ADMIN_PASSWORD,
};
use llm_router_testkit::{FakeNode, FileServer, Reply, TempDir};
use serde_json::json;

const GGUF_SHA256: &str = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";
/// 25 MB/s: the 253 MB copy takes about 10 s, long enough to watch its progress bar.
const PULL_RATE: u64 = 25_000_000;
const PULL_MODEL: &str = "gemma-copy";
/// Longest a browser script may run.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `CHROMIUM` and `NODE_PATH` as `scripts/install-browser.sh` prints them, or its defaults.
fn browser_env() -> Vec<(&'static str, String)> {
    let cache = std::env::var("LLM_ROUTER_CACHE").unwrap_or_else(|_| {
        format!(
            "{}/.cache/llm-router",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let node_path =
        std::env::var("NODE_PATH").unwrap_or_else(|_| format!("{cache}/browser/node_modules"));
    assert!(
        Path::new(&chromium).exists() && Path::new(&node_path).join("playwright-core").exists(),
        "chromium ({chromium}) or playwright-core (in {node_path}) is missing: \
         run `eval \"$(scripts/install-browser.sh)\"` first"
    );
    vec![
        ("CHROMIUM", chromium),
        ("NODE_PATH", node_path),
        (
            "SCREENSHOT_DIR",
            repo_root().join("docs/screenshots").display().to_string(),
        ),
    ]
}

/// Runs `node tests/browser/<script>` with `env`; panics with its exit status on failure.
async fn run_script(script: &str, env: Vec<(&'static str, String)>) {
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(repo_root().join("tests/browser").join(script))
        .current_dir(repo_root())
        .envs(env)
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("node runs (Node.js is installed)");
    let status = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait())
        .await
        .unwrap_or_else(|_| panic!("{script} still running after {SCRIPT_TIMEOUT:?}"))
        .unwrap();
    assert!(status.success(), "{script} failed: {status}");
}

fn catalog(server: &FileServer, gguf_len: u64) -> String {
    format!(
        r#"
[[models]]
name = "{PULL_MODEL}"
description = "A second copy of the test model, from the throttled local mirror"
size_bytes = {gguf_len}
recommended_gpu_memory_bytes = 0
chat_template = "gemma"
ctx_size = 2048
args = ["--threads", "1", "--parallel", "1"]
[models.gguf]
url = "{url}"
sha256 = "{GGUF_SHA256}"
size_bytes = {gguf_len}
file_name = "gemma-copy.gguf"
"#,
        url = server.url("gemma.gguf"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_shows_the_fleet_live_in_a_real_browser() {
    let browser = browser_env();
    let runtime = Runtime::from_env().unwrap();
    let mirror = TempDir::new("dashboard-mirror").unwrap();
    let models = TempDir::new("dashboard-models").unwrap();
    std::os::unix::fs::symlink(&runtime.model, mirror.path().join("gemma.gguf")).unwrap();
    let gguf_len = std::fs::metadata(&runtime.model).unwrap().len();
    let server = FileServer::spawn(mirror.path(), PULL_RATE, None)
        .await
        .unwrap();
    let catalog_file = mirror.path().join("catalog.toml");
    std::fs::write(&catalog_file, catalog(&server, gguf_len)).unwrap();

    let router = RouterProcess::start(&[
        "--catalog",
        catalog_file.to_str().unwrap(),
        "--auto-distribute",
        "false",
        "--node-timeout",
        "3s",
        "--heartbeat-interval",
        "1s",
        // A sample a second: the node detail's charts have points to draw at once.
        "--metrics-sample-interval",
        "1s",
    ])
    .await
    .unwrap();
    let models_dir = models.path().to_str().unwrap();
    let a = NodeProcess::start(
        &runtime,
        &router.url,
        "dash-a",
        0,
        &["--models-dir", models_dir],
    )
    .unwrap();
    let b = NodeProcess::start(&runtime, &router.url, "dash-b", 0, &[]).unwrap();
    for node in [&a, &b] {
        router
            .wait_node_status(&node.name, "online", Duration::from_secs(60))
            .await
            .unwrap();
    }
    let api_key = router.api_key().await.unwrap();

    let mut env = browser;
    env.extend([
        ("ROUTER_URL", router.url.clone()),
        ("ADMIN_USER", "admin".to_owned()),
        ("ADMIN_PASSWORD", TEST_ADMIN_PASSWORD.to_owned()),
        ("API_KEY", api_key),
        ("MODEL", MODEL.to_owned()),
        ("NODE_NAMES", format!("{},{}", a.name, b.name)),
        ("KILL_NODE_PID", b.process.pid().unwrap().to_string()),
        ("KILL_NODE_NAME", b.name.clone()),
        ("PULL_NODE_NAME", a.name.clone()),
        ("PULL_MODEL", PULL_MODEL.to_owned()),
    ]);
    run_script("dashboard.mjs", env).await;
    assert!(
        server.requests() > 0,
        "the download the browser watched never reached the mirror"
    );

    // The log APIs the page used, read directly: JSON lines from the real files, N of them.
    let agents = router.agents().await.unwrap();
    let a_id = agents
        .iter()
        .find(|n| n["machine_name"] == a.name.as_str())
        .and_then(|n| n["id"].as_str())
        .unwrap()
        .to_owned();
    let token = router.admin_token().await.unwrap();
    let http = reqwest::Client::new();
    let text = |path: String| {
        let request = http
            .get(format!("{}{path}", router.url))
            .bearer_auth(&token);
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    for (path, lines) in [
        (format!("/api/agents/{a_id}/logs?tail=3"), 3),
        ("/api/logs?tail=2".to_owned(), 2),
    ] {
        let (status, body) = text(path.clone()).await;
        assert_eq!(status, 200, "{path}: {body}");
        let lines_seen: Vec<&str> = body.lines().collect();
        assert_eq!(lines_seen.len(), lines, "{path}: {body}");
        for line in lines_seen {
            let entry: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(
                entry["level"].is_string() && entry["timestamp"].is_string(),
                "{line}"
            );
        }
    }
    let (status, body) = text(format!("/api/agents/{a_id}/logs?tail=many")).await;
    assert_eq!(status, 400, "{body}");
    // The killed node's log cannot be read: 502 naming it.
    let b_id = agents
        .iter()
        .find(|n| n["machine_name"] == b.name.as_str())
        .and_then(|n| n["id"].as_str())
        .unwrap()
        .to_owned();
    let (status, body) = text(format!("/api/agents/{b_id}/logs")).await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains(&b.name), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_load_with_100_nodes_and_10000_requests() {
    const NODES: usize = 100;
    const REQUESTS: usize = 10_000;
    let browser = browser_env();
    // Fakes never heartbeat: a long timeout keeps them online for the measurement.
    let router = RouterProcess::start(&[
        "--node-timeout",
        "10m",
        "--heartbeat-interval",
        "5s",
        "--auto-distribute",
        "false",
    ])
    .await
    .unwrap();
    let reply = Reply::Json(json!({
        "id": "x", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
    }));
    let mut fakes = Vec::with_capacity(NODES);
    for i in 0..NODES {
        let fake = FakeNode::builder(format!("fleet-{i:03}"))
            .model(format!("model-{}", i % 4))
            .reply(reply.clone())
            .spawn()
            .await
            .unwrap();
        fake.register(&router.url).await.unwrap();
        fakes.push(fake);
    }

    let client = router.client().await.unwrap();
    let started = Instant::now();
    let url = format!("{}/v1/chat/completions", router.url);
    let statuses: Vec<u16> = futures_util::stream::iter(0..REQUESTS)
        .map(|i| {
            let request = client.post(&url).json(&json!({
                "model": format!("model-{}", i % 4),
                "messages": [{"role": "user", "content": "hi"}]
            }));
            async move { request.send().await.map_or(0, |r| r.status().as_u16()) }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 200), "every request served");
    eprintln!(
        "{REQUESTS} requests through the router in {:?}",
        started.elapsed()
    );
    // The history writer batches; wait until every row is stored.
    llm_router_testkit::processes::wait_for(
        "10 000 stored rows",
        Duration::from_secs(60),
        || async {
            let page = router.get_as_admin("/api/requests?limit=1").await.ok()?;
            (page["total"].as_u64()? >= REQUESTS as u64).then_some(())
        },
    )
    .await
    .unwrap();

    let mut env = browser;
    env.extend([
        ("ROUTER_URL", router.url.clone()),
        ("ADMIN_USER", "admin".to_owned()),
        ("ADMIN_PASSWORD", TEST_ADMIN_PASSWORD.to_owned()),
        ("EXPECT_NODES", NODES.to_string()),
        ("EXPECT_HISTORY", REQUESTS.to_string()),
    ]);
    run_script("load.mjs", env).await;
    drop(fakes);
}
