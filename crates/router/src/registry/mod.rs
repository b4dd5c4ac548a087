//! The registry of nodes.
//!
//! Writers (registration, heartbeats, the health monitor and prober, failed requests, deletion)
//! take a mutex, change the table and publish a fresh [`Snapshot`]; request handlers only ever load
//! the current snapshot, which is lock-free. Every publish bumps a version that waiters in the
//! queue watch.

mod answer;
mod cache_stats;
mod node;
mod snapshot;
mod status;
#[doc(hidden)]
pub mod testing;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use llm_router_protocol::node::{
    Hardware, Heartbeat, ModelState, ModelStatus, NodeMetrics, NodeStatus, RegisterRequest,
    RuntimeInfo,
};
use tokio::sync::watch;

pub use answer::{
    AnswerError, MAX_ANSWER_BYTES, MAX_SMALL_ANSWER_BYTES, read_answer,
    read_json as read_json_answer,
};
pub use cache_stats::AnswerFigures;
pub use node::{InFlightGuard, Node, NodeSummary, node_hash};
pub use snapshot::{Candidate, Load, SlotCounter, Snapshot, Unavailable};
pub use status::{HealthEvent, HealthPolicy, next_status};

use crate::secrets::{constant_time_eq, new_token};

/// First delay between probes of a suspect node; doubled after each failed probe.
const PROBE_BACKOFF_MIN: Duration = Duration::from_millis(250);
const PROBE_BACKOFF_MAX: Duration = Duration::from_secs(8);

/// Result of a registration.
#[derive(Debug, Clone)]
pub struct Registered {
    pub node_id: String,
    pub node_token: String,
    pub status: NodeStatus,
    /// True when the machine was already known and its entry was updated.
    pub updated: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NodeAuthError {
    #[error("node '{0}' is not registered")]
    UnknownNode(String),
    #[error("invalid node token")]
    InvalidToken,
}

/// A status change made by the registry, for logging and (later) events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub node_id: Arc<str>,
    pub machine_name: String,
    pub from: NodeStatus,
    pub to: NodeStatus,
}

/// A node known from an earlier run of the router, restored as offline until it reports in.
#[derive(Debug, Clone)]
pub struct KnownNode {
    pub id: String,
    pub machine_name: String,
    pub base_url: String,
    pub runtime: RuntimeInfo,
    pub hardware: Hardware,
    pub node_version: String,
    pub models: Vec<ModelStatus>,
    pub first_seen: SystemTime,
    pub last_seen: SystemTime,
    pub draining: bool,
}

/// A suspect node due for a `/health` probe.
#[derive(Debug, Clone)]
pub struct ProbeTarget {
    pub node_id: Arc<str>,
    pub base_url: String,
}

struct Entry {
    /// Shared with the published snapshot; changed copy-on-write, so publishing a new snapshot
    /// copies pointers, not nodes.
    node: Arc<Node>,
    token: String,
    /// Per-model slot counters, kept across snapshots and re-registrations.
    slots: HashMap<String, Arc<SlotCounter>>,
    probe_backoff: Duration,
    next_probe: Instant,
}

impl Entry {
    /// Applies `event` to the node's status; the transition if it changed.
    fn apply(&mut self, event: HealthEvent, policy: &HealthPolicy) -> Option<Transition> {
        let from = self.node.status;
        let to = next_status(from, event, policy);
        if to != from {
            Arc::make_mut(&mut self.node).status = to;
        }
        if to == NodeStatus::Suspect && from != NodeStatus::Suspect {
            self.probe_backoff = PROBE_BACKOFF_MIN;
            self.next_probe = Instant::now();
        }
        (from != to).then(|| Transition {
            node_id: Arc::clone(&self.node.id),
            machine_name: self.node.machine_name.clone(),
            from,
            to,
        })
    }
}

pub struct Registry {
    table: Mutex<HashMap<Arc<str>, Entry>>,
    snapshot: ArcSwap<Snapshot>,
    version: watch::Sender<u64>,
    policy: HealthPolicy,
}

impl Registry {
    pub fn new(policy: HealthPolicy) -> Self {
        Registry {
            table: Mutex::new(HashMap::new()),
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            version: watch::Sender::new(0),
            policy,
        }
    }

