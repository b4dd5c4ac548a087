//! llama.cpp's `llama-server`: how to start it for a model and how to read its state.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::process::Command;

use crate::config::ModelSpec;

/// The command that serves `spec` on `127.0.0.1:port`.
pub fn command(binary: &Path, spec: &ModelSpec, port: u16) -> Command {
    let mut cmd = Command::new(binary);
    cmd.arg("--model")
        .arg(&spec.path)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--alias", &spec.name])
        .args(["--metrics", "--offline", "--no-webui"]);
    if let Some(ctx) = spec.ctx_size {
        cmd.args(["--ctx-size", &ctx.to_string()]);
    }
    if let Some(np) = spec.parallel {
        cmd.args(["--parallel", &np.to_string()]);
    }
    if let Some(t) = spec.threads {
        cmd.args(["--threads", &t.to_string()]);
    }
    if let Some(template) = &spec.chat_template {
        // With jinja on, --chat-template is read as template text, not a built-in name.
        cmd.args(["--no-jinja", "--chat-template", template]);
    }
    if spec.embeddings == Some(true) {
        cmd.arg("--embeddings");
    }
    cmd.args(&spec.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// `llama-server --version`, e.g. `version: 6604 (1234abcd)`; `None` when it cannot be read.
pub async fn version(binary: &Path) -> Option<String> {
    let output = tokio::time::timeout(
        Duration::from_secs(10),
        Command::new(binary)
            .arg("--version")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .ok()?
    .ok()?;
    let text = [output.stdout, output.stderr].concat();
    String::from_utf8_lossy(&text).lines().find_map(|l| {
        l.trim()
            .strip_prefix("version:")
            .map(|v| v.trim().to_owned())
    })
}

/// True when the runtime answers `GET /health` with 200 (503 while loading).
pub async fn is_healthy(http: &reqwest::Client, port: u16) -> bool {
    http.get(format!("http://127.0.0.1:{port}/health"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

#[derive(Deserialize)]
struct Props {
    total_slots: Option<u32>,
}

/// Parallel slots of the runtime (`GET /props`).
pub async fn total_slots(http: &reqwest::Client, port: u16) -> Option<u32> {
    let props: Props = http
        .get(format!("http://127.0.0.1:{port}/props"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    props.total_slots
}

#[derive(Deserialize)]
struct Slot {
    is_processing: bool,
}

/// Slots not processing a request right now (`GET /slots`).
pub async fn free_slots(http: &reqwest::Client, port: u16) -> Option<u32> {
    let slots: Vec<Slot> = http
        .get(format!("http://127.0.0.1:{port}/slots"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    u32::try_from(slots.iter().filter(|s| !s.is_processing).count()).ok()
}
