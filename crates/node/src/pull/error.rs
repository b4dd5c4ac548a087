//! The one error type of a pull, with variants the router maps to HTTP statuses.

use std::io;
use std::sync::Arc;

/// Why a pull failed. `Clone` so that every caller joined to one download gets the same error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PullError {
    /// Not enough free space on the destination filesystem (router: 507).
    #[error("not enough disk space: {needed} bytes needed, {available} available")]
    DiskFull { needed: u64, available: u64 },
    /// The downloaded bytes do not have the expected SHA-256; the `.part` file was deleted.
    #[error("sha256 mismatch: expected {expected}, got {actual}")]
    Checksum { expected: String, actual: String },
    /// The download server answered with an error status (after any retries).
    #[error("download server answered HTTP {status}")]
    Http { status: u16 },
    /// Connection refused, reset, timed out, or the body ended early (after any retries).
    #[error("network error: {0}")]
    Network(String),
    /// A local file operation failed.
    #[error("{context}: {error}")]
    Io {
        context: String,
        error: Arc<io::Error>,
    },
    /// The pull was cancelled; a partial `.part` file is kept so a later pull resumes it.
    #[error("download cancelled")]
    Cancelled,
    /// The request itself is unusable: bad URL, malformed checksum, bad proxy URL.
    #[error("invalid pull request: {0}")]
    Invalid(String),
}

impl PullError {
    /// True for failures another attempt may cure: network errors, 408, 429 and 5xx.
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            Self::Network(_) => true,
            Self::Http { status } => matches!(status, 408 | 429 | 500..=599),
            _ => false,
        }
    }

    pub(crate) fn io(context: impl Into<String>, error: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            error: Arc::new(error),
        }
    }

    /// A reqwest failure, with its cause chain spelled out and without the URL (signed download
    /// URLs carry credentials in their query).
    pub(crate) fn network(error: reqwest::Error) -> Self {
        let error = error.without_url();
        let mut message = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Self::Network(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_failures_are_retryable() {
        for status in [408, 429, 500, 502, 503, 504] {
            assert!(PullError::Http { status }.is_retryable(), "{status}");
        }
        for status in [400, 401, 403, 404, 410, 416] {
            assert!(!PullError::Http { status }.is_retryable(), "{status}");
        }
        assert!(PullError::Network("reset".into()).is_retryable());
        assert!(!PullError::Cancelled.is_retryable());
        assert!(
            !PullError::DiskFull {
                needed: 2,
                available: 1
            }
            .is_retryable()
        );
    }
}
