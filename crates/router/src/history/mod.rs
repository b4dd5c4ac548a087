//! Recording each inference request as it ends: a row for the history store and the Prometheus
//! figures. A [`Recording`] is opened when the request arrives, travels with it (into the relayed
//! body when there is one) and is written when dropped, so a request is recorded exactly once
//! whether it succeeds, is refused, fails mid-stream or is abandoned by its client.

mod usage;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::http::StatusCode;
use llm_router_common::text::{MAX_ERROR, MAX_NAME, cap_in_place, capped};

pub use usage::UsageTap;

use crate::affinity::{Affinity, PromptKey};
use crate::live::Feed;
use crate::metrics::{Metrics, RequestLabels};
use crate::quota::Ticket;
use crate::registry::{AnswerFigures, Node, Registry};
use crate::store::{Api, HistorySink, RequestRecord, Routing, StoreOp, unix_ms};

/// Bytes of a request or response body kept when bodies are stored.
const STORED_BODY_BYTES: usize = 8 * 1024;

/// Shared by all recordings: where rows and figures go.
pub struct Recorder {
    sink: HistorySink,
    metrics: Arc<Metrics>,
    registry: Arc<Registry>,
    events: Arc<Feed>,
    store_bodies: bool,
    /// Learns from each answer what its node reused of the prompt (when the request was routed by
    /// its prompt).
    affinity: Arc<Affinity>,
}

impl Recorder {
    /// The recorder; `affinity` learns what each answer's node reused of the prompt it was
    /// routed by.
    pub fn new(
        sink: HistorySink,
        metrics: Arc<Metrics>,
        registry: Arc<Registry>,
        events: Arc<Feed>,
        store_bodies: bool,
        affinity: Arc<Affinity>,
    ) -> Arc<Self> {
        Arc::new(Recorder {
            sink,
            metrics,
            registry,
            events,
            store_bodies,
            affinity,
        })
    }

    pub fn sink(&self) -> &HistorySink {
        &self.sink
    }

    /// Opens the recording of a request that just arrived.
    pub fn start(
        self: &Arc<Self>,
        api: Api,
        endpoint: &'static str,
        client: Option<String>,
    ) -> Recording {
        Recording {
            recorder: Arc::clone(self),
            api,
            endpoint,
            client,
            id: uuid::Uuid::new_v4().to_string(),
            started: Instant::now(),
            started_at: SystemTime::now(),
            model: String::new(),
            requested_model: None,
            streamed: false,
            request_body: None,
            node: None,
            routing: None,
            prompt: None,
            status: 0,
            queued: Duration::ZERO,
            first_byte: None,
            tap: UsageTap::default(),
            node_usage: None,
            error: None,
            completed: false,
            ticket: None,
        }
    }
}

/// One request on its way; recorded when dropped.
pub struct Recording {
    recorder: Arc<Recorder>,
    api: Api,
    endpoint: &'static str,
    client: Option<String>,
    id: String,
    started: Instant,
    started_at: SystemTime,
    model: String,
    /// The name asked for, when an alias or a fallback made `model` serve it.
    requested_model: Option<String>,
    streamed: bool,
    request_body: Option<String>,
    node: Option<(String, String)>,
    routing: Option<Routing>,
    /// The prompt key the request was routed by, for the feedback of its answer.
    prompt: Option<Arc<PromptKey>>,
    status: u16,
    queued: Duration,
    first_byte: Option<Duration>,
    tap: UsageTap,
    /// The node's own counts when the client got a translation of its answer.
    node_usage: Option<NodeUsage>,
    error: Option<String>,
    completed: bool,
    /// The key's admission (per-key limits): told the tokens used when the request ends.
    ticket: Option<Ticket>,
}

/// What the node itself said of an answer the client got translated.
enum NodeUsage {
    Stream(Box<UsageTap>),
    Whole(usage::Usage),
}

/// An error a request ended with before any answer: the status the client got, and the message.
pub trait Refusal: std::fmt::Display {
    fn status(&self) -> StatusCode;
}

impl Recording {
    /// What the request asked for, once its body was read. A model name over [`MAX_NAME`] bytes
    /// is kept cut (and marked): the row, the live feed and the stats groups hold that.
    pub fn request(&mut self, model: &str, streamed: bool, body: &[u8]) {
        self.model = capped(model, MAX_NAME).into_owned();
        self.streamed = streamed;
        if self.recorder.store_bodies {
            self.request_body = Some(truncated(body));
        }
    }

    /// The request asked for `requested`, which an alias or a fallback made `model` (given to
    /// [`request`](Self::request)) serve.
    pub fn requested_as(&mut self, requested: &str) {
        self.requested_model = Some(capped(requested, MAX_NAME).into_owned());
    }

    /// The request was admitted under its key's limits: `ticket` is held until the answer ends,
    /// then told the tokens the answer used.
    pub fn admitted(&mut self, ticket: Ticket) {
        self.ticket = Some(ticket);
    }

    /// The request was refused or failed before an answer started.
    pub fn failed(&mut self, error: &impl Refusal) {
        self.status = error.status().as_u16();
        let mut text = error.to_string();
        cap_in_place(&mut text, MAX_ERROR);
        self.error = Some(text);
        self.completed = true;
    }

