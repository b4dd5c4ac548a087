//! Logging shared by `llm-router` and `llm-node`.
//!
//! Both write their log twice: to stderr (text or JSON lines, as the operator chooses) and, always
//! as JSON lines, to a file in a log directory, rotated daily and pruned to the last
//! [`KEPT_FILES`]. [`LogFile::tail`] reads the last lines back for the log APIs
//! (`GET /api/logs` on both, and the router's proxy to a node's).

mod tail;

use std::path::{Path, PathBuf};

use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::layer::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry};

/// Daily files kept in the log directory.
pub const KEPT_FILES: usize = 7;
/// Lines a tail returns when the caller does not say.
pub const DEFAULT_TAIL: usize = 200;
/// Most lines one tail returns.
pub const MAX_TAIL: usize = 2000;
/// Most bytes one tail returns (very long lines are cut to fit).
pub const MAX_TAIL_BYTES: usize = 4 * 1024 * 1024;

/// Lines a `?tail=` asks for: [`DEFAULT_TAIL`] when absent, at most [`MAX_TAIL`].
pub fn tail_lines(requested: Option<usize>) -> usize {
    requested.unwrap_or(DEFAULT_TAIL).min(MAX_TAIL)
}

/// How logs are printed on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// A program's log files: `<dir>/<prefix>.<YYYY-MM-DD>.log`.
#[derive(Debug, Clone)]
pub struct LogFile {
    dir: PathBuf,
    prefix: String,
}

impl LogFile {
    pub fn new(dir: impl Into<PathBuf>, prefix: &str) -> LogFile {
        LogFile {
            dir: dir.into(),
            prefix: prefix.to_owned(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last `lines` lines (at most [`MAX_TAIL`]), oldest first, across rotated files; empty
    /// when nothing was written yet.
    pub async fn tail(&self, lines: usize) -> std::io::Result<String> {
        let this = self.clone();
        let lines = lines.min(MAX_TAIL);
        tokio::task::spawn_blocking(move || tail::read(&this.dir, &this.prefix, lines))
            .await
            .map_err(std::io::Error::other)?
    }
}

/// Keeps the file writer running; logs written before it is dropped reach the file.
#[must_use = "dropping the guard stops writing the log file"]
pub struct Guard {
    _writer: Option<WorkerGuard>,
}

/// Installs the global subscriber: `RUST_LOG` filter (default `info`), stderr in `format`, and
/// JSON lines into `file` when given (its directory is created).
pub fn init(format: Format, file: Option<&LogFile>) -> std::io::Result<Guard> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let mut layers: Vec<Box<dyn Layer<Registry> + Send + Sync>> = Vec::new();
    let stderr = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    layers.push(match format {
        Format::Text => stderr.boxed(),
        Format::Json => stderr.json().boxed(),
    });
    let mut guard = None;
    if let Some(file) = file {
        // The log may name clients, users and models: readable by the service's user only.
        llm_router_common::fs::create_private_dir(&file.dir)?;
        let appender = RollingFileAppender::builder()
            .rotation(Rotation::DAILY)
            .filename_prefix(&file.prefix)
            .filename_suffix("log")
            .max_log_files(KEPT_FILES)
            .build(&file.dir)
            .map_err(std::io::Error::other)?;
        let (writer, worker) = tracing_appender::non_blocking(appender);
        guard = Some(worker);
        layers.push(
            tracing_subscriber::fmt::layer()
                .json()
                .with_ansi(false)
                .with_writer(writer)
                .boxed(),
        );
    }
    tracing_subscriber::registry()
        .with(layers)
        .with(filter)
        .init();
    Ok(Guard { _writer: guard })
}
