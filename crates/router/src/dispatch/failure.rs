//! Reporting a node that failed a request, in one place for failover and the relay.

use crate::registry::{Node, Registry};

/// When a node failed a request.
#[derive(Debug, Clone, Copy)]
pub enum Phase<'a> {
    /// Before any byte of its answer reached the client: the request is tried elsewhere.
    BeforeFirstByte { model: &'a str, attempt: u32 },
    /// While its streamed answer was being relayed.
    MidStream,
    /// While its whole answer was being read.
    MidAnswer,
}

/// Reports a failed node, the one place that does: counts the failure, marks the node suspect in
/// the registry (so no new request goes there until a probe says it is back), and logs both.
pub fn report_failure(
    registry: &Registry,
    node: &Node,
    phase: Phase<'_>,
    error: &dyn std::fmt::Display,
) {
    node.counters.record_failure();
    match phase {
        Phase::BeforeFirstByte { model, attempt } => tracing::warn!(
            node = %node.machine_name,
            %model,
            attempt,
            %error,
            "node failed before the first byte"
        ),
        Phase::MidStream => {
            tracing::warn!(node = %node.machine_name, %error, "node failed mid-stream");
        }
        Phase::MidAnswer => {
            tracing::warn!(node = %node.machine_name, %error, "node failed mid-answer");
        }
    }
    if let Some(t) = registry.report_failure(&node.id) {
        tracing::warn!(node = %t.machine_name, to = t.to.as_str(), "node marked suspect");
    }
}
