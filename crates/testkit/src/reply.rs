//! [`Reply`]: what a fake node answers on its inference routes.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use futures_util::stream;

/// The last event of every SSE reply, as OpenAI-compatible servers send it.
pub const SSE_DONE: &str = "data: [DONE]\n\n";

/// A scripted answer to `POST /v1/chat/completions`, `/v1/completions` and `/v1/embeddings`.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `200 OK` with this JSON body.
    Json(serde_json::Value),
    /// `200 OK`, `text/event-stream`: `data: <chunk>\n\n` for each chunk, the first at once and each
    /// next one `interval` after the previous, then [`SSE_DONE`] right after the last chunk.
    Sse {
        chunks: Vec<String>,
        interval: Duration,
    },
    /// This status with this body, sent as `application/json` (an unknown status becomes 500).
    Status(u16, String),
}

impl Reply {
    /// An SSE reply of `chunks`, `interval` apart.
    pub fn sse<S: Into<String>>(chunks: impl IntoIterator<Item = S>, interval: Duration) -> Reply {
        Reply::Sse {
            chunks: chunks.into_iter().map(Into::into).collect(),
            interval,
        }
    }

    /// Exactly the bytes the fake writes as the body of this reply.
    pub fn body_text(&self) -> String {
        match self {
            Reply::Json(value) => value.to_string(),
            Reply::Sse { chunks, .. } => {
                let mut body: String = chunks.iter().map(|c| sse_event(c)).collect();
                body.push_str(SSE_DONE);
                body
            }
            Reply::Status(_, body) => body.clone(),
        }
    }

    /// The HTTP response the fake sends.
    pub(crate) fn to_response(&self) -> Response {
        match self {
            Reply::Json(_) => with_content_type(
                StatusCode::OK,
                Body::from(self.body_text()),
                "application/json",
            ),
            Reply::Sse { chunks, interval } => {
                let mut response = with_content_type(
                    StatusCode::OK,
                    Body::from_stream(sse_stream(chunks, *interval)),
                    "text/event-stream",
                );
                response
                    .headers_mut()
                    .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                response
            }
            Reply::Status(code, body) => with_content_type(
                StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                Body::from(body.clone()),
                "application/json",
            ),
        }
    }
}

/// One SSE event carrying `data`.
pub fn sse_event(data: &str) -> String {
    format!("data: {data}\n\n")
}

fn with_content_type(status: StatusCode, body: Body, content_type: &'static str) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// The events of an SSE reply, each yielded after its delay.
fn sse_stream(
    chunks: &[String],
    interval: Duration,
) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let steps: Vec<(Duration, Bytes)> = chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let delay = if i == 0 { Duration::ZERO } else { interval };
            (delay, Bytes::from(sse_event(chunk)))
        })
        .chain(std::iter::once((
            Duration::ZERO,
            Bytes::from_static(SSE_DONE.as_bytes()),
        )))
        .collect();
    stream::unfold(steps.into_iter(), |mut steps| async move {
        let (delay, event) = steps.next()?;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Some((Ok(event), steps))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_body_is_one_event_per_chunk_then_done() {
        let reply = Reply::sse(["a", "b"], Duration::from_millis(1));
        assert_eq!(reply.body_text(), "data: a\n\ndata: b\n\ndata: [DONE]\n\n");
    }
}