    /// The current picture of the fleet (lock-free).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Changes whenever a new snapshot is published.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    fn table(&self) -> MutexGuard<'_, HashMap<Arc<str>, Entry>> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn publish(&self, table: &HashMap<Arc<str>, Entry>) {
        let nodes = table.values().map(|e| Arc::clone(&e.node)).collect();
        let snapshot = Snapshot::new(nodes, |id, model| {
            table
                .get(id)
                .and_then(|e| e.slots.get(model))
                .cloned()
                .unwrap_or_default()
        });
        self.snapshot.store(Arc::new(snapshot));
        self.version.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Adds a node, or updates it when a node of the same machine name is known.
    ///
    /// `ready_models` are the models the node's `/v1/models` listed: they are ready whatever the
    /// registration body says.
    pub fn register(&self, req: RegisterRequest, ready_models: &[String]) -> Registered {
        let mut models = req.models.clone();
        for name in ready_models {
            match models.iter_mut().find(|m| &m.name == name) {
                Some(m) => m.state = ModelState::Ready,
                None => models.push(ModelStatus {
                    name: name.clone(),
                    state: ModelState::Ready,
                    slots_total: None,
                    slots_free: None,
                    error: None,
                    cache_tokens: None,
                }),
            }
        }
        let has_ready_model = models.iter().any(|m| m.state == ModelState::Ready);
        let token = new_secret();
        let authorization = api_authorization(req.api_token.expose());

        let mut table = self.table();
        let existing_id = table
            .values()
            .find(|e| e.node.machine_name == req.machine_name)
            .map(|e| Arc::clone(&e.node.id));
        let updated = existing_id.is_some();
        let previous = existing_id.as_ref().and_then(|id| table.remove(id));
        let id = existing_id.unwrap_or_else(|| Arc::from(uuid::Uuid::new_v4().to_string()));
        // A drained machine stays drained when it registers again (after a restart, say).
        let draining = previous.as_ref().is_some_and(|e| e.node.draining);
        let (counters, slots) = previous
            .map(|e| (Arc::clone(&e.node.counters), e.slots))
            .unwrap_or_default();
        let mut entry = Entry {
            node: Arc::new(Node {
                id: Arc::clone(&id),
                id_hash: node_hash(&id),
                base_url: req.base_url(),
                machine_name: req.machine_name,
                status: NodeStatus::Initializing,
                runtime: req.runtime,
                hardware: req.hardware,
                node_version: req.node_version,
                metrics: NodeMetrics::default(),
                metrics_at: None,
                models,
                registered_at: SystemTime::now(),
                last_seen: Instant::now(),
                counters,
                authorization,
                draining,
            }),
            token: token.clone(),
            slots,
            probe_backoff: PROBE_BACKOFF_MIN,
            next_probe: Instant::now(),
        };
        entry.apply(HealthEvent::Heartbeat { has_ready_model }, &self.policy);
        ensure_slots(&mut entry);
        let status = entry.node.status;
        table.insert(Arc::clone(&id), entry);
        self.publish(&table);
        Registered {
            node_id: id.to_string(),
            node_token: token,
            status,
            updated,
        }
    }

    /// Adds nodes known from an earlier run, as offline: they get no traffic and their old tokens
    /// are void, so their next heartbeat is refused and they register again (keeping their id).
    pub fn restore(&self, nodes: Vec<KnownNode>) {
        let mut table = self.table();
        let now = Instant::now();
        for known in nodes {
            let silent_for = SystemTime::now()
                .duration_since(known.last_seen)
                .unwrap_or_default();
            let id: Arc<str> = Arc::from(known.id);
            let mut entry = Entry {
                node: Arc::new(Node {
                    id: Arc::clone(&id),
                    id_hash: node_hash(&id),
                    machine_name: known.machine_name,
                    base_url: known.base_url,
                    status: NodeStatus::Offline,
                    runtime: known.runtime,
                    hardware: known.hardware,
                    node_version: known.node_version,
                    metrics: NodeMetrics::default(),
                    metrics_at: None,
                    models: known.models,
                    registered_at: known.first_seen,
                    last_seen: now.checked_sub(silent_for).unwrap_or(now),
                    counters: Arc::default(),
                    authorization: None,
                    draining: known.draining,
                }),
                token: new_secret(),
                slots: HashMap::new(),
                probe_backoff: PROBE_BACKOFF_MIN,
                next_probe: now,
            };
            ensure_slots(&mut entry);
            table.insert(id, entry);
        }
        self.publish(&table);
    }

