//! Ollama API shapes (`/api/chat`, `/api/generate`, `/api/embed`, `/api/tags`, ...), as the
//! official clients send and read them.
//!
//! Requests are lenient: every field is optional where Ollama accepts its absence, and fields not
//! named here are kept in `extra` so a translation can pass them on instead of dropping them.
//! Responses carry the fields the official clients read (`done_reason`, durations in nanoseconds,
//! `modified_at`, `details`, `model_info`).

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

/// One line of `/api/pull` progress (or its single answer when not streamed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PullProgress {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub digest: Option<String>,
    #[serde(default)]
    pub total: Option<u64>,
    #[serde(default)]
    pub completed: Option<u64>,
    #[serde(default)]
    pub error: Option<String>,
}

/// The statistics of a finished generation, all durations in nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metrics {
    pub total_duration: u64,
    pub load_duration: u64,
    pub prompt_eval_count: u64,
    pub prompt_eval_duration: u64,
    pub eval_count: u64,
    pub eval_duration: u64,
}

/// `/api/chat` answer, or one line of its stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    pub model: String,
    pub created_at: String,
    pub message: Message,
    pub done: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_reason: Option<String>,
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,
}

/// `/api/generate` answer, or one line of its stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateResponse {
    pub model: String,
    pub created_at: String,
    pub response: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
    pub done: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_reason: Option<String>,
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,
}

/// `/api/embed` answer. Vectors are kept as JSON so the node's numbers pass unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbedResponse {
    pub model: String,
    pub embeddings: Vec<Value>,
    pub total_duration: u64,
    pub load_duration: u64,
    pub prompt_eval_count: u64,
}

/// `/api/embeddings` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingsResponse {
    pub embedding: Value,
}

/// `details` of a model in `/api/tags`, `/api/ps` and `/api/show`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelDetails {
    pub parent_model: String,
    pub format: String,
    pub family: String,
    pub families: Option<Vec<String>>,
    pub parameter_size: String,
    pub quantization_level: String,
}

/// `GET /api/tags` answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ListResponse {
    pub models: Vec<ListModel>,
}

/// One model of `GET /api/tags`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ListModel {
    pub name: String,
    pub model: String,
    /// RFC 3339.
    pub modified_at: String,
    pub size: u64,
    pub digest: String,
    pub details: ModelDetails,
    /// What the model can do (`completion`, `embedding`, `vision`, `tools`), when known. Not part
    /// of Ollama's `/api/tags`; filled by `llm-node` for the router's `/api/show`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    /// Context length the runtime serves the model with, when known (an `llm-node` addition).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_length: Option<u64>,
}

/// `GET /api/ps` answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcessResponse {
    pub models: Vec<RunningModel>,
}

/// One loaded model of `GET /api/ps`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunningModel {
    pub name: String,
    pub model: String,
    pub size: u64,
    pub digest: String,
    pub details: ModelDetails,
    /// RFC 3339.
    pub expires_at: String,
    pub size_vram: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_length: Option<u64>,
    /// The nodes that have the model loaded (an llm-router addition; Ollama clients ignore it).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
}

/// `POST /api/show` answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ShowResponse {
    pub modelfile: String,
    pub parameters: String,
    pub template: String,
    pub details: ModelDetails,
    pub model_info: Map<String, Value>,
    pub capabilities: Vec<String>,
    /// RFC 3339.
    pub modified_at: String,
}

/// `GET /api/version` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionResponse {
    pub version: String,
}

/// Ollama's error body, `{"error": "..."}`; also the last line of a stream that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub error: String,
}

impl ErrorResponse {
    pub fn new(error: impl Into<String>) -> Self {
        ErrorResponse {
            error: error.into(),
        }
    }
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

    #[test]
    fn final_chat_line_has_done_reason_and_durations() {
        let line = ChatResponse {
            model: "m".into(),
            created_at: "2024-01-01T00:00:00Z".into(),
            message: Message::assistant(""),
            done: true,
            done_reason: Some("stop".into()),
            metrics: Some(Metrics {
                total_duration: 5,
                eval_count: 2,
                ..Metrics::default()
            }),
        };
        let value = serde_json::to_value(&line).unwrap();
        assert_eq!(value["done_reason"], "stop");
        assert_eq!(value["total_duration"], 5);
        assert_eq!(value["eval_count"], 2);
        assert_eq!(
            value["message"],
            json!({"role": "assistant", "content": ""})
        );
    }

    #[test]
    fn partial_lines_have_no_statistics() {
        let line = GenerateResponse {
            model: "m".into(),
            created_at: "t".into(),
            response: "a".into(),
            thinking: None,
            done: false,
            done_reason: None,
            metrics: None,
        };
        assert_eq!(
            serde_json::to_value(&line).unwrap(),
            json!({"model": "m", "created_at": "t", "response": "a", "done": false})
        );
    }
}
