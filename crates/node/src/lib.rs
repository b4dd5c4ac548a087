//! `llm-node`: runs on every inference machine. Supervises one runtime process per model, registers
//! with the router, heartbeats real metrics, and serves the node API the router forwards to.

mod agent;
pub mod api;
pub mod app;
pub mod config;
pub mod counters;
pub mod metrics;
pub mod pull;
pub mod runtime;
pub mod state;

pub use app::Node;
pub use config::{Config, ModelSpec, Settings};

/// Log files are `<log dir>/llm-node.<date>.log`.
pub const LOG_FILE_PREFIX: &str = "llm-node";