    /// Looks a node up by id and checks its token.
    fn authenticated<'t>(
        table: &'t mut HashMap<Arc<str>, Entry>,
        id: &str,
        token: &str,
    ) -> Result<&'t mut Entry, NodeAuthError> {
        let entry = table
            .get_mut(id)
            .ok_or_else(|| NodeAuthError::UnknownNode(id.to_owned()))?;
        if !constant_time_eq(entry.token.as_bytes(), token.as_bytes()) {
            return Err(NodeAuthError::InvalidToken);
        }
        Ok(entry)
    }

    /// Applies a heartbeat sent with `token`; returns the node's status afterwards.
    pub fn heartbeat(
        &self,
        hb: Heartbeat,
        token: &str,
    ) -> Result<(NodeStatus, Option<Transition>), NodeAuthError> {
        let mut table = self.table();
        let entry = Self::authenticated(&mut table, &hb.node_id, token)?;
        let has_ready_model = hb.models.iter().any(|m| m.state == ModelState::Ready);
        let now = Instant::now();
        let node = Arc::make_mut(&mut entry.node);
        node.metrics = hb.metrics;
        node.metrics_at = Some(now);
        node.models = hb.models;
        node.last_seen = now;
        ensure_slots(entry);
        let transition = entry.apply(HealthEvent::Heartbeat { has_ready_model }, &self.policy);
        let status = entry.node.status;
        self.publish(&table);
        Ok((status, transition))
    }

    /// Whether `token` is the node token of some registered node (every token is compared, in
    /// constant time each).
    pub fn holds_token(&self, token: &str) -> bool {
        let table = self.table();
        table.values().fold(false, |found, entry| {
            found | constant_time_eq(entry.token.as_bytes(), token.as_bytes())
        })
    }

    /// Checks that `token` is the node token of node `id` (for reports from nodes).
    pub fn check_token(&self, id: &str, token: &str) -> Result<(), NodeAuthError> {
        let mut table = self.table();
        Self::authenticated(&mut table, id, token).map(drop)
    }

    /// Applies a metrics push (`POST /api/agents/{id}/metrics`) to the node's metrics.
    pub fn push_metrics(
        &self,
        id: &str,
        token: &str,
        update: impl FnOnce(&mut NodeMetrics),
    ) -> Result<(), NodeAuthError> {
        let mut table = self.table();
        let entry = Self::authenticated(&mut table, id, token)?;
        let node = Arc::make_mut(&mut entry.node);
        update(&mut node.metrics);
        node.metrics_at = Some(Instant::now());
        self.publish(&table);
        Ok(())
    }

    /// A request to the node failed: an online node becomes suspect at once.
    pub fn report_failure(&self, id: &str) -> Option<Transition> {
        let mut table = self.table();
        let transition = table
            .get_mut(id)?
            .apply(HealthEvent::RequestFailed, &self.policy);
        if transition.is_some() {
            self.publish(&table);
        }
        transition
    }

    /// Suspect nodes whose next probe is due at `now`.
    pub fn due_probes(&self, now: Instant) -> Vec<ProbeTarget> {
        self.table()
            .values()
            .filter(|e| e.node.status == NodeStatus::Suspect && e.next_probe <= now)
            .map(|e| ProbeTarget {
                node_id: Arc::clone(&e.node.id),
                base_url: e.node.base_url.clone(),
            })
            .collect()
    }

    /// Records a probe: `Some(has_ready_model)` when the node answered, `None` when it did not.
    pub fn probe_result(&self, id: &str, outcome: Option<bool>) -> Option<Transition> {
        let mut table = self.table();
        let entry = table.get_mut(id)?;
        let event = match outcome {
            Some(has_ready_model) => HealthEvent::ProbeSucceeded { has_ready_model },
            None => {
                entry.next_probe = Instant::now() + entry.probe_backoff;
                entry.probe_backoff = (entry.probe_backoff * 2).min(PROBE_BACKOFF_MAX);
                HealthEvent::ProbeFailed
            }
        };
        let transition = entry.apply(event, &self.policy);
        if transition.is_some() {
            self.publish(&table);
        }
        transition
    }

    /// Drains a node (no new requests; those in flight finish) or puts it back in service; the
    /// node as it is now, `None` when it is not registered.
    pub fn set_draining(&self, id: &str, draining: bool) -> Option<Arc<Node>> {
        let mut table = self.table();
        let entry = table.get_mut(id)?;
        if entry.node.draining != draining {
            Arc::make_mut(&mut entry.node).draining = draining;
            let node = Arc::clone(&entry.node);
            self.publish(&table);
            return Some(node);
        }
        Some(Arc::clone(&entry.node))
    }

    /// Removes a node; false when it was not registered.
    pub fn remove(&self, id: &str) -> bool {
        let mut table = self.table();
        let removed = table.remove(id).is_some();
        if removed {
            self.publish(&table);
        }
        removed
    }

    /// Applies the passage of time: nodes silent past the timeout go offline.
    pub fn sweep(&self, now: Instant) -> Vec<Transition> {
        let mut table = self.table();
        let transitions: Vec<Transition> = table
            .values_mut()
            .filter_map(|entry| {
                let silent_for = now.saturating_duration_since(entry.node.last_seen);
                entry.apply(HealthEvent::Silent { silent_for }, &self.policy)
            })
            .collect();
        if !transitions.is_empty() {
            self.publish(&table);
        }
        transitions
    }
}

/// Gives every model the node lists a slot counter.
fn ensure_slots(entry: &mut Entry) {
    for model in &entry.node.models {
        entry.slots.entry(model.name.clone()).or_default();
    }
}

/// The `Authorization` header for a node's API token (`None` if empty or not a valid header).
pub fn api_authorization(token: &str) -> Option<axum::http::HeaderValue> {
    if token.is_empty() {
        return None;
    }
    let mut value = axum::http::HeaderValue::try_from(format!("Bearer {token}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// A fresh node token (256 random bits).
fn new_secret() -> String {
    new_token("llmn_")
}

#[cfg(test)]
mod tests;
