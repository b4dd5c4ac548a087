//! `GET /join.sh` and `GET /api/bundle/{file}`: what a new machine needs to join the fleet,
//! from the bundle `scripts/package.sh` makes (`--bundle-dir`).
//!
//! - `/join.sh` is open (it holds nothing secret): the bundle's `join.sh` with `@ROUTER_URL@`
//!   replaced by this router's URL as the client reached it (its `Host` header, checked to be a
//!   bare `host[:port]` so nothing the client sends can change the script).
//! - `/api/bundle/{file}` takes the enrolment token (`Authorization: Bearer`, never a URL) and
//!   serves only the files listed in the bundle's `SHA256SUMS` (and that manifest itself): a name
//!   that is not listed is 404 whatever it holds (`..`, `/`, a dotfile), so nothing else on the
//!   disk can be reached. The join script fetches `SHA256SUMS` first, which is its token check.
//! - At most [`MAX_DOWNLOADS`] downloads at once (the permit rides on the body); more get 503.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use tokio::io::AsyncReadExt;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::api::guard::Enrolment;
use crate::error::ApiError;
use crate::state::AppState;

/// The manifest: `sha256sum` lines (`<64 hex>  <name>`), the only names served.
pub const MANIFEST: &str = "SHA256SUMS";
/// The join script's template in the bundle.
pub const JOIN_SCRIPT: &str = "join.sh";
/// What `@ROUTER_URL@` in the template becomes.
const URL_PLACEHOLDER: &str = "@ROUTER_URL@";
/// Largest manifest and join script read.
const MAX_TEXT_BYTES: u64 = 64 * 1024;
/// Longest file name served.
const MAX_NAME: usize = 128;
/// Bundle downloads served at once.
pub const MAX_DOWNLOADS: usize = 8;
/// Bytes read from disk at a time.
const CHUNK: usize = 64 * 1024;

static DOWNLOADS: Semaphore = Semaphore::const_new(MAX_DOWNLOADS);

/// Why a bundle request is refused.
#[derive(Debug, thiserror::Error)]
enum BundleError {
    #[error(
        "this router serves no bundle (start it with --bundle-dir; scripts/package.sh makes one)"
    )]
    NoBundle,
    #[error("'{0}' is not in the bundle")]
    NotListed(String),
    #[error("the Host header must be host[:port]")]
    BadHost,
    #[error("{MAX_DOWNLOADS} bundle downloads are running; try again shortly")]
    Busy,
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} is larger than {MAX_TEXT_BYTES} bytes")]
    TooLarge(PathBuf),
}

impl From<BundleError> for ApiError {
    fn from(e: BundleError) -> ApiError {
        match e {
            BundleError::NoBundle | BundleError::NotListed(_) => {
                ApiError::RouteNotFound(e.to_string())
            }
            BundleError::BadHost => ApiError::InvalidRequest(e.to_string()),
            BundleError::Busy => ApiError::QueueFull(MAX_DOWNLOADS),
            BundleError::Io { .. } | BundleError::TooLarge(_) => {
                tracing::error!(error = %e, "bundle unreadable");
                ApiError::Internal("the bundle cannot be read (the router's log says why)".into())
            }
        }
    }
}

