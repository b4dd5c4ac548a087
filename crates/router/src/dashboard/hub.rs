//! The task that turns fleet changes into frames: it diffs the registry's nodes after each
//! change (coalesced) and sends the header figures every second while a socket listens.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use llm_router_protocol::node::NodeStatus;
use tokio_util::sync::CancellationToken;

use crate::live::{Frame, LiveStats, NodeCounts};
use crate::registry::{NodeSummary, Snapshot};
use crate::state::AppState;
use crate::store::unix_ms;

/// How often the header figures are sent.
const STATS_PERIOD: Duration = Duration::from_secs(1);
/// Registry changes closer together than this are sent as one diff.
const COALESCE: Duration = Duration::from_millis(100);

/// The header figures now.
pub fn live_stats(state: &AppState) -> LiveStats {
    let now = unix_ms(SystemTime::now());
    let figures = state.events.figures(now);
    LiveStats {
        nodes: counts(&state.registry.snapshot()),
        requests_total: figures.total,
        requests_per_minute: figures.per_minute,
        success_rate: figures.hour.success_rate,
        avg_latency_ms: figures.hour.avg_latency_ms,
        p95_latency_ms: figures.hour.p95_latency_ms,
        queue_depth: state.dispatcher.stats().depth,
        at_ms: now,
    }
}

fn counts(snapshot: &Snapshot) -> NodeCounts {
    let mut counts = NodeCounts::default();
    for node in snapshot.nodes() {
        counts.total += 1;
        counts.draining += usize::from(node.draining);
        match node.status {
            NodeStatus::Online => counts.online += 1,
            NodeStatus::Offline => counts.offline += 1,
            NodeStatus::Initializing => counts.initializing += 1,
            NodeStatus::Suspect => counts.suspect += 1,
        }
    }
    counts
}

/// Runs until `stop`: node frames after each registry change, stats every second.
pub async fn run_hub(state: AppState, stop: CancellationToken) {
    let mut versions = state.registry.subscribe();
    let mut tick = tokio::time::interval(STATS_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut known = Fleet::default();
    known.diff(&state.registry.snapshot(), |_| {});
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            changed = versions.changed() => {
                if changed.is_err() {
                    return;
                }
                tokio::time::sleep(COALESCE).await;
                versions.mark_unchanged();
                let snapshot = state.registry.snapshot();
                let events = &state.events;
                let mut sent = false;
                known.diff(&snapshot, |frame| {
                    sent = true;
                    events.publish(&frame);
                });
                // The node counts of the header change with the nodes, not a second later.
                if sent {
                    publish_stats(&state);
                }
            }
            _ = tick.tick() => publish_stats(&state),
        }
    }
}

fn publish_stats(state: &AppState) {
    if state.events.watched() {
        let stats = live_stats(state);
        state.events.publish(&Frame::Stats { stats: &stats });
    }
}

/// The nodes as last sent, to tell what changed.
#[derive(Default)]
struct Fleet {
    nodes: HashMap<String, NodeSummary>,
}

impl Fleet {
    fn diff(&mut self, snapshot: &Snapshot, mut send: impl FnMut(Frame<'_>)) {
        let mut seen = HashMap::with_capacity(snapshot.nodes().len());
        for node in snapshot.nodes() {
            let summary = node.summary();
            // The age of the last heartbeat grows by itself; sockets count it up.
            let key = NodeSummary {
                last_seen_secs_ago: 0.0,
                ..summary.clone()
            };
            match self.nodes.remove(&summary.id) {
                None => send(Frame::NodeJoined { node: &summary }),
                Some(old) if old != key => send(Frame::NodeChanged { node: &summary }),
                Some(_) => {}
            }
            seen.insert(summary.id.clone(), key);
        }
        for id in self.nodes.keys() {
            send(Frame::NodeLeft { id });
        }
        self.nodes = seen;
    }
}
