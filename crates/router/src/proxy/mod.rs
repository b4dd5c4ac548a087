//! Relaying the nodes' answers: one relay stream for every API, with a per-API transform (the
//! bytes as they are for OpenAI, NDJSON for Ollama), and the Ollama ⇄ OpenAI translation. Which
//! node gets a request is decided in [`crate::dispatch`].

mod forward;
mod identity;
pub mod ollama;
mod relay;

pub use forward::forward;
pub use identity::{Dialect, Identity};
pub use relay::{
    ErrorFrame, NODE_HEADER, QUEUE_MS_HEADER, Transform, answered, queue_ms, relay, router_headers,
};
