//! Ollama chat messages as OpenAI chat messages: images become `image_url` content parts, tool calls
//! get ids and string arguments, and tool results are linked to the call they answer.

use std::collections::VecDeque;

use llm_router_protocol::ollama::{Message, ToolCall};
use serde_json::{Map, Value, json};

/// Translates a conversation. Tool calls without an id get `call_<message>_<n>`; a `tool` message
/// answers the oldest unanswered call of the same `tool_name` (or, without a name, the oldest
/// unanswered call).
pub fn to_openai(messages: Vec<Message>) -> Vec<Value> {
    let mut unanswered: VecDeque<(String, String)> = VecDeque::new();
    messages
        .into_iter()
        .enumerate()
        .map(|(index, message)| translate(index, message, &mut unanswered))
        .collect()
}

fn translate(index: usize, message: Message, unanswered: &mut VecDeque<(String, String)>) -> Value {
    let Message {
        role,
        content,
        thinking,
        images,
        tool_calls,
        tool_name,
        extra,
    } = message;
    let mut out = Map::new();
    let images = images.unwrap_or_default();
    let content = match (content, images.is_empty()) {
        (content, false) => {
            let mut parts = Vec::with_capacity(images.len() + 1);
            if let Some(text) = content.filter(|t| !t.is_empty()) {
                parts.push(json!({"type": "text", "text": text}));
            }
            for image in images {
                parts.push(image_part(&image));
            }
            Value::Array(parts)
        }
        (Some(text), true) => Value::String(text),
        // OpenAI allows a null content only beside tool calls.
        (None, true) if tool_calls.as_ref().is_some_and(|c| !c.is_empty()) => Value::Null,
        (None, true) => Value::String(String::new()),
    };
    out.insert("content".into(), content);
    if let Some(thinking) = thinking.filter(|t| !t.is_empty()) {
        out.insert("reasoning_content".into(), Value::String(thinking));
    }
    if let Some(calls) = tool_calls.filter(|c| !c.is_empty()) {
        let calls: Vec<Value> = calls
            .into_iter()
            .enumerate()
            .map(|(n, call)| {
                let (id, value) = tool_call(index, n, call);
                if let Some(name) = value["function"]["name"].as_str() {
                    unanswered.push_back((name.to_owned(), id));
                }
                value
            })
            .collect();
        out.insert("tool_calls".into(), Value::Array(calls));
    }
    if role == "tool" && !extra.contains_key("tool_call_id") {
        let position = match &tool_name {
            Some(name) => unanswered.iter().position(|(n, _)| n == name),
            None => (!unanswered.is_empty()).then_some(0),
        };
        let id = position
            .and_then(|p| unanswered.remove(p))
            .map(|(_, id)| id)
            .or_else(|| tool_name.clone())
            .unwrap_or_else(|| "call_unknown".to_owned());
        out.insert("tool_call_id".into(), Value::String(id));
    }
    out.insert("role".into(), Value::String(role));
    for (key, value) in extra {
        out.entry(key).or_insert(value);
    }
    Value::Object(out)
}

/// An Ollama tool call as OpenAI's: `(id, call)`.
fn tool_call(message: usize, n: usize, call: ToolCall) -> (String, Value) {
    let ToolCall {
        function,
        mut extra,
    } = call;
    let id = match extra.remove("id") {
        Some(Value::String(id)) => id,
        _ => format!("call_{message}_{n}"),
    };
    let arguments = match function.arguments {
        Value::String(text) => text,
        other => other.to_string(),
    };
    let value = json!({
        "id": id,
        "type": "function",
        "function": {"name": function.name, "arguments": arguments},
    });
    (id, value)
}

/// A base64 image as a data-URL content part; the media type is guessed from the first bytes.
fn image_part(base64: &str) -> Value {
    let media = if base64.starts_with("iVBORw0KGgo") {
        "image/png"
    } else if base64.starts_with("R0lGOD") {
        "image/gif"
    } else if base64.starts_with("UklGR") {
        "image/webp"
    } else {
        "image/jpeg"
    };
    json!({"type": "image_url", "image_url": {"url": format!("data:{media};base64,{base64}")}})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(value: Value) -> Vec<Message> {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn plain_messages_keep_role_content_and_unknown_fields() {
        let out = to_openai(messages(json!([
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi", "name": "ann"}
        ])));
        assert_eq!(
            out,
            vec![
                json!({"role": "system", "content": "be brief"}),
                json!({"role": "user", "content": "hi", "name": "ann"})
            ]
        );
    }

    #[test]
    fn images_become_data_url_parts_after_the_text() {
        let out = to_openai(messages(json!([
            {"role": "user", "content": "what is this?", "images": ["iVBORw0KGgoAAA", "/9j/4AAQ"]}
        ])));
        assert_eq!(
            out[0]["content"],
            json!([
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgoAAA"}},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}}
            ])
        );
    }

    #[test]
    fn tool_calls_get_ids_and_string_arguments_and_results_answer_them() {
        let out = to_openai(messages(json!([
            {"role": "user", "content": "weather in Paris and Rome?"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"function": {"name": "weather", "arguments": {"city": "Paris"}}},
                {"function": {"name": "time", "arguments": {}}}
            ]},
            {"role": "tool", "content": "3 o'clock", "tool_name": "time"},
            {"role": "tool", "content": "sunny", "tool_name": "weather"}
        ])));
        assert_eq!(
            out[1]["tool_calls"],
            json!([
                {"id": "call_1_0", "type": "function",
                 "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_1_1", "type": "function",
                 "function": {"name": "time", "arguments": "{}"}}
            ])
        );
        assert_eq!(out[2]["tool_call_id"], "call_1_1");
        assert_eq!(out[3]["tool_call_id"], "call_1_0");
        assert_eq!(out[3]["role"], "tool");
        assert!(out[3].get("tool_name").is_none());
    }
}
