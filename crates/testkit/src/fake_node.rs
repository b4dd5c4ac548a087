//! [`FakeNode`]: a scripted FAKE node for tests. It is not `llm-node` and runs no model: it lists
//! configured model names on `GET /v1/models`, answers every inference route with a scripted
//! [`Reply`], and records what it received so tests can check what the router sent.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::AUTHORIZATION;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use llm_router_protocol::node::{
    Hardware, Heartbeat, ModelState, ModelStatus, NodeMetrics, RegisterRequest, RegisterResponse,
    RuntimeInfo, RuntimeKind,
};
use llm_router_protocol::openai::{ModelList, ModelObject};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::reply::Reply;

/// How long [`FakeNode::shutdown`] waits for open connections before cutting them.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);

/// The inference routes a fake node answers with its [`Reply`].
pub const INFERENCE_PATHS: [&str; 3] =
    ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"];

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
    reply: Reply,
}

impl FakeNodeBuilder {
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
        });
        self
    }

    /// What the fake answers on its inference routes (default: a small chat completion JSON).
    pub fn reply(mut self, reply: Reply) -> Self {
        self.reply = reply;
        self
    }

    /// Binds `127.0.0.1:0` and serves until the fake is shut down or dropped.
    pub async fn spawn(self) -> anyhow::Result<FakeNode> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let listener = listener.tap_io(|tcp| {
            // Best effort: Nagle would only add latency to small SSE writes.
            let _ = tcp.set_nodelay(true);
        });
        let shared = Arc::new(Shared {
            machine_name: self.machine_name,
            ready_models: self.ready_models,
            announced: self.announced,
            reply: Mutex::new(self.reply),
            requests: AtomicU64::new(0),
            last_request: Mutex::new(None),
        });
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        let app = routes(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(e) = served {
                eprintln!("fake node on {addr} stopped with an error: {e}");
            }
        });
        let http = reqwest::Client::builder().no_proxy().build()?;
        Ok(FakeNode {
            addr,
            shared,
            http,
            cancel,
            task: Some(task),
        })
    }
}

/// A running fake node. Dropping it asks it to stop; [`shutdown`](FakeNode::shutdown) also waits
/// until its port is closed.
#[derive(Debug)]
pub struct FakeNode {
    addr: SocketAddr,
    shared: Arc<Shared>,
    http: reqwest::Client,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl FakeNode {
    /// A fake named `machine_name`, with no model and the default reply.
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
            reply,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn machine_name(&self) -> &str {
        &self.shared.machine_name
    }

    /// Requests received on the inference routes (not counting `GET /v1/models`).
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// The last request received on an inference route.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        lock(&self.shared.last_request).clone()
    }

    /// The body of the last inference request, exactly as received.
    pub fn last_body(&self) -> Option<Bytes> {
        self.last_request().map(|r| r.body)
    }

    /// Changes the reply for the requests that come next.
    pub fn set_reply(&self, reply: Reply) {
        *lock(&self.shared.reply) = reply;
    }

    /// A valid registration body for this fake: its ready models as `ready`, the models added
    /// with [`FakeNodeBuilder::loading_model`] as `loading`.
    pub fn register_request(&self) -> RegisterRequest {
        let ready = self.shared.ready_models.iter().map(|name| ModelStatus {
            name: name.clone(),
            state: ModelState::Ready,
            slots_total: Some(1),
            slots_free: Some(1),
            error: None,
        });
        RegisterRequest {
            machine_name: self.shared.machine_name.clone(),
            address: self.addr.ip().to_string(),
            port: self.addr.port(),
            node_version: "fake".to_owned(),
            runtime: RuntimeInfo {
                kind: RuntimeKind::LlamaServer,
                version: Some("fake".to_owned()),
            },
            hardware: Hardware {
                cpu_cores: 1,
                memory_total_bytes: 1 << 30,
                gpus: Vec::new(),
            },
            models: ready.chain(self.shared.announced.iter().cloned()).collect(),
        }
    }

    /// Registers this fake with the router at `router_base_url`.
    pub async fn register(&self, router_base_url: &str) -> anyhow::Result<RegisterResponse> {
        let url = format!(
            "{}/api/agents/register",
            router_base_url.trim_end_matches('/')
        );
        let response = self
            .http
            .post(url)
            .json(&self.register_request())
            .send()
            .await?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            anyhow::bail!(
                "the router refused to register fake node '{}': {status} {body}",
                self.machine_name()
            );
        }
        Ok(response.json().await?)
    }

    /// A heartbeat body for `node_id` reporting this fake's models.
    pub fn heartbeat_body(&self, node_id: &str) -> Heartbeat {
        Heartbeat {
            node_id: node_id.to_owned(),
            metrics: NodeMetrics::default(),
            models: self.register_request().models,
        }
    }

    /// Sends a heartbeat for `node_id` with `token` as `Authorization: Bearer`; returns the
    /// router's answer whatever its status.
    pub async fn send_heartbeat(
        &self,
        router_base_url: &str,
        node_id: &str,
        token: &str,
    ) -> anyhow::Result<reqwest::Response> {
        let url = format!("{}/api/health", router_base_url.trim_end_matches('/'));
        Ok(self
            .http
            .post(url)
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .json(&self.heartbeat_body(node_id))
            .send()
            .await?)
    }

    /// Stops the fake and waits (up to a deadline) until it has closed its port.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        let Some(mut task) = self.task.take() else {
            return;
        };
        if tokio::time::timeout(SHUTDOWN_DEADLINE, &mut task)
            .await
            .is_err()
        {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

#[derive(Debug)]
struct Shared {
    machine_name: String,
    ready_models: Vec<String>,
    announced: Vec<ModelStatus>,
    reply: Mutex<Reply>,
    requests: AtomicU64,
    last_request: Mutex<Option<RecordedRequest>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn routes(shared: Arc<Shared>) -> Router {
    let mut router = Router::new().route("/v1/models", get(list_models));
    for path in INFERENCE_PATHS {
        router = router.route(path, post(inference));
    }
    router.fallback(not_found).with_state(shared)
}

async fn list_models(State(shared): State<Arc<Shared>>) -> axum::Json<ModelList> {
    let data = shared
        .ready_models
        .iter()
        .map(|name| ModelObject::new(name.clone(), "fake"))
        .collect();
    axum::Json(ModelList::new(data))
}

async fn inference(State(shared): State<Arc<Shared>>, uri: Uri, body: Bytes) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    *lock(&shared.last_request) = Some(RecordedRequest {
        path: uri.path().to_owned(),
        body,
    });
    let reply = lock(&shared.reply).clone();
    reply.to_response()
}

async fn not_found(uri: Uri) -> Response {
    let body = json!({"error": {
        "message": format!("fake node has no route {}", uri.path()),
        "type": "invalid_request_error",
        "param": null,
        "code": "not_found"
    }});
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}
