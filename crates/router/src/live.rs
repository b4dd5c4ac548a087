//! The live feed: what just happened in the router, for whoever watches (today the dashboard's
//! sockets). Producers below the edge publish into it — the history recorder each finished request,
//! the download tasks their progress, the dashboard's hub the fleet changes — and subscribers get
//! every frame serialized once, built only while someone listens. It also keeps the window of
//! recent requests the live figures are computed from.
//!
//! It sits below its producers and imports none of them: items it does not own (download tasks)
//! arrive as JSON values.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::registry::NodeSummary;
use crate::stats::Figures;
use crate::store::RequestRecord;

/// Frames a socket may fall behind by before it is told to resynchronise.
const BACKLOG: usize = 4096;
/// Requests of the last hour kept for the live figures; beyond, the oldest are forgotten early.
const WINDOW_MAX: usize = 100_000;
const HOUR_MS: u64 = 3_600_000;
const MINUTE_MS: u64 = 60_000;

/// One message on `/ws/dashboard`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Frame<'a> {
    /// The first frame on a socket: the whole picture.
    Hello {
        user: UserInfo<'a>,
        nodes: Vec<NodeSummary>,
        /// The download tasks, as `GET /api/tasks` shows them.
        tasks: serde_json::Value,
        stats: &'a LiveStats,
    },
    NodeJoined {
        node: &'a NodeSummary,
    },
    /// Status, metrics, models, in-flight requests or draining changed.
    NodeChanged {
        node: &'a NodeSummary,
    },
    NodeLeft {
        id: &'a str,
    },
    /// A request finished (bodies are never sent).
    Request {
        request: &'a RequestRecord,
    },
    /// A download task was created or progressed.
    Task {
        task: serde_json::Value,
    },
    /// The header figures, every second.
    Stats {
        stats: &'a LiveStats,
    },
    /// The socket fell behind and frames were lost: fetch the state again.
    Resync,
}

impl Frame<'_> {
    pub fn encode(&self) -> Utf8Bytes {
        // Serializing these plain structs cannot fail; an empty frame would be ignored anyway.
        Utf8Bytes::from(serde_json::to_string(self).unwrap_or_default())
    }
}

#[derive(Debug, Serialize)]
pub struct UserInfo<'a> {
    pub username: &'a str,
    pub role: &'static str,
}

/// Node counts by status.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NodeCounts {
    pub total: usize,
    pub online: usize,
    pub offline: usize,
    pub initializing: usize,
    pub suspect: usize,
    pub draining: usize,
}

/// The dashboard's header figures. Success rate and latencies cover the last hour, or the last
/// 100 000 requests when those are fewer.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LiveStats {
    pub nodes: NodeCounts,
    /// Every request in the history, including those before this start.
    pub requests_total: u64,
    pub requests_per_minute: u64,
    /// 0..=1; 1 when there were no requests.
    pub success_rate: f64,
    pub avg_latency_ms: f64,
    pub p95_latency_ms: f64,
    pub queue_depth: usize,
    pub at_ms: u64,
}

#[derive(Debug, Clone, Copy)]
struct Finished {
    at_ms: u64,
    latency_ms: f64,
    failed: bool,
}

#[derive(Debug, Default)]
struct Window {
    total: u64,
    recent: VecDeque<Finished>,
}

/// Request figures: all stored, the last minute, the last hour.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestFigures {
    pub total: u64,
    pub per_minute: u64,
    pub hour: Figures,
}

pub struct Feed {
    frames: broadcast::Sender<Utf8Bytes>,
    window: Mutex<Window>,
    /// Cancelled when the router shuts down: sockets say goodbye.
    closing: CancellationToken,
}

impl Default for Feed {
    fn default() -> Self {
        Feed {
            frames: broadcast::Sender::new(BACKLOG),
            window: Mutex::default(),
            closing: CancellationToken::new(),
        }
    }
}

impl Feed {
    pub fn closing(&self) -> CancellationToken {
        self.closing.clone()
    }

    /// Closes every socket (at shutdown).
    pub fn close(&self) {
        self.closing.cancel();
    }

