//! Start-up helpers shared by `llm-router` and `llm-node`.
//!
//! * [`config`] — settings layered from flags/env over a TOML file: [`config::from_file`], the
//!   [`fill_unset!`] merge and the [`config::ConfigError`] both programs report.
//! * [`fs`] — directories and files only the service's user may read.
//! * [`serve`] — [`serve::serve`]: the HTTP/1.1 serve loop of both programs, with a header-read
//!   timeout and a connection cap ([`serve::Limits`]).
//! * [`tls`] — certificates and keys from PEM files: the [`tls::acceptor`] a listener serves
//!   HTTPS with, and the extra roots a client trusts ([`tls::certificates`]).
//! * [`signal`] — [`signal::stop_on_signal`]: Ctrl-C or SIGTERM cancels the shutdown token.
//! * [`text`] — [`text::capped`]: strings an outsider controls, cut (and marked) before they are
//!   logged, stored or broadcast.

pub mod config;
pub mod fs;
pub mod serve;
pub mod signal;
pub mod text;
pub mod tls;
