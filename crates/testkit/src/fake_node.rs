//! [`FakeNode`]: a scripted FAKE node for tests. It is not `llm-node` and runs no model: it lists
//! configured model names on `GET /v1/models`, answers `GET /health` like a node with those models
//! ready, answers every inference route with a scripted [`Reply`], and records what it received
//! (and how many requests it served at once) so tests can check what the router sent.
//!
//! A fake can serve HTTPS ([`FakeNodeBuilder::tls`], through the production serve loop) and then
//! registers as such.
//!
//! A fake can stop listening and listen again on the same port ([`FakeNode::stop`],
//! [`FakeNode::restart`]), and hold its replies until told to send them ([`FakeNode::hold`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::serve::ListenerExt;
use llm_router_common::serve::Limits;
use llm_router_common::tls::TlsAcceptor;
use llm_router_protocol::node::{ModelState, ModelStatus};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::fake_routes::{LogReply, Shared, lock, routes};
use crate::gauge::Gauge;
use crate::reply::Reply;
use crate::tls::CertFiles;

/// How long [`FakeNode::stop`] waits for open connections before cutting them.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);

/// The inference routes a fake node answers with its [`Reply`].
pub const INFERENCE_PATHS: [&str; 7] = [
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/responses",
    "/v1/responses/input_tokens",
    "/v1/messages",
    "/v1/messages/count_tokens",
];

/// One request a fake node received on an inference route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub path: String,
    /// The body exactly as received.
    pub body: Bytes,
}

/// Configuration of a [`FakeNode`]; [`spawn`](FakeNodeBuilder::spawn) starts it.
#[derive(Debug, Clone)]
pub struct FakeNodeBuilder {
    machine_name: String,
    ready_models: Vec<String>,
    announced: Vec<ModelStatus>,
    slots: Option<u32>,
    reply: Reply,
    tls: Option<CertFiles>,
    http: Option<reqwest::Client>,
}

impl FakeNodeBuilder {
    /// Serve HTTPS with these files (through the production serve loop), and register with
    /// `scheme: https`.
    pub fn tls(mut self, files: CertFiles) -> Self {
        self.tls = Some(files);
        self
    }

    /// The client the fake calls the router with (registration, heartbeats), e.g. one trusting
    /// a test CA for a router serving HTTPS. [default: plain, no proxy]
    pub fn router_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// A model the fake lists on `GET /v1/models` (so the router takes it as ready) and announces
    /// as ready when registering.
    pub fn model(mut self, name: impl Into<String>) -> Self {
        self.ready_models.push(name.into());
        self
    }

    /// A model the fake announces as `loading` when registering but does not list on
    /// `GET /v1/models`: the router knows the model but cannot use this node for it.
    pub fn loading_model(mut self, name: impl Into<String>) -> Self {
        self.announced.push(ModelStatus {
            name: name.into(),
            state: ModelState::Loading,
            slots_total: None,
            slots_free: None,
            error: None,
            cache_tokens: None,
        });
        self
    }

    /// The `slots_total` the fake announces for each ready model (default `Some(1)`; `None`
    /// leaves the router without a bound).
    pub fn slots(mut self, slots: Option<u32>) -> Self {
        self.slots = slots;
        self
    }

    /// What the fake answers on its inference routes (default: a small chat completion JSON).
    pub fn reply(mut self, reply: Reply) -> Self {
        self.reply = reply;
        self
    }

    /// Binds `127.0.0.1:0` and serves until the fake is stopped or dropped.
    pub async fn spawn(self) -> anyhow::Result<FakeNode> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let log = format!(
            "{{\"level\":\"INFO\",\"fields\":{{\"message\":\"fake node {name} started\"}}}}\n\
             {{\"level\":\"INFO\",\"fields\":{{\"message\":\"fake node {name} ready\"}}}}\n",
            name = self.machine_name
        );
        let shared = Arc::new(Shared {
            machine_name: self.machine_name,
            ready_models: self.ready_models,
            announced: self.announced,
            slots: self.slots,
            reply: Mutex::new(self.reply),
            requests: AtomicU64::new(0),
            last_request: Mutex::new(None),
            in_flight: Arc::new(Gauge::default()),
            gate: watch::Sender::new(true),
            healthy: AtomicBool::new(true),
            api_token: format!("fake-node-api-token-{}", uuid_like(addr.port())),
            unauthorized: AtomicU64::new(0),
            pulls: AtomicU64::new(0),
            log: Mutex::new(LogReply::Text(log)),
        });
        let server = serve(
            listener,
            addr,
            Arc::clone(&shared),
            acceptor(self.tls.as_ref())?,
        );
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder().no_proxy().build()?,
        };
        Ok(FakeNode {
            addr,
            shared,
            http,
            tls: self.tls,
            server: Some(server),
        })
    }
}

/// A token different for every fake of a test run.
fn uuid_like(port: u16) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{port}-{nanos:x}")
}

/// The serving task of a fake and what stops it.
#[derive(Debug)]
struct Serving {
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

fn serve(
    listener: TcpListener,
    addr: SocketAddr,
    shared: Arc<Shared>,
    tls: Option<TlsAcceptor>,
) -> Serving {
    if let Some(tls) = tls {
        return serve_tls(listener, addr, shared, tls);
    }
    let listener = listener.tap_io(|tcp| {
        // Best effort: Nagle would only add latency to small SSE writes.
        let _ = tcp.set_nodelay(true);
    });
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, routes(shared))
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
        if let Err(e) = served {
            eprintln!("fake node on {addr} stopped with an error: {e}");
        }
    });
    Serving { cancel, task }
}

