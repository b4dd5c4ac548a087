//! `llm-node`: runs on every inference machine. Supervises one runtime process per model, registers
//! with the router, heartbeats real metrics, and serves the node API the router forwards to.
//!
//! The library exists for the `llm-node` binary and the download engine's tests: it exports
//! [`Node`], its configuration and [`pull`]; everything else is the crate's own.

mod advertise;
mod agent;
mod amd_gpu;
mod api;
mod app;
mod config;
mod counters;
mod metrics;
pub mod pull;
mod runtime;
mod state;

pub use app::{Node, NodeError};
pub use config::{Config, ConfigError, ModelSpec, RuntimeChoice, Settings};

/// Log files are `<log dir>/llm-node.<date>.log`.
pub const LOG_FILE_PREFIX: &str = "llm-node";
