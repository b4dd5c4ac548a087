//! The node's Ollama runtime, end to end with the real `llm-router` and `llm-node` binaries and a
//! scripted FAKE `ollama` (`tests/fakes/fake_ollama.py`, a stand-in: no real Ollama can be
//! installed on these machines). Shows the process handling (one `ollama serve` per model on its
//! own OLLAMA_HOST port, restarted when it dies, stopped with the node), the readiness protocol
//! (wait for the server, pull the model when absent, load it) and the forwarding (Ollama requests
//! passed through natively, OpenAI requests to `/v1`, model names mapped to Ollama's).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use llm_router_testkit::TEST_ENROLLMENT_TOKEN;
use llm_router_testkit::processes::{
    ChildProcess, RouterProcess, binary, free_port, is_alive, live_children,
};
use llm_router_testkit::wait_for;
use serde_json::{Value, json};

const READY: Duration = Duration::from_secs(30);

fn fake_ollama() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fakes/fake_ollama.py")
}

/// Every event the fakes logged so far.
fn events(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn requests<'a>(events: &'a [Value], path: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["event"] == "request" && e["path"] == path)
        .collect()
}

/// An `llm-node` with `--runtime ollama` serving `chat=fake-chat:1b` (absent: pulled at start)
/// and `present=present:latest` (already there), logging the fakes' events to `log`.
fn start_node(router: &RouterProcess, log: &Path) -> ChildProcess {
    let port = free_port().unwrap();
    let mut cmd = Command::new(binary("llm-node").unwrap());
    cmd.args(["--router-url", &router.url, "--name", "ollama-node"])
        .args(["--port", &port.to_string()])
        .args(["--runtime", "ollama", "--heartbeat-interval", "1s"])
        .arg("--ollama-bin")
        .arg(fake_ollama())
        .args(["--models", "chat=fake-chat:1b,present=present"])
        .args(["--parallel", "3", "--ready-timeout", "20s"])
        .env("LLM_NODE_ENROLLMENT_TOKEN", TEST_ENROLLMENT_TOKEN)
        .env("OLLAMA_FAKE_LOG", log)
        .env("OLLAMA_FAKE_MODELS", "present:latest")
        .env("OLLAMA_FAKE_PULL_STEPS", "8")
        .env("OLLAMA_FAKE_STEP_DELAY", "0.25")
        .env("RUST_LOG", "info");
    ChildProcess::spawn("llm-node (ollama runtime)", cmd).unwrap()
}

