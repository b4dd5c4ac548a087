//! Which requests a browser sent from a page of another site. The session cookie is `SameSite`,
//! but a page on another port of the same host is "same site": only the exact origin counts here.

use axum::http::header::{HOST, ORIGIN};
use axum::http::{HeaderMap, HeaderName, Method};

use super::bearer;
use crate::secrets::SESSION_PREFIX;

const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// True unless a browser says the request comes from a page of another origin: `Sec-Fetch-Site`
/// when sent (only `same-origin` and `none`, a typed address, pass), else `Origin` against `Host`.
/// Clients that send neither are not browsers and cannot be made to send a cookie by a page.
pub fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get(SEC_FETCH_SITE) {
        return matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers.get(HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin
        .split_once("://")
        .map_or(origin, |(_, rest)| rest)
        .trim_end_matches('/');
    host.is_some_and(|h| h.eq_ignore_ascii_case(origin_host))
}

/// A request that changes state on the strength of the session cookie alone (no session token
/// in `Authorization`): the kind a page of another site could make a browser send.
pub fn cookie_write(method: &Method, headers: &HeaderMap) -> bool {
    let reads = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    let bearer_session = bearer(headers).is_some_and(|t| t.starts_with(SESSION_PREFIX));
    !reads && !bearer_session
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_the_routers_own_origin_passes() {
        assert!(same_origin(&headers(&[])));
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(same_origin(&headers(&[("sec-fetch-site", "none")])));
        // Another port of the same host is "same-site" for browsers: refused.
        assert!(!same_origin(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "cross-site")])));
        let host = ("host", "127.0.0.1:8080");
        assert!(same_origin(&headers(&[
            host,
            ("origin", "http://127.0.0.1:8080")
        ])));
        assert!(!same_origin(&headers(&[
            host,
            ("origin", "http://127.0.0.1:9999")
        ])));
        assert!(!same_origin(&headers(&[
            host,
            ("origin", "http://evil.example")
        ])));
        assert!(!same_origin(&headers(&[("origin", "http://evil.example")])));
    }

    #[test]
    fn writes_with_a_session_token_are_not_cookie_writes() {
        let token = headers(&[("authorization", "Bearer llms_abc")]);
        assert!(!cookie_write(&Method::POST, &token));
        assert!(cookie_write(&Method::POST, &headers(&[])));
        assert!(cookie_write(
            &Method::DELETE,
            &headers(&[("authorization", "Bearer sk-llmr-x")])
        ));
        assert!(!cookie_write(&Method::GET, &headers(&[])));
    }
}
