//! The `address` a node registers with. The router builds the node's URL as
//! `http://{address}:{port}`, so the address must be a host and nothing else: an IP address or a
//! DNS host name, never a character that changes the URL (`/`, `?`, `#`, `@`, `:`, spaces), and
//! never the router itself (which would forward to itself until it runs out of sockets).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// Longest DNS name.
const MAX_NAME: usize = 253;
/// Longest label of a DNS name.
const MAX_LABEL: usize = 63;

/// A registered node's host, as the router's HTTP client will read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeHost {
    Ip(IpAddr),
    /// A DNS name, lowercased.
    Name(String),
}

/// Why an `address` is refused; worded to follow the field's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {MAX_NAME} characters")]
    TooLong,
    #[error("must be an IP address or a host name of letters, digits, '-' and '.'")]
    NotAHost,
    #[error("must be a host name whose labels (between dots) have 1 to {MAX_LABEL} characters")]
    BadLabel,
}

/// Reads `address` as an IP address (IPv6 with or without brackets) or a DNS host name.
pub fn parse_address(address: &str) -> Result<NodeHost, AddressError> {
    if address.is_empty() {
        return Err(AddressError::Empty);
    }
    if let Some(inner) = address
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
    {
        return inner
            .parse::<Ipv6Addr>()
            .map(|ip| NodeHost::Ip(IpAddr::V6(ip)))
            .map_err(|_| AddressError::NotAHost);
    }
    if let Ok(ip) = address.parse::<IpAddr>() {
        return Ok(NodeHost::Ip(ip));
    }
    if address.len() > MAX_NAME {
        return Err(AddressError::TooLong);
    }
    if !address
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err(AddressError::NotAHost);
    }
    if address
        .split('.')
        .any(|label| label.is_empty() || label.len() > MAX_LABEL)
    {
        return Err(AddressError::BadLabel);
    }
    // The URL parser reads some names as IPv4 addresses (`127.1`, `0x7f.1`, `2130706433`): take
    // the host it will connect to, so the own-address check sees the real one.
    let url =
        reqwest::Url::parse(&format!("http://{address}/")).map_err(|_| AddressError::NotAHost)?;
    match url.host_str() {
        Some(host) => Ok(host
            .parse::<IpAddr>()
            .map_or_else(|_| NodeHost::Name(host.to_owned()), NodeHost::Ip)),
        None => Err(AddressError::NotAHost),
    }
}

/// Whether a connection to `ip:port` reaches the router listening on `listen` (the address it
/// bound). Listening on every interface (`0.0.0.0`, `::`), every address of this machine is the
/// router's; `is_local` says whether `ip` is one of them. Connecting to `0.0.0.0` or `::` reaches
/// the loopback interface.
pub fn is_router_address(
    ip: IpAddr,
    port: u16,
    listen: SocketAddr,
    is_local: impl Fn(IpAddr) -> bool,
) -> bool {
    if port != listen.port() {
        return false;
    }
    let ip = ip.to_canonical();
    let own = listen.ip().to_canonical();
    if own.is_unspecified() {
        ip.is_loopback() || ip.is_unspecified() || is_local(ip)
    } else {
        ip == own || (ip.is_unspecified() && own.is_loopback())
    }
}

