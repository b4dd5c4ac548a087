//! Registry behaviour: registration, heartbeats, silence, failures and probes.

use std::time::Duration;

use llm_router_protocol::node::{Hardware, NodeMetrics, RuntimeInfo, RuntimeKind};

use super::*;

fn request(name: &str, models: &[(&str, ModelState)]) -> RegisterRequest {
    RegisterRequest {
        machine_name: name.into(),
        address: "127.0.0.1".into(),
        port: 9000,
        node_version: "test".into(),
        runtime: RuntimeInfo {
            kind: RuntimeKind::LlamaServer,
            version: None,
            backend: None,
        },
        hardware: Hardware {
            cpu_cores: 2,
            memory_total_bytes: 1 << 30,
            gpus: vec![],
        },
        models: models.iter().map(|(n, s)| status(n, *s)).collect(),
        api_token: llm_router_protocol::Secret::new("node-api-token"),
        scheme: llm_router_protocol::node::Scheme::Http,
    }
}

fn status(name: &str, state: ModelState) -> ModelStatus {
    ModelStatus {
        name: name.into(),
        state,
        slots_total: Some(2),
        slots_free: Some(2),
        error: None,
        cache_tokens: None,
    }
}

fn registry() -> Registry {
    Registry::new(HealthPolicy {
        node_timeout: Duration::from_secs(30),
    })
}

#[test]
fn node_without_ready_model_is_initializing_and_not_a_candidate() {
    let reg = registry();
    let r = reg.register(request("a", &[("m", ModelState::Loading)]), &[]);
    assert_eq!(r.status, NodeStatus::Initializing);
    assert_eq!(
        reg.snapshot().candidates("m").err(),
        Some(Unavailable::NotReadyYet)
    );
    assert_eq!(
        reg.snapshot().candidates("x").err(),
        Some(Unavailable::UnknownModel)
    );
}

#[test]
fn heartbeat_with_ready_model_makes_node_a_candidate() {
    let reg = registry();
    let r = reg.register(request("a", &[("m", ModelState::Loading)]), &[]);
    let hb = Heartbeat {
        node_id: r.node_id.clone(),
        metrics: NodeMetrics::default(),
        models: vec![status("m", ModelState::Ready)],
    };
    let (st, transition) = reg.heartbeat(hb, &r.node_token).unwrap();
    assert_eq!(st, NodeStatus::Online);
    assert_eq!(transition.unwrap().to, NodeStatus::Online);
    assert_eq!(reg.snapshot().candidates("m").unwrap().len(), 1);
}

#[test]
fn heartbeat_needs_the_node_token() {
    let reg = registry();
    let r = reg.register(request("a", &[]), &["m".into()]);
    let hb = Heartbeat {
        node_id: r.node_id.clone(),
        metrics: NodeMetrics::default(),
        models: vec![],
    };
    assert_eq!(
        reg.heartbeat(hb.clone(), "wrong"),
        Err(NodeAuthError::InvalidToken)
    );
    let unknown = Heartbeat {
        node_id: "nope".into(),
        ..hb
    };
    assert!(matches!(
        reg.heartbeat(unknown, &r.node_token),
        Err(NodeAuthError::UnknownNode(_))
    ));
}

#[test]
fn re_registering_a_machine_keeps_its_id() {
    let reg = registry();
    let first = reg.register(request("a", &[]), &["m".into()]);
    let second = reg.register(request("a", &[]), &["m".into()]);
    assert_eq!(first.node_id, second.node_id);
    assert!(second.updated);
    assert_ne!(first.node_token, second.node_token);
    assert_eq!(reg.snapshot().nodes().len(), 1);
}

#[test]
fn silent_node_goes_offline_on_sweep_and_leaves_rotation() {
    let reg = registry();
    reg.register(request("a", &[]), &["m".into()]);
    assert!(reg.sweep(Instant::now()).is_empty());
    let later = Instant::now() + Duration::from_secs(31);
    let t = reg.sweep(later);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].to, NodeStatus::Offline);
    assert_eq!(
        reg.snapshot().candidates("m").err(),
        Some(Unavailable::AllOffline)
    );
}

