//! Serving an axum app over HTTP/1.1 with the limits a hostile client cannot get around.
//!
//! `axum::serve` runs hyper without a timer, so hyper's header-read timeout is off and a client
//! that sends half a request keeps its connection (and a file descriptor) forever. [`serve`] is the
//! same loop with:
//!
//! * a **header-read timeout**: a connection that has not sent a whole request head within
//!   [`Limits::header_read_timeout`] is closed. hyper restarts the same timer when a keep-alive
//!   connection goes idle after an answer, so it is also the **idle keep-alive timeout**;
//! * a **cap on concurrent connections** ([`Limits::max_connections`]): over it a new connection
//!   is closed at once (nothing queues, nothing spins), with one warning per burst and a line
//!   counting the refused ones when connections are accepted again;
//! * optional **TLS** ([`crate::tls::acceptor`]): the handshake is bounded by the header-read
//!   timeout and its connection counts against the cap from the moment it is accepted, so a
//!   client that opens a connection and never speaks TLS (or speaks plain HTTP) is closed;
//! * what `axum::serve` gives: `ConnectInfo<SocketAddr>` on every request, WebSocket upgrades,
//!   and graceful shutdown (the listener closes, idle connections close, in-flight requests finish).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::Response;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;

/// What one client may hold of a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long a client may take to send a request's head (request line and headers), and how
    /// long an idle keep-alive connection is kept.
    pub header_read_timeout: Duration,
    /// Connections served at once; more are closed as they arrive.
    pub max_connections: usize,
}

/// While over the cap, a reminder at most this often (with the count so far).
const REFUSED_REMINDER: Duration = Duration::from_secs(60);

/// After an accept error other than a refused/aborted/reset connection (typically "too many open
/// files"), wait this long before accepting again instead of spinning.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Serves `app` on `listener` within `limits` until `signal` completes, then stops accepting,
/// lets in-flight requests finish and returns once every connection has closed (bound the wait
/// from outside if it must end). With `tls`, every connection is HTTPS (nothing is served in
/// clear).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    signal: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    let draining = CancellationToken::new();
    let mut refused = Refused::default();
    let mut signal = pin!(signal);
    loop {
        let accepted = tokio::select! {
            () = &mut signal => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, remote) = match accepted {
            Ok(pair) => pair,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                tracing::error!(error = %e, "cannot accept a connection; pausing the listener");
                tokio::select! {
                    () = &mut signal => break,
                    () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => continue,
                }
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            refused.one(limits.max_connections, remote);
            drop(stream);
            continue;
        };
        refused.end_burst(limits.max_connections);
        let (builder, app, draining) = (builder.clone(), app.clone(), draining.clone());
        match &tls {
            None => {
                connections.spawn(serve_connection(
                    builder, stream, remote, app, permit, draining,
                ));
            }
            Some(acceptor) => {
                let (acceptor, timeout) = (acceptor.clone(), limits.header_read_timeout);
                connections.spawn(async move {
                    // The permit is held while the handshake runs.
                    if let Some(stream) =
                        handshake(acceptor, timeout, stream, remote, &draining).await
                    {
                        serve_connection(builder, stream, remote, app, permit, draining).await;
                    }
                });
            }
        }
    }
    drop(listener);
    draining.cancel();
    connections.close();
    connections.wait().await;
    Ok(())
}

/// The TLS handshake of a new connection, within `timeout`; `None` (the connection is closed)
/// if it fails, takes longer, or `draining` is cancelled first.
async fn handshake(
    acceptor: TlsAcceptor,
    timeout: Duration,
    stream: TcpStream,
    remote: SocketAddr,
    draining: &CancellationToken,
) -> Option<TlsStream<TcpStream>> {
    let handshake = tokio::time::timeout(timeout, acceptor.accept(stream));
    tokio::select! {
        handshake = handshake => match handshake {
            Ok(Ok(stream)) => Some(stream),
            // Debug only: anyone can send garbage, and the log must not grow with it.
            Ok(Err(e)) => {
                tracing::debug!(%remote, error = %e, "TLS handshake failed");
                None
            }
            Err(_) => {
                tracing::debug!(%remote, "no TLS handshake within the header-read timeout");
                None
            }
        },
        () = draining.cancelled() => None,
    }
}

/// One connection, closed gracefully (after its in-flight request) once `draining` is cancelled.
async fn serve_connection<S>(
    builder: http1::Builder,
    stream: S,
    remote: SocketAddr,
    app: Router,
    _permit: OwnedSemaphorePermit,
    draining: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(remote));
        let mut app = app.clone();
        async move { Ok::<Response, Infallible>(app.call(request).await.unwrap_or_else(|e| match e {})) }
    });
    let connection = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let mut connection = pin!(connection);
    let mut draining = pin!(draining.cancelled_owned());
    let mut asked_to_close = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::trace!(%remote, error = %e, "connection ended with an error");
                }
                return;
            }
            () = &mut draining, if !asked_to_close => {
                asked_to_close = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Errors that concern one connection, not the listener (as `axum::serve` treats them).
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Connections closed over the cap in the current burst, logged once per burst (and a reminder
/// every [`REFUSED_REMINDER`] while it lasts).
#[derive(Default)]
struct Refused {
    count: u64,
    warned_at: Option<Instant>,
}

impl Refused {
    fn one(&mut self, max_connections: usize, remote: SocketAddr) {
        self.count += 1;
        if self
            .warned_at
            .is_none_or(|at| at.elapsed() >= REFUSED_REMINDER)
        {
            self.warned_at = Some(Instant::now());
            tracing::warn!(
                max_connections,
                %remote,
                refused = self.count,
                "connection limit reached: closing new connections until some end"
            );
        }
    }

    fn end_burst(&mut self, max_connections: usize) {
        if self.count > 0 {
            tracing::info!(
                max_connections,
                refused = self.count,
                "below the connection limit again; accepting connections"
            );
            *self = Refused::default();
        }
    }
}
