//! The router <-> node contract. Both ends are ours, so these types are strict: unknown fields are
//! refused, so a version skew shows up as a clear 400 instead of silently dropped data.

use serde::{Deserialize, Serialize};

use crate::Secret;

/// Header carrying the node token on node -> router calls (besides `Authorization: Bearer`).
pub const NODE_TOKEN_HEADER: &str = "x-llm-node-token";

/// `POST /api/agents/register` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// Stable name of this node; re-registering under the same name updates the entry.
    pub machine_name: String,
    /// Host or IP the router uses to reach the node API.
    pub address: String,
    /// Port of the node API.
    pub port: u16,
    pub node_version: String,
    pub runtime: RuntimeInfo,
    pub hardware: Hardware,
    pub models: Vec<ModelStatus>,
    /// Bearer token the router must present on every call to the node's API (the node refuses
    /// inference and pulls from anyone else).
    pub api_token: Secret,
    /// Whether the node API serves HTTPS. Absent (older nodes): `http`; left out of the body
    /// when `http`, so a node without TLS registers with older routers too.
    #[serde(default, skip_serializing_if = "Scheme::is_http")]
    pub scheme: Scheme,
}

/// How the router reaches a node's API.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    #[default]
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    pub fn is_http(&self) -> bool {
        *self == Scheme::Http
    }
}

impl RegisterRequest {
    /// Base URL of the node API, bracketing IPv6 literals.
    pub fn base_url(&self) -> String {
        let scheme = self.scheme.as_str();
        if self.address.contains(':') && !self.address.starts_with('[') {
            format!("{scheme}://[{}]:{}", self.address, self.port)
        } else {
            format!("{scheme}://{}:{}", self.address, self.port)
        }
    }
}

/// `POST /api/agents/register` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterResponse {
    pub node_id: String,
    /// Secret the node presents on heartbeats; valid for this node id only.
    pub node_token: Secret,
    /// How the router classified the node after calling its `/v1/models`.
    pub status: NodeStatus,
    pub heartbeat_interval_secs: u64,
}

/// `POST /api/health` body (the heartbeat).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    pub node_id: String,
    pub metrics: NodeMetrics,
    pub models: Vec<ModelStatus>,
}

/// `POST /api/health` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatResponse {
    pub status: NodeStatus,
}

/// A node as the router sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    /// Registered, no model ready yet: shown, gets no traffic.
    Initializing,
    /// Heartbeating with at least one ready model.
    Online,
    /// Failed a request (connection error, timeout or 5xx before the first byte): no traffic
    /// until a probe of its `/health` or its next heartbeat clears it.
    Suspect,
    /// Silent past the heartbeat timeout.
    Offline,
}

impl NodeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initializing => "initializing",
            Self::Online => "online",
            Self::Suspect => "suspect",
            Self::Offline => "offline",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeInfo {
    pub kind: RuntimeKind,
    pub version: Option<String>,
    /// What the runtime computes on, as it says itself (llama-server `--list-devices`); absent
    /// when the node cannot tell (Ollama picks its libraries at run time) or is older.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<RuntimeBackend>,
}

/// The compute backend a runtime was built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeBackend {
    /// No GPU device: the build has no GPU backend, or it finds no GPU.
    Cpu,
    Cuda,
    Rocm,
    Vulkan,
    Metal,
    /// A GPU backend the node does not name (SYCL, OpenCL, ...).
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeKind {
    LlamaServer,
    Ollama,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hardware {
    pub cpu_cores: u32,
    pub memory_total_bytes: u64,
    pub gpus: Vec<GpuDevice>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuDevice {
    pub index: u32,
    pub name: String,
    pub memory_total_bytes: u64,
    /// Who made it, when the node knows (NVML: NVIDIA; sysfs: AMD). Absent from older nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<GpuVendor>,
}

/// A GPU maker the node can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GpuVendor {
    Nvidia,
    Amd,
}

impl GpuVendor {
    pub fn as_str(self) -> &'static str {
        match self {
            GpuVendor::Nvidia => "NVIDIA",
            GpuVendor::Amd => "AMD",
        }
    }
}

