//! What Ollama clients send. Every field is optional where Ollama accepts its absence, and fields
//! not named here are kept in `extra`, so a translation can pass them on instead of dropping them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `POST /api/chat`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub messages: Option<Vec<Message>>,
    /// Tools in OpenAI's function shape (Ollama uses the same one).
    #[serde(default)]
    pub tools: Option<Vec<Value>>,
    #[serde(default)]
    pub format: Option<Format>,
    #[serde(default)]
    pub options: Option<Options>,
    /// Ollama streams unless told `false`.
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub keep_alive: Option<KeepAlive>,
    #[serde(default)]
    pub think: Option<Think>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `POST /api/generate`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GenerateRequest {
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub prompt: Option<String>,
    #[serde(default)]
    pub suffix: Option<String>,
    #[serde(default)]
    pub system: Option<String>,
    #[serde(default)]
    pub template: Option<String>,
    /// Token ids of a previous answer (deprecated in Ollama).
    #[serde(default)]
    pub context: Option<Vec<i64>>,
    #[serde(default)]
    pub raw: Option<bool>,
    /// Base64-encoded images.
    #[serde(default)]
    pub images: Option<Vec<String>>,
    #[serde(default)]
    pub format: Option<Format>,
    #[serde(default)]
    pub options: Option<Options>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub keep_alive: Option<KeepAlive>,
    #[serde(default)]
    pub think: Option<Think>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One chat message, in requests and (as the assistant's answer) in responses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
    /// Base64-encoded images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// On a `tool` message: the tool whose result this is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Message {
    /// An assistant message with `content`.
    pub fn assistant(content: impl Into<String>) -> Message {
        Message {
            role: "assistant".to_owned(),
            content: Some(content.into()),
            ..Message::default()
        }
    }
}

/// A tool call; unlike OpenAI's, `arguments` is a JSON object, not a string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub function: ToolCallFunction,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCallFunction {
    pub name: String,
    #[serde(default = "empty_object")]
    pub arguments: Value,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

/// `format`: `"json"` (any JSON value), `""` (none), or a JSON schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Format {
    Named(String),
    Schema(Map<String, Value>),
}

/// `keep_alive`: seconds, or a duration such as `"5m"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KeepAlive {
    Seconds(f64),
    Duration(String),
}

/// `think`: on/off, or a level (`"low"`, `"medium"`, `"high"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Think {
    Enabled(bool),
    Level(String),
}

/// `stop`: Ollama sends a list; a single string is accepted too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

/// Model options (the Modelfile parameters). The sampling ones are typed so a wrong type is a
/// clear 400; options not named here are kept in `extra`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Options {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_predict: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typical_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_last_n: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirostat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirostat_tau: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirostat_eta: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_keep: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_ctx: Option<i64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `POST /api/embed`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmbedRequest {
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub input: Option<EmbedInput>,
    #[serde(default)]
    pub truncate: Option<bool>,
    #[serde(default)]
    pub dimensions: Option<u32>,
    #[serde(default)]
    pub options: Option<Options>,
    #[serde(default)]
    pub keep_alive: Option<KeepAlive>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `input` of `/api/embed`: one text or several.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EmbedInput {
    One(String),
    Many(Vec<String>),
}

impl EmbedInput {
    pub fn is_empty(&self) -> bool {
        match self {
            EmbedInput::One(text) => text.is_empty(),
            EmbedInput::Many(texts) => texts.is_empty(),
        }
    }
}

/// `POST /api/embeddings` (the older, single-prompt endpoint).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingsRequest {
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub prompt: Option<String>,
    #[serde(default)]
    pub options: Option<Options>,
    #[serde(default)]
    pub keep_alive: Option<KeepAlive>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `POST /api/show`; `name` is the field's older spelling.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShowRequest {
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub verbose: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `POST /api/pull`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PullRequest {
    pub model: String,
    pub stream: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn chat_request_keeps_unknown_fields_and_options() {
        let req: ChatRequest = serde_json::from_value(json!({
            "model": "m",
            "messages": [{"role": "user", "content": "hi", "images": ["aGk="], "x-note": 1}],
            "options": {"temperature": 0, "num_predict": 8, "dry_multiplier": 0.5},
            "format": {"type": "object"},
            "keep_alive": "5m",
            "think": "low",
            "logprobs": true
        }))
        .unwrap();
        assert_eq!(req.extra["logprobs"], json!(true));
        let messages = req.messages.unwrap();
        assert_eq!(messages[0].extra["x-note"], json!(1));
        assert_eq!(
            messages[0].images.as_deref(),
            Some(&["aGk=".to_owned()][..])
        );
        let options = req.options.unwrap();
        assert_eq!(options.temperature, Some(0.0));
        assert_eq!(options.num_predict, Some(8));
        assert_eq!(options.extra["dry_multiplier"], json!(0.5));
        assert!(matches!(req.format, Some(Format::Schema(_))));
        assert_eq!(req.keep_alive, Some(KeepAlive::Duration("5m".into())));
        assert_eq!(req.think, Some(Think::Level("low".into())));
    }

    #[test]
    fn wrong_types_are_refused() {
        for body in [
            json!({"model": 1}),
            json!({"model": "m", "messages": "hi"}),
            json!({"model": "m", "stream": "yes"}),
            json!({"model": "m", "options": {"temperature": "hot"}}),
            json!({"model": "m", "keep_alive": true}),
        ] {
            assert!(
                serde_json::from_value::<ChatRequest>(body.clone()).is_err(),
                "{body}"
            );
        }
        assert!(serde_json::from_value::<GenerateRequest>(json!({"prompt": 5})).is_err());
        assert!(serde_json::from_value::<EmbedRequest>(json!({"input": [1, 2]})).is_err());
    }
}
