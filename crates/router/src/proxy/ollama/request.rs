//! Ollama requests as OpenAI requests for a node whose runtime speaks OpenAI (llama-server).
//!
//! Fields the translation does not know are passed on under their own name, so nothing the client
//! sent is silently dropped; the few Ollama fields that cannot apply (`template`, `context`,
//! `keep_alive`, load-time options) are logged and ignored.

use axum::body::Bytes;
use llm_router_protocol::ollama::{
    ChatRequest, EmbedInput, EmbedRequest, EmbeddingsRequest, Format, GenerateRequest, Message,
    Options, Think,
};
use serde_json::{Map, Value, json};

use super::{Endpoint, messages, options};

/// An OpenAI request ready for a node.
#[derive(Debug, Clone)]
pub struct Translated {
    pub endpoint: Endpoint,
    pub body: Bytes,
}

impl Translated {
    fn new(endpoint: Endpoint, body: Map<String, Value>) -> Translated {
        let body = serde_json::to_vec(&Value::Object(body)).unwrap_or_default();
        Translated {
            endpoint,
            body: Bytes::from(body),
        }
    }
}

/// `/api/chat` as `/v1/chat/completions`.
pub fn chat(request: ChatRequest, model: &str, stream: bool) -> Result<Translated, String> {
    let ChatRequest {
        model: _,
        messages,
        tools,
        format,
        options,
        stream: _,
        keep_alive: _,
        think,
        extra,
    } = request;
    let mut body = extra;
    common(&mut body, model, stream, options, "/api/chat");
    body.insert(
        "messages".into(),
        Value::Array(messages::to_openai(messages.unwrap_or_default())),
    );
    if let Some(tools) = tools.filter(|t| !t.is_empty()) {
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(format) = response_format(format)? {
        body.insert("response_format".into(), format);
    }
    apply_think(&mut body, think);
    Ok(Translated::new(Endpoint::ChatCompletions, body))
}

/// `/api/generate` as `/v1/completions` (the prompt is sent as it is, so a streamed, a whole and an
/// OpenAI completion of the same prompt agree), or as `/v1/chat/completions` when it has images.
pub fn generate(request: GenerateRequest, model: &str, stream: bool) -> Result<Translated, String> {
    let GenerateRequest {
        model: _,
        prompt,
        suffix,
        system,
        template,
        context,
        raw,
        images,
        format,
        options,
        stream: _,
        keep_alive: _,
        think,
        extra,
    } = request;
    if template.is_some() {
        tracing::info!(
            model,
            "/api/generate: 'template' ignored; the node's runtime applies its own"
        );
    }
    if context.is_some() {
        tracing::info!(
            model,
            "/api/generate: 'context' ignored; send the conversation instead"
        );
    }
    let prompt = prompt.unwrap_or_default();
    let raw = raw.unwrap_or(false);
    let mut body = extra;
    common(&mut body, model, stream, options, "/api/generate");
    if let Some(images) = images.filter(|i| !i.is_empty()) {
        let mut conversation = Vec::new();
        if let Some(system) = system.filter(|s| !s.is_empty() && !raw) {
            conversation.push(Message {
                role: "system".into(),
                content: Some(system),
                ..Message::default()
            });
        }
        conversation.push(Message {
            role: "user".into(),
            content: Some(prompt),
            images: Some(images),
            ..Message::default()
        });
        body.insert(
            "messages".into(),
            Value::Array(messages::to_openai(conversation)),
        );
        if let Some(format) = response_format(format)? {
            body.insert("response_format".into(), format);
        }
        apply_think(&mut body, think);
        return Ok(Translated::new(Endpoint::ChatCompletions, body));
    }
    let prompt = match system.filter(|s| !s.is_empty() && !raw) {
        Some(system) => format!("{system}\n\n{prompt}"),
        None => prompt,
    };
    body.insert("prompt".into(), Value::String(prompt));
    if let Some(suffix) = suffix.filter(|s| !s.is_empty()) {
        body.insert("suffix".into(), Value::String(suffix));
    }
    if let Some(format) = response_format(format)? {
        // llama-server reads `json_schema` on completions; other servers may read response_format.
        if let Some(schema) = format.pointer("/json_schema/schema") {
            body.insert("json_schema".into(), schema.clone());
        } else {
            body.insert("json_schema".into(), json!({}));
        }
        body.insert("response_format".into(), format);
    }
    Ok(Translated::new(Endpoint::Completions, body))
}

/// `/api/embed` as `/v1/embeddings`.
pub fn embed(request: EmbedRequest, model: &str, input: EmbedInput) -> Bytes {
    let EmbedRequest {
        model: _,
        input: _,
        truncate: _,
        dimensions,
        options: _,
        keep_alive: _,
        extra,
    } = request;
    let mut body = extra;
    body.insert("model".into(), Value::String(model.to_owned()));
    body.insert(
        "input".into(),
        match input {
            EmbedInput::One(text) => Value::String(text),
            EmbedInput::Many(texts) => json!(texts),
        },
    );
    if let Some(dimensions) = dimensions {
        body.insert("dimensions".into(), json!(dimensions));
    }
    body.insert("encoding_format".into(), json!("float"));
    Bytes::from(serde_json::to_vec(&Value::Object(body)).unwrap_or_default())
}

/// `/api/embeddings` as `/v1/embeddings` with a single input.
pub fn embeddings(request: EmbeddingsRequest, model: &str, prompt: String) -> Bytes {
    let EmbeddingsRequest {
        model: _,
        prompt: _,
        options: _,
        keep_alive: _,
        extra,
    } = request;
    let mut body = extra;
    body.insert("model".into(), Value::String(model.to_owned()));
    body.insert("input".into(), Value::String(prompt));
    body.insert("encoding_format".into(), json!("float"));
    Bytes::from(serde_json::to_vec(&Value::Object(body)).unwrap_or_default())
}

/// Fields every generation request has: model, streaming (with usage in the stream) and options.
fn common(
    body: &mut Map<String, Value>,
    model: &str,
    stream: bool,
    options: Option<Options>,
    route: &str,
) {
    body.insert("model".into(), Value::String(model.to_owned()));
    body.insert("stream".into(), Value::Bool(stream));
    if stream {
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if let Some(options) = options {
        let ignored = options::apply(options, body);
        if !ignored.is_empty() {
            tracing::debug!(
                model,
                route,
                ignored = ?ignored,
                "load-time options ignored; the node's runtime settings apply"
            );
        }
    }
}

/// Ollama `format` as OpenAI `response_format`; `Err` for a value Ollama would refuse.
fn response_format(format: Option<Format>) -> Result<Option<Value>, String> {
    match format {
        None => Ok(None),
        Some(Format::Named(name)) if name.is_empty() => Ok(None),
        Some(Format::Named(name)) if name == "json" => Ok(Some(json!({"type": "json_object"}))),
        Some(Format::Named(other)) => Err(format!(
            "invalid format '{other}': expected \"json\" or a JSON schema"
        )),
        Some(Format::Schema(schema)) => Ok(Some(json!({
            "type": "json_schema",
            "json_schema": {"name": "response", "schema": schema, "strict": true}
        }))),
    }
}

/// `think`: a level becomes `reasoning_effort`; on/off is passed to the chat template.
fn apply_think(body: &mut Map<String, Value>, think: Option<Think>) {
    match think {
        None => {}
        Some(Think::Level(level)) => {
            body.insert("reasoning_effort".into(), Value::String(level));
        }
        Some(Think::Enabled(enabled)) => {
            body.insert(
                "chat_template_kwargs".into(),
                json!({"enable_thinking": enabled}),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(t: &Translated) -> Value {
        serde_json::from_slice(&t.body).unwrap()
    }

    #[test]
    fn chat_maps_options_format_tools_and_keeps_unknown_fields() {
        let request: ChatRequest = serde_json::from_value(json!({
            "model": "m:latest",
            "messages": [{"role": "user", "content": "hi"}],
            "options": {"temperature": 0, "num_predict": 5, "seed": 1},
            "format": "json",
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "keep_alive": "10m",
            "logprobs": true
        }))
        .unwrap();
        let t = chat(request, "m", true).unwrap();
        assert_eq!(t.endpoint, Endpoint::ChatCompletions);
        assert_eq!(
            body(&t),
            json!({
                "model": "m", "stream": true, "stream_options": {"include_usage": true},
                "messages": [{"role": "user", "content": "hi"}],
                "temperature": 0.0, "max_tokens": 5, "seed": 1,
                "response_format": {"type": "json_object"},
                "tools": [{"type": "function", "function": {"name": "f"}}],
                "logprobs": true
            })
        );
    }

    #[test]
    fn empty_tools_are_not_sent() {
        let request: ChatRequest = serde_json::from_value(json!({
            "model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": []
        }))
        .unwrap();
        assert!(
            body(&chat(request, "m", false).unwrap())
                .get("tools")
                .is_none()
        );
    }

    #[test]
    fn a_json_schema_format_becomes_a_strict_json_schema_response_format() {
        let request: ChatRequest = serde_json::from_value(json!({
            "model": "m", "messages": [], "format": {"type": "object", "required": ["age"]}
        }))
        .unwrap();
        let b = body(&chat(request, "m", false).unwrap());
        assert_eq!(
            b["response_format"],
            json!({"type": "json_schema", "json_schema": {
                "name": "response", "schema": {"type": "object", "required": ["age"]}, "strict": true}})
        );
    }

    #[test]
    fn an_unknown_format_name_is_refused() {
        let request: ChatRequest =
            serde_json::from_value(json!({"model": "m", "format": "yaml"})).unwrap();
        assert!(chat(request, "m", false).unwrap_err().contains("yaml"));
    }

    #[test]
    fn generate_sends_the_prompt_as_is_to_completions() {
        let request: GenerateRequest = serde_json::from_value(json!({
            "model": "m", "prompt": "The capital of France is",
            "options": {"temperature": 0, "num_predict": 16}, "stream": false,
            "template": "{{ .Prompt }}", "context": [1, 2]
        }))
        .unwrap();
        let t = generate(request, "m", false).unwrap();
        assert_eq!(t.endpoint, Endpoint::Completions);
        assert_eq!(
            body(&t),
            json!({"model": "m", "stream": false, "prompt": "The capital of France is",
                   "temperature": 0.0, "max_tokens": 16})
        );
    }

    #[test]
    fn generate_puts_the_system_prompt_first_unless_raw() {
        let request: GenerateRequest =
            serde_json::from_value(json!({"model": "m", "prompt": "Q", "system": "S"})).unwrap();
        assert_eq!(
            body(&generate(request.clone(), "m", true).unwrap())["prompt"],
            "S\n\nQ"
        );
        let raw = GenerateRequest {
            raw: Some(true),
            ..request
        };
        assert_eq!(body(&generate(raw, "m", true).unwrap())["prompt"], "Q");
    }

    #[test]
    fn generate_with_a_schema_sets_llama_server_json_schema() {
        let request: GenerateRequest = serde_json::from_value(
            json!({"model": "m", "prompt": "age?", "format": {"type": "object"}}),
        )
        .unwrap();
        let b = body(&generate(request, "m", false).unwrap());
        assert_eq!(b["json_schema"], json!({"type": "object"}));
    }

    #[test]
    fn generate_with_images_goes_to_chat_completions() {
        let request: GenerateRequest = serde_json::from_value(
            json!({"model": "m", "prompt": "what?", "images": ["iVBORw0KGgo"]}),
        )
        .unwrap();
        let t = generate(request, "m", false).unwrap();
        assert_eq!(t.endpoint, Endpoint::ChatCompletions);
        assert_eq!(body(&t)["messages"][0]["content"][1]["type"], "image_url");
    }

    #[test]
    fn embed_sends_every_input() {
        let request: EmbedRequest =
            serde_json::from_value(json!({"model": "e", "input": ["a", "b"], "truncate": true}))
                .unwrap();
        let input = request.input.clone().unwrap();
        let b: Value = serde_json::from_slice(&embed(request, "e", input)).unwrap();
        assert_eq!(
            b,
            json!({"model": "e", "input": ["a", "b"], "encoding_format": "float"})
        );
    }
}