/// Live figures of a node, sent with every heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeMetrics {
    pub cpu_percent: f32,
    pub memory_percent: f32,
    pub memory_used_bytes: u64,
    pub memory_total_bytes: u64,
    /// Empty when the node has no GPU it can read (NVIDIA through NVML, AMD through sysfs).
    pub gpus: Vec<GpuMetrics>,
    /// Requests the node is serving right now.
    pub active_requests: u32,
    /// Requests the node has served since it started.
    pub requests_total: u64,
    /// Mean latency of the node's recent requests.
    pub avg_response_ms: Option<f64>,
}

/// The metrics push of the load-balancing task list (`AgentMetrics`), accepted on
/// `POST /api/agents/{id}/metrics` beside [`NodeMetrics`] so an agent written from that document
/// works unchanged. It carries the figures the `metrics` policy scores; the rest of the node's
/// metrics (memory bytes, GPUs, totals) stay as its last heartbeat reported them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentMetrics {
    /// The node's id; must be the one in the path.
    pub agent_id: String,
    /// CPU use in percent (0–100).
    pub cpu_usage: f32,
    /// Memory use in percent (0–100).
    pub memory_usage: f32,
    pub active_requests: u32,
    /// Mean response time of recent requests, in milliseconds.
    pub avg_response_time: Option<f64>,
    /// When the figures were taken.
    pub timestamp: Timestamp,
}

/// A point in time as agents send it: RFC 3339 text (`2026-12-03T10:00:00Z`) or a Unix time in
/// seconds or milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Timestamp {
    Unix(f64),
    Rfc3339(String),
}

impl AgentMetrics {
    /// Writes these figures over `metrics`, keeping what the seed's shape does not carry.
    pub fn apply_to(&self, metrics: &mut NodeMetrics) {
        metrics.cpu_percent = self.cpu_usage;
        metrics.memory_percent = self.memory_usage;
        metrics.active_requests = self.active_requests;
        metrics.avg_response_ms = self.avg_response_time;
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuMetrics {
    pub index: u32,
    pub name: String,
    pub utilization_percent: f32,
    pub memory_used_bytes: u64,
    pub memory_total_bytes: u64,
    pub temperature_celsius: Option<f32>,
}

/// State of one model on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelStatus {
    pub name: String,
    pub state: ModelState,
    /// Parallel slots of the runtime serving it, when known.
    pub slots_total: Option<u32>,
    /// Slots not processing a request, when known.
    pub slots_free: Option<u32>,
    /// Why the model is `failed`.
    pub error: Option<String>,
    /// Prompt tokens the runtime can keep computed for this model, when known: its slots' context
    /// plus its host prompt cache (llama-server's `--cache-ram`), as the node estimates it. The
    /// router sizes its prefix-affinity index for the node from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_tokens: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelState {
    Downloading,
    Loading,
    Ready,
    Failed,
}

/// `POST /pull` (router -> node): fetch a model file, verify it, then serve it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullRequest {
    /// The router's download task; progress is reported to `/api/tasks/{task_id}/progress`.
    pub task_id: String,
    /// Name the model is served under.
    pub model: String,
    /// GGUF to download (http or https).
    pub url: String,
    /// Hex SHA-256 of the file; the download is refused when it differs.
    pub sha256: Option<String>,
    pub size_bytes: Option<u64>,
    /// File name under the node's models directory.
    pub file_name: String,
    /// Extra runtime arguments and settings from the catalog. The node takes only llama-server
    /// flags that tune the model (context, batching, offload, cache types, RoPE, templates,
    /// embeddings, sampling defaults) with values of their shape, and refuses the pull (400
    /// naming the flag) for any other, e.g. `--host`, `--port`, `--api-key`, `-m`.
    pub args: Vec<String>,
    /// A llama-server built-in chat template name (`gemma`, `chatml`); never a path.
    pub chat_template: Option<String>,
    pub ctx_size: Option<u32>,
    /// Every file of a model split into parts (`<stem>-0000i-of-0000n.gguf`), in order; `url`,
    /// `file_name` and `sha256` then name the first part, the one the runtime is started on.
    /// Empty (and left out) for a single file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<PullPart>,
    /// For a node running Ollama: the Ollama model to pull through Ollama's own `/api/pull`
    /// (e.g. `gpt-oss:20b`); `url`, `file_name` and the GGUF fields are then empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ollama: Option<String>,
}

