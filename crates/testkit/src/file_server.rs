//! [`FileServer`]: a static HTTP file server for download tests, serving files from a directory at
//! a bounded rate, honouring `Range: bytes=N-`, and able to drop the connection part-way through
//! the first download of a file (a flaky mirror). It counts requests and records `Range` headers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header::{ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, RANGE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::net::TcpListener;

/// Bytes sent between two rate-limiting pauses.
const CHUNK: usize = 256 * 1024;

#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    bytes_per_sec: u64,
    /// Drop the first download of each file after this many bytes.
    drop_after: Option<u64>,
    dropped: Mutex<HashMap<String, bool>>,
    requests: AtomicU64,
    ranges: Mutex<Vec<String>>,
}

/// A running file server; stops when dropped.
#[derive(Debug)]
pub struct FileServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl FileServer {
    /// Serves the files of `dir` at `bytes_per_sec`; with `drop_after`, the first download of
    /// each file is cut after that many bytes.
    pub async fn spawn(
        dir: impl Into<PathBuf>,
        bytes_per_sec: u64,
        drop_after: Option<u64>,
    ) -> anyhow::Result<FileServer> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            dir: dir.into(),
            bytes_per_sec: bytes_per_sec.max(1),
            drop_after,
            dropped: Mutex::default(),
            requests: AtomicU64::new(0),
            ranges: Mutex::default(),
        });
        let app = Router::new()
            .route("/{name}", get(serve))
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FileServer { addr, shared, task })
    }

    /// The URL of `name`.
    pub fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", self.addr)
    }

    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// The `Range` headers received, in order.
    pub fn ranges(&self) -> Vec<String> {
        self.shared
            .ranges
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    if name.contains('/') || name.starts_with('.') {
        return StatusCode::NOT_FOUND.into_response();
    }
    let path = shared.dir.join(&name);
    let Ok(mut file) = tokio::fs::File::open(&path).await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Ok(len) = file.metadata().await.map(|m| m.len()) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let start = match headers.get(RANGE).and_then(|v| v.to_str().ok()) {
        Some(range) => {
            shared
                .ranges
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(range.to_owned());
            match range
                .strip_prefix("bytes=")
                .and_then(|r| r.strip_suffix('-'))
                .and_then(|n| n.parse::<u64>().ok())
            {
                Some(n) if n < len => n,
                _ => return StatusCode::RANGE_NOT_SATISFIABLE.into_response(),
            }
        }
        None => 0,
    };
    if file.seek(std::io::SeekFrom::Start(start)).await.is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let first = !shared
        .dropped
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(name.clone(), true)
        .unwrap_or(false);
    let cut = shared.drop_after.filter(|_| first);
    let pause = Duration::from_secs_f64(CHUNK as f64 / shared.bytes_per_sec as f64);
    let stream = async_stream(file, len - start, cut, pause);
    let mut response = Response::new(Body::from_stream(stream));
    let h = response.headers_mut();
    h.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(CONTENT_LENGTH, (len - start).into());
    if start > 0 {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        if let Ok(v) = format!("bytes {start}-{}/{len}", len - 1).parse() {
            response.headers_mut().insert(CONTENT_RANGE, v);
        }
    }
    response
}

/// The file's bytes in chunks, one per `pause`; an error after `cut` bytes (the connection drops).
fn async_stream(
    file: tokio::fs::File,
    remaining: u64,
    cut: Option<u64>,
    pause: Duration,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> {
    futures_util::stream::unfold(
        (file, remaining, 0u64),
        move |(mut file, remaining, sent)| async move {
            if remaining == 0 {
                return None;
            }
            if cut.is_some_and(|c| sent >= c) {
                let error = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "dropped");
                return Some((Err(error), (file, 0, sent)));
            }
            tokio::time::sleep(pause).await;
            let mut buf = vec![0; CHUNK.min(usize::try_from(remaining).unwrap_or(CHUNK))];
            match file.read_exact(&mut buf).await {
                Ok(_) => {
                    let n = buf.len() as u64;
                    Some((Ok(Bytes::from(buf)), (file, remaining - n, sent + n)))
                }
                Err(e) => Some((Err(e), (file, 0, sent))),
            }
        },
    )
}
