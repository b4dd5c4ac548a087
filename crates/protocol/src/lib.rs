//! Wire types shared by `llm-router` and `llm-node`.
//!
//! * [`openai`] — the public OpenAI-compatible API: lenient request views (unknown fields are left in
//!   the raw body, which is forwarded untouched) and the error and model-list shapes.
//! * [`node`] — the strict router <-> node contract (registration, heartbeats).

pub mod node;
pub mod openai;
