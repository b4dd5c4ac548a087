//! Model download tasks: one per (node, model) the router asked a node to pull. Nodes report
//! progress with their node token; the API and the dashboard read it here. Tasks are kept in
//! memory (newest [`KEPT`]) and written through the store's writer to `download_tasks`.

mod distribute;
mod error;

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::SystemTime;

use llm_router_protocol::node::{TaskProgress, TaskStatus};
use serde::Serialize;

use crate::live::Feed;
use crate::store::{HistorySink, StoreOp, TaskRow, unix_ms};

pub use distribute::Distributor;
pub use error::TaskError;

/// Tasks kept in memory and restored at start-up.
pub const KEPT: u32 = 1000;

/// A task as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Task {
    pub id: String,
    pub node_id: String,
    pub node_name: Option<String>,
    pub model: String,
    pub status: TaskStatus,
    pub bytes_done: u64,
    pub bytes_total: Option<u64>,
    /// `bytes_done / bytes_total` in percent, when the total is known.
    pub percent: Option<f64>,
    pub bytes_per_sec: u64,
    pub error: Option<String>,
    /// Why the router ordered it.
    pub reason: Option<String>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
}

impl Task {
    fn row(&self) -> TaskRow {
        TaskRow {
            id: self.id.clone(),
            node_id: self.node_id.clone(),
            node_name: self.node_name.clone(),
            model: self.model.clone(),
            status: self.status.as_str().to_owned(),
            bytes_done: self.bytes_done,
            bytes_total: self.bytes_total,
            bytes_per_sec: self.bytes_per_sec,
            error: self.error.clone(),
            reason: self.reason.clone(),
            created_ms: self.created_at_ms,
            updated_ms: self.updated_at_ms,
        }
    }

    fn from_row(row: TaskRow) -> Option<Task> {
        let mut task = Task {
            id: row.id,
            node_id: row.node_id,
            node_name: row.node_name,
            model: row.model,
            status: TaskStatus::parse(&row.status)?,
            bytes_done: row.bytes_done,
            bytes_total: row.bytes_total,
            percent: None,
            bytes_per_sec: row.bytes_per_sec,
            error: row.error,
            reason: row.reason,
            created_at_ms: row.created_ms,
            updated_at_ms: row.updated_ms,
        };
        task.percent = percent(task.bytes_done, task.bytes_total);
        Some(task)
    }
}

fn percent(done: u64, total: Option<u64>) -> Option<f64> {
    total
        .filter(|&t| t > 0)
        .map(|t| (done as f64 / t as f64 * 100.0).min(100.0))
}

pub struct Tasks {
    tasks: RwLock<HashMap<String, Task>>,
    sink: HistorySink,
    events: Arc<Feed>,
}

impl Tasks {
    /// Tasks restored from the store; those that were still running are failed (their nodes
    /// re-register and may be placed again).
    pub fn new(sink: HistorySink, restored: Vec<TaskRow>, events: Arc<Feed>) -> Tasks {
        let tasks = Tasks {
            tasks: RwLock::default(),
            sink,
            events,
        };
        let mut map = HashMap::new();
        for row in restored {
            if let Some(mut task) = Task::from_row(row) {
                if !task.status.is_final() {
                    task.status = TaskStatus::Failed;
                    task.error = Some("the router restarted while the task ran".to_owned());
                }
                map.insert(task.id.clone(), task);
            }
        }
        *tasks.tasks.write().unwrap_or_else(PoisonError::into_inner) = map;
        tasks
    }

    /// A new `pending` task.
    pub fn create(&self, node_id: &str, node_name: &str, model: &str, reason: &str) -> Task {
        let now = unix_ms(SystemTime::now());
        let task = Task {
            id: uuid::Uuid::new_v4().to_string(),
            node_id: node_id.to_owned(),
            node_name: Some(node_name.to_owned()),
            model: model.to_owned(),
            status: TaskStatus::Pending,
            bytes_done: 0,
            bytes_total: None,
            percent: None,
            bytes_per_sec: 0,
            error: None,
            reason: Some(reason.to_owned()),
            created_at_ms: now,
            updated_at_ms: now,
        };
        self.store(task.clone());
        task
    }

    /// The unfinished task pulling `model` to `node_id`, if any.
    pub fn active(&self, node_id: &str, model: &str) -> Option<Task> {
        self.read()
            .values()
            .find(|t| t.node_id == node_id && t.model == model && !t.status.is_final())
            .cloned()
    }

    pub fn get(&self, id: &str) -> Option<Task> {
        self.read().get(id).cloned()
    }

    /// Every task, newest first.
    pub fn list(&self) -> Vec<Task> {
        let mut tasks: Vec<Task> = self.read().values().cloned().collect();
        tasks.sort_by(|a, b| (b.created_at_ms, &b.id).cmp(&(a.created_at_ms, &a.id)));
        tasks
    }

