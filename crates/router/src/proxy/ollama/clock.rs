//! Timestamps as Ollama writes them (RFC 3339, UTC).

use std::time::SystemTime;

/// Now, e.g. `2024-07-22T20:47:51.147561Z`.
pub fn now() -> String {
    rfc3339(SystemTime::now())
}

pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_micros(t).to_string()
}

/// A time that never comes: `expires_at` of a model the fleet keeps loaded.
pub const NEVER: &str = "9999-12-31T23:59:59Z";
