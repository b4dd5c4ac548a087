//! Fleets for the dispatch tests.

use llm_router_protocol::node::{
    Hardware, ModelState, ModelStatus, RegisterRequest, RuntimeInfo, RuntimeKind,
};

use crate::registry::Registry;

/// Registers an online llama-server node `name` with model `m` ready on `slots` slots.
pub fn register(registry: &Registry, name: &str, slots: u32) {
    registry.register(
        RegisterRequest {
            machine_name: name.into(),
            address: "127.0.0.1".into(),
            port: 1,
            node_version: "test".into(),
            runtime: RuntimeInfo {
                kind: RuntimeKind::LlamaServer,
                version: None,
                backend: None,
            },
            hardware: Hardware {
                cpu_cores: 1,
                memory_total_bytes: 1,
                gpus: vec![],
            },
            models: vec![ModelStatus {
                name: "m".into(),
                state: ModelState::Ready,
                slots_total: Some(slots),
                slots_free: Some(slots),
                error: None,
                cache_tokens: None,
            }],
            api_token: llm_router_protocol::Secret::new("t"),
            scheme: llm_router_protocol::node::Scheme::Http,
        },
        &[],
    );
}