    /// Frames published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Utf8Bytes> {
        self.frames.subscribe()
    }

    /// True when some socket listens (frames are only built then).
    pub fn watched(&self) -> bool {
        self.frames.receiver_count() > 0
    }

    pub fn publish(&self, frame: &Frame<'_>) {
        if self.watched() {
            // Err only means every socket closed meanwhile.
            let _ = self.frames.send(frame.encode());
        }
    }

    /// Seeds the window at start-up: the number of stored requests and those of the last hour.
    pub fn seed(&self, total: u64, last_hour: impl IntoIterator<Item = (u64, f64, bool)>) {
        let mut window = self.window();
        window.total = total;
        window.recent = last_hour
            .into_iter()
            .map(|(at_ms, latency_ms, failed)| Finished {
                at_ms,
                latency_ms,
                failed,
            })
            .collect();
        window
            .recent
            .make_contiguous()
            .sort_unstable_by_key(|f| f.at_ms);
        while window.recent.len() > WINDOW_MAX {
            window.recent.pop_front();
        }
    }

    /// A request finished: counted, and shown to the sockets without its bodies.
    pub fn request_finished(&self, record: &RequestRecord) {
        {
            let mut window = self.window();
            window.total += 1;
            if window.recent.len() >= WINDOW_MAX {
                window.recent.pop_front();
            }
            window.recent.push_back(Finished {
                at_ms: record.at_ms,
                latency_ms: record.latency_ms,
                failed: record.status >= 400 || record.error.is_some(),
            });
        }
        if self.watched() {
            let shown = RequestRecord {
                request_body: None,
                response_body: None,
                ..record.clone()
            };
            self.publish(&Frame::Request { request: &shown });
        }
    }

    /// A download task was created or progressed.
    pub fn task(&self, task: &impl Serialize) {
        if self.watched() {
            let task = serde_json::to_value(task).unwrap_or_default();
            self.publish(&Frame::Task { task });
        }
    }

    /// Figures of the last hour at `now_ms` (older requests are forgotten here).
    pub fn figures(&self, now_ms: u64) -> RequestFigures {
        let mut window = self.window();
        let hour_ago = now_ms.saturating_sub(HOUR_MS);
        while window.recent.front().is_some_and(|f| f.at_ms < hour_ago) {
            window.recent.pop_front();
        }
        let minute_ago = now_ms.saturating_sub(MINUTE_MS);
        // Newest last: the last minute is a suffix.
        let per_minute = window
            .recent
            .iter()
            .rev()
            .take_while(|f| f.at_ms >= minute_ago)
            .count() as u64;
        let hour = Figures::of(window.recent.iter().map(|f| (f.latency_ms, f.failed)));
        RequestFigures {
            total: window.total,
            per_minute,
            hour,
        }
    }

    fn window(&self) -> std::sync::MutexGuard<'_, Window> {
        self.window.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_cover_the_last_hour_and_minute() {
        let events = Feed::default();
        let now = 10 * HOUR_MS;
        events.seed(
            500,
            [
                (now - 2 * HOUR_MS, 1000.0, true),
                (now - 30 * MINUTE_MS, 10.0, false),
                (now - 30_000, 20.0, false),
                (now - 1_000, 30.0, true),
            ],
        );
        let f = events.figures(now);
        assert_eq!(f.total, 500);
        assert_eq!(f.per_minute, 2);
        assert!((f.hour.success_rate - 2.0 / 3.0).abs() < 1e-9);
        assert!((f.hour.avg_latency_ms - 20.0).abs() < 1e-9);
        assert_eq!(f.hour.p95_latency_ms, 30.0);
    }

    #[test]
    fn no_requests_is_full_success() {
        let f = Feed::default().figures(HOUR_MS);
        assert_eq!(f.hour.success_rate, 1.0);
        assert_eq!(f.per_minute, 0);
    }

    #[test]
    fn frames_are_tagged_by_type() {
        let text = Frame::NodeLeft { id: "n1" }.encode();
        assert_eq!(text.as_str(), r#"{"type":"node_left","id":"n1"}"#);
        assert_eq!(Frame::Resync.encode().as_str(), r#"{"type":"resync"}"#);
    }
}
