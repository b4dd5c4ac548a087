//! Anthropic Messages API shapes (`POST /v1/messages`, `/v1/messages/count_tokens`): lenient
//! request views (the body is forwarded untouched) and Anthropic's error body.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::openai::{RequestEnvelope, RequestView};

/// `POST /v1/messages`: `messages` a non-empty array, `max_tokens` a number (Anthropic requires
/// it), `system` text or a list of text blocks when present.
#[derive(Debug, Deserialize)]
pub struct MessagesView {
    pub model: String,
    #[serde(default)]
    pub stream: Option<bool>,
    pub messages: Vec<Value>,
    pub max_tokens: u64,
    #[serde(default)]
    pub system: Option<System>,
}

/// `POST /v1/messages/count_tokens`: the same prompt, without `max_tokens`, never streamed.
#[derive(Debug, Deserialize)]
pub struct CountTokensView {
    pub model: String,
    pub messages: Vec<Value>,
    #[serde(default)]
    pub system: Option<System>,
}

/// A system prompt: text, or a list of content blocks.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum System {
    Text(String),
    Blocks(Vec<Value>),
}

fn non_empty(messages: &[Value]) -> Result<(), String> {
    if messages.is_empty() {
        return Err("messages: at least one message is required".to_owned());
    }
    Ok(())
}

impl RequestView for MessagesView {
    fn validate(&self) -> Result<(), String> {
        non_empty(&self.messages)
    }

    fn into_envelope(self) -> RequestEnvelope {
        RequestEnvelope {
            model: self.model,
            stream: self.stream.unwrap_or(false),
        }
    }
}

impl RequestView for CountTokensView {
    fn validate(&self) -> Result<(), String> {
        non_empty(&self.messages)
    }

    fn into_envelope(self) -> RequestEnvelope {
        RequestEnvelope {
            model: self.model,
            stream: false,
        }
    }
}

/// Anthropic's error body: `{"type": "error", "error": {"type", "message"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorResponse {
    #[serde(rename = "type")]
    pub kind: String,
    pub error: ErrorBody,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
}

impl ErrorResponse {
    /// An error of Anthropic's `kind` (`invalid_request_error`, `not_found_error`, ...).
    pub fn new(kind: &str, message: impl Into<String>) -> Self {
        ErrorResponse {
            kind: "error".to_owned(),
            error: ErrorBody {
                kind: kind.to_owned(),
                message: message.into(),
            },
        }
    }

    /// Anthropic's error type for an HTTP status (its documented table; 503 is `overloaded_error`
    /// like its own 529, which a router at capacity is).
    pub fn kind_for_status(status: u16) -> &'static str {
        match status {
            400 | 405 | 422 => "invalid_request_error",
            401 => "authentication_error",
            402 => "billing_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            503 | 529 => "overloaded_error",
            504 => "timeout_error",
            s if (400..500).contains(&s) => "invalid_request_error",
            _ => "api_error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_view_needs_messages_and_max_tokens() {
        let view: MessagesView = serde_json::from_str(
            r#"{"model":"m","max_tokens":8,"stream":true,"system":[{"type":"text","text":"s"}],
                "messages":[{"role":"user","content":"hi"}],"metadata":{}}"#,
        )
        .unwrap();
        assert!(view.validate().is_ok());
        assert!(view.into_envelope().stream);
        assert!(
            serde_json::from_str::<MessagesView>(r#"{"model":"m","messages":[]}"#).is_err(),
            "max_tokens is required"
        );
        let empty: MessagesView =
            serde_json::from_str(r#"{"model":"m","max_tokens":1,"messages":[]}"#).unwrap();
        assert!(empty.validate().is_err());
        let count: CountTokensView =
            serde_json::from_str(r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#)
                .unwrap();
        assert!(!count.into_envelope().stream);
    }

    #[test]
    fn errors_have_anthropic_shape() {
        let body = ErrorResponse::new(ErrorResponse::kind_for_status(404), "no such model");
        assert_eq!(
            serde_json::to_value(body).unwrap(),
            serde_json::json!({"type": "error",
                "error": {"type": "not_found_error", "message": "no such model"}})
        );
        assert_eq!(ErrorResponse::kind_for_status(429), "rate_limit_error");
        assert_eq!(ErrorResponse::kind_for_status(502), "api_error");
    }
}
