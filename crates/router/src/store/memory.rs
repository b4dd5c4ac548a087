//! The in-memory twin of the SQLite store: same behaviour, nothing on disk. Used by tests, and by
//! the router when history is turned off (`--database-url memory:`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{
    MetricSample, NodeRow, Page, RequestQuery, RequestRecord, RequestSummary, Store, StoreError,
    StoreOp,
};

#[derive(Default)]
struct Tables {
    nodes: HashMap<String, NodeRow>,
    /// Keyed by (at_ms, insertion number) so equal times keep their order.
    requests: BTreeMap<(u64, u64), RequestRecord>,
    /// Request id to its key in `requests`.
    request_keys: HashMap<String, (u64, u64)>,
    metrics: BTreeMap<(String, u64), MetricSample>,
    inserted: u64,
}

#[derive(Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn tables(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn apply(&self, ops: &[StoreOp]) -> Result<(), StoreError> {
        let mut t = self.tables();
        for op in ops {
            match op {
                StoreOp::Request(r) => {
                    if t.request_keys.contains_key(&r.id) {
                        continue;
                    }
                    t.inserted += 1;
                    let key = (r.at_ms, t.inserted);
                    t.request_keys.insert(r.id.clone(), key);
                    t.requests.insert(key, (**r).clone());
                }
                StoreOp::Metrics(m) => {
                    t.metrics.insert((m.node_id.clone(), m.at_ms), m.clone());
                }
                StoreOp::UpsertNode(n) => {
                    let first_seen = t
                        .nodes
                        .get(&n.id)
                        .map_or(n.first_seen_ms, |old| old.first_seen_ms);
                    t.nodes
                        .retain(|id, old| id == &n.id || old.machine_name != n.machine_name);
                    t.nodes.insert(
                        n.id.clone(),
                        NodeRow {
                            first_seen_ms: first_seen,
                            ..(**n).clone()
                        },
                    );
                }
                StoreOp::DeleteNode(id) => {
                    t.nodes.remove(id);
                }
            }
        }
        Ok(())
    }

    async fn nodes(&self) -> Result<Vec<NodeRow>, StoreError> {
        let mut nodes: Vec<NodeRow> = self.tables().nodes.values().cloned().collect();
        nodes.sort_by(|a, b| a.machine_name.cmp(&b.machine_name));
        Ok(nodes)
    }

    async fn requests(&self, query: &RequestQuery) -> Result<Page<RequestRecord>, StoreError> {
        let t = self.tables();
        let matching: Vec<&RequestRecord> = t
            .requests
            .values()
            .rev()
            .filter(|r| query.matches(r))
            .collect();
        Ok(Page {
            total: matching.len() as u64,
            limit: query.limit(),
            offset: query.offset(),
            items: matching
                .into_iter()
                .skip(query.offset() as usize)
                .take(query.limit() as usize)
                .cloned()
                .collect(),
        })
    }

    async fn request(&self, id: &str) -> Result<Option<RequestRecord>, StoreError> {
        Ok(self
            .tables()
            .requests
            .values()
            .find(|r| r.id == id)
            .cloned())
    }

    async fn request_summaries(&self, since_ms: u64) -> Result<Vec<RequestSummary>, StoreError> {
        Ok(self
            .tables()
            .requests
            .range((since_ms, 0)..)
            .map(|(_, r)| RequestSummary {
                at_ms: r.at_ms,
                model: r.model.clone(),
                node_name: r.node_name.clone(),
                status: r.status,
                failed: !r.succeeded(),
                latency_ms: r.latency_ms,
            })
            .collect())
    }

    async fn metrics_history(
        &self,
        node_id: &str,
        since_ms: u64,
    ) -> Result<Vec<MetricSample>, StoreError> {
        Ok(self
            .tables()
            .metrics
            .range((node_id.to_owned(), since_ms)..)
            .take_while(|((id, _), _)| id == node_id)
            .map(|(_, m)| m.clone())
            .collect())
    }

    async fn prune(
        &self,
        metrics_before_ms: u64,
        requests_before_ms: u64,
    ) -> Result<u64, StoreError> {
        let mut t = self.tables();
        let before = t.metrics.len() + t.requests.len();
        t.metrics.retain(|(_, at), _| *at >= metrics_before_ms);
        t.requests.retain(|(at, _), _| *at >= requests_before_ms);
        t.request_keys
            .retain(|_, (at, _)| *at >= requests_before_ms);
        Ok((before - t.metrics.len() - t.requests.len()) as u64)
    }
}