#[test]
fn model_listed_once_across_nodes() {
    let reg = registry();
    reg.register(request("a", &[]), &["m".into()]);
    reg.register(request("b", &[]), &["m".into()]);
    assert_eq!(reg.snapshot().ready_models(), vec!["m"]);
    assert_eq!(reg.snapshot().candidates("m").unwrap().len(), 2);
}

#[test]
fn failed_request_makes_node_suspect_until_a_probe_clears_it() {
    let reg = registry();
    let r = reg.register(request("a", &[]), &["m".into()]);
    let t = reg.report_failure(&r.node_id).unwrap();
    assert_eq!(t.to, NodeStatus::Suspect);
    assert_eq!(
        reg.snapshot().candidates("m").err(),
        Some(Unavailable::NotReadyYet)
    );
    let due = reg.due_probes(Instant::now());
    assert_eq!(due.len(), 1);
    assert!(reg.probe_result(&r.node_id, None).is_none());
    assert!(
        reg.due_probes(Instant::now()).is_empty(),
        "a failed probe backs off"
    );
    let t = reg.probe_result(&r.node_id, Some(true)).unwrap();
    assert_eq!(t.to, NodeStatus::Online);
    assert_eq!(reg.snapshot().candidates("m").unwrap().len(), 1);
}

#[test]
fn slot_counters_survive_heartbeats_and_re_registration() {
    let reg = registry();
    let r = reg.register(request("a", &[("m", ModelState::Ready)]), &[]);
    let before = Arc::clone(&reg.snapshot().candidates("m").unwrap()[0].slots);
    assert!(before.try_claim(2));
    let hb = Heartbeat {
        node_id: r.node_id.clone(),
        metrics: NodeMetrics::default(),
        models: vec![status("m", ModelState::Ready)],
    };
    reg.heartbeat(hb, &r.node_token).unwrap();
    reg.register(request("a", &[("m", ModelState::Ready)]), &[]);
    let snapshot = reg.snapshot();
    let after = &snapshot.candidates("m").unwrap()[0];
    assert!(Arc::ptr_eq(&before, &after.slots));
    assert_eq!(after.in_flight(), 1);
    assert_eq!(after.capacity, 2);
}

#[test]
fn metrics_push_needs_the_token_and_updates_freshness() {
    let reg = registry();
    let r = reg.register(request("a", &[]), &["m".into()]);
    let m = NodeMetrics {
        cpu_percent: 42.0,
        ..NodeMetrics::default()
    };
    assert_eq!(
        reg.push_metrics(&r.node_id, "bad", |_| {}),
        Err(NodeAuthError::InvalidToken)
    );
    reg.push_metrics(&r.node_id, &r.node_token, |x| *x = m)
        .unwrap();
    let snapshot = reg.snapshot();
    let node = snapshot.node(&r.node_id).unwrap();
    assert_eq!(node.metrics.cpu_percent, 42.0);
    assert!(Load::of(node).is_fresh(Instant::now(), Duration::from_secs(1)));
}

#[test]
fn heartbeat_republishes_other_nodes_without_copying_them() {
    let reg = registry();
    let a = reg.register(request("a", &[]), &["m".into()]);
    let b = reg.register(request("b", &[]), &["m".into()]);
    let before = reg.snapshot();
    let hb = Heartbeat {
        node_id: a.node_id.clone(),
        metrics: NodeMetrics::default(),
        models: vec![status("m", ModelState::Ready)],
    };
    reg.heartbeat(hb, &a.node_token).unwrap();
    let after = reg.snapshot();
    assert!(Arc::ptr_eq(
        before.node(&b.node_id).unwrap(),
        after.node(&b.node_id).unwrap()
    ));
    assert!(!Arc::ptr_eq(
        before.node(&a.node_id).unwrap(),
        after.node(&a.node_id).unwrap()
    ));
    assert!(after.node(&a.node_id).unwrap().metrics_at.is_some());
}
