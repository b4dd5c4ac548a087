//! The node status state machine: a pure function, so every transition is unit-tested without a
//! network or a clock.

use std::time::Duration;

use llm_router_protocol::node::NodeStatus;

/// Thresholds of the state machine.
#[derive(Debug, Clone)]
pub struct HealthPolicy {
    /// A node silent for longer than this goes offline.
    pub node_timeout: Duration,
}

/// Something the router learnt about a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthEvent {
    /// The node reported in (registration or heartbeat).
    Heartbeat { has_ready_model: bool },
    /// Time passed: the node has been silent this long.
    Silent { silent_for: Duration },
    /// A request to the node failed before its first byte (connection error, timeout, 5xx), or
    /// its stream broke.
    RequestFailed,
    /// The router's probe of the node's `/health` answered.
    ProbeSucceeded { has_ready_model: bool },
    /// The router's probe of the node's `/health` failed.
    ProbeFailed,
}

/// The status a node has after `event`.
pub fn next_status(current: NodeStatus, event: HealthEvent, policy: &HealthPolicy) -> NodeStatus {
    use NodeStatus::{Initializing, Offline, Online, Suspect};
    let by_readiness = |ready: bool| if ready { Online } else { Initializing };
    match (current, event) {
        (_, HealthEvent::Heartbeat { has_ready_model }) => by_readiness(has_ready_model),
        (_, HealthEvent::Silent { silent_for }) if silent_for > policy.node_timeout => Offline,
        (_, HealthEvent::Silent { .. }) => current,
        (Online, HealthEvent::RequestFailed) => Suspect,
        (_, HealthEvent::RequestFailed) => current,
        (Suspect, HealthEvent::ProbeSucceeded { has_ready_model }) => by_readiness(has_ready_model),
        (_, HealthEvent::ProbeSucceeded { .. } | HealthEvent::ProbeFailed) => current,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use NodeStatus::{Initializing, Offline, Online, Suspect};

    const POLICY: HealthPolicy = HealthPolicy {
        node_timeout: Duration::from_secs(30),
    };
    const ALL: [NodeStatus; 4] = [Initializing, Online, Suspect, Offline];

    fn next(from: NodeStatus, ev: HealthEvent) -> NodeStatus {
        next_status(from, ev, &POLICY)
    }

    #[test]
    fn heartbeat_with_ready_model_brings_any_node_online() {
        for from in ALL {
            let ev = HealthEvent::Heartbeat {
                has_ready_model: true,
            };
            assert_eq!(next(from, ev), Online, "from {from:?}");
        }
    }

    #[test]
    fn heartbeat_without_ready_model_means_initializing() {
        for from in ALL {
            let ev = HealthEvent::Heartbeat {
                has_ready_model: false,
            };
            assert_eq!(next(from, ev), Initializing, "from {from:?}");
        }
    }

    #[test]
    fn silence_past_timeout_means_offline() {
        let ev = HealthEvent::Silent {
            silent_for: Duration::from_secs(31),
        };
        for from in ALL {
            assert_eq!(next(from, ev), Offline, "from {from:?}");
        }
    }

    #[test]
    fn silence_within_timeout_keeps_status() {
        let ev = HealthEvent::Silent {
            silent_for: Duration::from_secs(30),
        };
        for from in ALL {
            assert_eq!(next(from, ev), from);
        }
    }

    #[test]
    fn failed_request_makes_an_online_node_suspect_only() {
        assert_eq!(next(Online, HealthEvent::RequestFailed), Suspect);
        for from in [Initializing, Suspect, Offline] {
            assert_eq!(next(from, HealthEvent::RequestFailed), from);
        }
    }

    #[test]
    fn successful_probe_clears_a_suspect_node() {
        let ok = |ready| HealthEvent::ProbeSucceeded {
            has_ready_model: ready,
        };
        assert_eq!(next(Suspect, ok(true)), Online);
        assert_eq!(next(Suspect, ok(false)), Initializing);
        assert_eq!(next(Offline, ok(true)), Offline, "only heartbeats revive");
    }

    #[test]
    fn failed_probe_keeps_a_node_suspect() {
        for from in ALL {
            assert_eq!(next(from, HealthEvent::ProbeFailed), from);
        }
    }
}