fn ndjson(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn node_runs_one_fake_ollama_per_model_pulls_the_absent_one_and_forwards_requests() {
    let dir = std::env::temp_dir().join(format!("llm-e2e-ollama-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("fake-ollama.log");
    let _ = std::fs::remove_file(&log);
    // Placement off: Ollama nodes are placed like others now (tests/ollama_pull.rs); this test is
    // about the node's own models.
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
    let mut node = start_node(&router, &log);
    let http = router.client().await.unwrap();

    // The absent model is seen downloading, then the node comes online with both models.
    wait_for("the model to be reported downloading", READY, || async {
        let agents = router.agents().await.ok()?;
        let node = agents.iter().find(|n| n["machine_name"] == "ollama-node")?;
        node["models"]
            .as_array()?
            .iter()
            .any(|m| m["name"] == "chat" && m["state"] == "downloading")
            .then_some(())
    })
    .await
    .unwrap();
    router
        .wait_node_status("ollama-node", "online", READY)
        .await
        .unwrap();
    wait_for("both models ready", READY, || async {
        let agents = router.agents().await.ok()?;
        let node = agents.iter().find(|n| n["machine_name"] == "ollama-node")?;
        let models = node["models"].as_array()?;
        (models.len() == 2 && models.iter().all(|m| m["state"] == "ready")).then_some(())
    })
    .await
    .unwrap();
    let agents = router.agents().await.unwrap();
    let entry = agents
        .iter()
        .find(|n| n["machine_name"] == "ollama-node")
        .unwrap();
    assert_eq!(entry["runtime"]["kind"], "ollama", "{entry}");
    assert_eq!(entry["runtime"]["version"], "0.0.0-fake", "{entry}");
    for m in entry["models"].as_array().unwrap() {
        assert_eq!(m["slots_total"], 3, "OLLAMA_NUM_PARALLEL slots: {m}");
    }

    // One server per model, each on its own port, told to keep its model loaded.
    let log_events = events(&log);
    let starts: Vec<&Value> = log_events
        .iter()
        .filter(|e| e["event"] == "start")
        .collect();
    assert_eq!(starts.len(), 2, "{starts:?}");
    let hosts: Vec<&str> = starts
        .iter()
        .map(|s| s["env"]["OLLAMA_HOST"].as_str().unwrap())
        .collect();
    assert_ne!(hosts[0], hosts[1], "one port per model");
    for start in &starts {
        assert!(
            start["env"]["OLLAMA_HOST"]
                .as_str()
                .unwrap()
                .starts_with("127.0.0.1:")
        );
        assert_eq!(start["env"]["OLLAMA_KEEP_ALIVE"], "-1");
        assert_eq!(start["env"]["OLLAMA_NUM_PARALLEL"], "3");
    }
    // Only the absent model was pulled; both were loaded.
    let pulls = requests(&log_events, "/api/pull");
    assert_eq!(pulls.len(), 1, "{pulls:?}");
    assert_eq!(pulls[0]["body"]["model"], "fake-chat:1b");
    let loads: Vec<&str> = requests(&log_events, "/api/generate")
        .iter()
        .map(|r| r["body"]["model"].as_str().unwrap())
        .collect();
    assert!(
        loads.contains(&"fake-chat:1b") && loads.contains(&"present"),
        "{loads:?}"
    );

    // An Ollama request goes through natively, the model name mapped to Ollama's.
    let response = http
        .post(format!("{}/api/chat", router.url))
        .json(&json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-llm-router-node"], "ollama-node");
    let lines = ndjson(&response.text().await.unwrap());
    let text: String = lines
        .iter()
        .map(|l| l["message"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(text, "fake answer from fake-chat:1b");
    assert_eq!(lines.last().unwrap()["done"], true);
    let chats = requests(&events(&log), "/api/chat")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(chats.len(), 1, "no translation to /v1: {chats:?}");
    assert_eq!(chats[0]["body"]["model"], "fake-chat:1b");
    assert_eq!(chats[0]["body"]["messages"][0]["content"], "hi");

    // An OpenAI request goes to the server's /v1 endpoint.
    let response = http
        .post(format!("{}/v1/chat/completions", router.url))
        .json(&json!({"model": "present", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        "fake answer from present"
    );
    assert_eq!(
        requests(&events(&log), "/v1/chat/completions")[0]["body"]["model"],
        "present"
    );

    // A route the server does not know (an Ollama older than 0.14 has no /v1/messages): the
    // client learns which node, runtime and API, in the API's own shape.
    let response = http
        .post(format!("{}/v1/messages", router.url))
        .json(&json!({"model": "present", "max_tokens": 4,
            "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "not_found_error", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("ollama-node")
            && message.contains("ollama")
            && message.contains("/v1/messages"),
        "{message}"
    );

    // What the server says of its models reaches the router's Ollama listing.
    let tags: Value = http
        .get(format!("{}/api/tags", router.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let chat = tags["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "chat")
        .unwrap();
    assert_eq!(chat["size"], 1234567, "{chat}");
    assert_eq!(chat["details"]["family"], "fakearch", "{chat}");

    // A server that dies is restarted on a port of its own, and its model is served again.
    let fakes = live_children(node.pid().unwrap());
    assert_eq!(fakes.len(), 2, "one fake ollama per model: {fakes:?}");
    let victim = fakes[0];
    Command::new("kill")
        .args(["-KILL", &victim.to_string()])
        .status()
        .unwrap();
    wait_for("the killed server to be replaced", READY, || async {
        let starts = events(&log)
            .into_iter()
            .filter(|e| e["event"] == "start")
            .count();
        (starts == 3).then_some(())
    })
    .await
    .unwrap();
    wait_for("both models ready again", READY, || async {
        let agents = router.agents().await.ok()?;
        let node = agents.iter().find(|n| n["machine_name"] == "ollama-node")?;
        let models = node["models"].as_array()?;
        (models.len() == 2 && models.iter().all(|m| m["state"] == "ready")).then_some(())
    })
    .await
    .unwrap();
    for model in ["chat", "present"] {
        let response = http
            .post(format!("{}/api/generate", router.url))
            .json(&json!({"model": model, "prompt": "again", "stream": false}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{model}");
    }

    // SIGTERM stops the node and every server it started.
    let fakes = live_children(node.pid().unwrap());
    let status = node.terminate(Duration::from_secs(20)).unwrap();
    assert!(status.success(), "{status}");
    for pid in fakes {
        assert!(!is_alive(pid), "fake ollama {pid} outlived its node");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
