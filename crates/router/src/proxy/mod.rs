//! Forwarding inference requests to nodes and relaying their answers: one relay stream for every
//! API, with a per-API transform (the bytes as they are for OpenAI, NDJSON for Ollama).

mod forward;
mod identity;
pub mod ollama;
mod relay;

pub use forward::{Phase, Upstream, dispatch, forward, report_failure};
pub use identity::Identity;
pub use relay::{
    ErrorFrame, NODE_HEADER, QUEUE_MS_HEADER, Transform, queue_ms, relay, router_headers,
};
