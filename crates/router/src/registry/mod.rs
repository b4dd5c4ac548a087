//! The registry of nodes.
//!
//! Writers (registration, heartbeats, the health monitor, deletion) take a mutex, change the table
//! and publish a fresh [`Snapshot`]; request handlers only ever load the current snapshot, which is
//! lock-free.

mod node;
mod snapshot;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Instant, SystemTime};

use arc_swap::ArcSwap;
use llm_router_protocol::node::{Heartbeat, ModelState, ModelStatus, NodeStatus, RegisterRequest};

pub use node::{InFlightGuard, Node, NodeCounters, NodeSummary};
pub use snapshot::{ModelEntry, Snapshot, Unavailable};

use crate::health::{HealthEvent, HealthPolicy, next_status};

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
pub enum HeartbeatError {
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

struct Entry {
    node: Node,
    token: String,
}

pub struct Registry {
    table: Mutex<HashMap<Arc<str>, Entry>>,
    snapshot: ArcSwap<Snapshot>,
    policy: HealthPolicy,
}

impl Registry {
    pub fn new(policy: HealthPolicy) -> Self {
        Registry {
            table: Mutex::new(HashMap::new()),
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            policy,
        }
    }

    /// The current picture of the fleet (lock-free).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    fn table(&self) -> MutexGuard<'_, HashMap<Arc<str>, Entry>> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn publish(&self, table: &HashMap<Arc<str>, Entry>) {
        let nodes = table.values().map(|e| Arc::new(e.node.clone())).collect();
        self.snapshot.store(Arc::new(Snapshot::new(nodes)));
    }

    /// Adds a node, or updates it when a node of the same machine name is known.
    ///
    /// `ready_models` are the models the node's `/v1/models` listed: they are ready whatever the
    /// registration body says.
    pub fn register(&self, req: RegisterRequest, ready_models: &[String]) -> Registered {
        let now = Instant::now();
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
                }),
            }
        }
        let has_ready = models.iter().any(|m| m.state == ModelState::Ready);
        let token = new_secret();

        let mut table = self.table();
        let existing = table
            .values()
            .find(|e| e.node.machine_name == req.machine_name)
            .map(|e| (Arc::clone(&e.node.id), Arc::clone(&e.node.counters)));
        let updated = existing.is_some();
        let (id, counters) = existing
            .unwrap_or_else(|| (Arc::from(uuid::Uuid::new_v4().to_string()), Arc::default()));
        let status = next_status(
            NodeStatus::Initializing,
            HealthEvent::Heartbeat {
                has_ready_model: has_ready,
            },
            &self.policy,
        );
        let node = Node {
            id: Arc::clone(&id),
            base_url: req.base_url(),
            machine_name: req.machine_name,
            status,
            runtime: req.runtime,
            hardware: req.hardware,
            node_version: req.node_version,
            metrics: Default::default(),
            models,
            registered_at: SystemTime::now(),
            last_seen: now,
            counters,
        };
        table.insert(
            Arc::clone(&id),
            Entry {
                node,
                token: token.clone(),
            },
        );
        self.publish(&table);
        Registered {
            node_id: id.to_string(),
            node_token: token,
            status,
            updated,
        }
    }

    /// Applies a heartbeat sent with `token`; returns the node's status afterwards.
    pub fn heartbeat(
        &self,
        hb: Heartbeat,
        token: &str,
    ) -> Result<(NodeStatus, Option<Transition>), HeartbeatError> {
        let mut table = self.table();
        let entry = table
            .get_mut(hb.node_id.as_str())
            .ok_or_else(|| HeartbeatError::UnknownNode(hb.node_id.clone()))?;
        if !constant_time_eq(entry.token.as_bytes(), token.as_bytes()) {
            return Err(HeartbeatError::InvalidToken);
        }
        let node = &mut entry.node;
        let has_ready_model = hb.models.iter().any(|m| m.state == ModelState::Ready);
        let from = node.status;
        node.status = next_status(
            from,
            HealthEvent::Heartbeat { has_ready_model },
            &self.policy,
        );
        node.metrics = hb.metrics;
        node.models = hb.models;
        node.last_seen = Instant::now();
        let transition = (from != node.status).then(|| Transition {
            node_id: Arc::clone(&node.id),
            machine_name: node.machine_name.clone(),
            from,
            to: node.status,
        });
        let status = node.status;
        self.publish(&table);
        Ok((status, transition))
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
        let mut transitions = Vec::new();
        for entry in table.values_mut() {
            let node = &mut entry.node;
            let silent_for = now.saturating_duration_since(node.last_seen);
            let to = next_status(
                node.status,
                HealthEvent::Silent { silent_for },
                &self.policy,
            );
            if to != node.status {
                transitions.push(Transition {
                    node_id: Arc::clone(&node.id),
                    machine_name: node.machine_name.clone(),
                    from: node.status,
                    to,
                });
                node.status = to;
            }
        }
        if !transitions.is_empty() {
            self.publish(&table);
        }
        transitions
    }
}

