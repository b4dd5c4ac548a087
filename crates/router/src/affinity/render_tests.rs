use serde_json::json;

use crate::affinity::{PromptHasher, PromptKey};

fn hasher() -> PromptHasher {
    PromptHasher::with_seed(11)
}

fn from_body(body: &serde_json::Value) -> Option<PromptKey> {
    hasher().body(body.to_string().as_bytes())
}

fn long(salt: &str) -> String {
    format!("{salt} ").repeat(60)
}

#[test]
fn a_body_is_keyed_as_its_parsed_messages_are() {
    let messages = json!([
        {"role": "system", "content": long("sys\n\"quoted\" é")},
        {"role": "user", "content": [
            {"type": "text", "text": long("part")},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            "bare string part",
        ]},
        {"role": "assistant", "content": null, "tool_calls": [
            {"type": "function", "function": {"name": "lookup", "arguments": "{\"q\":1}"}},
            {"name": "ollama_style", "arguments": {"q": 2}},
        ]},
        {"content": long("no role"), "role": "tool"},
    ]);
    let key = from_body(&json!({"model": "m", "messages": messages, "stream": true}));
    let expected = hasher().chat(messages.as_array().unwrap());
    assert!(expected.blocks.len() > 10);
    assert_eq!(
        key,
        Some(expected),
        "escapes, parts, tool calls, field order"
    );
}

#[test]
fn completion_prompts_and_ollama_generate_with_a_system_prompt() {
    let text = long("complete");
    assert_eq!(
        from_body(&json!({"model": "m", "prompt": text})),
        Some(hasher().text(&text))
    );
    let tokens: Vec<u32> = (0..64).collect();
    assert_eq!(
        from_body(&json!({"model": "m", "prompt": tokens})),
        Some(hasher().completion(&json!(tokens)))
    );
    let with_system = from_body(&json!({"model": "m", "system": long("be brief"), "prompt": text}));
    let as_chat = hasher().chat(&[
        json!({"role": "system", "content": long("be brief")}),
        json!({"role": "user", "content": text}),
    ]);
    assert_eq!(
        with_system,
        Some(as_chat),
        "generate's system renders as a chat"
    );
}

#[test]
fn values_of_unexpected_types_render_as_nothing_instead_of_failing() {
    let text = long("kept");
    let odd = from_body(&json!({"model": "m", "messages": [
        {"role": 5, "content": {"not": "a string"}, "tool_calls": "nope"},
        7,
        {"role": "user", "content": text, "tool_calls": [3, {"function": "x"}]},
    ]}))
    .unwrap();
    let plain = hasher().chat(&[
        json!({}),
        json!({}),
        json!({"role": "user", "content": text, "tool_calls": [{}, {}]}),
    ]);
    assert_eq!(odd, plain);
    assert_eq!(
        from_body(&json!({"model": "m", "messages": "hi"})).map(|k| k.bytes),
        Some(0)
    );
    assert_eq!(from_body(&json!({"model": "m"})), None, "no prompt");
    assert_eq!(
        hasher().body(b"{\"messages\": [ {\"role\""),
        None,
        "not JSON"
    );
}
