//! What a node says about itself, bounded before the registry stores it, the dashboard shows it
//! and the log names it. The body limit (64 KiB) bounds the whole report; this bounds each string
//! in it: a model whose name is longer than any real one is left out (it could not be asked for
//! by name anyway), error texts, GPU names and versions are cut with the cut marked.

use llm_router_common::text::{MAX_ERROR, MAX_NAME, cap_in_place};
use llm_router_protocol::node::{GpuMetrics, ModelStatus, RegisterRequest};

/// Bounds the strings of a registration (its `machine_name` is checked, not cut, by the caller:
/// it is the node's identity).
pub fn bound_registration(req: &mut RegisterRequest) {
    cap_in_place(&mut req.node_version, MAX_NAME);
    if let Some(version) = &mut req.runtime.version {
        cap_in_place(version, MAX_NAME);
    }
    for gpu in &mut req.hardware.gpus {
        cap_in_place(&mut gpu.name, MAX_NAME);
    }
    bound_models(&mut req.models);
}

/// Bounds a heartbeat's model list and GPU names.
pub fn bound_heartbeat(models: &mut Vec<ModelStatus>, gpus: &mut [GpuMetrics]) {
    bound_models(models);
    for gpu in gpus {
        cap_in_place(&mut gpu.name, MAX_NAME);
    }
}

fn bound_models(models: &mut Vec<ModelStatus>) {
    let before = models.len();
    models.retain(|m| m.name.len() <= MAX_NAME);
    if models.len() < before {
        tracing::warn!(
            left_out = before - models.len(),
            "a node reported models with names over {MAX_NAME} bytes: left out"
        );
    }
    for model in models {
        if let Some(error) = &mut model.error {
            cap_in_place(error, MAX_ERROR);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use llm_router_protocol::node::ModelState;

    use super::*;

    fn model(name: &str, error: Option<&str>) -> ModelStatus {
        ModelStatus {
            name: name.to_owned(),
            state: ModelState::Failed,
            slots_total: None,
            slots_free: None,
            error: error.map(str::to_owned),
            cache_tokens: None,
        }
    }

    #[test]
    fn long_model_names_are_left_out_and_long_errors_cut() {
        let long = "m".repeat(60_000);
        let mut models = vec![
            model(&long, None),
            model("ok", Some(&"e".repeat(60_000))),
            model("fine", Some("short")),
        ];
        bound_heartbeat(&mut models, &mut []);
        assert_eq!(models.len(), 2);
        assert_eq!(models[0].name, "ok");
        let error = models[0].error.as_deref().unwrap();
        assert!(error.len() < MAX_ERROR + 32, "{}", error.len());
        assert!(error.ends_with(" bytes]"), "the cut is marked");
        assert_eq!(models[1].error.as_deref(), Some("short"));
    }
}
