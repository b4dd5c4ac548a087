//! Hostile pulls against the real `llm-node` binary (with a fake runtime that records how it was
//! started): runtime flags outside the allow-list are refused before any download, a crafted GGUF
//! gets a clear error and leaves the node serving, and the runtime never sees the node's tokens.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use llm_router_protocol::node::{ModelState, NodeHealth};
use llm_router_testkit::processes::{ChildProcess, free_port};
use llm_router_testkit::{FileServer, TempDir, wait_for};
use serde_json::{Value, json};

const API_TOKEN: &str = "node-api-token-0123456789";
const ENROLLMENT_TOKEN: &str = "enrolment-secret-9876";

/// A running `llm-node` whose runtime is a script writing its environment and arguments to
/// `runtime-env.txt` and `runtime-args.txt` in `dir`, then exiting.
struct Node {
    url: String,
    dir: TempDir,
    _process: ChildProcess,
}

impl Node {
    fn start() -> Node {
        let dir = TempDir::new("hostile-pull").unwrap();
        let runtime = dir.path().join("fake-llama-server");
        std::fs::write(
            &runtime,
            format!(
                "#!/bin/sh\n\
                 if [ \"$1\" = \"--version\" ]; then echo 'version: 1 (fake)'; exit 0; fi\n\
                 if [ \"$1\" = \"--list-devices\" ]; then printf 'Available devices:\\n  (none)\\n'; exit 0; fi\n\
                 env > '{dir}/runtime-env.txt'\n\
                 printf '%s\\n' \"$@\" > '{dir}/runtime-args.txt'\n\
                 exit 3\n",
                dir = dir.path().display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o755)).unwrap();
        let port = free_port().unwrap();
        // Nobody listens there: the node keeps trying to register, which is all it needs.
        let router = format!("http://127.0.0.1:{}", free_port().unwrap());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_llm-node"));
        cmd.args(["--router-url", &router, "--port", &port.to_string()])
            .arg("--llama-server")
            .arg(&runtime)
            .arg("--models-dir")
            .arg(dir.path().join("models"))
            .arg("--log-dir")
            .arg(dir.path().join("logs"))
            // The secrets are in the node's environment, where a runtime would inherit them.
            .env("LLM_NODE_ENROLLMENT_TOKEN", ENROLLMENT_TOKEN)
            .env("LLM_NODE_API_TOKEN", API_TOKEN)
            .env("RUST_LOG", "info");
        let process = ChildProcess::spawn("llm-node", cmd).unwrap();
        Node {
            url: format!("http://127.0.0.1:{port}"),
            dir,
            _process: process,
        }
    }

    async fn ready(self) -> Node {
        wait_for("the node to listen", Duration::from_secs(30), || async {
            self.health().await.ok()
        })
        .await
        .unwrap();
        self
    }

    async fn health(&self) -> reqwest::Result<NodeHealth> {
        reqwest::get(format!("{}/health", self.url))
            .await?
            .error_for_status()?
            .json()
            .await
    }

