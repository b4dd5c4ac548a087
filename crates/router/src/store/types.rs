//! Rows the store keeps.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch.
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Which public API a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    /// OpenAI's chat, completions, embeddings and Responses APIs.
    Openai,
    Ollama,
    /// Anthropic's Messages API.
    Anthropic,
}

impl Api {
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Openai => "openai",
            Api::Ollama => "ollama",
            Api::Anthropic => "anthropic",
        }
    }

    pub(super) fn parse(s: &str) -> Option<Api> {
        match s {
            "openai" => Some(Api::Openai),
            "ollama" => Some(Api::Ollama),
            "anthropic" => Some(Api::Anthropic),
            _ => None,
        }
    }
}

/// How the router chose the node that answered a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routing {
    /// The balancing policy (`auto`, `round_robin`, `metrics`, `cache_aware`).
    pub policy: String,
    /// Why this node, when the policy says (`cache_aware`: `affinity`, `least_loaded`, `guard`).
    pub reason: Option<String>,
    /// Nodes that had the model ready when the node was chosen.
    pub candidates: u32,
    /// Nodes tried, this one included (more than 1 after a failover).
    pub attempts: u32,
    /// Prompt tokens the policy expected the node to reuse (`cache_aware`).
    pub predicted_cached_tokens: Option<u64>,
}

/// One inference request as it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub id: String,
    pub at_ms: u64,
    pub api: Api,
    pub endpoint: String,
    /// The model that served the request.
    pub model: String,
    /// The name the request asked for, when an alias or a fallback made another model serve it.
    #[serde(default)]
    pub requested_model: Option<String>,
    pub node_id: Option<String>,
    pub node_name: Option<String>,
    pub status: u16,
    pub latency_ms: f64,
    /// Time to the first byte of the answer.
    pub ttfb_ms: Option<f64>,
    pub queue_ms: f64,
    pub prompt_tokens: Option<u32>,
    /// Of the prompt, the tokens the node reused from its cache (when its answer said).
    #[serde(default)]
    pub cached_tokens: Option<u32>,
    pub completion_tokens: Option<u32>,
    /// How the node was chosen; `None` when no node was.
    #[serde(default)]
    pub routing: Option<Routing>,
    pub streamed: bool,
    pub error: Option<String>,
    pub client: Option<String>,
    /// Only with `store_bodies`, truncated.
    pub request_body: Option<String>,
    pub response_body: Option<String>,
}

impl RequestRecord {
    pub(super) fn succeeded(&self) -> bool {
        self.status < 400 && self.error.is_none()
    }
}

/// What stats need of a request.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestSummary {
    pub at_ms: u64,
    pub model: String,
    pub node_name: Option<String>,
    pub status: u16,
    pub failed: bool,
    pub latency_ms: f64,
}

/// A node as persisted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRow {
    pub id: String,
    pub machine_name: String,
    pub base_url: String,
    pub runtime_kind: String,
    pub runtime_version: Option<String>,
    pub node_version: String,
    /// JSON of `protocol::node::Hardware`.
    pub hardware: String,
    /// JSON of the node's `Vec<protocol::node::ModelStatus>`.
    pub models: String,
    pub status: String,
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
    /// Drained by an admin.
    pub draining: bool,
}

/// One health sample of a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSample {
    pub node_id: String,
    pub at_ms: u64,
    pub cpu_percent: f32,
    pub memory_percent: f32,
    pub memory_used_bytes: u64,
    pub gpu_percent: Option<f32>,
    pub gpu_memory_percent: Option<f32>,
    pub active_requests: u32,
    pub avg_response_ms: Option<f64>,
}

/// A dashboard or API user as persisted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// `admin` or `viewer`.
    pub role: String,
    pub created_ms: u64,
    pub updated_ms: u64,
}

/// A login session as persisted: only the hash of its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// Hex SHA-256 of the session token.
    pub token_hash: String,
    pub user_id: String,
    pub created_ms: u64,
    pub expires_ms: u64,
}

/// An inference API key as persisted: only the hash of the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRow {
    pub id: String,
    pub name: String,
    /// Hex SHA-256 of the key.
    pub key_hash: String,
    /// The key's first characters, to recognise it in a list.
    pub prefix: String,
    /// Allowed models; `None` allows every model.
    pub models: Option<Vec<String>>,
    pub created_by: Option<String>,
    pub created_ms: u64,
    pub expires_ms: Option<u64>,
    pub revoked_ms: Option<u64>,
    pub last_used_ms: Option<u64>,
    /// The key's limits as JSON; `None`: no limits.
    pub limits: Option<String>,
}

