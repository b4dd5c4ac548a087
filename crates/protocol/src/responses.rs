//! OpenAI Responses API request views (`POST /v1/responses`, `/v1/responses/input_tokens`).
//!
//! Like the other OpenAI views, they read only what the router checks (the model, whether the
//! answer streams, that `input` has a plausible type); the body is forwarded untouched.

use serde::Deserialize;

use crate::openai::{Prompt, RequestEnvelope, RequestView};

/// `POST /v1/responses`: `input` is text or a list of input items (messages, tool outputs...).
/// The router keeps no state between responses, so `input` is required (a request continuing
/// a stored response by `previous_response_id` alone has nothing to answer here).
#[derive(Debug, Deserialize)]
pub struct ResponsesView {
    pub model: String,
    #[serde(default)]
    pub stream: Option<bool>,
    pub input: Prompt,
}

impl RequestView for ResponsesView {
    fn into_envelope(self) -> RequestEnvelope {
        RequestEnvelope {
            model: self.model,
            stream: self.stream.unwrap_or(false),
        }
    }
}

/// `POST /v1/responses/input_tokens`: the same input, counted, never streamed.
#[derive(Debug, Deserialize)]
pub struct InputTokensView {
    pub model: String,
    pub input: Prompt,
}

impl RequestView for InputTokensView {
    fn into_envelope(self) -> RequestEnvelope {
        RequestEnvelope {
            model: self.model,
            stream: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_view_takes_text_or_items_and_keeps_stream() {
        let view: ResponsesView =
            serde_json::from_str(r#"{"model":"m","input":"hi","stream":true,"store":false}"#)
                .unwrap();
        assert_eq!(
            view.into_envelope(),
            RequestEnvelope {
                model: "m".into(),
                stream: true
            }
        );
        let items: ResponsesView = serde_json::from_str(
            r#"{"model":"m","input":[{"role":"user","content":[{"type":"input_text","text":"x"}]}]}"#,
        )
        .unwrap();
        assert!(!items.into_envelope().stream);
    }

    #[test]
    fn responses_view_refuses_a_missing_or_wrong_input() {
        assert!(serde_json::from_str::<ResponsesView>(r#"{"model":"m"}"#).is_err());
        assert!(serde_json::from_str::<ResponsesView>(r#"{"model":"m","input":3}"#).is_err());
        assert!(serde_json::from_str::<InputTokensView>(r#"{"input":"x"}"#).is_err());
    }
}
