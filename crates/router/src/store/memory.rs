//! The in-memory twin of the SQLite store: same behaviour, nothing on disk. Used by tests, and by
//! the router when history is turned off (`--database-url memory:`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{
    ApiKeyRow, Credentials, MetricSample, NodeRow, Page, RequestQuery, RequestRecord,
    RequestSummary, SessionRow, SpendRow, Store, StoreError, StoreOp, TaskRow, UserRow,
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
    users: BTreeMap<String, UserRow>,
    sessions: HashMap<String, SessionRow>,
    api_keys: BTreeMap<String, ApiKeyRow>,
    settings: BTreeMap<String, String>,
    tasks: HashMap<String, TaskRow>,
    key_spend: BTreeMap<(String, String), u64>,
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

impl Tables {
    /// Applies one operation, as the SQLite store's statement for it would.
    fn apply(&mut self, op: &StoreOp) {
        match op {
            StoreOp::Request(r) => self.insert_request(r),
            StoreOp::Metrics(m) => {
                self.metrics.insert((m.node_id.clone(), m.at_ms), m.clone());
            }
            StoreOp::UpsertNode(n) => self.upsert_node(n),
            StoreOp::DeleteNode(id) => {
                self.nodes.remove(id);
            }
            StoreOp::UpsertUser(u) => self.upsert_user(u),
            StoreOp::DeleteUser(id) => {
                self.users.remove(id);
                self.sessions.retain(|_, s| &s.user_id != id);
            }
            StoreOp::InsertSession(s) => {
                self.sessions.insert(s.token_hash.clone(), (**s).clone());
            }
            StoreOp::DeleteSession(hash) => {
                self.sessions.remove(hash);
            }
            StoreOp::DeleteSessionsOf(user_id) => {
                self.sessions.retain(|_, s| &s.user_id != user_id);
            }
            StoreOp::UpsertApiKey(k) => self.upsert_api_key(k),
            StoreOp::TouchApiKey { id, at_ms } => self.touch_api_key(id, *at_ms),
            StoreOp::SetSetting { key, value } => {
                self.settings.insert(key.clone(), value.clone());
            }
            StoreOp::UpsertTask(task) => {
                self.tasks.insert(task.id.clone(), (**task).clone());
            }
            StoreOp::AddSpend {
                key_id,
                period,
                tokens,
            } => {
                *self
                    .key_spend
                    .entry((key_id.clone(), period.clone()))
                    .or_default() += tokens;
            }
        }
    }

    /// A request id already stored is kept as it is.
    fn insert_request(&mut self, r: &RequestRecord) {
        if self.request_keys.contains_key(&r.id) {
            return;
        }
        self.inserted += 1;
        let key = (r.at_ms, self.inserted);
        self.request_keys.insert(r.id.clone(), key);
        self.requests.insert(key, r.clone());
    }

    /// Another node of the same machine is replaced; the first-seen time of an existing row is
    /// kept.
    fn upsert_node(&mut self, n: &NodeRow) {
        let first_seen = self
            .nodes
            .get(&n.id)
            .map_or(n.first_seen_ms, |old| old.first_seen_ms);
        self.nodes
            .retain(|id, old| id == &n.id || old.machine_name != n.machine_name);
        self.nodes.insert(
            n.id.clone(),
            NodeRow {
                first_seen_ms: first_seen,
                ..n.clone()
            },
        );
    }

    /// Keeps the creation time of an existing user.
    fn upsert_user(&mut self, u: &UserRow) {
        let created_ms = self
            .users
            .get(&u.id)
            .map_or(u.created_ms, |old| old.created_ms);
        self.users.insert(
            u.id.clone(),
            UserRow {
                created_ms,
                ..u.clone()
            },
        );
    }

    /// The key's last use never moves back.
    fn upsert_api_key(&mut self, k: &ApiKeyRow) {
        let last_used_ms = self
            .api_keys
            .get(&k.id)
            .and_then(|old| old.last_used_ms)
            .max(k.last_used_ms);
        self.api_keys.insert(
            k.id.clone(),
            ApiKeyRow {
                last_used_ms,
                ..k.clone()
            },
        );
    }

    fn touch_api_key(&mut self, id: &str, at_ms: u64) {
        if let Some(key) = self.api_keys.get_mut(id) {
            key.last_used_ms = key.last_used_ms.max(Some(at_ms));
        }
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn apply(&self, ops: &[StoreOp]) -> Result<(), StoreError> {
        let mut t = self.tables();
        for op in ops {
            t.apply(op);
        }
        Ok(())
    }

    async fn credentials(&self, now_ms: u64) -> Result<Credentials, StoreError> {
        let mut t = self.tables();
        t.sessions.retain(|_, s| s.expires_ms > now_ms);
        let mut users: Vec<UserRow> = t.users.values().cloned().collect();
        users.sort_by(|a, b| a.username.cmp(&b.username));
        let mut api_keys: Vec<ApiKeyRow> = t.api_keys.values().cloned().collect();
        api_keys.sort_by_key(|k| k.created_ms);
        Ok(Credentials {
            users,
            sessions: t.sessions.values().cloned().collect(),
            api_keys,
            settings: t
                .settings
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            key_spend: t
                .key_spend
                .iter()
                .map(|((key_id, period), tokens)| SpendRow {
                    key_id: key_id.clone(),
                    period: period.clone(),
                    tokens: *tokens,
                })
                .collect(),
        })
    }

    async fn tasks(&self, limit: u32) -> Result<Vec<TaskRow>, StoreError> {
        let mut tasks: Vec<TaskRow> = self.tables().tasks.values().cloned().collect();
        tasks.sort_by(|a, b| (b.created_ms, &b.id).cmp(&(a.created_ms, &a.id)));
        tasks.truncate(limit as usize);
        Ok(tasks)
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
