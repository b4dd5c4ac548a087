//! A model split into parts, end to end: the small model is split with llama.cpp's own
//! `llama-gguf-split` (built with the runtime) into two GGUF files, served by the throttled test
//! mirror (which cuts the first download of each part part-way). A real router places the split
//! model on a real node with no model; the node downloads both parts (resuming each), checks each
//! part's sha256, starts the real `llama-server` on the first part and serves a chat completion
//! through the router. Then a split model whose second part has a wrong digest fails its task.
//!
//! The node reads its GPUs from a fixture sysfs holding one AMD card of 24 GiB: it registers that
//! GPU, is placed by it, and starts llama-server with every layer offloaded (`--n-gpu-layers all`),
//! which this CPU build of llama-server accepts and ignores; it reports its runtime as `cpu`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use llm_router_testkit::processes::{NodeProcess, RouterProcess, Runtime, live_children};
use llm_router_testkit::wait_for;
use llm_router_testkit::{FileServer, TempDir};
use serde_json::{Value, json};

/// 40 MB/s: the 253 MB of both parts take several seconds, enough to see progress.
const RATE: u64 = 40_000_000;
/// The first download of each part is cut after this many bytes.
const DROP_AFTER: u64 = 20_000_000;
const SPLIT: &str = "gemma3-270m-split";

/// `llama-gguf-split`, beside the runtime's `llama-server`.
fn gguf_split(runtime: &Runtime) -> PathBuf {
    let server = std::fs::canonicalize(&runtime.llama_server).unwrap();
    let split = server.parent().unwrap().join("llama-gguf-split");
    assert!(split.is_file(), "{} is missing", split.display());
    split
}

