//! Prometheus metrics, in one place, recorded through `record_*` helpers.
//!
//! Labels are low-cardinality only: the API, a model name the fleet knows (anything else is
//! `other`), a node's machine name, a status code. Never raw user input.

use std::sync::atomic::Ordering;
use std::time::Duration;

use llm_router_protocol::node::NodeStatus;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry as PromRegistry;

use crate::registry::Snapshot;
use crate::store::HistorySink;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub api: &'static str,
    pub model: String,
    pub node: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiModelLabels {
    pub api: &'static str,
    pub model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabels {
    node: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: &'static str,
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    [
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    ]
    .into_iter()
}

/// Tokens, for the affinity prediction error: from a block's worth to a long prompt.
fn token_buckets() -> impl Iterator<Item = f64> {
    [16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0].into_iter()
}

fn overhead_buckets() -> impl Iterator<Item = f64> {
    [
        0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01,
    ]
    .into_iter()
}

pub struct Metrics {
    registry: PromRegistry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<ApiModelLabels, Histogram>,
    ttfb: Family<ApiModelLabels, Histogram>,
    overhead: Histogram,
    queue_wait: Histogram,
    heartbeats: Counter,
    in_flight: Gauge,
    queue_depth: Gauge,
    node_up: Family<NodeLabels, Gauge>,
    nodes: Family<StatusLabels, Gauge>,
    history_written: Gauge,
    history_dropped: Gauge,
    history_failed: Gauge,
    affinity_overpredicted: Histogram,
    affinity_underpredicted: Histogram,
    node_prompt_tokens: Family<NodeLabels, Gauge>,
    node_cached_tokens: Family<NodeLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = PromRegistry::with_prefix("llm_router");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Inference requests by API, model, node and status",
            requests.clone(),
        );
        let latency = Family::<ApiModelLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(latency_buckets())
        });
        registry.register(
            "request_duration_seconds",
            "Time from request to the end of the answer",
            latency.clone(),
        );
        let ttfb = Family::<ApiModelLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(latency_buckets())
        });
        registry.register(
            "time_to_first_byte_seconds",
            "Time from request to the first byte of the answer",
            ttfb.clone(),
        );
        let overhead = Histogram::new(overhead_buckets());
        registry.register(
            "overhead_seconds",
            "Time spent in the router before the request left for a node, queue wait excluded",
            overhead.clone(),
        );
        let queue_wait = Histogram::new(latency_buckets());
        registry.register(
            "queue_wait_seconds",
            "Time requests waited for a free slot",
            queue_wait.clone(),
        );
        let heartbeats = Counter::default();
        registry.register("heartbeats", "Heartbeats accepted", heartbeats.clone());
        let in_flight = Gauge::default();
        registry.register(
            "in_flight",
            "Requests being served by nodes",
            in_flight.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Requests waiting for a slot",
            queue_depth.clone(),
        );
        let node_up = Family::<NodeLabels, Gauge>::default();
        registry.register("node_up", "1 when the node is online", node_up.clone());
        let nodes = Family::<StatusLabels, Gauge>::default();
        registry.register("nodes", "Nodes by status", nodes.clone());
        let history_written = Gauge::default();
        registry.register(
            "history_rows_written",
            "History rows written to the store",
            history_written.clone(),
        );
        let history_dropped = Gauge::default();
        registry.register(
            "history_rows_dropped",
            "History rows dropped because the writer was behind",
            history_dropped.clone(),
        );
        let history_failed = Gauge::default();
        registry.register(
            "history_rows_failed",
            "History rows lost to store errors",
            history_failed.clone(),
        );
        let affinity_overpredicted = Histogram::new(token_buckets());
        registry.register(
            "affinity_overpredicted_tokens",
            "Prompt tokens cache_aware expected a node to reuse beyond what it reported reusing",
            affinity_overpredicted.clone(),
        );
        let affinity_underpredicted = Histogram::new(token_buckets());
        registry.register(
            "affinity_underpredicted_tokens",
            "Prompt tokens a node reported reusing beyond what cache_aware expected",
            affinity_underpredicted.clone(),
        );
        let node_prompt_tokens = Family::<NodeLabels, Gauge>::default();
        registry.register(
            "node_prompt_tokens",
            "Prompt tokens of the answers that reported their cache use, per node",
            node_prompt_tokens.clone(),
        );
        let node_cached_tokens = Family::<NodeLabels, Gauge>::default();
        registry.register(
            "node_cached_prompt_tokens",
            "Of those, the prompt tokens the node reused from its cache (hit rate: this / node_prompt_tokens)",
            node_cached_tokens.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            ttfb,
            overhead,
            queue_wait,
            heartbeats,
            in_flight,
            queue_depth,
            node_up,
            nodes,
            history_written,
            history_dropped,
            history_failed,
            affinity_overpredicted,
            affinity_underpredicted,
            node_prompt_tokens,
            node_cached_tokens,
        }
    }

    /// How far cache_aware's expectation of a node's reuse was from what the node reported, in
    /// tokens (one of the two histograms gets the difference, none when they agree).
    pub fn record_affinity_prediction(&self, predicted: u64, reported: u64) {
        if predicted > reported {
            self.affinity_overpredicted
                .observe((predicted - reported) as f64);
        } else if reported > predicted {
            self.affinity_underpredicted
                .observe((reported - predicted) as f64);
        }
    }

    /// A finished request. `model` must already be a fleet-known name or `other`.
    pub fn record_request(
        &self,
        labels: RequestLabels,
        latency: Duration,
        ttfb: Option<Duration>,
        queue_wait: Duration,
    ) {
        let by_model = ApiModelLabels {
            api: labels.api,
            model: labels.model.clone(),
        };
        self.latency
            .get_or_create(&by_model)
            .observe(latency.as_secs_f64());
        if let Some(ttfb) = ttfb {
            self.ttfb
                .get_or_create(&by_model)
                .observe(ttfb.as_secs_f64());
        }
        if !queue_wait.is_zero() {
            self.queue_wait.observe(queue_wait.as_secs_f64());
        }
        self.requests.get_or_create(&labels).inc();
    }

    pub fn record_overhead(&self, overhead: Duration) {
        self.overhead.observe(overhead.as_secs_f64());
    }

    pub fn record_heartbeat(&self) {
        self.heartbeats.inc();
    }

    /// The text exposition, with fleet gauges read at scrape time.
    pub fn render(&self, snapshot: &Snapshot, queue_depth: usize, sink: &HistorySink) -> String {
        let mut in_flight = 0i64;
        self.node_up.clear();
        self.node_prompt_tokens.clear();
        self.node_cached_tokens.clear();
        let mut by_status = [0i64; 4];
        for node in snapshot.nodes() {
            in_flight += i64::from(node.counters.in_flight());
            self.node_up
                .get_or_create(&NodeLabels {
                    node: node.machine_name.clone(),
                })
                .set(i64::from(node.status == NodeStatus::Online));
            let cache = node.counters.cache.summary();
            if cache.prompt_tokens > 0 {
                let labels = NodeLabels {
                    node: node.machine_name.clone(),
                };
                let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
                self.node_prompt_tokens
                    .get_or_create(&labels)
                    .set(gauge(cache.prompt_tokens));
                self.node_cached_tokens
                    .get_or_create(&labels)
                    .set(gauge(cache.cached_tokens));
            }
            by_status[status_index(node.status)] += 1;
        }
        for status in [
            NodeStatus::Initializing,
            NodeStatus::Online,
            NodeStatus::Suspect,
            NodeStatus::Offline,
        ] {
            self.nodes
                .get_or_create(&StatusLabels {
                    status: status.as_str(),
                })
                .set(by_status[status_index(status)]);
        }
        self.in_flight.set(in_flight);
        self.queue_depth
            .set(i64::try_from(queue_depth).unwrap_or(i64::MAX));
        let c = sink.counters();
        let load = |a: &std::sync::atomic::AtomicU64| {
            i64::try_from(a.load(Ordering::Relaxed)).unwrap_or(i64::MAX)
        };
        self.history_written.set(load(&c.written));
        self.history_dropped.set(load(&c.dropped));
        self.history_failed.set(load(&c.failed));
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            tracing::error!("encoding metrics failed");
        }
        out
    }
}

fn status_index(status: NodeStatus) -> usize {
    match status {
        NodeStatus::Initializing => 0,
        NodeStatus::Online => 1,
        NodeStatus::Suspect => 2,
        NodeStatus::Offline => 3,
    }
}