/// One file of a split model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullPart {
    pub url: String,
    pub file_name: String,
    /// Hex SHA-256 of this part, when the catalog has it.
    pub sha256: Option<String>,
}

/// Where a download task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Pending,
    Downloading,
    Verifying,
    Loading,
    Ready,
    Failed,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::Downloading => "downloading",
            TaskStatus::Verifying => "verifying",
            TaskStatus::Loading => "loading",
            TaskStatus::Ready => "ready",
            TaskStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<TaskStatus> {
        [
            TaskStatus::Pending,
            TaskStatus::Downloading,
            TaskStatus::Verifying,
            TaskStatus::Loading,
            TaskStatus::Ready,
            TaskStatus::Failed,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }

    /// `ready` and `failed` are final.
    pub fn is_final(self) -> bool {
        matches!(self, TaskStatus::Ready | TaskStatus::Failed)
    }
}

/// `POST /api/tasks/{id}/progress` (node -> router, with the node token).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskProgress {
    pub node_id: String,
    pub status: TaskStatus,
    pub bytes_done: u64,
    pub bytes_total: Option<u64>,
    pub bytes_per_sec: u64,
    pub error: Option<String>,
}

/// `GET /health` of a node: liveness plus its request counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeHealth {
    pub status: String,
    pub machine_name: String,
    pub active_requests: u32,
    pub requests_total: u64,
    pub models: Vec<ModelStatus>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_refuses_unknown_fields() {
        let json = r#"{"node_id":"x","metrics":{"cpu_percent":1,"memory_percent":2,"memory_used_bytes":0,
            "memory_total_bytes":0,"gpus":[],"active_requests":0,"requests_total":0,"avg_response_ms":null},
            "models":[],"surprise":1}"#;
        assert!(serde_json::from_str::<Heartbeat>(json).is_err());
    }

    #[test]
    fn base_url_brackets_ipv6() {
        let mut req = RegisterRequest {
            machine_name: "n".into(),
            address: "::1".into(),
            port: 9,
            node_version: "0".into(),
            runtime: RuntimeInfo {
                kind: RuntimeKind::LlamaServer,
                version: None,
                backend: None,
            },
            hardware: Hardware {
                cpu_cores: 1,
                memory_total_bytes: 1,
                gpus: vec![],
            },
            models: vec![],
            api_token: Secret::new("t"),
            scheme: Scheme::Http,
        };
        assert_eq!(req.base_url(), "http://[::1]:9");
        req.address = "10.0.0.2".into();
        assert_eq!(req.base_url(), "http://10.0.0.2:9");
        req.scheme = Scheme::Https;
        assert_eq!(req.base_url(), "https://10.0.0.2:9");
    }

    #[test]
    fn scheme_defaults_to_http_and_is_sent_only_when_https() {
        let mut req = RegisterRequest {
            machine_name: "n".into(),
            address: "10.0.0.2".into(),
            port: 9,
            node_version: "0".into(),
            runtime: RuntimeInfo {
                kind: RuntimeKind::LlamaServer,
                version: None,
                backend: None,
            },
            hardware: Hardware {
                cpu_cores: 1,
                memory_total_bytes: 1,
                gpus: vec![],
            },
            models: vec![],
            api_token: Secret::new("t"),
            scheme: Scheme::Http,
        };
        let json = serde_json::to_value(&req).unwrap();
        assert!(json.get("scheme").is_none(), "{json}");
        let old: RegisterRequest = serde_json::from_value(json).unwrap();
        assert_eq!(old.scheme, Scheme::Http);
        req.scheme = Scheme::Https;
        let mut json = serde_json::to_value(&req).unwrap();
        assert_eq!(json["scheme"], "https");
        let parsed: RegisterRequest = serde_json::from_value(json).unwrap();
        assert_eq!(parsed.base_url(), "https://10.0.0.2:9");
        json = serde_json::to_value(&req).unwrap();
        json["scheme"] = "ftp".into();
        assert!(serde_json::from_value::<RegisterRequest>(json).is_err());
    }
}
