//! [`Reply`]: what a fake node answers on its inference routes.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use futures_util::{StreamExt, stream};

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
    /// Like [`Reply::Sse`] without the end: the chunks, then `interval` later the fake cuts the
    /// connection (its body stream fails, so the HTTP response never completes), as a node that
    /// dies mid-stream.
    SseAborted {
        chunks: Vec<String>,
        interval: Duration,
    },
    /// The inner reply, after holding the request this long.
    Delayed(Duration, Box<Reply>),
    /// This 3xx status with `Location: <url>` and an empty body: a hostile node pointing the
    /// router at another address (an unknown status becomes 307).
    Redirect(u16, String),
    /// This status, `application/json`, and a body that never ends (`{"pad":"xxx…` in 64 KiB
    /// chunks, as fast as the router reads): a hostile node's answer of no bounded size.
    Endless(u16),
}

impl Reply {
    /// An SSE reply of `chunks`, `interval` apart.
    pub fn sse<S: Into<String>>(chunks: impl IntoIterator<Item = S>, interval: Duration) -> Reply {
        Reply::Sse {
            chunks: chunks.into_iter().map(Into::into).collect(),
            interval,
        }
    }

    /// An SSE reply of `chunks`, `interval` apart, after which the connection is cut instead of
    /// ending the stream.
    pub fn sse_aborted<S: Into<String>>(
        chunks: impl IntoIterator<Item = S>,
        interval: Duration,
    ) -> Reply {
        Reply::SseAborted {
            chunks: chunks.into_iter().map(Into::into).collect(),
            interval,
        }
    }

    /// `307 Temporary Redirect` to `location` (which keeps the method and the body).
    pub fn redirect(location: impl Into<String>) -> Reply {
        Reply::Redirect(307, location.into())
    }

    /// This reply, sent after holding the request for `delay`.
    pub fn delayed(self, delay: Duration) -> Reply {
        Reply::Delayed(delay, Box::new(self))
    }

    /// Exactly the bytes the fake writes as the body of this reply (for [`Reply::SseAborted`],
    /// the bytes written before the connection is cut).
    pub fn body_text(&self) -> String {
        match self {
            Reply::Json(value) => value.to_string(),
            Reply::Sse { chunks, .. } => {
                let mut body: String = chunks.iter().map(|c| sse_event(c)).collect();
                body.push_str(SSE_DONE);
                body
            }
            Reply::SseAborted { chunks, .. } => chunks.iter().map(|c| sse_event(c)).collect(),
            Reply::Status(_, body) => body.clone(),
            Reply::Delayed(_, inner) => inner.body_text(),
            Reply::Redirect(..) | Reply::Endless(_) => String::new(),
        }
    }

    /// The HTTP response the fake sends, after the delays of [`Reply::Delayed`]. `in_flight` is
    /// kept until the fake has finished answering: dropped here for a whole body, at the end of
    /// the stream for an SSE reply.
    pub(crate) async fn respond<G: Send + 'static>(self, in_flight: G) -> Response {
        let mut reply = self;
        loop {
            return match reply {
                Reply::Delayed(delay, inner) => {
                    tokio::time::sleep(delay).await;
                    reply = *inner;
                    continue;
                }
                Reply::Json(value) => with_content_type(
                    StatusCode::OK,
                    Body::from(value.to_string()),
                    "application/json",
                ),
                Reply::Sse { chunks, interval } => {
                    sse_response(sse_steps(&chunks, interval, Step::End), in_flight)
                }
                Reply::SseAborted { chunks, interval } => {
                    sse_response(sse_steps(&chunks, interval, Step::Abort), in_flight)
                }
                Reply::Status(code, body) => with_content_type(
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    Body::from(body),
                    "application/json",
                ),
                Reply::Redirect(code, location) => redirect(code, &location),
                Reply::Endless(code) => with_content_type(
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    Body::from_stream(endless(in_flight)),
                    "application/json",
                ),
            };
        }
    }
}

/// `{"pad":"` and then `x` forever; `in_flight` is dropped when the reader goes away.
fn endless<G: Send + 'static>(
    in_flight: G,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let head = Bytes::from_static(b"{\"pad\":\"");
    let pad = Bytes::from(vec![b'x'; 64 * 1024]);
    stream::once(async move { Ok(head) }).chain(stream::unfold(in_flight, move |g| {
        let pad = pad.clone();
        async move { Some((Ok(pad), g)) }
    }))
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

fn redirect(code: u16, location: &str) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::from_u16(code)
        .ok()
        .filter(StatusCode::is_redirection)
        .unwrap_or(StatusCode::TEMPORARY_REDIRECT);
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

/// One step of an SSE body.
enum Step {
    Event(Bytes),
    /// `data: [DONE]`, then the body ends.
    End,
    /// The body fails: the connection is cut mid-response.
    Abort,
}

/// The chunks' events, the first at once and the next ones `interval` apart, then `last`:
/// [`Step::End`] right after the last chunk, [`Step::Abort`] `interval` after it.
fn sse_steps(chunks: &[String], interval: Duration, last: Step) -> Vec<(Duration, Step)> {
    let last_delay = match last {
        Step::Abort if !chunks.is_empty() => interval,
        _ => Duration::ZERO,
    };
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let delay = if i == 0 { Duration::ZERO } else { interval };
            (delay, Step::Event(Bytes::from(sse_event(chunk))))
        })
        .chain(std::iter::once((last_delay, last)))
        .collect()
}

fn sse_response<G: Send + 'static>(steps: Vec<(Duration, Step)>, in_flight: G) -> Response {
    let mut response = with_content_type(
        StatusCode::OK,
        Body::from_stream(sse_stream(steps, in_flight)),
        "text/event-stream",
    );
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The steps of an SSE reply, each yielded after its delay; `in_flight` is dropped when the
/// stream ends or is dropped.
fn sse_stream<G: Send + 'static>(
    steps: Vec<(Duration, Step)>,
    in_flight: G,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    stream::unfold(
        (steps.into_iter(), in_flight),
        |(mut steps, in_flight)| async move {
            let (delay, step) = steps.next()?;
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let item = match step {
                Step::Event(event) => Ok(event),
                Step::End => Ok(Bytes::from_static(SSE_DONE.as_bytes())),
                Step::Abort => Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "the fake node cut the stream",
                )),
            };
            Some((item, (steps, in_flight)))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_body_is_one_event_per_chunk_then_done() {
        let reply = Reply::sse(["a", "b"], Duration::from_millis(1));
        assert_eq!(reply.body_text(), "data: a\n\ndata: b\n\ndata: [DONE]\n\n");
    }

    #[test]
    fn aborted_sse_body_has_the_chunks_and_no_done() {
        let reply = Reply::sse_aborted(["a", "b"], Duration::from_millis(1));
        assert_eq!(reply.body_text(), "data: a\n\ndata: b\n\n");
    }

    #[test]
    fn delayed_reply_writes_the_inner_body() {
        let reply = Reply::Status(503, "busy".into()).delayed(Duration::from_millis(1));
        assert_eq!(reply.body_text(), "busy");
    }
}
