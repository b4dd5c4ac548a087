//! Ollama API shapes (`/api/chat`, `/api/generate`, `/api/embed`, `/api/tags`, ...), as the
//! official clients send and read them.
//!
//! Requests are lenient: every field is optional where Ollama accepts its absence, and fields not
//! named here are kept in `extra` so a translation can pass them on instead of dropping them.
//! Responses carry the fields the official clients read (`done_reason`, durations in nanoseconds,
//! `modified_at`, `details`, `model_info`).

mod load_time;
mod requests;
mod responses;

pub use load_time::{LOAD_TIME_OPTIONS, is_load_time_option};
pub use requests::*;
pub use responses::*;