    /// Applies a node's report. The node must own the task; a final task stays as it is.
    pub fn report(&self, id: &str, progress: TaskProgress) -> Result<Task, TaskError> {
        let mut tasks = self.tasks.write().unwrap_or_else(PoisonError::into_inner);
        let task = tasks
            .get_mut(id)
            .ok_or_else(|| TaskError::NotFound(id.to_owned()))?;
        if task.node_id != progress.node_id {
            return Err(TaskError::OtherNode(id.to_owned()));
        }
        if task.status.is_final() {
            return Ok(task.clone());
        }
        task.status = progress.status;
        if progress.bytes_done > 0 || progress.bytes_total.is_some() {
            task.bytes_done = progress.bytes_done;
            task.bytes_total = progress.bytes_total.or(task.bytes_total);
        }
        if progress.status == TaskStatus::Ready {
            task.bytes_done = task.bytes_total.unwrap_or(task.bytes_done);
        }
        task.percent = percent(task.bytes_done, task.bytes_total);
        task.bytes_per_sec = progress.bytes_per_sec;
        task.error = progress.error;
        task.updated_at_ms = unix_ms(SystemTime::now());
        let task = task.clone();
        drop(tasks);
        self.sink.send(StoreOp::UpsertTask(Box::new(task.row())));
        self.events.task(&task);
        Ok(task)
    }

    /// Marks a task failed by the router itself (the node refused or could not be reached).
    pub fn fail(&self, id: &str, error: &str) -> Option<Task> {
        let mut tasks = self.tasks.write().unwrap_or_else(PoisonError::into_inner);
        let task = tasks.get_mut(id)?;
        task.status = TaskStatus::Failed;
        task.error = Some(error.to_owned());
        task.updated_at_ms = unix_ms(SystemTime::now());
        let task = task.clone();
        drop(tasks);
        self.sink.send(StoreOp::UpsertTask(Box::new(task.row())));
        self.events.task(&task);
        Some(task)
    }

    fn store(&self, task: Task) {
        self.sink.send(StoreOp::UpsertTask(Box::new(task.row())));
        self.events.task(&task);
        let mut tasks = self.tasks.write().unwrap_or_else(PoisonError::into_inner);
        if tasks.len() >= KEPT as usize
            && let Some(oldest) = tasks
                .values()
                .filter(|t| t.status.is_final())
                .min_by_key(|t| t.created_at_ms)
                .map(|t| t.id.clone())
        {
            tasks.remove(&oldest);
        }
        tasks.insert(task.id.clone(), task);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Task>> {
        self.tasks.read().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(node_id: &str, status: TaskStatus, done: u64, total: Option<u64>) -> TaskProgress {
        TaskProgress {
            node_id: node_id.into(),
            status,
            bytes_done: done,
            bytes_total: total,
            bytes_per_sec: 10,
            error: None,
        }
    }

    fn tasks() -> Tasks {
        let (sink, _rx) = HistorySink::channel(64);
        Tasks::new(sink, Vec::new(), Arc::default())
    }

    #[test]
    fn progress_sets_percent_and_only_the_owner_may_report() {
        let tasks = tasks();
        let task = tasks.create("n1", "node-1", "m", "placement");
        assert_eq!(tasks.active("n1", "m").map(|t| t.id), Some(task.id.clone()));
        let t = tasks
            .report(
                &task.id,
                report("n1", TaskStatus::Downloading, 25, Some(100)),
            )
            .unwrap();
        assert_eq!(t.percent, Some(25.0));
        assert!(matches!(
            tasks.report(&task.id, report("n2", TaskStatus::Ready, 0, None)),
            Err(TaskError::OtherNode(_))
        ));
        assert!(matches!(
            tasks.report("nope", report("n1", TaskStatus::Ready, 0, None)),
            Err(TaskError::NotFound(_))
        ));
        let t = tasks
            .report(&task.id, report("n1", TaskStatus::Ready, 0, None))
            .unwrap();
        assert_eq!((t.status, t.percent), (TaskStatus::Ready, Some(100.0)));
        assert!(tasks.active("n1", "m").is_none());
        // A final task stays final.
        let t = tasks
            .report(
                &task.id,
                report("n1", TaskStatus::Downloading, 1, Some(100)),
            )
            .unwrap();
        assert_eq!(t.status, TaskStatus::Ready);
    }

    #[test]
    fn tasks_running_when_the_router_stopped_come_back_failed() {
        let (sink, _rx) = HistorySink::channel(64);
        let running = tasks().create("n1", "node-1", "m", "r").row();
        let tasks = Tasks::new(sink, vec![running.clone()], Arc::default());
        let t = tasks.get(&running.id).unwrap();
        assert_eq!(t.status, TaskStatus::Failed);
        assert!(t.error.unwrap().contains("restarted"));
    }
}
