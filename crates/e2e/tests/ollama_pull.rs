//! Distribution to a node that runs Ollama, end to end with the real `llm-router` and `llm-node`
//! binaries and the scripted FAKE `ollama` (`tests/fakes/fake_ollama.py`, a stand-in: no real
//! Ollama can be installed on these machines). The router sends the catalog model's Ollama name;
//! the node starts an `ollama serve` for it, which pulls through `/api/pull` (the fake streams
//! progress lines), and the download's progress reaches the router's task like a GGUF pull's. The
//! node has no GPU, so the model is loaded with `num_gpu` 0.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use llm_router_testkit::TEST_ENROLLMENT_TOKEN;
use llm_router_testkit::processes::{ChildProcess, RouterProcess, binary, free_port};
use llm_router_testkit::wait_for;
use serde_json::{Value, json};

fn fake_ollama() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fakes/fake_ollama.py")
}

fn events(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ollama_node_pulls_a_distributed_model_through_ollama_with_progress() {
    let dir = std::env::temp_dir().join(format!("llm-e2e-ollama-pull-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("fake-ollama.log");
    let _ = std::fs::remove_file(&log);
    let router = RouterProcess::start(&[
        "--heartbeat-interval",
        "1s",
        "--node-timeout",
        "5s",
        "--auto-distribute",
        "false",
    ])
    .await
    .unwrap();
    let port = free_port().unwrap();
    let mut cmd = Command::new(binary("llm-node").unwrap());
    cmd.args(["--router-url", &router.url, "--name", "fake-ollama-node"])
        .args(["--port", &port.to_string()])
        .args(["--runtime", "ollama", "--heartbeat-interval", "1s"])
        .arg("--ollama-bin")
        .arg(fake_ollama())
        .args(["--progress-interval", "100ms", "--ready-timeout", "30s"])
        // No GPU: a sysfs without cards, whatever this machine has.
        .arg("--sysfs-root")
        .arg(&dir)
        .env("LLM_NODE_ENROLLMENT_TOKEN", TEST_ENROLLMENT_TOKEN)
        .env("OLLAMA_FAKE_LOG", &log)
        .env("OLLAMA_FAKE_PULL_STEPS", "12")
        .env("OLLAMA_FAKE_STEP_DELAY", "0.25")
        .env("RUST_LOG", "info");
    let node = ChildProcess::spawn("llm-node (fake ollama runtime)", cmd).unwrap();
    let node_id = wait_for("the node to register", Duration::from_secs(30), || async {
        let agents = router.agents().await.ok()?;
        let node = agents
            .iter()
            .find(|n| n["machine_name"] == "fake-ollama-node")?;
        node["id"].as_str().map(str::to_owned)
    })
    .await
    .unwrap();

    let accepted: Value = reqwest::Client::new()
        .post(format!("{}/api/models/distribute", router.url))
        .bearer_auth(router.admin_token().await.unwrap())
        .json(&json!({"model": "gemma3-270m", "target": [node_id]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let task_id = accepted["task_ids"][0].as_str().unwrap().to_owned();

    // Follow the task: downloading with growing percentages, then ready.
    let seen: std::cell::RefCell<Vec<(String, Option<f64>)>> = std::cell::RefCell::default();
    let done = wait_for("the task to finish", Duration::from_secs(60), || async {
        let task = router
            .get_as_admin(&format!("/api/tasks/{task_id}"))
            .await
            .ok()?;
        let step = (
            task["status"].as_str().unwrap_or_default().to_owned(),
            task["percent"].as_f64(),
        );
        let mut seen = seen.borrow_mut();
        if seen.last() != Some(&step) {
            seen.push(step);
        }
        (task["status"] == "ready" || task["status"] == "failed").then_some(task)
    })
    .await
    .unwrap();
    let seen = seen.into_inner();
    assert_eq!(done["status"], "ready", "{done} after {seen:?}");
    let downloading: Vec<f64> = seen
        .iter()
        .filter(|(s, _)| s == "downloading")
        .filter_map(|(_, p)| *p)
        .collect();
    assert!(
        downloading.len() >= 3 && downloading.windows(2).all(|w| w[0] <= w[1]),
        "growing download percentages: {seen:?}"
    );
    assert!(
        downloading.iter().any(|p| *p > 0.0 && *p < 100.0),
        "{seen:?}"
    );

    // Ollama was asked for the catalog's Ollama model and loaded it with no GPU layer.
    let logged = events(&log);
    let body_of = |path: &str| {
        logged
            .iter()
            .find(|e| e["event"] == "request" && e["path"] == path)
            .map(|e| e["body"].clone())
            .unwrap_or_else(|| panic!("no {path} in {logged:?}"))
    };
    assert_eq!(body_of("/api/pull")["model"], "gemma3:270m");
    assert_eq!(body_of("/api/generate")["options"]["num_gpu"], 0);

    // The model is served under the catalog's name.
    router
        .wait_node_status("fake-ollama-node", "online", Duration::from_secs(30))
        .await
        .unwrap();
    let agents = router.agents().await.unwrap();
    let entry = agents
        .iter()
        .find(|n| n["machine_name"] == "fake-ollama-node")
        .unwrap();
    assert_eq!(entry["models"][0]["name"], "gemma3-270m", "{entry}");
    assert_eq!(entry["models"][0]["state"], "ready", "{entry}");
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
}
