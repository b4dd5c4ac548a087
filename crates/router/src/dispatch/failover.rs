//! Step 5 of dispatch: the [`Forwarder`] gets a slot on a node and sends it the request, with
//! failover before the first byte.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;

use super::failure::{Phase, report_failure};
use super::lease::Lease;
use super::node_client::{HttpNodeClient, NodeClient};
use super::queue::{AcquireError, Dispatcher, Tenant, Waiting};
use crate::affinity::{Affinity, PromptKey};
use crate::error::ApiError;
use crate::registry::Registry;
use crate::store::Routing;

/// A node's answer whose headers have arrived, with the slot it holds.
pub struct Upstream {
    pub response: reqwest::Response,
    /// Keep alive until the response body has been relayed: dropping it frees the slot.
    pub lease: Lease,
    pub dispatched: Dispatched,
}

/// How a request reached the node that answered it.
#[derive(Debug, Clone)]
pub struct Dispatched {
    /// Time spent waiting for a slot, over all attempts.
    pub queued: Duration,
    /// When the request that got this answer left for the node.
    pub sent_at: Instant,
    /// How the node was chosen.
    pub routing: Routing,
    /// The request's prompt key, when the policy routes by it (for the feedback of its answer).
    pub prompt: Option<Arc<PromptKey>>,
}

/// Sends inference requests to nodes: built once with exactly what that needs.
pub struct Forwarder<C = HttpNodeClient> {
    dispatcher: Arc<Dispatcher>,
    registry: Arc<Registry>,
    client: C,
    /// Nodes tried per request, the first included.
    max_attempts: u32,
    /// Keys prompts for a policy that routes by them.
    affinity: Option<Arc<Affinity>>,
}

impl<C: NodeClient> Forwarder<C> {
    pub fn new(
        dispatcher: Arc<Dispatcher>,
        registry: Arc<Registry>,
        client: C,
        max_attempts: u32,
    ) -> Self {
        Forwarder {
            dispatcher,
            registry,
            client,
            max_attempts,
            affinity: None,
        }
    }

    /// Keys each request's prompt with `affinity` when the policy routes by prompts.
    pub fn with_affinity(mut self, affinity: Arc<Affinity>) -> Self {
        self.affinity = Some(affinity);
        self
    }

    /// The registry failures are reported to (the relay reports mid-stream failures there too).
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Gets a slot on a node with `model` ready for a request of `tenant` and sends it `body` at
    /// `path`; returns once the node's response headers arrived.
    ///
    /// A connection error, no response headers within the header timeout, or a 5xx before any
    /// byte reached the client marks the node suspect and retries the request on another node, up
    /// to `max_attempts` nodes in all. The last attempt's answer is returned whatever its status.
    pub async fn send(
        &self,
        path: &str,
        model: &str,
        tenant: &Tenant,
        body: Bytes,
    ) -> Result<Upstream, ApiError> {
        let attempts = self.max_attempts;
        let prompt = match &self.affinity {
            Some(affinity) if self.dispatcher.wants_prompt() => {
                affinity.key(path, &body).map(Arc::new)
            }
            _ => None,
        };
        let mut queued = Duration::ZERO;
        let mut last_error = String::new();
        for attempt in 1..=attempts {
            let waiting = if attempt == 1 {
                Waiting::Allowed
            } else {
                Waiting::Retry
            };
            let acquired = self
                .dispatcher
                .acquire_for(model, tenant, waiting, prompt.clone())
                .await;
            let lease = match acquired {
                Ok(lease) => lease,
                Err(e) if attempt > 1 => {
                    tracing::debug!(error = %e, "no other node to retry on");
                    break;
                }
                Err(e) => return Err(acquire_error(e, model)),
            };
            queued += lease.queue_time();
            let node = lease.node().clone();
            let sent_at = Instant::now();
            let failure = match self.client.post(&node, path, body.clone()).await {
                Ok(response) if !response.status().is_server_error() || attempt == attempts => {
                    let decision = lease.decision();
                    let routing = Routing {
                        policy: self.dispatcher.policy_name().to_owned(),
                        reason: decision.reason.map(str::to_owned),
                        candidates: lease.candidates(),
                        attempts: attempt,
                        predicted_cached_tokens: decision.predicted_cached_tokens,
                    };
                    return Ok(Upstream {
                        response,
                        lease,
                        dispatched: Dispatched {
                            queued,
                            sent_at,
                            routing,
                            prompt,
                        },
                    });
                }
                Ok(response) => format!("answered {}", response.status()),
                Err(e) => e,
            };
            // Mark the node before its slot frees: the waiter the slot goes to must not be sent
            // there.
            let phase = Phase::BeforeFirstByte { model, attempt };
            report_failure(&self.registry, &node, phase, &failure);
            drop(lease);
            last_error = format!("node '{}' {failure}", node.machine_name);
        }
        Err(ApiError::Upstream(last_error))
    }
}

fn acquire_error(e: AcquireError, model: &str) -> ApiError {
    match e {
        AcquireError::UnknownModel => ApiError::ModelNotFound(model.to_owned()),
        AcquireError::NoNode => ApiError::NoNodeAvailable(model.to_owned()),
        AcquireError::QueueFull(depth) => ApiError::QueueFull(depth),
        AcquireError::TimedOut(limit) => ApiError::QueueTimeout(limit),
        AcquireError::KeyQueueShare(max) => ApiError::KeyQueueShare(max),
    }
}