/// `GET /join.sh`: the join script for this router.
#[tracing::instrument(skip_all)]
pub async fn join_script(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match render_join_script(&state, &headers).await {
        Ok(script) => (
            [
                (CONTENT_TYPE, HeaderValue::from_static("text/x-shellscript")),
                (CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            script,
        )
            .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn render_join_script(state: &AppState, headers: &HeaderMap) -> Result<String, BundleError> {
    let dir = bundle_dir(state)?;
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| is_host_and_port(h))
        .ok_or(BundleError::BadHost)?;
    let scheme = if state.config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let template = read_text(&dir.join(JOIN_SCRIPT)).await?;
    Ok(template.replace(URL_PLACEHOLDER, &format!("{scheme}://{host}")))
}

/// `GET /api/bundle/{file}` (the enrolment token checked first): a file of the manifest.
#[tracing::instrument(skip_all, fields(file = %capped(&file)))]
pub async fn file(
    State(state): State<AppState>,
    _: Enrolment,
    UrlPath(file): UrlPath<String>,
) -> Response {
    match open_listed(&state, &file).await {
        Ok(response) => response,
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn open_listed(state: &AppState, name: &str) -> Result<Response, BundleError> {
    let dir = bundle_dir(state)?;
    if !is_plain_name(name) {
        return Err(BundleError::NotListed(capped(name)));
    }
    if name != MANIFEST {
        let manifest = read_text(&dir.join(MANIFEST)).await?;
        if !listed(&manifest).any(|listed| listed == name) {
            return Err(BundleError::NotListed(capped(name)));
        }
    }
    let permit = DOWNLOADS.try_acquire().map_err(|_| BundleError::Busy)?;
    let path = dir.join(name);
    let io = |source| BundleError::Io {
        path: path.clone(),
        source,
    };
    let file = tokio::fs::File::open(&path).await.map_err(io)?;
    let len = file.metadata().await.map_err(io)?.len();
    tracing::info!(file = name, bytes = len, "bundle download");
    Ok((
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (CONTENT_LENGTH, HeaderValue::from(len)),
            (CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        Body::from_stream(chunks(file, permit)),
    )
        .into_response())
}

/// The file's bytes, [`CHUNK`] at a time, holding `permit` until the last one is sent (or the
/// client goes away and the body is dropped).
fn chunks(
    file: tokio::fs::File,
    permit: SemaphorePermit<'static>,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send {
    futures_util::stream::unfold(Some((file, permit)), |state| async move {
        let (mut file, permit) = state?;
        let mut buffer = BytesMut::with_capacity(CHUNK);
        match file.read_buf(&mut buffer).await {
            Ok(0) => None,
            Ok(_) => Some((Ok(buffer.freeze()), Some((file, permit)))),
            Err(e) => Some((Err(e), None)),
        }
    })
}

fn bundle_dir(state: &AppState) -> Result<&Path, BundleError> {
    state
        .config
        .bundle_dir
        .as_deref()
        .ok_or(BundleError::NoBundle)
}

/// A small text file of the bundle, at most [`MAX_TEXT_BYTES`].
async fn read_text(path: &Path) -> Result<String, BundleError> {
    let io = |source| BundleError::Io {
        path: path.to_owned(),
        source,
    };
    let file = tokio::fs::File::open(path).await.map_err(io)?;
    let mut text = String::new();
    file.take(MAX_TEXT_BYTES + 1)
        .read_to_string(&mut text)
        .await
        .map_err(io)?;
    if text.len() as u64 > MAX_TEXT_BYTES {
        return Err(BundleError::TooLarge(path.to_owned()));
    }
    Ok(text)
}

/// The names of a `sha256sum` manifest (`<hash>  <name>` or `<hash> *<name>`).
fn listed(manifest: &str) -> impl Iterator<Item = &str> {
    manifest.lines().filter_map(|line| {
        let (hash, name) = line.split_once(' ')?;
        let name = name.trim_start_matches([' ', '*']);
        (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit())).then_some(name)
    })
}

/// A file name of letters, digits, `.`, `_`, `+` and `-`, not starting with `.`: no directory,
/// no parent, no hidden file.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-'))
}

/// `host[:port]`: a DNS name, an IPv4 address or a bracketed IPv6 one, and digits after `:`;
/// nothing a shell or a URL would read as more.
fn is_host_and_port(value: &str) -> bool {
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        match rest.split_once(']') {
            // The address is checked here; "v6" stands for it in the host check below.
            Some((ip, port)) if ip.parse::<std::net::Ipv6Addr>().is_ok() => ("v6", port),
            _ => return false,
        }
    } else {
        value.split_at(value.find(':').unwrap_or(value.len()))
    };
    let port_ok = port.is_empty()
        || port.strip_prefix(':').is_some_and(|p| {
            !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
        });
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && !host.starts_with(['-', '.'])
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'));
    port_ok && host_ok
}

/// `name` cut for logs and messages.
fn capped(name: &str) -> String {
    name.chars().take(MAX_NAME).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_are_served() {
        for ok in [
            "llm-node",
            "llm-node-0.1.0-x86_64.tar.gz",
            "SHA256SUMS",
            "a+b_c.d",
        ] {
            assert!(is_plain_name(ok), "{ok}");
        }
        for bad in [
            "",
            "..",
            "../etc/passwd",
            "a/b",
            ".hidden",
            "a\\b",
            "a b",
            "a%2f",
            "ä",
            &"a".repeat(MAX_NAME + 1),
        ] {
            assert!(!is_plain_name(bad), "{bad}");
        }
    }

    #[test]
    fn the_manifest_lists_names_in_both_sha256sum_modes() {
        let hash = "a".repeat(64);
        let manifest =
            format!("{hash}  llm-node\n{hash} *runtime.tar.gz\nnot a line\nabc  short\n");
        assert_eq!(
            listed(&manifest).collect::<Vec<_>>(),
            ["llm-node", "runtime.tar.gz"]
        );
    }

    #[test]
    fn only_a_bare_host_and_port_is_templated() {
        for ok in [
            "10.77.0.1:8080",
            "router.lan",
            "router.lan:8080",
            "[fd00::1]:8080",
            "[::1]",
        ] {
            assert!(is_host_and_port(ok), "{ok}");
        }
        for bad in [
            "",
            ":8080",
            "a:",
            "a:b",
            "a:123456",
            "a'; rm -rf / #",
            "a$(id)",
            "a`id`",
            "a/b",
            "a@b",
            "-x",
            "[zz]:1",
            "[::1]x",
            "a b",
            "a\"b",
        ] {
            assert!(!is_host_and_port(bad), "{bad}");
        }
    }
}
