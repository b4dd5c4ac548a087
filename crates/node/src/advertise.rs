//! The address the node gives the router to reach it (`address` of the registration).
//!
//! A node listening on every interface (`--host 0.0.0.0`, what a fleet machine does) has no one
//! address of its own; advertising `127.0.0.1` there sends a remote router to itself. Unless told
//! with `--advertise-address`, the node advertises the source address the kernel picks for a
//! packet to the router: a UDP socket *connected* to the router's address reads it with
//! `local_addr()` without sending anything (no packet, no firewall rule involved).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::Duration;

/// How long the router's host name may take to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the node advertises the address it does; logged at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `--advertise-address`.
    Configured,
    /// The node listens on one address: the router must use that one.
    ListenAddress,
    /// The source address of the route to the router.
    RouteToRouter,
    /// Listening everywhere with no usable route (the router is on this machine's loopback, or
    /// its address did not resolve): `127.0.0.1`, which works when the router is local.
    Loopback,
}

impl Source {
    pub fn describe(self) -> &'static str {
        match self {
            Source::Configured => "--advertise-address",
            Source::ListenAddress => "the listen address",
            Source::RouteToRouter => "the address of the interface that reaches the router",
            Source::Loopback => "loopback: the router is on this machine or its address is unknown",
        }
    }
}

/// The advertised address and why it was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertised {
    pub address: String,
    pub source: Source,
}

/// The address to advertise: `configured`, else the listen address `local` when it is one
/// address, else the source address of the route to the router at `router_url`.
pub async fn advertised_address(
    configured: Option<&str>,
    local: SocketAddr,
    router_url: &str,
) -> Advertised {
    let route = if configured.is_none() && local.ip().is_unspecified() {
        match router_socket_addr(router_url).await {
            Some(router) => route_source(router),
            None => None,
        }
    } else {
        None
    };
    choose(configured, local, route)
}

/// The decision, apart from the I/O: `route` is the source address of the route to the router.
pub fn choose(configured: Option<&str>, local: SocketAddr, route: Option<IpAddr>) -> Advertised {
    if let Some(address) = configured {
        return Advertised {
            address: address.to_owned(),
            source: Source::Configured,
        };
    }
    if !local.ip().is_unspecified() {
        return Advertised {
            address: local.ip().to_string(),
            source: Source::ListenAddress,
        };
    }
    match route.map(|ip| ip.to_canonical()) {
        Some(ip) if !ip.is_loopback() && !ip.is_unspecified() => Advertised {
            address: ip.to_string(),
            source: Source::RouteToRouter,
        },
        _ => Advertised {
            address: Ipv4Addr::LOCALHOST.to_string(),
            source: Source::Loopback,
        },
    }
}

/// The source address the kernel picks for packets to `router` (nothing is sent: connecting a
/// UDP socket only chooses the route). `None` when there is no route.
pub fn route_source(router: SocketAddr) -> Option<IpAddr> {
    let any: IpAddr = match router {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = UdpSocket::bind((any, 0)).ok()?;
    socket.connect(router).ok()?;
    Some(socket.local_addr().ok()?.ip())
}

/// The router's first address, from its URL (a host name is resolved, within
/// [`RESOLVE_TIMEOUT`]).
async fn router_socket_addr(router_url: &str) -> Option<SocketAddr> {
    let url = reqwest::Url::parse(router_url).ok()?;
    let port = url.port_or_known_default()?;
    let host = url.host_str()?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, port));
    }
    let lookup = tokio::net::lookup_host((host.to_owned(), port));
    tokio::time::timeout(RESOLVE_TIMEOUT, lookup)
        .await
        .ok()?
        .ok()?
        .next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_configured_address_wins() {
        let chosen = choose(
            Some("gpu-01.lab"),
            addr("0.0.0.0:8081"),
            Some(ip("10.0.0.5")),
        );
        assert_eq!(chosen.address, "gpu-01.lab");
        assert_eq!(chosen.source, Source::Configured);
    }

    #[test]
    fn a_node_listening_on_one_address_advertises_it() {
        let chosen = choose(None, addr("10.0.0.7:8081"), Some(ip("10.0.0.5")));
        assert_eq!(chosen.address, "10.0.0.7");
        assert_eq!(chosen.source, Source::ListenAddress);
    }

    #[test]
    fn listening_everywhere_advertises_the_route_to_the_router() {
        let chosen = choose(None, addr("0.0.0.0:8081"), Some(ip("10.77.0.2")));
        assert_eq!(chosen.address, "10.77.0.2");
        assert_eq!(chosen.source, Source::RouteToRouter);
        // An IPv4-mapped source is written as IPv4, an IPv6 one as is.
        let mapped = choose(None, addr("[::]:8081"), Some(ip("::ffff:10.77.0.3")));
        assert_eq!(mapped.address, "10.77.0.3");
        let v6 = choose(None, addr("[::]:8081"), Some(ip("fd00::2")));
        assert_eq!(v6.address, "fd00::2");
    }

    #[test]
    fn a_loopback_router_or_no_route_keeps_loopback() {
        for route in [Some(ip("127.0.0.1")), Some(ip("::1")), None] {
            let chosen = choose(None, addr("0.0.0.0:8081"), route);
            assert_eq!(chosen.address, "127.0.0.1", "{route:?}");
            assert_eq!(chosen.source, Source::Loopback);
        }
    }

    #[test]
    fn the_route_to_a_loopback_router_starts_on_loopback() {
        assert_eq!(route_source(addr("127.0.0.1:8080")), Some(ip("127.0.0.1")));
    }

    #[tokio::test]
    async fn a_loopback_router_url_is_advertised_as_loopback() {
        let chosen = advertised_address(None, addr("0.0.0.0:8081"), "http://127.0.0.1:8080").await;
        assert_eq!(chosen.source, Source::Loopback);
        let chosen = advertised_address(None, addr("0.0.0.0:8081"), "http://localhost:9").await;
        assert_eq!(chosen.address, "127.0.0.1");
        // Not a URL: no route, loopback.
        let chosen = advertised_address(None, addr("0.0.0.0:8081"), "not a url").await;
        assert_eq!(chosen.source, Source::Loopback);
    }
}