/// Whether `ip` is an address of this machine: a socket can be bound to it.
pub fn is_local_ip(ip: IpAddr) -> bool {
    std::net::UdpSocket::bind((ip, 0)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ip_addresses_and_host_names_are_accepted() {
        assert_eq!(parse_address("10.0.0.2"), Ok(NodeHost::Ip(ip("10.0.0.2"))));
        assert_eq!(parse_address("::1"), Ok(NodeHost::Ip(ip("::1"))));
        assert_eq!(parse_address("[fe80::1]"), Ok(NodeHost::Ip(ip("fe80::1"))));
        assert_eq!(
            parse_address("gpu-01.Lab.example"),
            Ok(NodeHost::Name("gpu-01.lab.example".into()))
        );
        assert_eq!(
            parse_address("localhost"),
            Ok(NodeHost::Name("localhost".into()))
        );
        let longest = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(61),
        ]
        .join(".");
        assert_eq!(longest.len(), 253);
        assert!(parse_address(&longest).is_ok());
    }

    #[test]
    fn anything_that_changes_the_url_is_refused() {
        for bad in [
            "evil/x",
            "a?b",
            "a#b",
            "user@host",
            "host:1",
            "a b",
            " host",
            "host\n",
            "[::1",
            "[x]",
            "a%2fb",
            "a\\b",
            "http://x",
        ] {
            assert_eq!(parse_address(bad), Err(AddressError::NotAHost), "{bad:?}");
        }
        assert_eq!(parse_address(""), Err(AddressError::Empty));
        assert_eq!(parse_address(&"a".repeat(300)), Err(AddressError::TooLong));
        for bad in ["a..b", ".a", "a.", &"a".repeat(64)] {
            assert_eq!(parse_address(bad), Err(AddressError::BadLabel), "{bad:?}");
        }
    }

    #[test]
    fn names_the_url_parser_reads_as_ipv4_are_ip_addresses() {
        for loopback in ["127.1", "0x7f.1", "2130706433", "0177.0.0.1"] {
            assert_eq!(
                parse_address(loopback),
                Ok(NodeHost::Ip(ip("127.0.0.1"))),
                "{loopback}"
            );
        }
    }

    #[test]
    fn own_address_is_the_listen_address_and_port() {
        let listen: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let nowhere = |_| false;
        assert!(is_router_address(ip("127.0.0.1"), 8080, listen, nowhere));
        assert!(is_router_address(
            ip("::ffff:127.0.0.1"),
            8080,
            listen,
            nowhere
        ));
        assert!(is_router_address(ip("0.0.0.0"), 8080, listen, nowhere));
        assert!(!is_router_address(ip("127.0.0.1"), 8081, listen, nowhere));
        assert!(!is_router_address(ip("127.0.0.2"), 8080, listen, nowhere));
        assert!(!is_router_address(ip("10.0.0.2"), 8080, listen, nowhere));
    }

    #[test]
    fn listening_everywhere_every_local_address_is_own() {
        let local = |ip: IpAddr| ip == "192.168.1.5".parse::<IpAddr>().unwrap();
        for listen in ["0.0.0.0:8080", "[::]:8080"] {
            let listen: SocketAddr = listen.parse().unwrap();
            for own in [
                "127.0.0.1",
                "127.0.0.2",
                "::1",
                "0.0.0.0",
                "::",
                "192.168.1.5",
            ] {
                assert!(
                    is_router_address(ip(own), 8080, listen, local),
                    "{own} {listen}"
                );
            }
            assert!(!is_router_address(ip("192.168.1.6"), 8080, listen, local));
            assert!(!is_router_address(ip("127.0.0.1"), 9090, listen, local));
        }
    }

    #[test]
    fn loopback_is_local() {
        assert!(is_local_ip(ip("127.0.0.1")));
        assert!(!is_local_ip(ip("192.0.2.1")));
    }

    mod props {
        use super::*;
        use llm_router_testkit::prop::{config, odd_string};
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(config(512))]

            #[test]
            fn an_accepted_address_is_only_the_host_of_the_node_url(
                address in prop_oneof![
                    odd_string(),
                    "[a-zA-Z0-9.:\\[\\]/?#@%_ -]{1,40}",
                    any::<std::net::IpAddr>().prop_map(|ip| ip.to_string()),
                ],
                port in 1u16..,
            ) {
                let Ok(host) = parse_address(&address) else {
                    return Ok(());
                };
                let base = if address.contains(':') && !address.starts_with('[') {
                    format!("http://[{address}]:{port}")
                } else {
                    format!("http://{address}:{port}")
                };
                let url = reqwest::Url::parse(&format!("{base}/v1/models"))
                    .map_err(|e| TestCaseError::fail(format!("{base}: {e}")))?;
                prop_assert_eq!(url.path(), "/v1/models");
                prop_assert_eq!(url.port_or_known_default(), Some(port));
                prop_assert!(url.username().is_empty() && url.password().is_none());
                prop_assert!(url.query().is_none() && url.fragment().is_none());
                match host {
                    NodeHost::Ip(ip) => {
                        let same = url.host_str().is_some_and(|h| {
                            h.trim_start_matches('[').trim_end_matches(']').parse() == Ok(ip)
                        });
                        prop_assert!(same, "{} is not {}", url, ip);
                    }
                    NodeHost::Name(name) => prop_assert_eq!(url.host_str(), Some(name.as_str())),
                }
            }
        }
    }
}
