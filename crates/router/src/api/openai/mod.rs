//! The OpenAI-compatible API.

pub mod inference;
pub mod models;
