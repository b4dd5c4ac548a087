//! The Ollama stream transformer on the hot path: a streamed chat answer as llama-server sends it
//! (SSE chunks), turned into Ollama NDJSON lines, fed one network chunk per event; and the
//! translation of a chat request.
//!
//! Run: `cargo bench -p llm-router --bench ollama_stream`

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use llm_router::proxy::ollama::{Endpoint, LineSource, Output, Shape, Transcoder, request};
use llm_router_protocol::ollama::ChatRequest;
use serde_json::json;

const TOKENS: usize = 256;

/// A llama-server chat stream of `TOKENS` one-token chunks, as separate network chunks.
fn llama_server_stream() -> Vec<Vec<u8>> {
    let mut events: Vec<Vec<u8>> = (0..TOKENS)
        .map(|i| {
            let chunk = json!({
                "choices": [{"finish_reason": null, "index": 0, "delta": {"content": format!(" word{i}")}}],
                "created": 1_795_293_923, "id": "chatcmpl-hUGHymZp8dtiaQJdeIxORRimu7vsxRFq",
                "model": "gemma3-270m", "system_fingerprint": "b0-unknown",
                "object": "chat.completion.chunk"
            });
            format!("data: {chunk}\n\n").into_bytes()
        })
        .collect();
    let end = json!({"choices": [{"finish_reason": "length", "index": 0, "delta": {}}]});
    events.push(format!("data: {end}\n\n").into_bytes());
    let usage = json!({"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": TOKENS},
                       "timings": {"prompt_ms": 67.5, "predicted_ms": 6400.0}});
    events.push(format!("data: {usage}\n\n").into_bytes());
    events.push(b"data: [DONE]\n\n".to_vec());
    events
}

fn transcode(c: &mut Criterion) {
    let events = llama_server_stream();
    let mut group = c.benchmark_group("ollama_stream");
    group.throughput(Throughput::Elements(TOKENS as u64));
    group.bench_function("chat_sse_to_ndjson_256_chunks", |b| {
        b.iter(|| {
            let mut transcoder = Transcoder::new(
                Endpoint::ChatCompletions,
                Output {
                    shape: Shape::Chat,
                    model: "gemma3-270m".to_owned(),
                },
                Instant::now(),
            );
            let mut written = 0;
            for event in &events {
                let mut out = Vec::new();
                transcoder.feed(black_box(event), &mut out);
                written += out.len();
            }
            black_box(written)
        });
    });
    group.finish();

    let body = json!({
        "model": "gemma3-270m",
        "messages": [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": "Why is the sky blue?"}],
        "options": {"temperature": 0, "num_predict": 128, "seed": 42, "top_k": 40},
        "stream": true
    })
    .to_string();
    c.bench_function("ollama_request/chat_parse_and_translate", |b| {
        b.iter(|| {
            let parsed: ChatRequest = serde_json::from_str(black_box(&body)).unwrap_or_default();
            black_box(request::chat(parsed, "gemma3-270m", true).map(|t| t.body.len()))
        });
    });
}

criterion_group!(benches, transcode);
criterion_main!(benches);
