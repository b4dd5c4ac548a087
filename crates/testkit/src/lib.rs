//! Test helpers for llm-router.
//!
//! [`FakeNode`] is a scripted FAKE node (no model, no `llm-node`) for router tests. This crate
//! depends on neither `llm-router` nor `llm-node`: the router's tests start the router in-process
//! themselves (see `crates/router/tests/common`), so its types are never compiled twice.

mod fake_node;
mod fake_registration;
mod fake_routes;
mod file_server;
mod forward_proxy;
mod gauge;
pub mod hostile;
pub mod prop;
mod reply;
mod temp_dir;
mod tls;
mod wait;

pub use fake_node::{FakeNode, FakeNodeBuilder, INFERENCE_PATHS, RecordedRequest};
pub use fake_registration::TEST_ENROLLMENT_TOKEN;
pub use fake_routes::LogReply;
pub use file_server::FileServer;
pub use forward_proxy::ForwardProxy;
pub use reply::{Reply, SSE_DONE, sse_event};
pub use temp_dir::TempDir;
pub use tls::{CertFiles, TestCa};
pub use wait::{wait_for, wait_for_every};

pub mod processes;
