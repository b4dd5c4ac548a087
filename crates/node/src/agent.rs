//! The node's side of the router contract: register (retrying until the router answers), then
//! heartbeat on a timer and at once whenever a model changes state.

use std::sync::Arc;
use std::time::Duration;

use llm_router_protocol::Secret;
use llm_router_protocol::node::{
    Heartbeat, HeartbeatResponse, ModelState, ModelStatus, NodeMetrics, RegisterRequest,
    RegisterResponse, RuntimeBackend, RuntimeInfo, Scheme,
};
use reqwest::StatusCode;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::metrics::MetricsCollector;
use crate::state::{NodeState, Registration};

const REGISTER_BACKOFF_MIN: Duration = Duration::from_millis(500);
const REGISTER_BACKOFF_MAX: Duration = Duration::from_secs(10);
const ROUTER_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Agent {
    pub router_url: String,
    /// Proves to the router that this node may join.
    pub enrollment_token: Secret,
    pub address: String,
    pub port: u16,
    /// Whether the node API serves HTTPS.
    pub scheme: Scheme,
    pub runtime_version: Option<String>,
    /// What the runtime computes on, as it says (reported to the router).
    pub runtime_backend: Option<RuntimeBackend>,
    /// Configured interval; `None` takes the router's.
    pub heartbeat_interval: Option<Duration>,
    pub state: NodeState,
    pub changed: Arc<Notify>,
    pub metrics: MetricsCollector,
    /// Client for calls to the router.
    pub http: reqwest::Client,
}

enum HeartbeatOutcome {
    Ok,
    /// The router no longer knows this node (restarted, or the node was removed).
    Forgotten(String),
    Failed(String),
}

impl Agent {
    pub async fn run(mut self, cancel: CancellationToken) {
        loop {
            let Some(registration) = self.register_until_accepted(&cancel).await else {
                return;
            };
            let interval = self.heartbeat_interval.unwrap_or(Duration::from_secs(
                registration.heartbeat_interval_secs.max(1),
            ));
            self.state.router.set(Registration {
                router_url: self.router_url.clone(),
                node_id: registration.node_id.clone(),
                node_token: registration.node_token.clone(),
            });
            tracing::info!(
                router = %self.router_url,
                node_id = %registration.node_id,
                status = registration.status.as_str(),
                heartbeat_every = %humantime::format_duration(interval),
                "registered with the router"
            );
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(interval) => {}
                    () = self.changed.notified() => {}
                }
                match self.heartbeat(&registration).await {
                    HeartbeatOutcome::Ok => {}
                    HeartbeatOutcome::Forgotten(why) => {
                        tracing::warn!(%why, "router forgot this node; registering again");
                        break;
                    }
                    HeartbeatOutcome::Failed(why) => {
                        tracing::warn!(%why, "heartbeat failed; will retry");
                    }
                }
            }
        }
    }

    async fn register_until_accepted(
        &mut self,
        cancel: &CancellationToken,
    ) -> Option<RegisterResponse> {
        let mut backoff = REGISTER_BACKOFF_MIN;
        loop {
            match self.register().await {
                Ok(response) => return Some(response),
                Err(e) => tracing::warn!(
                    router = %self.router_url,
                    error = %e,
                    retry_in = ?backoff,
                    "registration failed"
                ),
            }
            tokio::select! {
                () = cancel.cancelled() => return None,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(REGISTER_BACKOFF_MAX);
        }
    }

    async fn register(&mut self) -> Result<RegisterResponse, String> {
        let request = RegisterRequest {
            machine_name: self.state.machine_name.to_string(),
            address: self.address.clone(),
            port: self.port,
            node_version: env!("CARGO_PKG_VERSION").to_owned(),
            runtime: RuntimeInfo {
                kind: self.state.backend.kind(),
                version: self.runtime_version.clone(),
                backend: self.runtime_backend,
            },
            hardware: self.metrics.hardware(),
            models: self.model_statuses().await,
            api_token: self.state.api_token.clone(),
            scheme: self.scheme,
        };
        let response = self
            .http
            .post(format!("{}/api/agents/register", self.router_url))
            .bearer_auth(self.enrollment_token.expose())
            .timeout(ROUTER_TIMEOUT)
            .json(&request)
            .send()
            .await
            .map_err(|e| with_causes(&e))?;
        if !response.status().is_success() {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            if status == StatusCode::UNAUTHORIZED {
                return Err(format!(
                    "the router refused this node's enrolment token (check --enrollment-token / \
                     LLM_NODE_ENROLLMENT_TOKEN): {body}"
                ));
            }
            return Err(format!("router answered {status}: {body}"));
        }
        response.json().await.map_err(|e| e.to_string())
    }

    async fn heartbeat(&mut self, registration: &RegisterResponse) -> HeartbeatOutcome {
        let sample = self.metrics.sample();
        let body = Heartbeat {
            node_id: registration.node_id.clone(),
            metrics: NodeMetrics {
                cpu_percent: sample.cpu_percent,
                memory_percent: sample.memory_percent,
                memory_used_bytes: sample.memory_used_bytes,
                memory_total_bytes: sample.memory_total_bytes,
                gpus: self.metrics.gpu_metrics(),
                active_requests: self.state.counters.active(),
                requests_total: self.state.counters.total(),
                avg_response_ms: self.state.counters.avg_response_ms(),
            },
            models: self.model_statuses().await,
        };
        let result = self
            .http
            .post(format!("{}/api/health", self.router_url))
            .bearer_auth(registration.node_token.expose())
            .timeout(ROUTER_TIMEOUT)
            .json(&body)
            .send()
            .await;
        match result {
            Ok(r) if r.status().is_success() => {
                if let Ok(HeartbeatResponse { status }) = r.json().await {
                    tracing::debug!(status = status.as_str(), "heartbeat accepted");
                }
                HeartbeatOutcome::Ok
            }
            Ok(r) if matches!(r.status(), StatusCode::NOT_FOUND | StatusCode::UNAUTHORIZED) => {
                HeartbeatOutcome::Forgotten(format!("router answered {}", r.status()))
            }
            Ok(r) => HeartbeatOutcome::Failed(format!("router answered {}", r.status())),
            Err(e) => HeartbeatOutcome::Failed(e.to_string()),
        }
    }

    /// Every model's state, with free slots read from its runtime when it is ready; models being
    /// pulled count as `downloading`, so requests for them wait at the router instead of failing.
    async fn model_statuses(&self) -> Vec<ModelStatus> {
        // Pulls first: a pull that ends is served right after it stops being listed, so a model
        // between the two is seen in the model list read second.
        let pulling = self.state.pulls.running();
        let models = self.state.models.list();
        let mut statuses = Vec::with_capacity(models.len() + pulling.len());
        for name in pulling {
            if !models.iter().any(|m| m.name() == name) {
                statuses.push(ModelStatus {
                    name,
                    state: ModelState::Downloading,
                    slots_total: None,
                    slots_free: None,
                    error: None,
                    cache_tokens: None,
                });
            }
        }
        for model in &models {
            let mut status = model.status();
            if let Some(port) = model.ready_port() {
                status.slots_free = self.state.backend.free_slots(&self.state.http, port).await;
            }
            statuses.push(status);
        }
        statuses
    }
}

/// `e` and its causes, `: `-separated: reqwest's own text says only "error sending request", the
/// refused certificate or connection is in its sources.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