    /// A node answered with `status` after the request waited `queued` for a slot and left the
    /// router at `sent_at`.
    pub fn answered(
        &mut self,
        node: &Node,
        status: StatusCode,
        queued: Duration,
        sent_at: Instant,
    ) {
        self.node = Some((node.id.to_string(), node.machine_name.clone()));
        self.status = status.as_u16();
        self.queued = queued;
        let overhead = sent_at
            .saturating_duration_since(self.started)
            .saturating_sub(queued);
        self.recorder.metrics.record_overhead(overhead);
    }

    /// How the node that answered was chosen, and the prompt key it was chosen by.
    pub fn routed(&mut self, routing: Routing, prompt: Option<Arc<PromptKey>>) {
        self.routing = Some(routing);
        self.prompt = prompt;
    }

    /// The router answered by itself, without a node (e.g. an Ollama "load model" request).
    pub fn answered_locally(&mut self, status: StatusCode) {
        self.status = status.as_u16();
    }

    /// A chunk of the answer went to the client.
    pub fn observe(&mut self, chunk: &[u8]) {
        if self.first_byte.is_none() {
            self.first_byte = Some(self.started.elapsed());
        }
        self.tap.observe(chunk);
    }

    /// A chunk of the node's own answer, when the client gets a translation of it: the node's
    /// counts (what it reused from its cache, its speeds) are read from its last bytes.
    pub fn observe_node(&mut self, chunk: &[u8]) {
        match &mut self.node_usage {
            Some(NodeUsage::Stream(tap)) => tap.observe(chunk),
            _ => {
                let mut tap = UsageTap::counts_only();
                tap.observe(chunk);
                self.node_usage = Some(NodeUsage::Stream(Box::new(tap)));
            }
        }
    }

    /// The node's whole answer, when the client gets a translation of it.
    pub fn node_answer(&mut self, body: &[u8]) {
        self.node_usage = Some(NodeUsage::Whole(usage::Usage::of_answer(body)));
    }

    /// The answer broke off (`error` is cut to [`MAX_ERROR`] bytes).
    pub fn broke(&mut self, mut error: String) {
        cap_in_place(&mut error, MAX_ERROR);
        self.error = Some(error);
        self.completed = true;
    }

    /// The answer ended normally.
    pub fn completed(&mut self) {
        self.completed = true;
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        let latency = self.started.elapsed();
        if !self.completed && self.error.is_none() {
            self.error = Some("the client closed the connection before the answer ended".into());
        }
        let usage = match self.node_usage.take() {
            None => self.tap.usage(),
            Some(NodeUsage::Whole(node)) => self.tap.usage().or_node(node),
            Some(NodeUsage::Stream(tap)) => self.tap.usage().or_node(tap.usage()),
        };
        if let Some(mut ticket) = self.ticket.take() {
            let tokens = u64::from(usage.prompt_tokens.unwrap_or(0))
                + u64::from(usage.completion_tokens.unwrap_or(0));
            ticket.spent(tokens);
        }
        let recorder = &self.recorder;
        let snapshot = recorder.registry.snapshot();
        let (node_id, node_name) = self.node.take().unzip();
        if let Some(node) = node_id.as_deref().and_then(|id| snapshot.node(id)) {
            self.learn(node, &usage);
        }
        recorder.metrics.record_request(
            RequestLabels {
                api: self.api.as_str(),
                model: if snapshot.knows_model(&self.model) {
                    self.model.clone()
                } else {
                    "other".to_owned()
                },
                node: node_name.clone().unwrap_or_else(|| "none".to_owned()),
                status: self.status,
            },
            latency,
            self.first_byte,
            self.queued,
        );
        let record = RequestRecord {
            id: std::mem::take(&mut self.id),
            at_ms: unix_ms(self.started_at),
            api: self.api,
            endpoint: self.endpoint.to_owned(),
            model: std::mem::take(&mut self.model),
            requested_model: self.requested_model.take(),
            node_id,
            node_name,
            status: self.status,
            latency_ms: ms(latency),
            ttfb_ms: self.first_byte.map(ms),
            queue_ms: ms(self.queued),
            prompt_tokens: usage.prompt_tokens,
            cached_tokens: usage.cached_tokens,
            completion_tokens: usage.completion_tokens,
            routing: self.routing.take(),
            streamed: self.streamed,
            error: self.error.take(),
            client: self.client.take(),
            request_body: self.request_body.take(),
            response_body: recorder
                .store_bodies
                .then(|| self.tap.head_text(STORED_BODY_BYTES)),
        };
        recorder.events.request_finished(&record);
        recorder.sink.send(StoreOp::Request(Box::new(record)));
    }
}

impl Recording {
    /// What the answer said of `node`'s cache and speed goes to its counters and to the affinity
    /// tracker (which corrects what it believed the node held).
    fn learn(&self, node: &Node, usage: &usage::Usage) {
        let figures = AnswerFigures {
            prompt_tokens: usage.prompt_tokens.map(u64::from),
            cached_tokens: usage.cached_tokens.map(u64::from),
            prompt_computed: usage.prompt_computed,
            generated: usage.generated,
        };
        node.counters.cache.record(&figures);
        // A node that started answering has computed the prompt and holds it, even if the client
        // left before the end.
        let computed = self.status < 400 && self.first_byte.is_some();
        if let Some(prompt) = self.prompt.as_ref().filter(|_| computed) {
            let predicted = self
                .routing
                .as_ref()
                .and_then(|r| r.predicted_cached_tokens)
                .unwrap_or(0);
            self.recorder
                .affinity
                .answered(&self.model, &node.id, prompt, predicted, &figures);
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn truncated(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(STORED_BODY_BYTES)]).into_owned()
}
