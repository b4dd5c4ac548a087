//! The HTTP side of a [`FakeNode`](crate::FakeNode): its shared state and its handlers.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{StatusCode, Uri};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use llm_router_protocol::node::{ModelState, ModelStatus, NodeHealth};
use llm_router_protocol::openai::{ModelList, ModelObject};
use serde_json::json;
use tokio::sync::watch;

use crate::fake_node::{INFERENCE_PATHS, RecordedRequest};
use crate::gauge::Gauge;
use crate::reply::Reply;

/// What a fake node knows and records; kept across a stop and restart.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) machine_name: String,
    pub(crate) ready_models: Vec<String>,
    /// Models announced at registration but not ready (not listed on `/v1/models`).
    pub(crate) announced: Vec<ModelStatus>,
    /// `slots_total` announced for each ready model.
    pub(crate) slots: Option<u32>,
    pub(crate) reply: Mutex<Reply>,
    pub(crate) requests: AtomicU64,
    pub(crate) last_request: Mutex<Option<RecordedRequest>>,
    /// Inference requests being answered now, and the most at once.
    pub(crate) in_flight: Arc<Gauge>,
    /// `true` while replies may go out; `false` holds every inference request.
    pub(crate) gate: watch::Sender<bool>,
    /// `false` makes `GET /health` answer 503.
    pub(crate) healthy: AtomicBool,
    /// The API token the fake registers with and requires, as `llm-node` does, on every route
    /// but `/health`.
    pub(crate) api_token: String,
    /// Calls refused for a missing or wrong token.
    pub(crate) unauthorized: AtomicU64,
    /// `POST /pull` calls received.
    pub(crate) pulls: AtomicU64,
    /// What `GET /api/logs` answers.
    pub(crate) log: Mutex<LogReply>,
}

/// What a fake node's `GET /api/logs` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogReply {
    /// 200 with these lines (the default: two JSON lines naming the fake).
    Text(String),
    /// 200 with a body of this many bytes, to test the router's size limit.
    Oversized(usize),
    /// This status with a short body.
    Status(u16),
}

impl Shared {
    /// The ready models as the fake reports them (registration, heartbeat, `/health`).
    pub(crate) fn ready_statuses(&self) -> impl Iterator<Item = ModelStatus> + '_ {
        self.ready_models.iter().map(|name| ModelStatus {
            name: name.clone(),
            state: ModelState::Ready,
            slots_total: self.slots,
            slots_free: self.slots,
            error: None,
            cache_tokens: None,
        })
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn routes(shared: Arc<Shared>) -> Router {
    let mut router = Router::new()
        .route("/v1/models", get(list_models))
        .route("/pull", post(pull))
        .route("/api/logs", get(logs));
    for path in INFERENCE_PATHS {
        router = router.route(path, post(inference));
    }
    router
        .route_layer(from_fn_with_state(Arc::clone(&shared), require_token))
        .route("/health", get(health))
        .fallback(not_found)
        .with_state(shared)
}

/// `POST /pull`: accepted (202) and counted; the fake downloads nothing and reports nothing.
async fn pull(State(shared): State<Arc<Shared>>) -> Response {
    shared.pulls.fetch_add(1, Ordering::SeqCst);
    (StatusCode::ACCEPTED, axum::Json(json!({"accepted": true}))).into_response()
}

/// Refuses (401, counted) a call without the fake's API token, as `llm-node` does.
async fn logs(State(shared): State<Arc<Shared>>) -> Response {
    let reply = lock(&shared.log).clone();
    match reply {
        LogReply::Text(text) => text.into_response(),
        LogReply::Oversized(n) => vec![b'x'; n].into_response(),
        LogReply::Status(code) => (
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "fake node log failure",
        )
            .into_response(),
    }
}

async fn require_token(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let expected = format!("Bearer {}", shared.api_token);
    let presented = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if presented == Some(expected.as_str()) {
        return next.run(req).await;
    }
    shared.unauthorized.fetch_add(1, Ordering::SeqCst);
    let body = json!({"error": {
        "message": "fake node: missing or wrong API token",
        "type": "invalid_request_error",
        "param": null,
        "code": "unauthorized"
    }});
    (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response()
}

async fn list_models(State(shared): State<Arc<Shared>>) -> axum::Json<ModelList> {
    let data = shared
        .ready_models
        .iter()
        .map(|name| ModelObject::new(name.clone(), "fake"))
        .collect();
    axum::Json(ModelList::new(data))
}

/// `GET /health` as `llm-node` answers it (the router's probe of a suspect node reads it), or 503
/// while the fake is set unhealthy.
async fn health(State(shared): State<Arc<Shared>>) -> Response {
    if !shared.healthy.load(Ordering::SeqCst) {
        let body = json!({"status": "unhealthy", "machine_name": shared.machine_name});
        return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    }
    axum::Json(NodeHealth {
        status: "ok".to_owned(),
        machine_name: shared.machine_name.clone(),
        active_requests: shared.in_flight.current(),
        requests_total: shared.requests.load(Ordering::SeqCst),
        models: shared
            .ready_statuses()
            .chain(shared.announced.iter().cloned())
            .collect(),
    })
    .into_response()
}

/// Records the request, waits while replies are held, then answers with the scripted reply.
async fn inference(State(shared): State<Arc<Shared>>, uri: Uri, body: Bytes) -> Response {
    let in_flight = shared.in_flight.enter();
    shared.requests.fetch_add(1, Ordering::SeqCst);
    *lock(&shared.last_request) = Some(RecordedRequest {
        path: uri.path().to_owned(),
        body,
    });
    let mut gate = shared.gate.subscribe();
    // The sender lives in `shared`, so this only ends when the gate opens.
    let _ = gate.wait_for(|open| *open).await;
    let reply = lock(&shared.reply).clone();
    reply.respond(in_flight).await
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
