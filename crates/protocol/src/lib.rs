//! Wire types shared by `llm-router` and `llm-node`.
//!
//! * [`openai`] — the public OpenAI-compatible API: lenient request views (unknown fields are left in
//!   the raw body, which is forwarded untouched) and the error and model-list shapes.
//! * [`ollama`] — the public Ollama API: lenient requests (unknown fields kept in `extra`) and the
//!   answers the official Ollama clients read.
//! * [`responses`] — OpenAI's Responses API request views.
//! * [`anthropic`] — the Anthropic Messages API: request views and its error shape.
//! * [`node`] — the strict router <-> node contract (registration, heartbeats).
//! * [`Secret`] — credentials that never show in logs.

pub mod anthropic;
pub mod node;
pub mod ollama;
pub mod openai;
pub mod responses;
mod secret;

pub use secret::Secret;
