//! Ollama (`ollama serve`): one server per model, each on its own loopback `OLLAMA_HOST` port
//! (the supervisor's one-process-per-model design, so a model's crash or restart touches no other
//! model). The node waits for the server, pulls the model with `/api/pull` when it is absent,
//! loads it, and then forwards requests to it: OpenAI ones to its `/v1` endpoints, Ollama ones to
//! its own `/api` endpoints untouched.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use futures_util::StreamExt;
use llm_router_protocol::ollama::{ListModel, ListResponse, PullProgress, PullRequest};
use serde_json::{Value, json};
use tokio::process::Command;

use super::environment;
use crate::config::{GpuLayers, ModelSpec};

/// How long a quick call to the server may take (a pull or a load may take much longer).
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The Ollama model a spec serves (`gemma3-270m=gemma3:270m` serves `gemma3:270m`).
pub fn model_of(spec: &ModelSpec) -> String {
    spec.path.to_string_lossy().into_owned()
}

/// The command that serves on `127.0.0.1:port`, in a scrubbed environment. Models stay loaded (`OLLAMA_KEEP_ALIVE=-1`): the
/// node serves one model per server for as long as it runs.
pub fn command(binary: &Path, spec: &ModelSpec, port: u16) -> Command {
    let mut cmd = environment::command(binary);
    cmd.arg("serve")
        .env("OLLAMA_HOST", format!("127.0.0.1:{port}"))
        .env("OLLAMA_KEEP_ALIVE", "-1")
        .env("OLLAMA_MAX_LOADED_MODELS", "1");
    if let Some(np) = spec.parallel {
        cmd.env("OLLAMA_NUM_PARALLEL", np.to_string());
    }
    if let Some(ctx) = spec.ctx_size {
        cmd.env("OLLAMA_CONTEXT_LENGTH", ctx.to_string());
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// The version in `ollama --version`'s output: `ollama version is 0.12.3` (after a warning line
/// when no server runs).
pub fn parse_version(text: &str) -> Option<String> {
    text.lines()
        .filter(|l| l.contains("version is"))
        .find_map(|l| l.split_whitespace().last().map(str::to_owned))
}

fn url(port: u16, path: &str) -> String {
    format!("http://127.0.0.1:{port}{path}")
}

/// True when the server answers `GET /api/version`.
pub async fn is_healthy(http: &reqwest::Client, port: u16) -> bool {
    http.get(url(port, "/api/version"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// Whether the server has `model` (`POST /api/show`: 200, or 404 when absent).
pub async fn has_model(http: &reqwest::Client, port: u16, model: &str) -> Result<bool, String> {
    let response = http
        .post(url(port, "/api/show"))
        .timeout(CALL_TIMEOUT)
        .json(&json!({ "model": model }))
        .send()
        .await
        .map_err(|e| format!("/api/show failed: {e}"))?;
    match response.status() {
        s if s.is_success() => Ok(true),
        reqwest::StatusCode::NOT_FOUND => Ok(false),
        s => Err(format!("/api/show answered {s}")),
    }
}

/// Pulls `model` (`POST /api/pull`, streamed), calling `progress` with each progress line.
pub async fn pull(
    http: &reqwest::Client,
    port: u16,
    model: &str,
    mut progress: impl FnMut(&PullProgress),
) -> Result<(), String> {
    let request = PullRequest {
        model: model.to_owned(),
        stream: true,
    };
    let response = http
        .post(url(port, "/api/pull"))
        .json(&request)
        .send()
        .await
        .map_err(|e| format!("/api/pull failed: {e}"))?;
    if !response.status().is_success() {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        return Err(format!("/api/pull answered {status}: {}", body.trim()));
    }
    let mut body = response.bytes_stream();
    let mut pending = Vec::new();
    let mut last = None;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| format!("/api/pull broke off: {e}"))?;
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let Ok(step) = serde_json::from_slice::<PullProgress>(&line) else {
                continue;
            };
            if let Some(error) = &step.error {
                return Err(format!("pulling {model} failed: {error}"));
            }
            progress(&step);
            last = step.status;
        }
    }
    match last.as_deref() {
        Some("success") => Ok(()),
        other => Err(format!(
            "pulling {model} ended without success (last status: {})",
            other.unwrap_or("none")
        )),
    }
}

/// The body that loads `model` and keeps it loaded, with `num_gpu` when the node decides the
/// offload. Ollama keeps a loaded model's `num_gpu` for later requests that do not give their own
/// (its scheduler reloads only when a request asks for a different non-negative value), so the
/// load decides it for the clients' requests too.
fn load_body(model: &str, gpu_layers: Option<GpuLayers>) -> Value {
    let mut body = json!({ "model": model, "keep_alive": -1, "stream": false });
    if let Some(num_gpu) = gpu_layers.and_then(GpuLayers::ollama_num_gpu) {
        body["options"] = json!({ "num_gpu": num_gpu });
    }
    body
}

/// Ollama reports a pull per layer (one blob after the other, each with its own `total` and
/// `completed`): the bytes of every layer seen so far, added up, are the model's.
#[derive(Debug, Default)]
pub struct PullLayers {
    layers: Vec<(String, u64, u64)>,
}

impl PullLayers {
    /// Takes one progress line; the model's progress when the line carries a layer's bytes.
    pub fn add(&mut self, step: &PullProgress) -> Option<super::RuntimeDownload> {
        let (digest, done) = (step.digest.as_ref()?, step.completed.or(Some(0))?);
        let total = step.total.unwrap_or(done);
        match self.layers.iter().position(|(d, _, _)| d == digest) {
            Some(at) => {
                let layer = &mut self.layers[at];
                layer.1 = done.max(layer.1);
                layer.2 = total;
            }
            // Bounded: a model has a handful of layers, a hostile stand-in gets no more than 64.
            None if self.layers.len() < 64 => self.layers.push((digest.clone(), done, total)),
            None => return None,
        }
        let sum = |f: fn(&(String, u64, u64)) -> u64| {
            self.layers.iter().map(f).fold(0u64, u64::saturating_add)
        };
        Some(super::RuntimeDownload {
            bytes_done: sum(|l| l.1),
            bytes_total: Some(sum(|l| l.2)),
        })
    }
}

/// Loads `model` into memory and keeps it there (`POST /api/generate` without a prompt).
pub async fn load(
    http: &reqwest::Client,
    port: u16,
    model: &str,
    gpu_layers: Option<GpuLayers>,
) -> Result<(), String> {
    let response = http
        .post(url(port, "/api/generate"))
        .json(&load_body(model, gpu_layers))
        .send()
        .await
        .map_err(|e| format!("loading {model} failed: {e}"))?;
    if response.status().is_success() {
        Ok(())
    } else {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        Err(format!("loading {model}: {status} {}", body.trim()))
    }
}

/// What the server says of `model`, under the node's name for it.
pub async fn describe(http: &reqwest::Client, port: u16, name: &str, model: &str) -> ListModel {
    let mut info = ListModel::default();
    if let Ok(response) = http
        .get(url(port, "/api/tags"))
        .timeout(CALL_TIMEOUT)
        .send()
        .await
        && let Ok(list) = response.json::<ListResponse>().await
        && let Some(found) = list.models.into_iter().find(|m| same_model(&m.name, model))
    {
        info = found;
    }
    if let Ok(response) = http
        .post(url(port, "/api/show"))
        .timeout(CALL_TIMEOUT)
        .json(&json!({ "model": model }))
        .send()
        .await
        && let Ok(show) = response.json::<Value>().await
    {
        if let Some(caps) = show["capabilities"].as_array() {
            info.capabilities = caps
                .iter()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect();
        }
        if let Some(model_info) = show["model_info"].as_object() {
            // Scalars only: without `verbose`, token lists come as empty arrays or nulls.
            info.model_info = model_info
                .iter()
                .filter(|(_, v)| v.is_string() || v.is_number() || v.is_boolean())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
        }
        let arch = show["model_info"]["general.architecture"].as_str();
        if let Some(ctx) =
            arch.and_then(|a| show["model_info"][format!("{a}.context_length")].as_u64())
        {
            info.context_length = Some(ctx);
        }
        if info.details.format.is_empty()
            && let Ok(details) = serde_json::from_value(show["details"].clone())
        {
            info.details = details;
        }
    }
    info.name = name.to_owned();
    info.model = name.to_owned();
    info
}

/// Ollama names a model without a tag `name:latest`.
fn same_model(listed: &str, wanted: &str) -> bool {
    listed == wanted || (!wanted.contains(':') && listed.strip_suffix(":latest") == Some(wanted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn spec() -> ModelSpec {
        ModelSpec {
            name: "gemma3-270m".into(),
            path: PathBuf::from("gemma3:270m"),
            ctx_size: Some(2048),
            parallel: Some(3),
            threads: None,
            chat_template: None,
            embeddings: None,
            swa_full: None,
            cache_ram_mib: None,
            gpu_layers: None,
            args: Vec::new(),
        }
    }

    #[test]
    fn serve_runs_on_its_own_port_and_keeps_the_model_loaded() {
        let cmd = command(Path::new("/usr/bin/ollama"), &spec(), 41234);
        let std = cmd.as_std();
        assert_eq!(std.get_program(), "/usr/bin/ollama");
        assert_eq!(std.get_args().collect::<Vec<_>>(), ["serve"]);
        let env: Vec<(String, String)> = std
            .get_envs()
            .filter_map(|(k, v)| Some((k.to_str()?.to_owned(), v?.to_str()?.to_owned())))
            .collect();
        for pair in [
            ("OLLAMA_HOST", "127.0.0.1:41234"),
            ("OLLAMA_KEEP_ALIVE", "-1"),
            ("OLLAMA_NUM_PARALLEL", "3"),
            ("OLLAMA_CONTEXT_LENGTH", "2048"),
            ("OLLAMA_MAX_LOADED_MODELS", "1"),
        ] {
            assert!(
                env.contains(&(pair.0.to_owned(), pair.1.to_owned())),
                "{pair:?} in {env:?}"
            );
        }
        assert_eq!(model_of(&spec()), "gemma3:270m");
        // Cleared first: the node's own variables (its tokens) are not inherited.
        assert!(format!("{std:?}").starts_with("env -i "));
        assert!(!env.iter().any(|(k, _)| k.starts_with("LLM_")), "{env:?}");
    }

    #[test]
    fn the_version_is_read_with_or_without_a_running_server() {
        assert_eq!(
            parse_version("ollama version is 0.12.3\n").as_deref(),
            Some("0.12.3")
        );
        assert_eq!(
            parse_version(
                "Warning: could not connect to a running Ollama instance\nWarning: client version is 0.5.7\n"
            )
            .as_deref(),
            Some("0.5.7")
        );
        assert_eq!(parse_version("garbage"), None);
    }

    #[test]
    fn the_load_sets_num_gpu_for_the_node_with_or_without_a_gpu() {
        let with_gpu = load_body("gpt-oss:20b", Some(GpuLayers::default_for(true)));
        assert_eq!(with_gpu["options"]["num_gpu"], 999);
        assert_eq!(with_gpu["keep_alive"], -1);
        let without = load_body("gpt-oss:20b", Some(GpuLayers::default_for(false)));
        assert_eq!(without["options"]["num_gpu"], 0);
        let counted = load_body("gpt-oss:20b", Some(GpuLayers::Layers(12)));
        assert_eq!(counted["options"]["num_gpu"], 12);
        // auto: Ollama's own estimate, so no option at all.
        assert!(
            load_body("m", Some(GpuLayers::Auto))
                .get("options")
                .is_none()
        );
        assert!(load_body("m", None).get("options").is_none());
    }

    #[test]
    fn pull_progress_adds_up_the_layers() {
        let step = |digest: &str, done: u64, total: u64| PullProgress {
            status: Some(format!("pulling {digest}")),
            digest: Some(digest.into()),
            total: Some(total),
            completed: Some(done),
            error: None,
        };
        let mut layers = PullLayers::default();
        let at =
            |p: Option<super::super::RuntimeDownload>| p.map(|p| (p.bytes_done, p.bytes_total));
        assert_eq!(at(layers.add(&step("a", 50, 100))), Some((50, Some(100))));
        assert_eq!(at(layers.add(&step("a", 100, 100))), Some((100, Some(100))));
        assert_eq!(at(layers.add(&step("b", 5, 10))), Some((105, Some(110))));
        // A status line without bytes changes nothing.
        assert_eq!(at(layers.add(&PullProgress::default())), None);
    }

    #[test]
    fn a_model_without_a_tag_is_its_latest_tag() {
        assert!(same_model("llama3:latest", "llama3"));
        assert!(same_model("gemma3:270m", "gemma3:270m"));
        assert!(!same_model("gemma3:1b", "gemma3:270m"));
    }
}
