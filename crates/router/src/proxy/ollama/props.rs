//! Property tests of the Ollama ⇄ OpenAI translation: requests keep what they carry, the SSE →
//! NDJSON transcoder and the NDJSON pass-through do not care where chunks end, and no answer a
//! node can send makes them panic.

use std::time::Instant;

use llm_router_protocol::ollama::{ChatRequest, GenerateRequest, Message, Options, Stop};
use llm_router_testkit::prop::{config, cut, cuts, json_value, object_with_keys, odd_string};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Value, json};

use super::transcoder::{LineSource, Passthrough, Transcoder};
use super::{Endpoint, Output, Shape, request, response};

/// Floats that survive a trip through JSON text exactly.
fn float() -> impl Strategy<Value = f64> {
    (-4096i32..4096).prop_map(|n| f64::from(n) / 64.0)
}

fn options() -> impl Strategy<Value = Options> {
    (
        (
            prop::option::of(any::<i64>()),
            prop::option::of(float()),
            prop::option::of(float()),
            prop::option::of(any::<i64>()),
            prop::option::of(any::<i64>()),
            prop::option::of(float()),
        ),
        prop::option::of(prop_oneof![
            odd_string().prop_map(Stop::One),
            prop::collection::vec(odd_string(), 0..3).prop_map(Stop::Many),
        ]),
        prop::option::of(any::<i64>()),
    )
        .prop_map(
            |((num_predict, temperature, top_p, top_k, seed, min_p), stop, num_ctx)| Options {
                num_predict,
                temperature,
                top_p,
                top_k,
                seed,
                min_p,
                stop,
                num_ctx,
                ..Options::default()
            },
        )
}

fn message() -> impl Strategy<Value = Message> {
    (
        prop_oneof![
            4 => prop::sample::select(&["system", "user", "assistant"][..]).prop_map(str::to_owned),
            1 => odd_string(),
        ],
        prop::option::of(odd_string()),
    )
        .prop_map(|(role, content)| Message {
            role,
            content,
            ..Message::default()
        })
}

