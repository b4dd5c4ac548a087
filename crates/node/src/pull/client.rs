//! The HTTP client downloads go through, with explicit proxy settings.
//!
//! reqwest 0.12 reads `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY`/`NO_PROXY` (upper case first, then
//! lower case) by itself unless the client is built with `.no_proxy()` or an explicit `.proxy()`.
//! Here the settings are read once by [`ProxySettings::from_env`] and passed in explicitly, so
//! tests never mutate the process-global environment and what the node uses can be logged.

use std::time::Duration;

use reqwest::{NoProxy, Proxy};

use super::PullError;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// A server silent this long on an open download is taken as a dropped connection (retried).
const READ_TIMEOUT: Duration = Duration::from_secs(60);

type MakeProxy = fn(&str) -> reqwest::Result<Proxy>;

/// Proxies for downloads. Empty values count as unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxySettings {
    /// Proxy for `http://` URLs.
    pub http: Option<String>,
    /// Proxy for `https://` URLs.
    pub https: Option<String>,
    /// Proxy for any URL not served by the two above.
    pub all: Option<String>,
    /// Comma-separated hosts, domains (`.example.com`), IPs or CIDR ranges to reach directly; `*`
    /// for all.
    pub no_proxy: Option<String>,
}

impl ProxySettings {
    /// `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY` and `NO_PROXY`, each falling back to its lower-case
    /// spelling, as curl and reqwest read them.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Self::from_env`] over any variable source.
    pub(crate) fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| {
            lookup(name)
                .or_else(|| lookup(&name.to_ascii_lowercase()))
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty())
        };
        Self {
            http: get("HTTP_PROXY"),
            https: get("HTTPS_PROXY"),
            all: get("ALL_PROXY"),
            no_proxy: get("NO_PROXY"),
        }
    }
}

/// A client for downloads that uses exactly `proxy` (and ignores the environment; pass
/// [`ProxySettings::from_env`] to honour it).
pub fn download_client(proxy: &ProxySettings) -> Result<reqwest::Client, PullError> {
    let bypass = proxy.no_proxy.as_deref().and_then(NoProxy::from_string);
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .user_agent(concat!("llm-node/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT);
    let routes: [(&Option<String>, MakeProxy); 3] = [
        (&proxy.http, |url| Proxy::http(url)),
        (&proxy.https, |url| Proxy::https(url)),
        (&proxy.all, |url| Proxy::all(url)),
    ];
    for (url, make) in routes {
        if let Some(url) = url {
            let route = make(url)
                .map_err(|e| PullError::Invalid(format!("proxy {url:?}: {e}")))?
                .no_proxy(bypass.clone());
            builder = builder.proxy(route);
        }
    }
    builder
        .build()
        .map_err(|e| PullError::Invalid(format!("building the download client: {e}")))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn upper_case_wins_lower_case_is_the_fallback_and_empty_is_unset() {
        let env: HashMap<&str, &str> = [
            ("HTTP_PROXY", "http://upper:3128"),
            ("http_proxy", "http://lower:3128"),
            ("https_proxy", "http://secure:3128"),
            ("ALL_PROXY", "  "),
            ("no_proxy", "localhost, .internal"),
        ]
        .into();
        let settings = ProxySettings::from_lookup(|name| env.get(name).map(|v| v.to_string()));
        assert_eq!(
            settings,
            ProxySettings {
                http: Some("http://upper:3128".into()),
                https: Some("http://secure:3128".into()),
                all: None,
                no_proxy: Some("localhost, .internal".into()),
            }
        );
    }

    #[test]
    fn a_bad_proxy_url_is_an_invalid_request() {
        let settings = ProxySettings {
            http: Some("http://[::1".into()),
            ..ProxySettings::default()
        };
        assert!(matches!(
            download_client(&settings),
            Err(PullError::Invalid(_))
        ));
        assert!(download_client(&ProxySettings::default()).is_ok());
    }
}
