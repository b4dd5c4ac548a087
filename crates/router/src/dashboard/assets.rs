//! The dashboard's static files: built into the binary, or read from `--dashboard-dir` while
//! working on them. Served with an ETag so a reload costs a 304.

use std::path::Path;

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY as CONTENT_SECURITY_POLICY_HEADER, CONTENT_TYPE, ETAG,
    IF_NONE_MATCH, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

#[derive(rust_embed::Embed)]
#[folder = "dashboard/"]
struct Built;

/// `GET /dashboard`.
pub async fn index(state: State<AppState>, headers: HeaderMap) -> Response {
    file(state, UrlPath("index.html".to_owned()), headers).await
}

/// `GET /dashboard/{*file}`.
pub async fn file(
    State(state): State<AppState>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let name = if name.is_empty() {
        "index.html".to_owned()
    } else {
        name
    };
    let found = if !plain(&name) {
        None
    } else {
        match &state.config.dashboard_dir {
            Some(dir) => from_dir(dir, &name).await,
            None => Built::get(&name)
                .map(|f| (f.data.into_owned(), hex::encode(f.metadata.sha256_hash()))),
        }
    };
    let Some((bytes, digest)) = found else {
        return ApiError::RouteNotFound(format!("/dashboard/{name}")).into_response();
    };
    let etag = format!("\"{}\"", &digest[..16]);
    let cached = headers
        .get(IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes());
    let mut response = if cached {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Body::from(bytes).into_response()
    };
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type(&name)));
    h.extend(security_headers());
    // Revalidate each load: the files change with the binary.
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(ETAG, v);
    }
    response
}

/// What the dashboard's pages may do: load scripts, styles, images and connections (its API and
/// socket) from the router only, never be framed, never be sniffed as another type.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

fn security_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        CONTENT_SECURITY_POLICY_HEADER,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h
}

/// Plain relative names only: nothing outside the directory, no hidden files.
fn plain(name: &str) -> bool {
    !name
        .split('/')
        .any(|part| part.is_empty() || part.starts_with('.'))
}

async fn from_dir(dir: &Path, name: &str) -> Option<(Vec<u8>, String)> {
    use sha2::Digest;
    let bytes = tokio::fs::read(dir.join(name)).await.ok()?;
    let digest = hex::encode(sha2::Sha256::digest(&bytes));
    Some((bytes, digest))
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map_or("", |(_, ext)| ext) {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}
