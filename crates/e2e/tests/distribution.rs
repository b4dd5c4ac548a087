//! Model distribution end to end: a real router and a real node that starts with no model. The
//! router's catalog points the small model at a local file server (the real GGUF from the install
//! cache, served at a bounded rate, dropping the first download part-way); on registration the
//! node is placed by GPU memory (none here: the small model), pulls with progress, resumes after
//! the drop, verifies, starts `llama-server` and serves a chat completion. Then a wrong checksum
//! and a file that cannot fit on the disk.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::RefCell;
use std::path::Path;
use std::time::Duration;

use llm_router_testkit::processes::{MODEL, NodeProcess, RouterProcess, Runtime};
use llm_router_testkit::wait_for;
use llm_router_testkit::{FileServer, TempDir};
use serde_json::{Value, json};

const GGUF_SHA256: &str = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";
/// 60 MB/s: the 253 MB model takes about 4 s, long enough to see its progress.
const RATE: u64 = 60_000_000;
/// The first download is cut after this many bytes.
const DROP_AFTER: u64 = 80_000_000;

fn catalog(server: &FileServer, gguf_len: u64) -> String {
    format!(
        r#"
[[models]]
name = "{MODEL}"
description = "Gemma 3 270M from the local test mirror"
size_bytes = {gguf_len}
recommended_gpu_memory_bytes = 0
chat_template = "gemma"
ctx_size = 2048
args = ["--threads", "1", "--parallel", "2"]
[models.gguf]
url = "{gemma}"
sha256 = "{GGUF_SHA256}"
size_bytes = {gguf_len}
file_name = "gemma-3-270m-q4_k_m.gguf"

[[models]]
name = "bad-sum"
size_bytes = 2097152
recommended_gpu_memory_bytes = 0
[models.gguf]
url = "{small}"
sha256 = "{zeros}"
size_bytes = 2097152
file_name = "bad-sum.gguf"

[[models]]
name = "huge"
size_bytes = 1000000000000000
recommended_gpu_memory_bytes = 0
[models.gguf]
url = "{small}"
size_bytes = 1000000000000000
file_name = "huge.gguf"

# This test's placement, whatever the machine's RAM (the built-in CPU tiers would give a node
# with 32 GB of RAM gpt-oss:20b): the small model.
[[placement.tiers]]
label = "no GPU"
min_gpu_memory_bytes = 0
models = ["{MODEL}"]
"#,
        gemma = server.url("gemma.gguf"),
        small = server.url("small.bin"),
        zeros = "0".repeat(64),
    )
}

