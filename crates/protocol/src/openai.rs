//! OpenAI-compatible API shapes.
//!
//! The router forwards request bodies byte for byte, so the request types here are *views*: they
//! read only the fields the router must check and ignore the rest (which stay in the forwarded body).

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// What the router needs to know of an inference request: which model, and whether it streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestEnvelope {
    pub model: String,
    pub stream: bool,
}

/// A request view that can be checked and reduced to its [`RequestEnvelope`].
///
/// Deserializing a view checks the endpoint's required field (`messages`, `prompt` or `input`) has
/// a plausible JSON type, so obviously wrong bodies are refused before a node is used. Fields the
/// view does not name are ignored here and reach the node untouched in the forwarded body.
pub trait RequestView: for<'de> Deserialize<'de> {
    /// Checks that go beyond types; `Err` carries a message for the client.
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
    fn into_envelope(self) -> RequestEnvelope;
}

/// `POST /v1/chat/completions`: `messages` must be a non-empty array.
#[derive(Debug, Deserialize)]
pub struct ChatCompletionView {
    pub model: String,
    #[serde(default)]
    pub stream: Option<bool>,
    /// Only counted: each message is skipped unparsed (the node reads it).
    pub messages: Vec<IgnoredAny>,
}

impl RequestView for ChatCompletionView {
    fn validate(&self) -> Result<(), String> {
        if self.messages.is_empty() {
            return Err("'messages' must contain at least one message".to_owned());
        }
        Ok(())
    }

    fn into_envelope(self) -> RequestEnvelope {
        RequestEnvelope {
            model: self.model,
            stream: self.stream.unwrap_or(false),
        }
    }
}

/// `POST /v1/completions`: `prompt` is a string, an array of strings or an array of token ids.
#[derive(Debug, Deserialize)]
pub struct CompletionView {
    pub model: String,
    #[serde(default)]
    pub stream: Option<bool>,
    pub prompt: Prompt,
}

impl RequestView for CompletionView {
    fn into_envelope(self) -> RequestEnvelope {
        RequestEnvelope {
            model: self.model,
            stream: self.stream.unwrap_or(false),
        }
    }
}

/// `POST /v1/embeddings`: `input` is a string or an array.
#[derive(Debug, Deserialize)]
pub struct EmbeddingView {
    pub model: String,
    pub input: Prompt,
}

impl RequestView for EmbeddingView {
    fn into_envelope(self) -> RequestEnvelope {
        RequestEnvelope {
            model: self.model,
            stream: false,
        }
    }
}

/// A prompt or embedding input: text, or a list (of texts, token ids or token-id lists). Only its
/// type is checked; its content is skipped unparsed (the node reads it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    Text,
    List,
}

impl<'de> Deserialize<'de> for Prompt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PromptVisitor;

        impl<'de> Visitor<'de> for PromptVisitor {
            type Value = Prompt;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array")
            }

            fn visit_str<E: de::Error>(self, _: &str) -> Result<Prompt, E> {
                Ok(Prompt::Text)
            }

            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Prompt, S::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Prompt::List)
            }
        }

        d.deserialize_any(PromptVisitor)
    }
}

/// `GET /v1/models` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelList {
    pub object: String,
    pub data: Vec<ModelObject>,
}

impl ModelList {
    pub fn new(data: Vec<ModelObject>) -> Self {
        Self {
            object: "list".to_owned(),
            data,
        }
    }
}

/// One entry of `GET /v1/models`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelObject {
    pub id: String,
    pub object: String,
    #[serde(default)]
    pub created: u64,
    #[serde(default)]
    pub owned_by: String,
}

impl ModelObject {
    pub fn new(id: impl Into<String>, owned_by: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            object: "model".to_owned(),
            created: 0,
            owned_by: owned_by.into(),
        }
    }
}

/// OpenAI's error body: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub param: Option<String>,
    pub code: Option<String>,
}

impl ErrorResponse {
    pub fn new(message: impl Into<String>, kind: &str, code: Option<&str>) -> Self {
        Self {
            error: ErrorBody {
                message: message.into(),
                kind: kind.to_owned(),
                param: None,
                code: code.map(str::to_owned),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_view_keeps_model_and_stream() {
        let view: ChatCompletionView = serde_json::from_str(
            r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}],"foo":1}"#,
        )
        .unwrap();
        assert_eq!(view.messages.len(), 1);
        assert_eq!(
            view.into_envelope(),
            RequestEnvelope {
                model: "m".to_owned(),
                stream: true
            }
        );
    }

    #[test]
    fn chat_view_rejects_wrong_types() {
        assert!(
            serde_json::from_str::<ChatCompletionView>(r#"{"model":1,"messages":[{}]}"#).is_err()
        );
        assert!(
            serde_json::from_str::<ChatCompletionView>(r#"{"model":"m","messages":"hi"}"#).is_err()
        );
        assert!(serde_json::from_str::<ChatCompletionView>(r#"{"messages":[]}"#).is_err());
        assert!(
            serde_json::from_str::<ChatCompletionView>(
                r#"{"model":"m","messages":[],"stream":"yes"}"#
            )
            .is_err()
        );
    }

    #[test]
    fn chat_view_refuses_empty_messages() {
        let view: ChatCompletionView =
            serde_json::from_str(r#"{"model":"m","messages":[]}"#).unwrap();
        assert!(view.validate().is_err());
    }

    #[test]
    fn completion_prompt_accepts_text_and_lists() {
        for body in [
            r#"{"model":"m","prompt":"x"}"#,
            r#"{"model":"m","prompt":["a","b"]}"#,
            r#"{"model":"m","prompt":[1,2,3]}"#,
        ] {
            serde_json::from_str::<CompletionView>(body).unwrap();
        }
        assert!(serde_json::from_str::<CompletionView>(r#"{"model":"m","prompt":5}"#).is_err());
    }
}
