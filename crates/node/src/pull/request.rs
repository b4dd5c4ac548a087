//! What to pull, how, and what a finished pull gives back.

use std::path::PathBuf;
use std::time::Duration;

use super::RetryPolicy;

/// One file to download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullSpec {
    /// `http://` or `https://` URL of the file.
    pub url: String,
    /// Where the verified file ends up; the download goes to `<dest>.part` first.
    pub dest: PathBuf,
    /// Expected SHA-256 (64 hex digits). Without it the file is taken as downloaded, and its
    /// actual digest is only reported in [`Pulled::sha256`].
    pub sha256: Option<String>,
    /// Size from the catalog, used for the free-space check before the first request; the
    /// server's `Content-Length` is used once known.
    pub size: Option<u64>,
}

/// How downloads are done.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Least time between two progress reports (the final report comes regardless).
    pub progress_interval: Duration,
    pub retry: RetryPolicy,
    /// Draw an `indicatif` bar on stderr, only when stderr is a terminal.
    pub terminal_progress: bool,
    /// Free bytes to assume instead of asking the filesystem; for tests.
    pub available_space_override: Option<u64>,
}

impl Default for PullOptions {
    fn default() -> Self {
        Self {
            progress_interval: Duration::from_secs(1),
            retry: RetryPolicy::default(),
            terminal_progress: false,
            available_space_override: None,
        }
    }
}

/// A verified file in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    pub path: PathBuf,
    pub bytes: u64,
    /// Lower-case hex SHA-256 of the file.
    pub sha256: String,
    /// HTTP requests it took, 1 when nothing failed.
    pub attempts: u32,
}