async fn admin(
    router: &RouterProcess,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> reqwest::Response {
    reqwest::Client::new()
        .request(method, format!("{}{path}", router.url))
        .bearer_auth(router.admin_token().await.unwrap())
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Polls the task until it is final; the percentages seen on the way.
async fn follow(router: &RouterProcess, id: &str, timeout: Duration) -> (Value, Vec<f64>) {
    let seen = RefCell::new(Vec::new());
    let last = RefCell::new(Value::Null);
    let what = format!("task {id} to be ready or failed");
    let task = wait_for(&what, timeout, || async {
        let task = router
            .get_as_admin(&format!("/api/tasks/{id}"))
            .await
            .unwrap();
        let mut seen = seen.borrow_mut();
        if let Some(p) = task["percent"].as_f64()
            && seen.last() != Some(&p)
        {
            seen.push(p);
        }
        let done = task["status"] == "ready" || task["status"] == "failed";
        *last.borrow_mut() = task.clone();
        done.then_some(task)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}: task still {}", last.borrow()));
    (task, seen.into_inner())
}

fn files_named(dir: &Path, prefix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_without_models_is_placed_pulls_with_progress_and_serves_the_model() {
    let runtime = Runtime::from_env().unwrap();
    let served = TempDir::new("mirror").unwrap();
    let models = TempDir::new("node-models").unwrap();
    std::os::unix::fs::symlink(&runtime.model, served.path().join("gemma.gguf")).unwrap();
    std::fs::write(served.path().join("small.bin"), vec![7u8; 2_097_152]).unwrap();
    let gguf_len = std::fs::metadata(&runtime.model).unwrap().len();
    let server = FileServer::spawn(served.path(), RATE, Some(DROP_AFTER))
        .await
        .unwrap();
    let catalog_file = served.path().join("catalog.toml");
    std::fs::write(&catalog_file, catalog(&server, gguf_len)).unwrap();

    let router = RouterProcess::start(&[
        "--catalog",
        catalog_file.to_str().unwrap(),
        "--node-timeout",
        "3s",
        "--heartbeat-interval",
        "1s",
        "--auto-distribute",
        "true",
    ])
    .await
    .unwrap();
    let node = NodeProcess::start_serving(
        &runtime,
        &router.url,
        "node-p",
        0,
        None,
        &[
            "--models-dir",
            models.path().to_str().unwrap(),
            "--progress-interval",
            "200ms",
        ],
    )
    .unwrap();

    // Placed on registration: no GPU → the small model.
    let task = wait_for("the placement task", Duration::from_secs(30), || async {
        let tasks = router.get_as_admin("/api/tasks").await.ok()?;
        tasks
            .as_array()?
            .iter()
            .find(|t| t["model"] == MODEL)
            .cloned()
    })
    .await
    .unwrap();
    assert!(
        task["reason"].as_str().unwrap().contains("placement"),
        "{task}"
    );
    assert_eq!(
        router.node_status("node-p").await.unwrap().as_deref(),
        Some("initializing")
    );
    // While the model downloads everywhere, a request for it waits in the queue.
    let node_id = task["node_id"].as_str().unwrap().to_owned();
    wait_for(
        "the node to report the download",
        Duration::from_secs(10),
        || async {
            let models = router
                .get_as_admin(&format!("/api/agents/{node_id}/models"))
                .await
                .ok()?;
            (models["models"][0]["state"] == "downloading").then_some(())
        },
    )
    .await
    .unwrap();
    let client = router.client().await.unwrap();
    let chat = json!({"model": MODEL, "messages": [{"role": "user", "content": "Hello"}],
                      "max_tokens": 8, "temperature": 0});
    let early = tokio::spawn({
        let request = client
            .post(format!("{}/v1/chat/completions", router.url))
            .json(&chat);
        async move { request.send().await.unwrap().status() }
    });
    let (done, seen) = follow(
        &router,
        task["id"].as_str().unwrap(),
        Duration::from_secs(180),
    )
    .await;
    assert_eq!(done["status"], "ready", "{done}");
    let between: Vec<&f64> = seen.iter().filter(|p| **p > 0.0 && **p < 100.0).collect();
    assert!(
        between.len() >= 3,
        "several intermediate percentages: {seen:?}"
    );
    assert!(
        server.ranges().iter().any(|r| r.starts_with("bytes=")),
        "the dropped download resumed with Range: {:?}",
        server.ranges()
    );
    assert!(models.path().join("gemma-3-270m-q4_k_m.gguf").is_file());

    router
        .wait_node_status("node-p", "online", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        early.await.unwrap(),
        200,
        "the early request waited and was served"
    );
    let answer: Value = client
        .post(format!("{}/v1/chat/completions", router.url))
        .json(&chat)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["object"], "chat.completion", "{answer}");

    // A wrong checksum: the task fails, the file is gone, the node keeps serving.
    let node_id = router.agents().await.unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let pull = format!("/api/agents/{node_id}/models/pull");
    let accepted: Value = admin(
        &router,
        reqwest::Method::POST,
        &pull,
        json!({"model": "bad-sum"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let id = accepted["task_ids"][0].as_str().unwrap().to_owned();
    let (failed, _) = follow(&router, &id, Duration::from_secs(30)).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(
        failed["error"].as_str().unwrap().contains("sha256"),
        "{failed}"
    );
    assert!(
        files_named(models.path(), "bad-sum").is_empty(),
        "nothing left"
    );
    assert_eq!(
        router.node_status("node-p").await.unwrap().as_deref(),
        Some("online")
    );

    // A file that cannot fit: 507 at once, a failed task, nothing written.
    let refused = admin(
        &router,
        reqwest::Method::POST,
        &pull,
        json!({"model": "huge"}),
    )
    .await;
    assert_eq!(refused.status(), 507);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "insufficient_storage", "{body}");
    let tasks = router.get_as_admin("/api/tasks").await.unwrap();
    let huge = tasks
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["model"] == "huge")
        .unwrap();
    assert_eq!(huge["status"], "failed", "{huge}");
    assert!(files_named(models.path(), "huge").is_empty());

    // Unknown model and offline-free errors in the router's shape.
    let unknown = admin(
        &router,
        reqwest::Method::POST,
        &pull,
        json!({"model": "nope"}),
    )
    .await;
    assert_eq!(unknown.status(), 400);
    let answer = client
        .post(format!("{}/v1/chat/completions", router.url))
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "the node still serves");
    drop(node);
}
