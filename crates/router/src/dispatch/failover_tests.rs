//! Failover without a network: a registry of nodes and a scripted [`NodeClient`] in place of HTTP.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::StatusCode;
use llm_router_protocol::node::NodeStatus;

use super::policy::LeastOutstanding;
use super::testing::register;
use super::{Dispatcher, Forwarder, NodeClient, Tenant};
use crate::error::ApiError;
use crate::registry::HealthPolicy;
use crate::registry::{Node, Registry};

/// What the scripted client does with one request.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    /// No response headers: the connection was refused.
    Refuse,
    /// Response headers with this status.
    Answer(u16),
}

/// Answers each request with the next outcome of its script (200 once the script is used up) and
/// remembers which node each request went to.
#[derive(Clone, Default)]
struct Scripted {
    script: Arc<Mutex<VecDeque<Outcome>>>,
    calls: Arc<Mutex<Vec<String>>>,
}

impl Scripted {
    fn new(script: &[Outcome]) -> Self {
        Scripted {
            script: Arc::new(Mutex::new(script.iter().copied().collect())),
            calls: Arc::default(),
        }
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

impl NodeClient for Scripted {
    async fn post(
        &self,
        node: &Node,
        path: &str,
        _body: Bytes,
    ) -> Result<reqwest::Response, String> {
        assert_eq!(path, "/v1/chat/completions");
        self.calls.lock().unwrap().push(node.machine_name.clone());
        let outcome = self.script.lock().unwrap().pop_front();
        match outcome.unwrap_or(Outcome::Answer(200)) {
            Outcome::Refuse => Err("refused the connection (scripted)".to_owned()),
            Outcome::Answer(status) => {
                let response = axum::http::Response::builder()
                    .status(status)
                    .body(format!("answer {status}"))
                    .unwrap();
                Ok(reqwest::Response::from(response))
            }
        }
    }
}

struct Fleet {
    registry: Arc<Registry>,
    client: Scripted,
    forwarder: Forwarder<Scripted>,
}

/// Nodes `names`, one slot each for model `m`, and a forwarder trying up to `max_attempts` nodes.
fn fleet(names: &[&str], script: &[Outcome], max_attempts: u32) -> Fleet {
    let registry = Arc::new(Registry::new(HealthPolicy {
        node_timeout: Duration::from_secs(30),
    }));
    for name in names {
        register(&registry, name, 1);
    }
    let dispatcher = Dispatcher::new(
        Arc::clone(&registry),
        Arc::new(LeastOutstanding::default()),
        10,
        None,
        Duration::from_secs(30),
    );
    let client = Scripted::new(script);
    let forwarder = Forwarder::new(
        dispatcher,
        Arc::clone(&registry),
        client.clone(),
        max_attempts,
    );
    Fleet {
        registry,
        client,
        forwarder,
    }
}

impl Fleet {
    async fn send(&self) -> Result<super::Upstream, ApiError> {
        self.forwarder
            .send(
                "/v1/chat/completions",
                "m",
                &Tenant::anonymous(),
                Bytes::from_static(b"{}"),
            )
            .await
    }

    fn node(&self, name: &str) -> Arc<Node> {
        let snapshot = self.registry.snapshot();
        let node = snapshot.nodes().iter().find(|n| n.machine_name == name);
        Arc::clone(node.unwrap())
    }
}

#[tokio::test]
async fn a_connection_error_on_one_node_retries_on_another() {
    let f = fleet(&["a", "b"], &[Outcome::Refuse, Outcome::Answer(200)], 2);
    let upstream = f.send().await.unwrap();
    assert_eq!(upstream.response.status(), StatusCode::OK);
    let calls = f.client.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_ne!(calls[0], calls[1], "the retry went to the same node");
    assert_eq!(upstream.lease.node().machine_name, calls[1]);
    let failed = f.node(&calls[0]);
    assert_eq!(failed.status, NodeStatus::Suspect);
    assert_eq!(failed.counters.failures_total(), 1);
    assert_eq!(
        failed.counters.in_flight(),
        0,
        "the failed node's slot was kept"
    );
}

#[tokio::test]
async fn a_5xx_before_the_first_byte_fails_over_and_marks_the_node_suspect() {
    let f = fleet(
        &["a", "b"],
        &[Outcome::Answer(503), Outcome::Answer(200)],
        2,
    );
    let upstream = f.send().await.unwrap();
    assert_eq!(upstream.response.status(), StatusCode::OK);
    let calls = f.client.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_ne!(calls[0], calls[1]);
    assert_eq!(f.node(&calls[0]).status, NodeStatus::Suspect);
    assert_eq!(f.node(&calls[0]).counters.failures_total(), 1);
    assert_eq!(f.node(&calls[1]).status, NodeStatus::Online);
    assert_eq!(f.node(&calls[1]).counters.failures_total(), 0);
}

#[tokio::test]
async fn the_last_attempts_answer_is_returned_whatever_its_status() {
    let f = fleet(
        &["a", "b"],
        &[Outcome::Answer(500), Outcome::Answer(502)],
        2,
    );
    let upstream = f.send().await.unwrap();
    assert_eq!(upstream.response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(upstream.response.text().await.unwrap(), "answer 502");
    let calls = f.client.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(f.node(&calls[0]).status, NodeStatus::Suspect);
    // The answer that is returned is the client's to read, not a failure of its node.
    assert_eq!(f.node(&calls[1]).status, NodeStatus::Online);
}

#[tokio::test]
async fn a_single_attempt_returns_the_first_answer_as_it_is() {
    let f = fleet(&["a", "b"], &[Outcome::Answer(500)], 1);
    let upstream = f.send().await.unwrap();
    assert_eq!(
        upstream.response.status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(f.client.calls().len(), 1);
    assert_eq!(f.node("a").status, NodeStatus::Online);
    assert_eq!(f.node("b").status, NodeStatus::Online);
}

#[tokio::test]
async fn no_retry_happens_when_no_other_node_exists() {
    let f = fleet(&["a"], &[Outcome::Answer(500)], 2);
    match f.send().await {
        Err(ApiError::Upstream(message)) => {
            assert_eq!(message, "node 'a' answered 500 Internal Server Error");
        }
        Err(e) => panic!("unexpected error {e:?}"),
        Ok(upstream) => panic!("answered {}", upstream.response.status()),
    }
    assert_eq!(f.client.calls(), ["a"]);
    assert_eq!(f.node("a").status, NodeStatus::Suspect);
    assert_eq!(f.node("a").counters.in_flight(), 0);

    let f = fleet(&["a"], &[Outcome::Refuse], 3);
    match f.send().await {
        Err(ApiError::Upstream(message)) => {
            assert_eq!(message, "node 'a' refused the connection (scripted)");
        }
        Err(e) => panic!("unexpected error {e:?}"),
        Ok(upstream) => panic!("answered {}", upstream.response.status()),
    }
    assert_eq!(f.client.calls(), ["a"]);
}

#[tokio::test]
async fn an_unknown_model_is_refused_without_a_call() {
    let f = fleet(&["a"], &[], 2);
    let result = f
        .forwarder
        .send(
            "/v1/chat/completions",
            "nope",
            &Tenant::anonymous(),
            Bytes::new(),
        )
        .await;
    assert!(
        matches!(&result, Err(ApiError::ModelNotFound(m)) if m == "nope"),
        "{:?}",
        result.err()
    );
    assert!(f.client.calls().is_empty());
}
