//! A [`FakeNode`] talking to the router as a node agent would: registration, heartbeats, metrics
//! pushes.

use axum::http::header::AUTHORIZATION;
use llm_router_protocol::node::{
    Hardware, Heartbeat, NodeMetrics, RegisterRequest, RegisterResponse, RuntimeInfo, RuntimeKind,
    Scheme,
};

use llm_router_protocol::Secret;

use crate::fake_node::FakeNode;

/// The enrolment token test routers are started with.
pub const TEST_ENROLLMENT_TOKEN: &str = "test-enrollment-token-0123456789abcdef";

impl FakeNode {
    /// A valid registration body for this fake: its ready models as `ready` with the slots set by
    /// [`FakeNodeBuilder::slots`](crate::FakeNodeBuilder::slots), the models added with
    /// [`FakeNodeBuilder::loading_model`](crate::FakeNodeBuilder::loading_model) as `loading`.
    pub fn register_request(&self) -> RegisterRequest {
        let shared = self.shared();
        RegisterRequest {
            machine_name: shared.machine_name.clone(),
            address: self.addr().ip().to_string(),
            port: self.addr().port(),
            node_version: "fake".to_owned(),
            runtime: RuntimeInfo {
                kind: RuntimeKind::LlamaServer,
                version: Some("fake".to_owned()),
                backend: None,
            },
            hardware: Hardware {
                cpu_cores: 1,
                memory_total_bytes: 1 << 30,
                gpus: Vec::new(),
            },
            models: shared
                .ready_statuses()
                .chain(shared.announced.iter().cloned())
                .collect(),
            api_token: Secret::new(shared.api_token.clone()),
            scheme: if self.serves_tls() {
                Scheme::Https
            } else {
                Scheme::Http
            },
        }
    }

    /// Sends this fake's registration with `enrollment_token` (if any) as `Authorization:
    /// Bearer`; returns the router's answer whatever its status.
    pub async fn send_registration(
        &self,
        router_base_url: &str,
        enrollment_token: Option<&str>,
    ) -> anyhow::Result<reqwest::Response> {
        let url = format!(
            "{}/api/agents/register",
            router_base_url.trim_end_matches('/')
        );
        let mut request = self.http().post(url).json(&self.register_request());
        if let Some(token) = enrollment_token {
            request = request.bearer_auth(token);
        }
        Ok(request.send().await?)
    }

    /// Registers this fake with the router at `router_base_url`, which must have been started
    /// with [`TEST_ENROLLMENT_TOKEN`].
    pub async fn register(&self, router_base_url: &str) -> anyhow::Result<RegisterResponse> {
        let response = self
            .send_registration(router_base_url, Some(TEST_ENROLLMENT_TOKEN))
            .await?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            anyhow::bail!(
                "the router refused to register fake node '{}': {status} {body}",
                self.machine_name()
            );
        }
        Ok(response.json().await?)
    }

    /// A heartbeat body for `node_id` reporting this fake's models.
    pub fn heartbeat_body(&self, node_id: &str) -> Heartbeat {
        Heartbeat {
            node_id: node_id.to_owned(),
            metrics: NodeMetrics::default(),
            models: self.register_request().models,
        }
    }

    /// Sends a heartbeat for `node_id` with `token` as `Authorization: Bearer`; returns the
    /// router's answer whatever its status.
    pub async fn send_heartbeat(
        &self,
        router_base_url: &str,
        node_id: &str,
        token: &str,
    ) -> anyhow::Result<reqwest::Response> {
        let url = format!("{}/api/health", router_base_url.trim_end_matches('/'));
        Ok(self
            .http()
            .post(url)
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .json(&self.heartbeat_body(node_id))
            .send()
            .await?)
    }

    /// Pushes `metrics` for `node_id` (`POST /api/agents/{id}/metrics`) with `token` as
    /// `Authorization: Bearer`; returns the router's answer whatever its status.
    pub async fn push_metrics(
        &self,
        router_base_url: &str,
        node_id: &str,
        token: &str,
        metrics: &impl serde::Serialize,
    ) -> anyhow::Result<reqwest::Response> {
        let url = format!(
            "{}/api/agents/{node_id}/metrics",
            router_base_url.trim_end_matches('/')
        );
        Ok(self
            .http()
            .post(url)
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .json(metrics)
            .send()
            .await?)
    }
}
