//! Fake nodes with GPUs, for placement and distribution tests: each registers the hardware it is
//! given (NVIDIA or AMD cards, RAM), records the `POST /pull` bodies the router sends it, and
//! reports download progress and heartbeats with its node token when the test says so. Nothing
//! is downloaded; these fakes stand in for nodes only on the router's side of the contract.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use llm_router_protocol::Secret;
use llm_router_protocol::node::{
    GpuDevice, GpuVendor, Hardware, Heartbeat, NodeMetrics, PullRequest, RegisterRequest,
    RegisterResponse, RuntimeInfo, RuntimeKind, Scheme, TaskProgress, TaskStatus,
};
use llm_router_testkit::TEST_ENROLLMENT_TOKEN;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::common::client;

pub const GIB: u64 = 1 << 30;

pub fn nvidia(index: u32, name: &str, gib: u64) -> GpuDevice {
    GpuDevice {
        index,
        name: name.to_owned(),
        memory_total_bytes: gib * GIB,
        vendor: Some(GpuVendor::Nvidia),
    }
}

pub fn amd(index: u32, name: &str, gib: u64) -> GpuDevice {
    GpuDevice {
        vendor: Some(GpuVendor::Amd),
        ..nvidia(index, name, gib)
    }
}

/// A fake node serving `/v1/models` (no model ready: it stays `initializing`, which placement
/// does not mind) and `/pull` (recorded, 202).
pub struct FakeGpuNode {
    pub name: String,
    addr: SocketAddr,
    pulls: Arc<Mutex<Vec<PullRequest>>>,
    server: JoinHandle<()>,
    hardware: Hardware,
    runtime: RuntimeKind,
    /// Set once registered.
    pub id: String,
    token: String,
}

impl FakeGpuNode {
    /// A llama-server fake named `name` with `ram_gib` of RAM and `gpus`.
    pub async fn spawn(name: &str, ram_gib: u64, gpus: Vec<GpuDevice>) -> FakeGpuNode {
        Self::spawn_with(name, ram_gib, gpus, RuntimeKind::LlamaServer).await
    }

    pub async fn spawn_with(
        name: &str,
        ram_gib: u64,
        gpus: Vec<GpuDevice>,
        runtime: RuntimeKind,
    ) -> FakeGpuNode {
        let pulls: Arc<Mutex<Vec<PullRequest>>> = Arc::default();
        let app = Router::new()
            .route(
                "/v1/models",
                get(|| async { Json(json!({"object": "list", "data": []})) }),
            )
            .route("/pull", post(record_pull))
            .with_state(Arc::clone(&pulls));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeGpuNode {
            name: name.to_owned(),
            addr,
            pulls,
            server,
            hardware: Hardware {
                cpu_cores: 16,
                memory_total_bytes: ram_gib * GIB,
                gpus,
            },
            runtime,
            id: String::new(),
            token: String::new(),
        }
    }

    /// Registers with the router; the router places the node at once.
    pub async fn register(&mut self, router_url: &str) -> RegisterResponse {
        let request = RegisterRequest {
            machine_name: self.name.clone(),
            address: self.addr.ip().to_string(),
            port: self.addr.port(),
            node_version: "fake".to_owned(),
            runtime: RuntimeInfo {
                kind: self.runtime,
                version: Some("fake".to_owned()),
                backend: None,
            },
            hardware: self.hardware.clone(),
            models: Vec::new(),
            api_token: Secret::new("fake-gpu-node-api-token-0123456789"),
            scheme: Scheme::Http,
        };
        let response = client()
            .post(format!("{router_url}/api/agents/register"))
            .bearer_auth(TEST_ENROLLMENT_TOKEN)
            .json(&request)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{}",
            response.text().await.unwrap()
        );
        let registered: RegisterResponse = response.json().await.unwrap();
        self.id = registered.node_id.clone();
        self.token = registered.node_token.expose().to_owned();
        registered
    }

    /// The pulls received so far, in order.
    pub fn pulls(&self) -> Vec<PullRequest> {
        self.pulls.lock().unwrap().clone()
    }

    /// The models of the pulls received so far, in order.
    pub fn pulled_models(&self) -> Vec<String> {
        self.pulls().into_iter().map(|p| p.model).collect()
    }

    /// What a heartbeat loop needs, to run on its own task.
    pub fn beat_handle(&self) -> Beat {
        Beat {
            id: self.id.clone(),
            token: self.token.clone(),
        }
    }

    /// Reports progress of `task_id` with this node's token; the router's status code.
    pub async fn report(
        &self,
        router_url: &str,
        task_id: &str,
        status: TaskStatus,
        done: u64,
        total: Option<u64>,
    ) -> StatusCode {
        let progress = TaskProgress {
            node_id: self.id.clone(),
            status,
            bytes_done: done,
            bytes_total: total,
            bytes_per_sec: 1000,
            error: None,
        };
        client()
            .post(format!("{router_url}/api/tasks/{task_id}/progress"))
            .bearer_auth(&self.token)
            .json(&progress)
            .send()
            .await
            .unwrap()
            .status()
    }

    /// Stops answering (its pulls then fail to connect).
    pub fn stop(&self) {
        self.server.abort();
    }
}

impl Drop for FakeGpuNode {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn record_pull(
    State(pulls): State<Arc<Mutex<Vec<PullRequest>>>>,
    Json(pull): Json<PullRequest>,
) -> (StatusCode, Json<Value>) {
    let task_id = pull.task_id.clone();
    pulls.lock().unwrap().push(pull);
    (StatusCode::ACCEPTED, Json(json!({"task_id": task_id})))
}

/// A registered node's heartbeat, apart from its fake server.
pub struct Beat {
    id: String,
    token: String,
}

impl Beat {
    /// One heartbeat (keeps the node from going offline).
    pub async fn beat(&self, router_url: &str) {
        let beat = Heartbeat {
            node_id: self.id.clone(),
            metrics: NodeMetrics::default(),
            models: Vec::new(),
        };
        let response = client()
            .post(format!("{router_url}/api/health"))
            .bearer_auth(&self.token)
            .json(&beat)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "heartbeat of {}", self.id);
    }
}
