//! Reading a node's answer whole, with a cap: a node is a peer, not trusted to send a bounded
//! body. Whatever calls a node and buffers its answer (a non-streamed Ollama answer, an error
//! body, `/v1/models` at registration, `/api/tags`, `/health` probes, a refused pull) reads it
//! here.

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

/// Largest whole inference answer buffered (a non-streamed Ollama answer, translated before it
/// is sent on).
pub const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;
/// Largest small answer: a listing, a probe, an error body.
pub const MAX_SMALL_ANSWER_BYTES: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error("the node's answer is larger than {0} bytes")]
    TooLarge(usize),
    #[error("{0}")]
    Failed(#[from] reqwest::Error),
}

/// The whole body of `response`, or [`AnswerError::TooLarge`] as soon as it passes `max` bytes
/// (declared or received; what was read is dropped).
pub async fn read_answer(response: reqwest::Response, max: usize) -> Result<Bytes, AnswerError> {
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(AnswerError::TooLarge(max));
    }
    let mut body = BytesMut::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > max {
            return Err(AnswerError::TooLarge(max));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// A node's JSON answer of at most `max` bytes.
pub async fn read_json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    max: usize,
) -> Result<T, String> {
    let body = read_answer(response, max)
        .await
        .map_err(|e| e.to_string())?;
    serde_json::from_slice(&body).map_err(|e| format!("the node's answer is not JSON: {e}"))
}
