//! The guard on the node API: the caller must be the router, proven by the node's API token.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use llm_router_protocol::Secret;
use sha2::{Digest, Sha256};

use super::NodeApiError;

pub async fn require_router(State(token): State<Secret>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(p) if same_secret(p, token.expose()) => next.run(req).await,
        _ => {
            tracing::warn!(path = %req.uri().path(), "refused a call without the router's token");
            NodeApiError::Unauthorized.into_response()
        }
    }
}

/// Compares digests so the time taken says nothing about the token, not even its length.
fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_token_matches() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        assert!(!same_secret("", "abc"));
    }
}
