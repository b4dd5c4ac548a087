//! Loopback helpers for the pull tests: a scripted file server and temp dirs (the forward proxy
//! is `llm_router_testkit::ForwardProxy`).

pub mod server;

use std::time::Duration;

use sha2::{Digest, Sha256};

/// Deterministic, non-repeating-looking test content.
pub fn content(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 7)) as u8)
        .collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Fails the test instead of hanging it.
pub async fn bounded<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), future)
        .await
        .expect("test took over 30 s")
}

pub use llm_router_testkit::TempDir;
