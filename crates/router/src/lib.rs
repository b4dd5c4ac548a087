//! `llm-router`: one OpenAI-compatible endpoint in front of a fleet of `llm-node` machines.
//!
//! The binary (`main.rs`) only parses flags; everything else is here so tests and benchmarks build
//! the same router as production through [`Server`] and [`build_router`].

pub mod api;
pub mod app;
pub mod auth;
pub mod catalog;
pub mod config;
pub mod dashboard;
pub mod dispatch;
pub mod error;
pub mod health;
pub mod history;
pub mod metrics;
pub mod proxy;
pub mod registry;
pub mod state;
pub mod stats;
pub mod store;
pub mod tasks;

pub use app::{Server, build_router};
pub use config::{Config, Settings};
pub use error::ApiError;
pub use state::AppState;

/// Log files are `<log dir>/llm-router.<date>.log`.
pub const LOG_FILE_PREFIX: &str = "llm-router";
