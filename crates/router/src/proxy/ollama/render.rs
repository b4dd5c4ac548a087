//! Building Ollama answers (one stream line, or a whole answer) from the parts of an OpenAI one.

use llm_router_protocol::ollama::{
    ChatResponse, ErrorResponse, GenerateResponse, Message, Metrics, ToolCall, ToolCallFunction,
};
use serde::Serialize;
use serde_json::{Map, Value};

use super::Shape;

/// What the client sees of an answer: its shape and the model name it asked for.
#[derive(Debug, Clone)]
pub struct Output {
    pub shape: Shape,
    pub model: String,
}

/// One piece of an answer (a stream chunk, or the whole answer).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Piece {
    pub text: String,
    pub thinking: String,
    pub tool_calls: Vec<ToolCall>,
}

impl Piece {
    pub fn is_empty(&self) -> bool {
        self.text.is_empty() && self.thinking.is_empty() && self.tool_calls.is_empty()
    }
}

/// How the answer ended.
#[derive(Debug, Clone, Copy)]
pub struct Done<'a> {
    pub reason: &'a str,
    pub metrics: Metrics,
}

/// A whole Ollama answer or one line of a stream, serialized with Ollama's field order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Answer {
    Chat(ChatResponse),
    Generate(GenerateResponse),
}

impl Output {
    /// The Ollama object for `piece`; `done` makes it the final one.
    pub fn answer(&self, piece: Piece, done: Option<Done<'_>>) -> Answer {
        let created_at = super::clock::now();
        let (done_flag, done_reason, metrics) = match done {
            Some(d) => (true, Some(d.reason.to_owned()), Some(d.metrics)),
            None => (false, None, None),
        };
        let thinking = (!piece.thinking.is_empty()).then_some(piece.thinking);
        match self.shape {
            Shape::Chat => Answer::Chat(ChatResponse {
                model: self.model.clone(),
                created_at,
                message: Message {
                    thinking,
                    tool_calls: (!piece.tool_calls.is_empty()).then_some(piece.tool_calls),
                    ..Message::assistant(piece.text)
                },
                done: done_flag,
                done_reason,
                metrics,
            }),
            Shape::Generate => Answer::Generate(GenerateResponse {
                model: self.model.clone(),
                created_at,
                response: piece.text,
                thinking,
                done: done_flag,
                done_reason,
                metrics,
            }),
        }
    }

    /// `answer` as one NDJSON line.
    pub fn line(&self, piece: Piece, done: Option<Done<'_>>) -> Vec<u8> {
        to_line(&self.answer(piece, done))
    }
}

/// `value` followed by a newline.
pub fn to_line(value: &impl Serialize) -> Vec<u8> {
    let mut line = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    line.push(b'\n');
    line
}

/// `{"error": message}` as an NDJSON line.
pub fn error_line(message: impl Into<String>) -> Vec<u8> {
    to_line(&ErrorResponse::new(message))
}

/// OpenAI's `finish_reason` as Ollama's `done_reason`.
pub fn done_reason(finish_reason: Option<&str>) -> &str {
    match finish_reason {
        None | Some("tool_calls" | "function_call" | "content_filter") => "stop",
        Some(other) => other,
    }
}

/// An OpenAI tool call (`arguments` a JSON string) as Ollama's (`arguments` an object).
pub fn tool_call(name: String, arguments: &str) -> ToolCall {
    let arguments = if arguments.trim().is_empty() {
        Value::Object(Map::new())
    } else {
        match serde_json::from_str::<Value>(arguments) {
            Ok(value @ Value::Object(_)) => value,
            _ => {
                tracing::warn!(tool = %name, "tool call arguments are not a JSON object; sent as {{}}");
                Value::Object(Map::new())
            }
        }
    };
    ToolCall {
        function: ToolCallFunction {
            name,
            arguments,
            extra: Map::new(),
        },
        extra: Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tool_call_arguments_become_an_object() {
        let call = tool_call("f".into(), "{\"x\":1}");
        assert_eq!(
            serde_json::to_value(call).unwrap(),
            json!({"function": {"name": "f", "arguments": {"x": 1}}})
        );
        assert_eq!(tool_call("f".into(), "").function.arguments, json!({}));
        assert_eq!(tool_call("f".into(), "[1]").function.arguments, json!({}));
    }

    #[test]
    fn finish_reasons_map_to_done_reasons() {
        assert_eq!(done_reason(Some("length")), "length");
        assert_eq!(done_reason(Some("tool_calls")), "stop");
        assert_eq!(done_reason(None), "stop");
    }

    #[test]
    fn lines_keep_ollamas_field_order() {
        let output = Output {
            shape: Shape::Generate,
            model: "m".into(),
        };
        let line = String::from_utf8(output.line(Piece::default(), None)).unwrap();
        assert!(
            line.starts_with("{\"model\":\"m\",\"created_at\":"),
            "{line}"
        );
        assert!(
            line.ends_with(",\"response\":\"\",\"done\":false}\n"),
            "{line}"
        );
    }

    #[test]
    fn generate_line_has_response_and_chat_line_a_message() {
        let piece = Piece {
            text: "hi".into(),
            ..Piece::default()
        };
        let generate = serde_json::to_value(
            Output {
                shape: Shape::Generate,
                model: "m".into(),
            }
            .answer(piece.clone(), None),
        )
        .unwrap();
        assert_eq!(generate["response"], "hi");
        assert_eq!(generate["done"], false);
        let chat = serde_json::to_value(
            Output {
                shape: Shape::Chat,
                model: "m".into(),
            }
            .answer(piece, None),
        )
        .unwrap();
        assert_eq!(
            chat["message"],
            json!({"role": "assistant", "content": "hi"})
        );
        assert!(chat["created_at"].as_str().unwrap().ends_with('Z'));
    }
}
