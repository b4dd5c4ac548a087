//! `llm-router`: one OpenAI-compatible endpoint in front of a fleet of `llm-node` machines.
//!
//! The binary (`main.rs`) only parses flags; everything else is here so tests and benchmarks build
//! the same router as production through [`Server`]. Modules are private
//! unless a test or bench needs them, so the compiler reports what nothing uses. The layers and
//! the rule between them are in README.md ("Architecture") and checked by `tests/layers.rs`.

pub mod affinity;
pub mod aliases;
mod api;
mod app;
mod auth;
mod catalog;
mod config;
mod dashboard;
pub mod dispatch;
mod error;
mod health;
mod history;
mod live;
mod metrics;
pub mod proxy;
pub mod quota;
mod registry;
mod secrets;
mod state;
mod stats;
pub mod store;
mod tasks;

pub use app::{Server, ServerError};
pub use config::{Config, Settings, TlsFiles};

/// Log files are `<log dir>/llm-router.<date>.log`.
pub const LOG_FILE_PREFIX: &str = "llm-router";
