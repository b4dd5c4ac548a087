//! LLM runtimes the node supervises (one process per model, kept running by a [`supervisor`]),
//! and the shared view of each model's runtime state.

pub mod backend;
mod environment;
pub mod gguf;
pub mod install;
pub mod llama_server;
pub mod ollama;
mod process;
pub mod prompt_cache;
pub mod pulled_args;
pub mod supervisor;
mod user_args;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use llm_router_protocol::node::{ModelState, ModelStatus};
use llm_router_protocol::ollama::ListModel;
use tokio::sync::{Notify, watch};

use crate::config::ModelSpec;

/// How long `<runtime> --version` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `binary --version` and reads the version from its output (stdout, then stderr) with
/// `parse`; `None` when the binary cannot be run in time or `parse` finds none.
async fn version(binary: &Path, parse: fn(&str) -> Option<String>) -> Option<String> {
    ask(binary, "--version", parse).await
}

/// Runs `binary flag` and reads its output (stdout, then stderr) with `parse`; `None` when the
/// binary cannot be run in [`VERSION_TIMEOUT`] or `parse` finds nothing.
async fn ask<T>(binary: &Path, flag: &str, parse: fn(&str) -> Option<T>) -> Option<T> {
    let output = tokio::time::timeout(
        VERSION_TIMEOUT,
        environment::command(binary)
            .arg(flag)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .ok()?
    .ok()?;
    let text = [output.stdout, output.stderr].concat();
    parse(&String::from_utf8_lossy(&text))
}

/// Where a model's runtime is, as the supervisor last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeState {
    pub state: ModelState,
    /// Loopback port of the runtime while it is ready.
    pub port: Option<u16>,
    pub slots_total: Option<u32>,
    /// Prompt tokens the runtime keeps computed (see [`prompt_cache`]), once it is ready.
    pub cache_tokens: Option<u64>,
    pub error: Option<String>,
    /// How many times the runtime was (re)started.
    pub starts: u32,
    /// The model in Ollama's terms (size, family, capabilities), once the runtime serves it.
    pub info: Option<ListModel>,
}

/// Bytes a runtime's own download of its model has done, and of how many when known (Ollama's
/// `/api/pull`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeDownload {
    pub bytes_done: u64,
    pub bytes_total: Option<u64>,
}

/// One model served by this node: its settings and its runtime's live state.
#[derive(Debug)]
pub struct ModelRuntime {
    pub spec: ModelSpec,
    state: watch::Sender<RuntimeState>,
    /// The runtime's own download while the model is `downloading`; apart from `state` so that
    /// its many changes do not each wake the heartbeat.
    download: watch::Sender<Option<RuntimeDownload>>,
    /// Woken on every state change (the heartbeat task reports changes at once).
    changed: Arc<Notify>,
}

impl ModelRuntime {
    pub fn new(spec: ModelSpec, changed: Arc<Notify>) -> Self {
        let (state, _) = watch::channel(RuntimeState {
            state: ModelState::Loading,
            port: None,
            slots_total: None,
            cache_tokens: None,
            error: None,
            starts: 0,
            info: None,
        });
        let (download, _) = watch::channel(None);
        ModelRuntime {
            spec,
            state,
            download,
            changed,
        }
    }

    /// Records the runtime's own download progress (followed by a `/pull` task).
    pub fn set_download(&self, progress: RuntimeDownload) {
        self.download.send_replace(Some(progress));
    }

    pub fn subscribe_download(&self) -> watch::Receiver<Option<RuntimeDownload>> {
        self.download.subscribe()
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn state(&self) -> RuntimeState {
        self.state.borrow().clone()
    }

    /// The runtime's port if the model is ready.
    pub fn ready_port(&self) -> Option<u16> {
        let s = self.state.borrow();
        (s.state == ModelState::Ready).then_some(s.port).flatten()
    }

    pub fn subscribe(&self) -> watch::Receiver<RuntimeState> {
        self.state.subscribe()
    }

    pub fn update(&self, f: impl FnOnce(&mut RuntimeState)) {
        let changed = self.state.send_if_modified(|s| {
            let before = s.clone();
            f(s);
            *s != before
        });
        if changed {
            self.changed.notify_one();
        }
    }

    /// Whether the model can do `capability` (`vision`, `tools`, `embedding`); `true` while its
    /// runtime has not said.
    pub fn can(&self, capability: &str) -> bool {
        self.state
            .borrow()
            .info
            .as_ref()
            .is_none_or(|i| i.capabilities.iter().any(|c| c == capability))
    }

    /// The model's status for registration and heartbeats; `slots_free` is filled by the caller.
    pub fn status(&self) -> ModelStatus {
        let s = self.state.borrow();
        ModelStatus {
            name: self.spec.name.clone(),
            state: s.state,
            slots_total: s.slots_total,
            slots_free: None,
            error: s.error.clone(),
            cache_tokens: s.cache_tokens,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_reports_the_cache_tokens_once_known() {
        let runtime = ModelRuntime::new("m=/m.gguf".parse().unwrap(), Arc::new(Notify::new()));
        assert_eq!(runtime.status().cache_tokens, None);
        runtime.update(|s| {
            s.state = ModelState::Ready;
            s.cache_tokens = Some(33_223);
        });
        assert_eq!(runtime.status().cache_tokens, Some(33_223));
    }
}
