//! Whole (not streamed) OpenAI answers as Ollama answers.

use std::time::Instant;

use llm_router_protocol::ollama::{EmbedResponse, EmbeddingsResponse, Metrics};
use serde_json::Value;

use super::Endpoint;
use super::render::{Answer, Done, Output, Piece, done_reason, tool_call};
use super::stats::Stats;
use super::transcoder::error_text;

/// A chat or text completion as Ollama's `/api/chat` or `/api/generate` answer.
pub fn generation(
    answer: &Value,
    endpoint: Endpoint,
    output: &Output,
    started: Instant,
) -> Result<Answer, String> {
    let choice = answer["choices"]
        .get(0)
        .ok_or_else(|| format!("the node's answer has no choices: {}", truncated(answer)))?;
    let piece = match endpoint {
        Endpoint::Completions => Piece {
            text: choice["text"].as_str().unwrap_or_default().to_owned(),
            ..Piece::default()
        },
        Endpoint::ChatCompletions => {
            let message = &choice["message"];
            let tool_calls = message["tool_calls"]
                .as_array()
                .map(|calls| {
                    calls
                        .iter()
                        .filter_map(|c| {
                            let f = &c["function"];
                            let name = f["name"].as_str()?.to_owned();
                            Some(tool_call(name, f["arguments"].as_str().unwrap_or_default()))
                        })
                        .collect()
                })
                .unwrap_or_default();
            Piece {
                text: message["content"].as_str().unwrap_or_default().to_owned(),
                thinking: message["reasoning_content"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                tool_calls,
            }
        }
    };
    let mut stats = Stats::new(started);
    stats.absorb(answer);
    if !piece.is_empty() {
        stats.piece();
    }
    let done = Done {
        reason: done_reason(choice["finish_reason"].as_str()),
        metrics: stats.metrics(Instant::now()),
    };
    Ok(output.answer(piece, Some(done)))
}

/// `/v1/embeddings` answer as `/api/embed`'s, vectors in input order.
pub fn embed(answer: Value, model: &str, started: Instant) -> Result<EmbedResponse, String> {
    let prompt_eval_count = answer["usage"]["prompt_tokens"].as_u64().unwrap_or(0);
    let embeddings = vectors(answer)?;
    let Metrics { total_duration, .. } = Stats::new(started).metrics(Instant::now());
    Ok(EmbedResponse {
        model: model.to_owned(),
        embeddings,
        total_duration,
        load_duration: 0,
        prompt_eval_count,
    })
}

/// `/v1/embeddings` answer (one input) as `/api/embeddings`'.
pub fn embeddings(answer: Value) -> Result<EmbeddingsResponse, String> {
    let embedding = vectors(answer)?
        .into_iter()
        .next()
        .ok_or_else(|| "the node's answer has no embedding".to_owned())?;
    Ok(EmbeddingsResponse { embedding })
}

fn vectors(mut answer: Value) -> Result<Vec<Value>, String> {
    let Some(Value::Array(mut data)) = answer.get_mut("data").map(Value::take) else {
        return Err(format!(
            "the node's answer has no embeddings: {}",
            truncated(&answer)
        ));
    };
    data.sort_by_key(|d| d["index"].as_u64().unwrap_or(u64::MAX));
    Ok(data
        .into_iter()
        .map(|mut d| d.get_mut("embedding").map(Value::take).unwrap_or_default())
        .collect())
}

/// The message of an error body from a node: OpenAI's `{"error": {"message"}}`, Ollama's
/// `{"error": "..."}`, or the text itself.
pub fn error_message(body: &[u8]) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(value) => match value.get("error") {
            Some(error) => error_text(error),
            None => value.to_string(),
        },
        Err(_) => {
            let text = String::from_utf8_lossy(body).trim().to_owned();
            if text.is_empty() {
                "the node answered with an empty error".to_owned()
            } else {
                text
            }
        }
    }
}

fn truncated(value: &Value) -> String {
    let mut text = value.to_string();
    if text.len() > 200 {
        let mut end = 200;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::ollama::Shape;
    use serde_json::json;

    fn output(shape: Shape) -> Output {
        Output {
            shape,
            model: "m:latest".into(),
        }
    }

    #[test]
    fn a_chat_completion_becomes_a_done_chat_answer() {
        let answer = json!({
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "Hello"}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 4},
            "timings": {"prompt_ms": 92.7, "predicted_ms": 125.0}
        });
        let out = serde_json::to_value(
            generation(
                &answer,
                Endpoint::ChatCompletions,
                &output(Shape::Chat),
                Instant::now(),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(out["model"], "m:latest");
        assert_eq!(
            out["message"],
            json!({"role": "assistant", "content": "Hello"})
        );
        assert_eq!(out["done"], true);
        assert_eq!(out["done_reason"], "stop");
        assert_eq!(out["prompt_eval_count"], 10);
        assert_eq!(out["eval_count"], 4);
        assert_eq!(out["prompt_eval_duration"], 92_700_000);
        assert_eq!(out["eval_duration"], 125_000_000);
    }

    #[test]
    fn tool_calls_of_a_whole_answer_are_ollama_tool_calls() {
        let answer = json!({"choices": [{"finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": null,
            "tool_calls": [{"id": "c", "type": "function",
                            "function": {"name": "f", "arguments": "{\"a\":[1]}"}}]}}]});
        let out = serde_json::to_value(
            generation(
                &answer,
                Endpoint::ChatCompletions,
                &output(Shape::Chat),
                Instant::now(),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            out["message"]["tool_calls"],
            json!([{"function": {"name": "f", "arguments": {"a": [1]}}}])
        );
        assert_eq!(out["message"]["content"], "");
    }

    #[test]
    fn a_text_completion_becomes_a_generate_answer() {
        let answer = json!({"choices": [{"text": " Paris.", "finish_reason": "length"}]});
        let out = serde_json::to_value(
            generation(
                &answer,
                Endpoint::Completions,
                &output(Shape::Generate),
                Instant::now(),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(out["response"], " Paris.");
        assert_eq!(out["done_reason"], "length");
        assert_eq!(
            out["eval_count"], 1,
            "one piece when the node gives no usage"
        );
    }

    #[test]
    fn embeddings_come_back_in_input_order() {
        let answer = json!({"data": [
            {"index": 1, "embedding": [0.3, 0.4]},
            {"index": 0, "embedding": [0.1, 0.2]}
        ], "usage": {"prompt_tokens": 4}});
        let out = embed(answer, "e", Instant::now()).unwrap();
        assert_eq!(out.embeddings, vec![json!([0.1, 0.2]), json!([0.3, 0.4])]);
        assert_eq!(out.prompt_eval_count, 4);
        let single = embeddings(json!({"data": [{"index": 0, "embedding": [1.5]}]})).unwrap();
        assert_eq!(single.embedding, json!([1.5]));
    }

    #[test]
    fn error_messages_are_read_from_either_api_shape() {
        assert_eq!(
            error_message(br#"{"error":{"message":"bad","type":"x"}}"#),
            "bad"
        );
        assert_eq!(error_message(br#"{"error":"worse"}"#), "worse");
        assert_eq!(error_message(b"plain text\n"), "plain text");
    }
}
