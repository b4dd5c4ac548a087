//! The node's model download engine, used for `POST /pull`.
//!
//! [`Downloader::download`] fetches one file over HTTP(S) into `<dest>.part`, resumes it with
//! `Range` where the server allows, retries transient failures with exponential backoff, hashes
//! it with SHA-256 while writing and renames it into place only once verified. Free space is
//! checked before writing. [`Pulls`] runs downloads in the background and lets a second pull of
//! the same model join the first. [`download_client`] builds the client with explicit
//! [`ProxySettings`], read from `HTTP(S)_PROXY`/`NO_PROXY` by [`ProxySettings::from_env`].

mod client;
mod digest;
mod disk;
mod download;
mod error;
mod progress;
mod pulls;
mod range;
mod request;
mod retry;

pub use client::{ProxySettings, download_client};
pub(crate) use disk::available_space;
pub use download::{Downloader, part_path};
pub use error::PullError;
pub use progress::{Phase, Progress};
pub use pulls::{PullHandle, Pulls};
pub use request::{PullOptions, PullSpec, Pulled};
pub use retry::RetryPolicy;
