//! A file server whose replies are scripted per request: serve (with or without `Range`
//! support), fail with a status, or drop the connection part-way.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::Stream;

/// What the server does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Serve,
    Status(u16),
    /// Send this many body bytes, then drop the connection.
    DropAfter(usize),
}

#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub honour_range: bool,
    pub chunk: usize,
    pub chunk_delay: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            honour_range: true,
            chunk: 16 * 1024,
            chunk_delay: Duration::ZERO,
        }
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub range: Option<String>,
}

struct Shared {
    body: Bytes,
    options: ServerOptions,
    /// Replies for the next requests; `Serve` once empty.
    script: Mutex<VecDeque<Reply>>,
    seen: Mutex<Vec<Seen>>,
}

pub struct FileServer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl FileServer {
    pub async fn start(body: Vec<u8>, options: ServerOptions, script: Vec<Reply>) -> Self {
        let shared = Arc::new(Shared {
            body: Bytes::from(body),
            options,
            script: Mutex::new(script.into()),
            seen: Mutex::default(),
        });
        let app = Router::new().fallback(serve).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, shared }
    }

    pub fn url(&self) -> String {
        format!("http://{}/models/tiny.gguf", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }
}

async fn serve(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    shared.seen.lock().unwrap().push(Seen {
        range: range.clone(),
    });
    let reply = shared
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Reply::Serve);
    let drop_after = match reply {
        Reply::Status(status) => {
            return (StatusCode::from_u16(status).unwrap(), "scripted failure").into_response();
        }
        Reply::DropAfter(n) => Some(n),
        Reply::Serve => None,
    };

    let len = shared.body.len();
    let start = range
        .as_deref()
        .filter(|_| shared.options.honour_range)
        .and_then(|r| {
            r.strip_prefix("bytes=")?
                .strip_suffix('-')?
                .parse::<usize>()
                .ok()
        });
    if let Some(start) = start
        && start >= len
    {
        let unsatisfied = format!("bytes */{len}");
        return (
            StatusCode::RANGE_NOT_SATISFIABLE,
            [(header::CONTENT_RANGE, unsatisfied)],
        )
            .into_response();
    }
    let from = start.unwrap_or(0);
    let data = shared.body.slice(from..);
    let data_len = data.len();
    let mut response = Response::new(Body::from_stream(trickle(
        data,
        drop_after,
        shared.options.chunk,
        shared.options.chunk_delay,
    )));
    if start.is_some() {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        let content_range = format!("bytes {from}-{}/{len}", len - 1);
        response.headers_mut().insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&content_range).unwrap(),
        );
    }
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(data_len));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    response
}

/// `data` in chunks with a pause before each; with `drop_after`, an error after that many bytes,
/// which makes hyper drop the connection.
fn trickle(
    data: Bytes,
    drop_after: Option<usize>,
    chunk: usize,
    delay: Duration,
) -> impl Stream<Item = io::Result<Bytes>> {
    let limit = drop_after.unwrap_or(usize::MAX).min(data.len());
    futures_util::stream::unfold(Some(0), move |sent| {
        let data = data.clone();
        async move {
            let sent = sent?;
            if sent >= limit {
                if sent == data.len() {
                    return None;
                }
                // Let hyper flush what was sent before the connection goes.
                tokio::time::sleep(Duration::from_millis(30)).await;
                return Some((Err(io::Error::other("scripted drop")), None));
            }
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let end = (sent + chunk).min(limit);
            Some((Ok(data.slice(sent..end)), Some(end)))
        }
    })
}
