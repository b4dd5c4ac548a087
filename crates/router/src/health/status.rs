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
}

/// The status a node has after `event`.
pub fn next_status(current: NodeStatus, event: HealthEvent, policy: &HealthPolicy) -> NodeStatus {
    match event {
        HealthEvent::Heartbeat {
            has_ready_model: true,
        } => NodeStatus::Online,
        HealthEvent::Heartbeat {
            has_ready_model: false,
        } => NodeStatus::Initializing,
        HealthEvent::Silent { silent_for } if silent_for > policy.node_timeout => {
            NodeStatus::Offline
        }
        HealthEvent::Silent { .. } => current,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: HealthPolicy = HealthPolicy {
        node_timeout: Duration::from_secs(30),
    };

    #[test]
    fn heartbeat_with_ready_model_brings_any_node_online() {
        for from in [
            NodeStatus::Initializing,
            NodeStatus::Online,
            NodeStatus::Offline,
        ] {
            let ev = HealthEvent::Heartbeat {
                has_ready_model: true,
            };
            assert_eq!(next_status(from, ev, &POLICY), NodeStatus::Online);
        }
    }

    #[test]
    fn heartbeat_without_ready_model_means_initializing() {
        let ev = HealthEvent::Heartbeat {
            has_ready_model: false,
        };
        assert_eq!(
            next_status(NodeStatus::Online, ev, &POLICY),
            NodeStatus::Initializing
        );
    }

    #[test]
    fn silence_past_timeout_means_offline() {
        let ev = HealthEvent::Silent {
            silent_for: Duration::from_secs(31),
        };
        assert_eq!(
            next_status(NodeStatus::Online, ev, &POLICY),
            NodeStatus::Offline
        );
        assert_eq!(
            next_status(NodeStatus::Initializing, ev, &POLICY),
            NodeStatus::Offline
        );
    }

    #[test]
    fn silence_within_timeout_keeps_status() {
        let ev = HealthEvent::Silent {
            silent_for: Duration::from_secs(30),
        };
        assert_eq!(
            next_status(NodeStatus::Online, ev, &POLICY),
            NodeStatus::Online
        );
        assert_eq!(
            next_status(NodeStatus::Offline, ev, &POLICY),
            NodeStatus::Offline
        );
    }
}
