//! Forwarding inference requests to nodes and relaying their answers.

mod forward;
pub mod ollama;
mod relay;

pub use forward::{Upstream, dispatch, forward};
pub use relay::{NODE_HEADER, QUEUE_MS_HEADER, queue_ms, relay};
