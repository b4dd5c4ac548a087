//! Supervision of one runtime process per model: start on a free port, wait until healthy, restart
//! with backoff when it dies, stop it on shutdown.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use llm_router_protocol::node::ModelState;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Child;
use tokio_util::sync::CancellationToken;

use super::ModelRuntime;
use super::backend::{Backend, Prepared};
use super::gguf::GgufInfo;
use super::process;

/// First restart delay; doubled after each failure, up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A runtime that stayed up this long resets the backoff.
const STABLE_AFTER: Duration = Duration::from_secs(60);
/// Time a runtime gets to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Lines of runtime output kept to explain a failure.
const TAIL_LINES: usize = 12;

pub struct Supervisor {
    pub runtime: Arc<ModelRuntime>,
    pub backend: Arc<Backend>,
    pub ready_timeout: Duration,
    pub http: reqwest::Client,
}

impl Supervisor {
    /// Keeps the model's runtime running until `cancel`, then stops it.
    pub async fn run(self, cancel: CancellationToken) {
        let name = self.runtime.name().to_owned();
        let gguf = self.backend.inspect(&self.runtime.spec).await;
        let mut backoff = MIN_BACKOFF;
        loop {
            let started = Instant::now();
            let outcome = self.run_once(&cancel, gguf.as_ref()).await;
            if cancel.is_cancelled() {
                break;
            }
            let error = match outcome {
                Ok(()) => "runtime exited".to_owned(),
                Err(e) => e,
            };
            if started.elapsed() >= STABLE_AFTER {
                backoff = MIN_BACKOFF;
            }
            tracing::warn!(model = %name, %error, retry_in = ?backoff, "runtime failed; restarting");
            self.runtime.update(|s| {
                s.state = ModelState::Failed;
                s.port = None;
                s.error = Some(error);
            });
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        tracing::info!(model = %name, "runtime supervisor stopped");
    }

    /// Starts the runtime once and returns when it has exited (`Err` explains a failure) or when
    /// `cancel` fired (the runtime is then stopped first).
    async fn run_once(
        &self,
        cancel: &CancellationToken,
        gguf: Option<&GgufInfo>,
    ) -> Result<(), String> {
        let spec = &self.runtime.spec;
        let port = free_port().map_err(|e| format!("no free port: {e}"))?;
        let mut cmd = self.backend.command(spec, port, gguf);
        process::die_with_parent(&mut cmd);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.backend.binary().display()))?;
        let tail = OutputTail::capture(&mut child, spec.name.clone());
        self.runtime.update(|s| {
            s.state = ModelState::Loading;
            s.port = None;
            s.starts += 1;
        });
        tracing::info!(
            model = %spec.name,
            runtime = self.backend.name(),
            port,
            pid = child.id(),
            "runtime started"
        );

        // Loading: until healthy and prepared (Ollama: the model pulled and loaded), dead, timed
        // out or cancelled.
        let prepared = tokio::select! {
            () = cancel.cancelled() => {
                process::terminate(&mut child, STOP_GRACE).await;
                return Ok(());
            }
            status = child.wait() => {
                return Err(format!(
                    "runtime exited while loading ({}){}",
                    status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()),
                    tail.render()
                ));
            }
            prepared = self.start_serving(port, gguf) => match prepared {
                Ok(prepared) => prepared,
                Err(e) => {
                    process::terminate(&mut child, STOP_GRACE).await;
                    return Err(format!("{e}{}", tail.render()));
                }
            }
        };
        let slots = prepared.slots;
        self.runtime.update(|s| {
            s.state = ModelState::Ready;
            s.port = Some(port);
            s.slots_total = slots;
            s.cache_tokens = prepared.cache_tokens;
            s.error = None;
            s.info = Some(prepared.info);
        });
        tracing::info!(
            model = %spec.name,
            port,
            slots = ?slots,
            cache_tokens = ?prepared.cache_tokens,
            "model ready"
        );

        // Ready: until it dies or we are cancelled.
        tokio::select! {
            () = cancel.cancelled() => {
                tracing::info!(model = %spec.name, "stopping runtime");
                process::terminate(&mut child, STOP_GRACE).await;
                Ok(())
            }
            status = child.wait() => Err(format!(
                "runtime died ({}){}",
                status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()),
                tail.render()
            )),
        }
    }

    /// Waits until the runtime is healthy (bounded by the ready timeout), then prepares it.
    async fn start_serving(&self, port: u16, gguf: Option<&GgufInfo>) -> Result<Prepared, String> {
        if !self.wait_healthy(port).await {
            return Err(format!(
                "runtime not healthy after {}",
                humantime::format_duration(self.ready_timeout)
            ));
        }
        self.backend
            .prepare(&self.http, &self.runtime, port, gguf)
            .await
    }

    async fn wait_healthy(&self, port: u16) -> bool {
        let deadline = Instant::now() + self.ready_timeout;
        while Instant::now() < deadline {
            if self.backend.is_healthy(&self.http, port).await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        false
    }
}

/// A port free on loopback right now (the runtime binds it a moment later).
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

/// The last lines a runtime printed, logged at debug level as they come and kept to explain a
/// failure.
#[derive(Clone, Default)]
struct OutputTail(Arc<Mutex<VecDeque<String>>>);

impl OutputTail {
    fn capture(child: &mut Child, model: String) -> Self {
        let tail = OutputTail::default();
        if let Some(out) = child.stdout.take() {
            tokio::spawn(tail.clone().follow(out, model.clone()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(tail.clone().follow(err, model));
        }
        tail
    }

    async fn follow(self, stream: impl AsyncRead + Unpin, model: String) {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::debug!(target: "llm_node::runtime_output", model = %model, "{line}");
            let mut tail = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    }

    fn render(&self) -> String {
        let tail = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if tail.is_empty() {
            String::new()
        } else {
            format!("; last output:\n{}", Vec::from(tail.clone()).join("\n"))
        }
    }
}