/// Splits `model` into `<dir>/gemma-0000i-of-00002.gguf`; the part names.
fn split_in_two(runtime: &Runtime, dir: &Path) -> Vec<String> {
    let out = Command::new(gguf_split(runtime))
        .args(["--split", "--split-max-tensors", "150"])
        .arg(&runtime.model)
        .arg(dir.join("gemma"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parts = vec![
        "gemma-00001-of-00002.gguf".to_owned(),
        "gemma-00002-of-00002.gguf".to_owned(),
    ];
    for part in &parts {
        assert!(dir.join(part).is_file(), "{part} written");
    }
    parts
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

fn catalog(server: &FileServer, total: u64, digests: &[String]) -> String {
    format!(
        r#"
[[models]]
name = "{SPLIT}"
description = "Gemma 3 270M in two parts, from the local test mirror"
size_bytes = {total}
recommended_gpu_memory_bytes = 0
chat_template = "gemma"
ctx_size = 2048
args = ["--threads", "1", "--parallel", "2"]
[models.gguf]
url = "{first}"
file_name = "gemma-00001-of-00002.gguf"
size_bytes = {total}
parts = 2
part_sha256 = ["{d1}", "{d2}"]

[[models]]
name = "bad-split"
size_bytes = {total}
recommended_gpu_memory_bytes = 0
[models.gguf]
url = "{bad_first}"
file_name = "bad-00001-of-00002.gguf"
size_bytes = {total}
parts = 2
part_sha256 = ["{d1}", "{zeros}"]

# Placement of this test's nodes: the split model for a GPU of 16 GB and more (the fixture's AMD
# card), nothing without.
[[placement.tiers]]
label = "≥ 16 GB"
min_gpu_memory_bytes = 16_000_000_000
models = ["{SPLIT}"]

[[placement.tiers]]
label = "no GPU"
min_gpu_memory_bytes = 0
models = []
"#,
        first = server.url("gemma-00001-of-00002.gguf"),
        bad_first = server.url("bad-00001-of-00002.gguf"),
        d1 = digests[0],
        d2 = digests[1],
        zeros = "0".repeat(64),
    )
}

/// Polls the task until it is final; the percentages seen on the way.
async fn follow(router: &RouterProcess, id: &str, timeout: Duration) -> (Value, Vec<f64>) {
    let mut seen: Vec<f64> = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let task = router
            .get_as_admin(&format!("/api/tasks/{id}"))
            .await
            .unwrap();
        if let Some(p) = task["percent"].as_f64()
            && seen.last() != Some(&p)
        {
            seen.push(p);
        }
        if task["status"] == "ready" || task["status"] == "failed" {
            return (task, seen);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "task {id} still {task}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A sysfs with one AMD card of 24 GiB, as the amdgpu driver shows it.
fn amd_sysfs(root: &Path) {
    let device = root.join("class/drm/card0/device");
    std::fs::create_dir_all(&device).unwrap();
    for (file, text) in [
        ("vendor", "0x1002\n"),
        ("mem_info_vram_total", "25753026560\n"),
        ("mem_info_vram_used", "1048576\n"),
        ("gpu_busy_percent", "0\n"),
        ("product_name", "Radeon RX 7900 XTX\n"),
    ] {
        std::fs::write(device.join(file), text).unwrap();
    }
    // A connector beside the card, as on a real machine.
    std::fs::create_dir_all(root.join("class/drm/card0-DP-1")).unwrap();
}

/// The command line of the node's runtime process.
fn runtime_command_line(node: &NodeProcess) -> Vec<String> {
    let pid = node.process.pid().unwrap();
    let child = live_children(pid)
        .into_iter()
        .next()
        .expect("the node runs a runtime");
    std::fs::read(format!("/proc/{child}/cmdline"))
        .unwrap()
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_split_model_is_pulled_part_by_part_checked_and_served_from_its_first_part() {
    let runtime = Runtime::from_env().unwrap();
    let served = TempDir::new("split-mirror").unwrap();
    let models = TempDir::new("split-node-models").unwrap();
    let sysfs = TempDir::new("split-node-sysfs").unwrap();
    amd_sysfs(sysfs.path());
    let parts = split_in_two(&runtime, served.path());
    let digests: Vec<String> = parts
        .iter()
        .map(|p| sha256(&served.path().join(p)))
        .collect();
    let sizes: Vec<u64> = parts
        .iter()
        .map(|p| std::fs::metadata(served.path().join(p)).unwrap().len())
        .collect();
    let total: u64 = sizes.iter().sum();
    // The bad model: the same first part, a second part whose digest the catalog gets wrong.
    for (from, to) in parts
        .iter()
        .zip(["bad-00001-of-00002.gguf", "bad-00002-of-00002.gguf"])
    {
        std::fs::hard_link(served.path().join(from), served.path().join(to)).unwrap();
    }
    let server = FileServer::spawn(served.path(), RATE, Some(DROP_AFTER))
        .await
        .unwrap();
    let catalog_file = served.path().join("catalog.toml");
    std::fs::write(&catalog_file, catalog(&server, total, &digests)).unwrap();

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
        "node-split",
        0,
        None,
        &[
            "--models-dir",
            models.path().to_str().unwrap(),
            "--progress-interval",
            "200ms",
            "--sysfs-root",
            sysfs.path().to_str().unwrap(),
        ],
    )
    .unwrap();

    let task = wait_for("the placement task", Duration::from_secs(30), || async {
        let tasks = router.get_as_admin("/api/tasks").await.ok()?;
        tasks
            .as_array()?
            .iter()
            .find(|t| t["model"] == SPLIT)
            .cloned()
    })
    .await
    .unwrap();
    let (done, seen) = follow(
        &router,
        task["id"].as_str().unwrap(),
        Duration::from_secs(180),
    )
    .await;
    assert_eq!(done["status"], "ready", "{done}");
    assert_eq!(done["bytes_total"], total, "{done}");
    // Progress counts both parts against the whole model: it passes the first part's share
    // (about 90 %) on the way, never jumping back to 0 for the second part.
    let between: Vec<f64> = seen
        .iter()
        .copied()
        .filter(|p| *p > 0.0 && *p < 100.0)
        .collect();
    assert!(
        between.len() >= 3,
        "several intermediate percentages: {seen:?}"
    );
    // Each part's first download was cut and resumed with Range.
    let ranges = server.ranges();
    assert!(
        ranges.iter().filter(|r| r.starts_with("bytes=")).count() >= 2,
        "both parts resumed: {ranges:?}"
    );
    for (part, size) in parts.iter().zip(&sizes) {
        let path = models.path().join(part);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), *size, "{part}");
        assert!(!models.path().join(format!("{part}.part")).exists());
    }

    router
        .wait_node_status("node-split", "online", Duration::from_secs(60))
        .await
        .unwrap();
    // The router shows the node's AMD GPU and its runtime's backend.
    let agents = router.agents().await.unwrap();
    let entry = agents
        .iter()
        .find(|n| n["machine_name"] == "node-split")
        .unwrap();
    assert_eq!(entry["hardware"]["gpus"][0]["vendor"], "amd", "{entry}");
    assert_eq!(
        entry["hardware"]["gpus"][0]["memory_total_bytes"],
        25_753_026_560u64
    );
    assert_eq!(entry["runtime"]["backend"], "cpu", "{entry}");
    // llama-server runs on the first part, with every layer offloaded (the node has a GPU).
    let args = runtime_command_line(&node);
    let model_arg = args
        .windows(2)
        .find(|w| w[0] == "--model")
        .map(|w| w[1].clone())
        .unwrap_or_else(|| panic!("no --model in {args:?}"));
    assert!(model_arg.ends_with("gemma-00001-of-00002.gguf"), "{args:?}");
    assert!(
        args.windows(2).any(|w| w == ["--n-gpu-layers", "all"]),
        "{args:?}"
    );
    let client = router.client().await.unwrap();
    let answer: Value = client
        .post(format!("{}/v1/chat/completions", router.url))
        .json(
            &json!({"model": SPLIT, "messages": [{"role": "user", "content": "Hello"}],
                      "max_tokens": 8, "temperature": 0}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["object"], "chat.completion", "{answer}");
    assert_eq!(answer["model"], SPLIT, "{answer}");

    // A wrong digest on the second part: the task fails naming the checksum, the bad part is
    // gone, the verified first part stays for a later pull, and the node keeps serving.
    let node_id = done["node_id"].as_str().unwrap();
    let accepted: Value = client
        .post(format!("{}/api/agents/{node_id}/models/pull", router.url))
        .bearer_auth(router.admin_token().await.unwrap())
        .json(&json!({"model": "bad-split"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = accepted["task_ids"][0].as_str().unwrap().to_owned();
    let (failed, _) = follow(&router, &id, Duration::from_secs(120)).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(
        failed["error"].as_str().unwrap().contains("sha256"),
        "{failed}"
    );
    assert!(models.path().join("bad-00001-of-00002.gguf").is_file());
    assert!(!models.path().join("bad-00002-of-00002.gguf").exists());
    assert!(!models.path().join("bad-00002-of-00002.gguf.part").exists());
    assert_eq!(
        router.node_status("node-split").await.unwrap().as_deref(),
        Some("online")
    );
    drop(node);
}
