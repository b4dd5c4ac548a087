//! Sending one request to one node: the only network call of dispatch, behind a small trait so
//! failover can be tested without a server.

use std::future::Future;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;

use crate::registry::Node;

/// Sends a request to a node and waits for its response headers.
pub trait NodeClient: Send + Sync + 'static {
    /// POSTs the JSON `body` to `path` on `node`. `Err` says what went wrong when no usable
    /// response headers came (connection refused, timed out, a redirect, ...), worded to follow
    /// the node's name.
    fn post(
        &self,
        node: &Node,
        path: &str,
        body: Bytes,
    ) -> impl Future<Output = Result<reqwest::Response, String>> + Send;
}

/// The production client: one connection pool for the whole router, and a limit on the wait for
/// a node's response headers.
#[derive(Debug, Clone)]
pub struct HttpNodeClient {
    http: reqwest::Client,
    header_timeout: Duration,
}

impl HttpNodeClient {
    pub fn new(http: reqwest::Client, header_timeout: Duration) -> Self {
        HttpNodeClient {
            http,
            header_timeout,
        }
    }
}

impl NodeClient for HttpNodeClient {
    async fn post(
        &self,
        node: &Node,
        path: &str,
        body: Bytes,
    ) -> Result<reqwest::Response, String> {
        let request = node
            .request(&self.http, reqwest::Method::POST, path)
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send();
        match tokio::time::timeout(self.header_timeout, request).await {
            // The client follows no redirect, and a 3xx is not relayed either (its `Location`
            // would send the API client where the node chose): it is a failed answer like a
            // refused connection, so the node is marked suspect, the request is tried on another
            // node, and without one the client gets a 502 naming the status only.
            Ok(Ok(response)) if response.status().is_redirection() => Err(format!(
                "answered {} (a redirect, which the router does not follow)",
                response.status()
            )),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(describe(&e)),
            Err(_) => Err(format!(
                "sent no response headers within {}",
                humantime::format_duration(self.header_timeout)
            )),
        }
    }
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_connect() {
        format!("refused the connection ({e})")
    } else if e.is_timeout() {
        format!("timed out ({e})")
    } else {
        format!("failed ({e})")
    }
}