/// The production acceptor of `files`, if any.
fn acceptor(files: Option<&CertFiles>) -> anyhow::Result<Option<TlsAcceptor>> {
    Ok(match files {
        Some(files) => Some(llm_router_common::tls::acceptor(&files.cert, &files.key)?),
        None => None,
    })
}

/// HTTPS through the production serve loop (generous limits).
fn serve_tls(
    listener: TcpListener,
    addr: SocketAddr,
    shared: Arc<Shared>,
    tls: TlsAcceptor,
) -> Serving {
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    let limits = Limits {
        header_read_timeout: Duration::from_secs(30),
        max_connections: 1024,
    };
    let task = tokio::spawn(async move {
        let served = llm_router_common::serve::serve(
            listener,
            routes(shared),
            limits,
            Some(tls),
            stop.cancelled_owned(),
        )
        .await;
        if let Err(e) = served {
            eprintln!("fake node on {addr} stopped with an error: {e}");
        }
    });
    Serving { cancel, task }
}

/// A running fake node. Dropping it asks it to stop; [`shutdown`](FakeNode::shutdown) also waits
/// until its port is closed.
#[derive(Debug)]
pub struct FakeNode {
    addr: SocketAddr,
    shared: Arc<Shared>,
    http: reqwest::Client,
    /// Set: the fake serves HTTPS with these files.
    tls: Option<CertFiles>,
    server: Option<Serving>,
}

impl FakeNode {
    /// A fake named `machine_name`, with no model, one slot per model and the default reply.
    pub fn builder(machine_name: impl Into<String>) -> FakeNodeBuilder {
        let machine_name = machine_name.into();
        let reply = Reply::Json(json!({
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 0,
            "model": "fake",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": format!("hello from {machine_name}")},
                "finish_reason": "stop"
            }]
        }));
        FakeNodeBuilder {
            machine_name,
            ready_models: Vec::new(),
            announced: Vec::new(),
            slots: Some(1),
            reply,
            tls: None,
            http: None,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>` (`https://` when it serves TLS).
    pub fn base_url(&self) -> String {
        let scheme = if self.serves_tls() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Whether the fake serves HTTPS.
    pub fn serves_tls(&self) -> bool {
        self.tls.is_some()
    }

    pub fn machine_name(&self) -> &str {
        &self.shared.machine_name
    }

    /// Requests received on the inference routes (not counting `GET /v1/models` or `/health`),
    /// since the fake was spawned.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Calls the fake refused because they lacked its API token (the router must never make one).
    pub fn unauthorized_requests(&self) -> u64 {
        self.shared.unauthorized.load(Ordering::SeqCst)
    }

    /// `POST /pull` calls the fake accepted.
    pub fn pulls(&self) -> u64 {
        self.shared.pulls.load(Ordering::SeqCst)
    }

    /// The API token the fake registers with and requires.
    pub fn api_token(&self) -> &str {
        &self.shared.api_token
    }

    /// Inference requests the fake is answering now (held, delayed or streaming).
    pub fn in_flight(&self) -> u32 {
        self.shared.in_flight.current()
    }

    /// The most inference requests the fake was ever answering at once.
    pub fn max_in_flight(&self) -> u32 {
        self.shared.in_flight.max()
    }

    /// The last request received on an inference route.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        lock(&self.shared.last_request).clone()
    }

    /// The body of the last inference request, exactly as received.
    pub fn last_body(&self) -> Option<Bytes> {
        self.last_request().map(|r| r.body)
    }

    /// Changes what `GET /api/logs` answers.
    pub fn set_log(&self, reply: LogReply) {
        *lock(&self.shared.log) = reply;
    }

    /// Changes the reply for the requests that come next.
    pub fn set_reply(&self, reply: Reply) {
        *lock(&self.shared.reply) = reply;
    }

    /// Holds every inference request (received and counted, not answered) until
    /// [`release`](FakeNode::release).
    pub fn hold(&self) {
        self.shared.gate.send_replace(false);
    }

    /// Answers the held requests and stops holding new ones.
    pub fn release(&self) {
        self.shared.gate.send_replace(true);
    }

    /// Makes `GET /health` answer normally (`true`, the default) or 503 (`false`), so the router's
    /// probe cannot clear the fake once it is suspect.
    pub fn set_healthy(&self, healthy: bool) {
        self.shared.healthy.store(healthy, Ordering::SeqCst);
    }

    /// Stops listening and waits (up to a deadline) until the port is closed: connections are
    /// then refused. The fake keeps its counters; [`restart`](FakeNode::restart) listens again.
    pub async fn stop(&mut self) {
        let Some(Serving { cancel, mut task }) = self.server.take() else {
            return;
        };
        cancel.cancel();
        if tokio::time::timeout(SHUTDOWN_DEADLINE, &mut task)
            .await
            .is_err()
        {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens again on the same address after [`stop`](FakeNode::stop), with the same models,
    /// reply and counters; does nothing while it is listening.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        if self.server.is_some() {
            return Ok(());
        }
        let listener = TcpListener::bind(self.addr).await?;
        self.server = Some(serve(
            listener,
            self.addr,
            Arc::clone(&self.shared),
            acceptor(self.tls.as_ref())?,
        ));
        Ok(())
    }

    /// Stops the fake and waits (up to a deadline) until it has closed its port.
    pub async fn shutdown(mut self) {
        self.stop().await;
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            server.cancel.cancel();
        }
    }
}