/// A random secret: two v4 UUIDs (244 random bits), hex without dashes.
fn new_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Compares two secrets in time independent of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use llm_router_protocol::node::{Hardware, NodeMetrics, RuntimeInfo, RuntimeKind};

    use super::*;

    fn request(name: &str, models: &[(&str, ModelState)]) -> RegisterRequest {
        RegisterRequest {
            machine_name: name.into(),
            address: "127.0.0.1".into(),
            port: 9000,
            node_version: "test".into(),
            runtime: RuntimeInfo {
                kind: RuntimeKind::LlamaServer,
                version: None,
            },
            hardware: Hardware {
                cpu_cores: 2,
                memory_total_bytes: 1 << 30,
                gpus: vec![],
            },
            models: models.iter().map(|(n, s)| status(n, *s)).collect(),
        }
    }

    fn status(name: &str, state: ModelState) -> ModelStatus {
        ModelStatus {
            name: name.into(),
            state,
            slots_total: Some(2),
            slots_free: Some(2),
            error: None,
        }
    }

    fn registry() -> Registry {
        Registry::new(HealthPolicy {
            node_timeout: Duration::from_secs(30),
        })
    }

    #[test]
    fn node_without_ready_model_is_initializing_and_not_a_candidate() {
        let reg = registry();
        let r = reg.register(request("a", &[("m", ModelState::Loading)]), &[]);
        assert_eq!(r.status, NodeStatus::Initializing);
        assert_eq!(
            reg.snapshot().candidates("m").err(),
            Some(Unavailable::NoReadyNode)
        );
        assert_eq!(
            reg.snapshot().candidates("x").err(),
            Some(Unavailable::UnknownModel)
        );
    }

    #[test]
    fn heartbeat_with_ready_model_makes_node_a_candidate() {
        let reg = registry();
        let r = reg.register(request("a", &[("m", ModelState::Loading)]), &[]);
        let hb = Heartbeat {
            node_id: r.node_id.clone(),
            metrics: NodeMetrics::default(),
            models: vec![status("m", ModelState::Ready)],
        };
        let (st, transition) = reg.heartbeat(hb, &r.node_token).unwrap();
        assert_eq!(st, NodeStatus::Online);
        assert_eq!(transition.unwrap().to, NodeStatus::Online);
        assert_eq!(reg.snapshot().candidates("m").unwrap().len(), 1);
    }

    #[test]
    fn heartbeat_needs_the_node_token() {
        let reg = registry();
        let r = reg.register(request("a", &[]), &["m".into()]);
        let hb = Heartbeat {
            node_id: r.node_id.clone(),
            metrics: NodeMetrics::default(),
            models: vec![],
        };
        assert_eq!(
            reg.heartbeat(hb.clone(), "wrong"),
            Err(HeartbeatError::InvalidToken)
        );
        let unknown = Heartbeat {
            node_id: "nope".into(),
            ..hb
        };
        assert!(matches!(
            reg.heartbeat(unknown, &r.node_token),
            Err(HeartbeatError::UnknownNode(_))
        ));
    }

    #[test]
    fn re_registering_a_machine_keeps_its_id() {
        let reg = registry();
        let first = reg.register(request("a", &[]), &["m".into()]);
        let second = reg.register(request("a", &[]), &["m".into()]);
        assert_eq!(first.node_id, second.node_id);
        assert!(second.updated);
        assert_ne!(first.node_token, second.node_token);
        assert_eq!(reg.snapshot().nodes().len(), 1);
    }

    #[test]
    fn silent_node_goes_offline_on_sweep_and_leaves_rotation() {
        let reg = registry();
        reg.register(request("a", &[]), &["m".into()]);
        assert!(reg.sweep(Instant::now()).is_empty());
        let later = Instant::now() + Duration::from_secs(31);
        let t = reg.sweep(later);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].to, NodeStatus::Offline);
        assert_eq!(
            reg.snapshot().candidates("m").err(),
            Some(Unavailable::NoReadyNode)
        );
    }

    #[test]
    fn model_listed_once_across_nodes() {
        let reg = registry();
        reg.register(request("a", &[]), &["m".into()]);
        reg.register(request("b", &[]), &["m".into()]);
        assert_eq!(reg.snapshot().ready_models(), vec!["m"]);
        assert_eq!(reg.snapshot().candidates("m").unwrap().len(), 2);
    }

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
