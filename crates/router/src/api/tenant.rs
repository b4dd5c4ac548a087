//! Who an inference request counts against for the per-key shares of the wait queue and of the
//! slots ([`Tenant`]): its API key; without one (anonymous inference), its client's address.

use std::net::SocketAddr;

use std::time::SystemTime;

use crate::auth::KeyScope;
use crate::dispatch::Tenant;
use crate::error::ApiError;
use crate::quota::{Quotas, Ticket};
use crate::store::unix_ms;

/// Admits a request under its key's limits (none for anonymous requests and keys without
/// limits), or refuses it with the limit it hit (429).
pub fn admit(
    quotas: &std::sync::Arc<Quotas>,
    scope: &KeyScope,
) -> Result<Option<Ticket>, ApiError> {
    match scope {
        KeyScope::Key(key) if !key.limits.is_empty() => {
            let now_ms = unix_ms(SystemTime::now());
            Ok(Some(quotas.admit(&key.id, &key.limits, now_ms)?))
        }
        _ => Ok(None),
    }
}

/// The tenant of a request with `scope` from `client` (with its key's queue priority) (`ip:port`, as [`super::ClientAddr`] has
/// it). Requests without a key are counted per client address (port left out): behind a reverse
/// proxy they all share the proxy's.
pub fn tenant(scope: &KeyScope, client: Option<&str>) -> Tenant {
    match (scope, client) {
        (KeyScope::Key(key), _) => {
            Tenant::key(&key.id).with_priority(key.limits.priority.unwrap_or(0))
        }
        (KeyScope::Anonymous, Some(client)) => match client.parse::<SocketAddr>() {
            Ok(addr) => Tenant::address(addr.ip()),
            Err(_) => Tenant::anonymous(),
        },
        (KeyScope::Anonymous, None) => Tenant::anonymous(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_requests_count_per_address_whatever_the_port() {
        let a = tenant(&KeyScope::Anonymous, Some("10.0.0.1:4000"));
        assert_eq!(a, tenant(&KeyScope::Anonymous, Some("10.0.0.1:5000")));
        assert_ne!(a, tenant(&KeyScope::Anonymous, Some("10.0.0.2:4000")));
        assert_eq!(tenant(&KeyScope::Anonymous, None), Tenant::anonymous());
    }
}
