//! Ollama `options` (Modelfile parameters) as OpenAI / llama-server request fields.

use llm_router_protocol::ollama::{Options, Stop, is_load_time_option};
use serde_json::{Map, Value, json};

/// Writes `options` into the OpenAI request `body`. Returns the names of the options that were
/// ignored: the load-time ones ([`llm_router_protocol::ollama::LOAD_TIME_OPTIONS`]), which cannot
/// apply per request since the node's runtime was started with its own settings (they are
/// logged). Options the router does not know are passed on under their own name (llama-server
/// reads many of its sampling parameters that way).
pub fn apply(options: Options, body: &mut Map<String, Value>) -> Vec<String> {
    let Options {
        num_predict,
        temperature,
        top_p,
        top_k,
        min_p,
        typical_p,
        seed,
        stop,
        repeat_penalty,
        repeat_last_n,
        presence_penalty,
        frequency_penalty,
        mirostat,
        mirostat_tau,
        mirostat_eta,
        num_keep,
        num_ctx,
        extra,
    } = options;
    let mut ignored = Vec::new();
    // Negative num_predict means "no limit" (-1) or "fill the context" (-2): no max_tokens.
    if let Some(n) = num_predict.filter(|n| *n >= 0) {
        body.insert("max_tokens".into(), json!(n));
    }
    let mut set = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            body.insert(key.to_owned(), value);
        }
    };
    set("temperature", temperature.map(Value::from));
    set("top_p", top_p.map(Value::from));
    set("top_k", top_k.map(Value::from));
    set("min_p", min_p.map(Value::from));
    set("typical_p", typical_p.map(Value::from));
    set("seed", seed.map(Value::from));
    set("repeat_penalty", repeat_penalty.map(Value::from));
    set("repeat_last_n", repeat_last_n.map(Value::from));
    set("presence_penalty", presence_penalty.map(Value::from));
    set("frequency_penalty", frequency_penalty.map(Value::from));
    set("mirostat", mirostat.map(Value::from));
    set("mirostat_tau", mirostat_tau.map(Value::from));
    set("mirostat_eta", mirostat_eta.map(Value::from));
    set("n_keep", num_keep.map(Value::from));
    set(
        "stop",
        stop.map(|s| match s {
            Stop::One(one) => json!([one]),
            Stop::Many(many) => json!(many),
        }),
    );
    if num_ctx.is_some() {
        ignored.push("num_ctx".to_owned());
    }
    for (key, value) in extra {
        if is_load_time_option(&key) {
            ignored.push(key);
        } else {
            body.entry(key).or_insert(value);
        }
    }
    ignored
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(options: Value) -> (Value, Vec<String>) {
        let options: Options = serde_json::from_value(options).unwrap();
        let mut body = Map::new();
        let ignored = apply(options, &mut body);
        (Value::Object(body), ignored)
    }

    #[test]
    fn sampling_options_map_to_openai_and_llama_server_fields() {
        let (body, ignored) = applied(json!({
            "temperature": 0, "top_p": 0.9, "top_k": 20, "seed": 42, "num_predict": 16,
            "stop": ["\n", "user:"], "repeat_penalty": 1.1, "num_keep": 5, "min_p": 0.05,
            "presence_penalty": 1.5, "frequency_penalty": 1.0, "mirostat": 1
        }));
        assert_eq!(
            body,
            json!({
                "temperature": 0.0, "top_p": 0.9, "top_k": 20, "seed": 42, "max_tokens": 16,
                "stop": ["\n", "user:"], "repeat_penalty": 1.1, "n_keep": 5, "min_p": 0.05,
                "presence_penalty": 1.5, "frequency_penalty": 1.0, "mirostat": 1
            })
        );
        assert!(ignored.is_empty());
    }

    #[test]
    fn load_time_options_are_ignored_and_unknown_ones_passed_on() {
        let (body, ignored) = applied(json!({
            "num_ctx": 8192, "num_gpu": 1, "use_mmap": true, "dry_multiplier": 0.8
        }));
        assert_eq!(body, json!({"dry_multiplier": 0.8}));
        assert_eq!(ignored.len(), 3, "{ignored:?}");
    }

    #[test]
    fn unlimited_num_predict_sets_no_max_tokens_and_a_single_stop_is_a_list() {
        let (body, _) = applied(json!({"num_predict": -1, "stop": "END"}));
        assert_eq!(body, json!({"stop": ["END"]}));
    }
}
