//! One registered node: its identity, what it last reported, and the router's own counters for it.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Instant, SystemTime};

use axum::http::HeaderValue;
use axum::http::header::AUTHORIZATION;
use foldhash::fast::FixedState;
use llm_router_protocol::node::{
    Hardware, ModelState, ModelStatus, NodeMetrics, NodeStatus, RuntimeInfo,
};
use rand_core::{OsRng, RngCore};
use serde::Serialize;

use super::cache_stats::{CacheStats, CacheSummary};

/// Counters the router keeps per node; shared between the registry and in-flight requests, so a
/// request finishing after the node was re-registered still counts against the same entry.
#[derive(Debug, Default)]
pub struct NodeCounters {
    in_flight: AtomicU32,
    requests_total: AtomicU64,
    failures_total: AtomicU64,
    /// What answers said of its prompt cache and speeds.
    pub cache: CacheStats,
}

impl NodeCounters {
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub fn requests_total(&self) -> u64 {
        self.requests_total.load(Ordering::Relaxed)
    }

    pub fn failures_total(&self) -> u64 {
        self.failures_total.load(Ordering::Relaxed)
    }

    pub fn record_failure(&self) {
        self.failures_total.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request as started; the returned guard counts it as finished when dropped.
    pub fn start_request(self: &Arc<Self>) -> InFlightGuard {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.requests_total.fetch_add(1, Ordering::Relaxed);
        InFlightGuard(Arc::clone(self))
    }
}

/// Releases one in-flight request of a node when dropped (end of body, or client gone).
#[derive(Debug)]
pub struct InFlightGuard(Arc<NodeCounters>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An immutable picture of one node, as held in a registry [`Snapshot`](super::Snapshot).
#[derive(Debug, Clone)]
pub struct Node {
    pub id: Arc<str>,
    /// `affinity::node_hash(&id)`, computed once: the prefix index joins candidates by it.
    pub id_hash: u64,
    pub machine_name: String,
    pub base_url: String,
    pub status: NodeStatus,
    pub runtime: RuntimeInfo,
    pub hardware: Hardware,
    pub node_version: String,
    pub metrics: NodeMetrics,
    /// When `metrics` arrived; `None` until the first heartbeat or metrics push.
    pub metrics_at: Option<Instant>,
    pub models: Vec<ModelStatus>,
    pub registered_at: SystemTime,
    pub last_seen: Instant,
    pub counters: Arc<NodeCounters>,
    /// `Authorization` header of every call to the node (its API token, marked sensitive);
    /// `None` for a node restored from the store until it registers again.
    pub authorization: Option<HeaderValue>,
    /// Set by an admin: the node finishes what it has but gets no new requests.
    pub draining: bool,
}

impl Node {
    /// A request to the node's API, carrying its token.
    pub fn request(
        &self,
        http: &reqwest::Client,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        let request = http.request(method, format!("{}{path}", self.base_url));
        match &self.authorization {
            Some(value) => request.header(AUTHORIZATION, value.clone()),
            None => request,
        }
    }

    pub fn has_ready_model(&self, name: &str) -> bool {
        self.models
            .iter()
            .any(|m| m.name == name && m.state == ModelState::Ready)
    }

    pub fn ready_models(&self) -> impl Iterator<Item = &str> {
        self.models
            .iter()
            .filter(|m| m.state == ModelState::Ready)
            .map(|m| m.name.as_str())
    }

    /// The node as `GET /api/agents` shows it.
    pub fn summary(&self) -> NodeSummary {
        NodeSummary {
            id: self.id.to_string(),
            machine_name: self.machine_name.clone(),
            base_url: self.base_url.clone(),
            status: self.status,
            draining: self.draining,
            runtime: self.runtime.clone(),
            hardware: self.hardware.clone(),
            node_version: self.node_version.clone(),
            metrics: self.metrics.clone(),
            models: self.models.clone(),
            registered_at_ms: unix_ms(self.registered_at),
            last_seen_secs_ago: self.last_seen.elapsed().as_secs_f64(),
            router_in_flight: self.counters.in_flight(),
            router_requests_total: self.counters.requests_total(),
            router_failures_total: self.counters.failures_total(),
            router_cache: self.counters.cache.summary(),
        }
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// JSON view of a node for the fleet API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeSummary {
    pub id: String,
    pub machine_name: String,
    pub base_url: String,
    pub status: NodeStatus,
    /// An admin drained it: no new requests until resumed.
    pub draining: bool,
    pub runtime: RuntimeInfo,
    pub hardware: Hardware,
    pub node_version: String,
    pub metrics: NodeMetrics,
    pub models: Vec<ModelStatus>,
    pub registered_at_ms: u64,
    pub last_seen_secs_ago: f64,
    pub router_in_flight: u32,
    pub router_requests_total: u64,
    pub router_failures_total: u64,
    /// Prompt cache hits and speeds, from the answers the router relayed.
    pub router_cache: CacheSummary,
}

/// The hash the prefix index looks a node id up by (`Node::id_hash`), with a per-process random seed (node ids come
/// from the nodes: a node must not be able to pick ids that collide with another's).
pub fn node_hash(id: &str) -> u64 {
    static STATE: LazyLock<FixedState> = LazyLock::new(|| FixedState::with_seed(OsRng.next_u64()));
    STATE.hash_one(id)
}
