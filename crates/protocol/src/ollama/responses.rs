//! What Ollama answers, with the fields the official clients read (`done_reason`, durations in
//! nanoseconds, `modified_at`, `details`, `model_info`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Message;

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
    /// Model metadata as `/api/show`'s `model_info` (`general.architecture`,
    /// `<arch>.context_length`, ...), when known (an `llm-node` addition).
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub model_info: Map<String, Value>,
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
