//! The dashboard in a real headless Chromium (Debian's `chromium`, driven by `playwright-core`;
//! `scripts/install-browser.sh` installs both). The browser scripts live in `tests/browser/`;
//! these tests start what they look at and run them:
//!
//! - a real router, two real nodes serving the real model with `llama-server`, and a throttled
//!   file server the router's catalog points a second copy of the model at: the script logs in,
//!   watches requests, a node's log, a download (to `ready`) and a node dying, and takes the
//!   screenshots;
//! - a real router with 100 registered fake nodes (`FakeNode`, scripted) and 10 000 requests in
//!   its history: the script checks that the dashboard's first load shows them all (its speed is
//!   measured by `cargo bench -p llm-router-e2e --bench first_load`, not here).
//!
//! Screenshots go to `$CARGO_TARGET_TMPDIR/screenshots/` (under the target directory), or over
//! the README's pictures in `docs/screenshots/` with `UPDATE_SCREENSHOTS=1`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use llm_router_e2e::browser::{browser_env, run_script, screenshot_dir};
use llm_router_e2e::fleet::Fleet;
use llm_router_testkit::processes::{
    MODEL, NodeProcess, RouterProcess, Runtime, TEST_ADMIN_PASSWORD,
};
use llm_router_testkit::{FileServer, TempDir};

const GGUF_SHA256: &str = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";
/// 25 MB/s: the 253 MB copy takes about 10 s, long enough to watch its progress bar.
const PULL_RATE: u64 = 25_000_000;
const PULL_MODEL: &str = "gemma-copy";

/// The browser's environment and where the screenshots go (see the module documentation).
fn browser() -> Vec<(&'static str, String)> {
    let mut env = browser_env().unwrap();
    let shots = screenshot_dir(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots"));
    eprintln!("screenshots in {}", shots.display());
    env.push(("SCREENSHOT_DIR", shots.display().to_string()));
    env
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
    let browser = browser();
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
    run_script("dashboard.mjs", &env).await.unwrap();
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
    let mut env = browser();
    let fleet = Fleet::start().await.unwrap();
    env.extend(fleet.load_script_env());
    run_script("load.mjs", &env).await.unwrap();
}
