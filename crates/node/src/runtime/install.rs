//! Fetching the runtime when its binary is missing (`--runtime-url`, `--runtime-sha256`): the
//! archive is downloaded with the same engine as models (retries, resume, proxies, progress,
//! SHA-256 checked before use), unpacked under the runtimes directory, and the binary found in it.
//! An archive already unpacked is reused without a download.

use std::io;
use std::path::{Path, PathBuf};

use crate::pull::{Downloader, ProxySettings, PullError, PullOptions, PullSpec, download_client};

/// Marks a directory whose unpacking finished.
const COMPLETE: &str = ".complete";
/// How deep in the archive the binary may sit.
const MAX_DEPTH: usize = 4;

/// Why the runtime could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("cannot fetch the runtime from {url}: {source}")]
    Fetch { url: String, source: PullError },
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
    #[error("the runtime archive has no '{0}'")]
    NoBinary(String),
}

impl InstallError {
    fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> InstallError {
        let context = context.into();
        move |source| InstallError::Io { context, source }
    }
}

/// The path of `binary` from the archive at `url` (digest `sha256`), unpacked under `dir`.
pub async fn fetch(
    url: &str,
    sha256: &str,
    dir: &Path,
    binary: &str,
    terminal: bool,
) -> Result<PathBuf, InstallError> {
    let key = sha256.get(..16).unwrap_or(sha256);
    let target = dir.join(key);
    if target.join(COMPLETE).is_file() {
        return find(&target, binary);
    }
    std::fs::create_dir_all(dir)
        .map_err(InstallError::io(format!("cannot create {}", dir.display())))?;
    let archive = dir.join(format!("{key}.tar.gz"));
    tracing::info!(%url, dest = %archive.display(), "{binary} is missing: fetching the runtime");
    let fetch_error = |source| InstallError::Fetch {
        url: url.to_owned(),
        source,
    };
    let downloader = Downloader::new(
        download_client(&ProxySettings::from_env()).map_err(fetch_error)?,
        PullOptions {
            terminal_progress: terminal,
            ..PullOptions::default()
        },
    );
    let spec = PullSpec {
        url: url.to_owned(),
        dest: archive.clone(),
        sha256: Some(sha256.to_owned()),
        size: None,
    };
    let report = |p: &crate::pull::Progress| {
        tracing::info!(done = p.bytes_done, total = ?p.bytes_total, "runtime download");
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    downloader
        .download(&spec, report, &cancel)
        .await
        .map_err(fetch_error)?;
    let unpacking = dir.join(format!("{key}.unpacking"));
    let (from, to) = (archive.clone(), unpacking.clone());
    tokio::task::spawn_blocking(move || unpack(&from, &to))
        .await
        .map_err(|e| InstallError::Io {
            context: "the unpacking task failed".to_owned(),
            source: io::Error::other(e),
        })??;
    let _ = std::fs::remove_dir_all(&target);
    std::fs::rename(&unpacking, &target).map_err(InstallError::io(format!(
        "cannot move the runtime to {}",
        target.display()
    )))?;
    std::fs::write(target.join(COMPLETE), sha256).map_err(InstallError::io(format!(
        "cannot write in {}",
        target.display()
    )))?;
    let _ = std::fs::remove_file(&archive);
    let found = find(&target, binary)?;
    tracing::info!(binary = %found.display(), "runtime installed");
    Ok(found)
}

/// Unpacks a .tar.gz into `to` (entries escaping it are refused by `tar`).
fn unpack(archive: &Path, to: &Path) -> Result<(), InstallError> {
    let cannot_unpack = || InstallError::io(format!("cannot unpack {}", archive.display()));
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).map_err(cannot_unpack())?;
    let file = std::fs::File::open(archive).map_err(cannot_unpack())?;
    tar::Archive::new(flate2::read::GzDecoder::new(file))
        .unpack(to)
        .map_err(cannot_unpack())
}

/// The file named `binary` under `dir` (breadth first, a few levels deep), made executable.
fn find(dir: &Path, binary: &str) -> Result<PathBuf, InstallError> {
    let unreadable = || InstallError::io(format!("cannot read {}", dir.display()));
    let mut level = vec![dir.to_owned()];
    for _ in 0..=MAX_DEPTH {
        let mut next = Vec::new();
        for d in level {
            for entry in std::fs::read_dir(&d).map_err(unreadable())?.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    next.push(path);
                } else if entry.file_name() == binary {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                        .map_err(InstallError::io(format!(
                            "cannot make {} executable",
                            path.display()
                        )))?;
                    return Ok(path);
                }
            }
        }
        level = next;
    }
    Err(InstallError::NoBinary(binary.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_binary_a_few_levels_down() {
        let dir = std::env::temp_dir().join(format!("llm-node-find-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("a/bin")).unwrap();
        std::fs::write(dir.join("a/bin/llama-server"), b"#!/bin/sh\n").unwrap();
        let found = find(&dir, "llama-server").unwrap();
        assert_eq!(found, dir.join("a/bin/llama-server"));
        assert!(find(&dir, "ollama").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