/// A model download task as persisted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRow {
    pub id: String,
    pub node_id: String,
    pub node_name: Option<String>,
    pub model: String,
    /// `pending`, `downloading`, `verifying`, `loading`, `ready` or `failed`.
    pub status: String,
    pub bytes_done: u64,
    pub bytes_total: Option<u64>,
    pub bytes_per_sec: u64,
    pub error: Option<String>,
    /// Why the router ordered it (placement, or who asked).
    pub reason: Option<String>,
    pub created_ms: u64,
    pub updated_ms: u64,
}

/// Everything authentication keeps, loaded at start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub users: Vec<UserRow>,
    /// Sessions not yet expired.
    pub sessions: Vec<SessionRow>,
    pub api_keys: Vec<ApiKeyRow>,
    pub settings: Vec<(String, String)>,
    /// Tokens spent per key and budget period.
    pub key_spend: Vec<SpendRow>,
}

/// Tokens a key spent in one budget period (`2026-12-03`, `2026-12`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendRow {
    pub key_id: String,
    pub period: String,
    pub tokens: u64,
}

/// A write for the store. History and metrics go through the writer task in batches; credential
/// changes are applied directly, so they are durable before the API answers.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreOp {
    Request(Box<RequestRecord>),
    Metrics(MetricSample),
    UpsertNode(Box<NodeRow>),
    DeleteNode(String),
    /// Inserts or replaces a user (by id).
    UpsertUser(Box<UserRow>),
    /// Deletes a user and its sessions.
    DeleteUser(String),
    InsertSession(Box<SessionRow>),
    /// Deletes the session with this token hash.
    DeleteSession(String),
    /// Deletes every session of a user.
    DeleteSessionsOf(String),
    /// Inserts or replaces an API key (by id).
    UpsertApiKey(Box<ApiKeyRow>),
    /// Records that an API key was used at `at_ms`.
    TouchApiKey {
        id: String,
        at_ms: u64,
    },
    SetSetting {
        key: String,
        value: String,
    },
    /// Inserts or replaces a download task (by id).
    UpsertTask(Box<TaskRow>),
    /// Adds `tokens` to what a key spent in a budget period.
    AddSpend {
        key_id: String,
        period: String,
        tokens: u64,
    },
}

/// Filters and paging of `GET /api/requests`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestQuery {
    pub limit: Option<u32>,
    pub offset: Option<u32>,
    pub model: Option<String>,
    /// Node name.
    pub node: Option<String>,
    /// Exact status code, or `success` / `error`.
    pub status: Option<String>,
    /// Unix ms, inclusive.
    pub since: Option<u64>,
    /// Unix ms, exclusive.
    pub until: Option<u64>,
}

impl RequestQuery {
    const DEFAULT_LIMIT: u32 = 50;
    const MAX_LIMIT: u32 = 1000;

    pub fn limit(&self) -> u32 {
        self.limit
            .unwrap_or(Self::DEFAULT_LIMIT)
            .clamp(1, Self::MAX_LIMIT)
    }

    pub fn offset(&self) -> u32 {
        self.offset.unwrap_or(0)
    }

    /// Whether `r` passes the filters (the in-memory store's WHERE clause).
    pub(super) fn matches(&self, r: &RequestRecord) -> bool {
        self.model
            .as_ref()
            .is_none_or(|m| &r.model == m || r.requested_model.as_ref() == Some(m))
            && self
                .node
                .as_ref()
                .is_none_or(|n| r.node_name.as_ref() == Some(n))
            && self.since.is_none_or(|s| r.at_ms >= s)
            && self.until.is_none_or(|u| r.at_ms < u)
            && match self.status.as_deref() {
                None => true,
                Some("success") => r.succeeded(),
                Some("error") => !r.succeeded(),
                Some(code) => code.parse::<u16>().is_ok_and(|c| c == r.status),
            }
    }
}

/// A page of results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    pub total: u64,
    pub limit: u32,
    pub offset: u32,
    pub items: Vec<T>,
}