/// A well-formed `/api/chat` request (no images or tool calls: their translation is checked by
/// the unit tests of `messages`).
fn chat_request() -> impl Strategy<Value = ChatRequest> {
    (
        "[a-z0-9:._-]{1,20}",
        prop::collection::vec(message(), 1..6),
        prop::option::of(options()),
    )
        .prop_map(|(model, messages, options)| ChatRequest {
            model: Some(model),
            messages: Some(messages),
            options,
            ..ChatRequest::default()
        })
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn chat_translation_keeps_model_messages_and_mapped_options(
        req in chat_request(),
        stream in any::<bool>(),
    ) {
        let model = req.model.clone().unwrap_or_default();
        let messages = req.messages.clone().unwrap_or_default();
        let options = req.options.clone();
        let translated = request::chat(req, &model, stream).map_err(TestCaseError::fail)?;
        prop_assert_eq!(translated.endpoint, Endpoint::ChatCompletions);
        let body: Value = serde_json::from_slice(&translated.body)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&body["model"], &json!(model));
        prop_assert_eq!(&body["stream"], &json!(stream));
        let sent = body["messages"].as_array().cloned().unwrap_or_default();
        prop_assert_eq!(sent.len(), messages.len());
        for (out, message) in sent.iter().zip(&messages) {
            prop_assert_eq!(&out["role"], &json!(message.role));
            prop_assert_eq!(&out["content"], &json!(message.content.clone().unwrap_or_default()));
        }
        if let Some(o) = options {
            match o.num_predict {
                Some(n) if n >= 0 => prop_assert_eq!(&body["max_tokens"], &json!(n)),
                _ => prop_assert!(body.get("max_tokens").is_none()),
            }
            for (key, value) in [
                ("temperature", o.temperature.map(Value::from)),
                ("top_p", o.top_p.map(Value::from)),
                ("top_k", o.top_k.map(Value::from)),
                ("seed", o.seed.map(Value::from)),
                ("min_p", o.min_p.map(Value::from)),
            ] {
                prop_assert_eq!(body.get(key), value.as_ref(), "option {}", key);
            }
            let stop = o.stop.map(|s| match s {
                Stop::One(one) => json!([one]),
                Stop::Many(many) => json!(many),
            });
            prop_assert_eq!(body.get("stop"), stop.as_ref());
            prop_assert!(body.get("num_ctx").is_none());
        }
    }

    #[test]
    fn odd_chat_and_generate_requests_never_panic(
        chat in object_with_keys(&["model", "messages", "options", "format", "tools", "think"]),
        generate in object_with_keys(&["model", "prompt", "system", "images", "format", "options", "raw", "suffix"]),
        options in object_with_keys(&["num_predict", "temperature", "stop", "seed", "num_ctx", "top_k", "mirostat"]),
        stream in any::<bool>(),
    ) {
        let mut chat = chat;
        if let Some(map) = chat.as_object_mut() {
            map.insert("options".into(), options.clone());
        }
        if let Ok(req) = serde_json::from_value::<ChatRequest>(chat) {
            let _ = request::chat(req, "m", stream);
        }
        if let Ok(req) = serde_json::from_value::<GenerateRequest>(generate) {
            let _ = request::generate(req, "m", stream);
        }
        let wrapped = json!({"model": "m", "prompt": "p", "options": options});
        if let Ok(req) = serde_json::from_value::<GenerateRequest>(wrapped) {
            let body = request::generate(req, "m", stream).map_err(TestCaseError::fail)?;
            prop_assert!(serde_json::from_slice::<Value>(&body.body).is_ok());
        }
    }

    #[test]
    fn whole_answers_of_any_shape_never_panic(
        answer in prop_oneof![
            json_value(),
            object_with_keys(&["choices", "usage", "timings", "data", "error"]),
            (object_with_keys(&["message", "text", "finish_reason", "delta"]), json_value())
                .prop_map(|(choice, usage)| json!({"choices": [choice], "usage": usage})),
        ],
        bytes in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        for (endpoint, shape) in [
            (Endpoint::ChatCompletions, Shape::Chat),
            (Endpoint::Completions, Shape::Generate),
        ] {
            let output = Output { shape, model: "m".into() };
            if let Ok(answer) = response::generation(&answer, endpoint, &output, Instant::now()) {
                prop_assert!(serde_json::to_vec(&answer).is_ok());
            }
        }
        let _ = response::embed(answer.clone(), "m", Instant::now());
        let _ = response::embeddings(answer.clone());
        let _ = response::error_message(&bytes);
        let _ = response::error_message(answer.to_string().as_bytes());
    }
}

/// One event of an OpenAI stream as a node may send it: the usual chunks with odd contents, odd
/// tool-call indices and statistics, errors, junk, `[DONE]`.
fn event() -> impl Strategy<Value = String> {
    let number = llm_router_testkit::prop::odd_number();
    prop_oneof![
        4 => odd_string().prop_map(|t| json!({"choices": [{"index": 0, "delta": {"content": t}}]}).to_string()),
        2 => odd_string().prop_map(|t| json!({"choices": [{"index": 0, "text": t}]}).to_string()),
        1 => odd_string().prop_map(|t| json!({"choices": [{"delta": {"reasoning_content": t}}]}).to_string()),
        2 => (number.clone(), odd_string(), odd_string()).prop_map(|(index, name, args)| json!(
            {"choices": [{"delta": {"tool_calls": [{"index": index, "function": {"name": name, "arguments": args}}]}}]}
        ).to_string()),
        1 => odd_string().prop_map(|r| json!({"choices": [{"delta": {}, "finish_reason": r}]}).to_string()),
        1 => (number.clone(), number.clone(), number).prop_map(|(p, c, ms)| json!(
            {"choices": [], "usage": {"prompt_tokens": p, "completion_tokens": c},
             "timings": {"prompt_ms": ms, "predicted_ms": ms, "prompt_n": p, "predicted_n": c}}
        ).to_string()),
        1 => json_value().prop_map(|e| json!({"error": e}).to_string()),
        2 => json_value().prop_map(|v| v.to_string()),
        1 => Just("[DONE]".to_owned()),
        1 => "[^\\r\\n]{0,16}",
    ]
}