    async fn pull(&self, body: &Value) -> (u16, Value) {
        let response = reqwest::Client::new()
            .post(format!("{}/pull", self.url))
            .bearer_auth(API_TOKEN)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn pull_body(model: &str, url: &str, args: &[&str], chat_template: Option<&str>) -> Value {
    json!({
        "task_id": format!("task-{model}"),
        "model": model,
        "url": url,
        "sha256": null,
        "size_bytes": null,
        "file_name": format!("{model}.gguf"),
        "args": args,
        "chat_template": chat_template,
        "ctx_size": null,
    })
}

/// A GGUF whose one value is `depth` arrays, each holding the next: an unbounded recursive reader
/// overflows its stack on it.
fn nested_gguf(depth: usize) -> Vec<u8> {
    let mut file = b"GGUF".to_vec();
    file.extend(3u32.to_le_bytes());
    file.extend(0u64.to_le_bytes());
    file.extend(1u64.to_le_bytes());
    file.extend(4u64.to_le_bytes());
    file.extend(b"bomb");
    file.extend(9u32.to_le_bytes());
    for _ in 0..depth {
        file.extend(9u32.to_le_bytes());
        file.extend(1u64.to_le_bytes());
    }
    file
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok().filter(|s| !s.is_empty())
}

#[tokio::test]
async fn a_pull_with_a_flag_outside_the_allow_list_is_refused_before_any_download() {
    let files = TempDir::new("hostile-pull-files").unwrap();
    std::fs::write(files.path().join("m.gguf"), nested_gguf(1)).unwrap();
    let server = FileServer::spawn(files.path(), 1 << 30, None)
        .await
        .unwrap();
    let node = Node::start().ready().await;

    for (args, template, named) in [
        (&["--host", "0.0.0.0"][..], None, "--host"),
        (&["--jinja", "--port", "80"], None, "--port"),
        (&["--api-key", "k"], None, "--api-key"),
        (
            &["--ssl-key-file", "/etc/ssl/private/key.pem"],
            None,
            "--ssl-key-file",
        ),
        (&["-m", "/etc/passwd"], None, "-m"),
        (&["--log-file", "/tmp/owned"], None, "--log-file"),
        (&["--slot-save-path", "/"], None, "--slot-save-path"),
        (&["--ctx-size", "--host"], None, "--ctx-size"),
        (&["--no-such-flag"], None, "--no-such-flag"),
        (&[], Some("/etc/passwd"), "/etc/passwd"),
    ] {
        let (status, body) = node
            .pull(&pull_body("m", &server.url("m.gguf"), args, template))
            .await;
        assert_eq!(status, 400, "{args:?}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(named), "{args:?}: {message}");
    }

    assert_eq!(server.requests(), 0, "a refused pull downloaded");
    assert!(!node.file("models/m.gguf").exists());
    let health = node.health().await.unwrap();
    assert!(health.models.is_empty(), "{:?}", health.models);
    assert!(!node.file("runtime-args.txt").exists(), "a runtime started");
}

#[tokio::test]
async fn a_crafted_gguf_gets_a_clear_error_and_its_runtime_none_of_the_node_secrets() {
    let files = TempDir::new("hostile-pull-files").unwrap();
    std::fs::write(files.path().join("bomb.gguf"), nested_gguf(200_000)).unwrap();
    let server = FileServer::spawn(files.path(), 1 << 30, None)
        .await
        .unwrap();
    let node = Node::start().ready().await;

    let (status, body) = node
        .pull(&pull_body(
            "bomb",
            &server.url("bomb.gguf"),
            &["--ctx-size", "512", "-fa", "on"],
            Some("chatml"),
        ))
        .await;
    assert_eq!(status, 202, "{body}");

    // Downloaded, inspected (the metadata refused), then its runtime started.
    let env = wait_for("the runtime to start", Duration::from_secs(60), || async {
        read(&node.file("runtime-env.txt"))
    })
    .await
    .unwrap();
    let logged = wait_for(
        "the GGUF error in the node's log",
        Duration::from_secs(30),
        || async {
            let dir = node.file("logs");
            let logs: String = std::fs::read_dir(&dir)
                .ok()?
                .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                .collect();
            logs.lines()
                .find(|l| l.contains("GGUF metadata"))
                .map(str::to_owned)
        },
    )
    .await
    .unwrap();
    assert!(
        logged.contains("nests arrays deeper than 4 levels"),
        "{logged}"
    );

    // The node is alive and serving, and says what became of the model.
    let health = node.health().await.unwrap();
    let model = health.models.iter().find(|m| m.name == "bomb").unwrap();
    assert!(
        matches!(model.state, ModelState::Loading | ModelState::Failed),
        "{model:?}"
    );

    // The runtime saw none of the node's secrets, and listens on loopback only.
    for secret in [
        "LLM_NODE_ENROLLMENT_TOKEN",
        "LLM_NODE_API_TOKEN",
        ENROLLMENT_TOKEN,
        API_TOKEN,
    ] {
        assert!(
            !env.contains(secret),
            "{secret} reached the runtime:\n{env}"
        );
    }
    assert!(env.lines().any(|l| l.starts_with("PATH=")), "{env}");
    let args = read(&node.file("runtime-args.txt")).unwrap();
    let args: Vec<&str> = args.lines().collect();
    assert!(
        args.windows(2).any(|w| w == ["--host", "127.0.0.1"]),
        "{args:?}"
    );
    assert_eq!(
        args.iter().filter(|a| **a == "--host").count(),
        1,
        "{args:?}"
    );
    assert!(
        args.windows(2).any(|w| w == ["--ctx-size", "512"]),
        "{args:?}"
    );
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn split_parts_that_would_leave_the_models_directory_are_refused_before_any_download() {
    let files = TempDir::new("hostile-pull-parts").unwrap();
    let server = FileServer::spawn(files.path(), 1 << 30, None)
        .await
        .unwrap();
    let node = Node::start().ready().await;
    let part = |name: &str| json!({"url": server.url(name), "file_name": name, "sha256": null});
    let split = |parts: Vec<Value>| {
        let mut body = pull_body(
            "m-00001-of-00002",
            &server.url("m-00001-of-00002.gguf"),
            &[],
            None,
        );
        body["parts"] = Value::Array(parts);
        body
    };
    let first = part("m-00001-of-00002.gguf");
    let many: Vec<Value> = (1..=65)
        .map(|i| part(&format!("m-{i:05}-of-00065.gguf")))
        .collect();
    for (what, body) in [
        (
            "a part outside the directory",
            split(vec![
                first.clone(),
                json!({"url": server.url("x"), "file_name": "../../m-00002-of-00002.gguf", "sha256": null}),
            ]),
        ),
        (
            "a part under another name, which llama-server would not find",
            split(vec![first.clone(), part("evil.gguf")]),
        ),
        (
            "a part from a file: URL",
            split(vec![
                first.clone(),
                json!({"url": "file:///etc/passwd", "file_name": "m-00002-of-00002.gguf", "sha256": null}),
            ]),
        ),
        ("one part only", split(vec![first.clone()])),
        ("65 parts", split(many)),
        ("an Ollama model sent to a llama-server node", {
            let mut body = pull_body("m", &server.url("m.gguf"), &[], None);
            body["ollama"] = json!("gpt-oss:20b");
            body
        }),
    ] {
        let (status, body) = node.pull(&body).await;
        assert_eq!(status, 400, "{what}: {body}");
    }
    assert_eq!(server.requests(), 0, "a refused pull downloaded");
    assert!(!node.file("m-00002-of-00002.gguf").exists());
    assert!(node.health().await.unwrap().models.is_empty());
}