/// An SSE stream of `events`, with comments between some, maybe cut short at the end.
fn sse_stream() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec((event(), any::<bool>()), 0..16),
        prop::sample::select(&["", "\n", "\n\n"][..]),
    )
        .prop_map(|(events, end)| {
            let mut stream = String::new();
            let last = events.len();
            for (n, (data, comment)) in events.into_iter().enumerate() {
                if comment {
                    stream.push_str(": keep-alive\r\n\r\n");
                }
                stream.push_str("data: ");
                stream.push_str(&data);
                stream.push_str(if n + 1 == last { end } else { "\n\n" });
            }
            stream.into_bytes()
        })
}

/// What `source` writes for `stream` fed in the pieces `cuts` makes.
fn run(mut source: impl LineSource, stream: &[u8], cuts: &[Index]) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in cut(stream, cuts) {
        if source.is_finished() {
            break;
        }
        source.feed(piece, &mut out);
    }
    if !source.is_finished() {
        source.finish(&mut out);
    }
    out
}

/// The NDJSON lines of a transcoder without what depends on the clock (timestamps, durations).
fn timeless(out: &[u8]) -> Result<Vec<Value>, TestCaseError> {
    let text = std::str::from_utf8(out).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert!(
        text.is_empty() || text.ends_with('\n'),
        "unterminated line in {text:?}"
    );
    text.lines()
        .map(|line| {
            let mut value: Value = serde_json::from_str(line)
                .map_err(|e| TestCaseError::fail(format!("{e}: {line}")))?;
            if let Some(map) = value.as_object_mut() {
                map.retain(|k, _| k != "created_at" && !k.ends_with("_duration"));
            }
            Ok(value)
        })
        .collect()
}

fn transcoder(endpoint: Endpoint, shape: Shape) -> Transcoder {
    Transcoder::new(
        endpoint,
        Output {
            shape,
            model: "m".into(),
        },
        Instant::now(),
    )
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn transcoded_ndjson_does_not_depend_on_chunk_boundaries(
        stream in sse_stream(),
        c in cuts(16),
        chat in any::<bool>(),
    ) {
        let (endpoint, shape) = if chat {
            (Endpoint::ChatCompletions, Shape::Chat)
        } else {
            (Endpoint::Completions, Shape::Generate)
        };
        let whole = timeless(&run(transcoder(endpoint, shape), &stream, &[]))?;
        let chunked = timeless(&run(transcoder(endpoint, shape), &stream, &c))?;
        prop_assert_eq!(&chunked, &whole);
        // Exactly one last line, and it is the last: `done: true` or an error.
        let ends = whole
            .iter()
            .filter(|l| l["done"] == json!(true) || l.get("error").is_some())
            .count();
        prop_assert_eq!(ends, 1, "{:?}", whole);
        let last = whole.last().cloned().unwrap_or_default();
        prop_assert!(last["done"] == json!(true) || last.get("error").is_some());
    }

    #[test]
    fn arbitrary_bytes_through_the_transcoder_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        c in cuts(8),
    ) {
        let whole = timeless(&run(transcoder(Endpoint::ChatCompletions, Shape::Chat), &bytes, &[]))?;
        let chunked = timeless(&run(transcoder(Endpoint::ChatCompletions, Shape::Chat), &bytes, &c))?;
        prop_assert_eq!(chunked, whole);
    }

    #[test]
    fn passthrough_passes_every_line_once_whatever_the_chunks(
        bytes in prop::collection::vec(prop_oneof![4 => any::<u8>(), 1 => Just(b'\n')], 0..512),
        c in cuts(16),
    ) {
        let out = run(Passthrough::default(), &bytes, &c);
        let (complete, partial) = match bytes.iter().rposition(|&b| b == b'\n') {
            Some(end) => bytes.split_at(end + 1),
            None => (&bytes[..0], &bytes[..]),
        };
        let mut expected = complete.to_vec();
        if !partial.iter().all(u8::is_ascii_whitespace) {
            expected.extend_from_slice(partial);
            expected.push(b'\n');
        }
        prop_assert_eq!(out, expected);
    }
}
