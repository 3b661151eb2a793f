//! Who the client behind a reverse proxy is, and which pages may open a
//! WebSocket. The proxy headers are believed only from a listed proxy:
//! from anyone else they are the client's own words.

use std::net::{IpAddr, SocketAddr};

use hyper::HeaderMap;
use hyper::header::{FORWARDED, HOST, HeaderName};

use crate::proto::Cidr;

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// The client as the connection's peer or, behind a listed proxy, as the
/// proxy says.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Client {
    pub ip: IpAddr,
    /// The proxy says the client reached it over HTTPS.
    pub https: bool,
}

/// The client of a request from `peer`. When `peer` is one of `proxies`,
/// the right-most address in `Forwarded: for=` (or else `X-Forwarded-For`)
/// that is not itself a listed proxy; an address that cannot be read there
/// leaves the peer, since nothing left of it can be trusted.
pub(super) fn client(peer: IpAddr, headers: &HeaderMap, proxies: &[Cidr]) -> Client {
    let is_proxy = |ip: IpAddr| proxies.iter().any(|range| range.contains(ip));
    if !is_proxy(peer) {
        return Client {
            ip: peer,
            https: false,
        };
    }
    let forwarded = forwarded_elements(headers);
    let mut hops: Vec<Option<IpAddr>> = forwarded
        .iter()
        .filter_map(|element| element.for_node.as_deref().map(node_address))
        .collect();
    if hops.is_empty() {
        hops = header_list(headers, &X_FORWARDED_FOR)
            .map(node_address)
            .collect();
    }
    let ip = hops
        .iter()
        .rev()
        .find(|hop| !matches!(hop, Some(ip) if is_proxy(*ip)))
        .copied()
        .flatten()
        .unwrap_or(peer);
    let proto = match forwarded
        .iter()
        .rev()
        .find_map(|element| element.proto.clone())
    {
        Some(proto) => Some(proto),
        None => header_list(headers, &X_FORWARDED_PROTO)
            .last()
            .map(str::to_owned),
    };
    Client {
        ip,
        https: proto.is_some_and(|proto| proto.eq_ignore_ascii_case("https")),
    }
}

/// The two parameters of one `Forwarded` element (RFC 7239) used here.
#[derive(Debug, Default)]
struct Element {
    for_node: Option<String>,
    proto: Option<String>,
}

/// Every element of every `Forwarded` header, in order.
fn forwarded_elements(headers: &HeaderMap) -> Vec<Element> {
    header_list(headers, &FORWARDED)
        .map(|element| {
            let mut parsed = Element::default();
            for pair in element.split(';') {
                let Some((key, value)) = pair.split_once('=') else {
                    continue;
                };
                let value = value.trim().trim_matches('"').to_owned();
                match key.trim().to_ascii_lowercase().as_str() {
                    "for" => parsed.for_node = Some(value),
                    "proto" => parsed.proto = Some(value),
                    _ => {}
                }
            }
            parsed
        })
        .collect()
}

/// The comma-separated items of every value of header `name`, in order.
fn header_list<'a>(headers: &'a HeaderMap, name: &HeaderName) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
}

/// The address of a node: `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]`,
/// `[2001:db8::1]:4711` or a bare IPv6 address; `None` for `unknown` and
/// obfuscated names.
fn node_address(node: &str) -> Option<IpAddr> {
    let node = node.trim().trim_matches('"');
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(address) = node.parse::<SocketAddr>() {
        return Some(address.ip());
    }
    node.strip_prefix('[')
        .and_then(|rest| rest.split_once(']'))
        .and_then(|(inside, _)| inside.parse().ok())
}

/// Whether a page from `origin` may open a WebSocket: `allowed` lists it
/// or `*`, or it is the request's own host.
pub(super) fn origin_allowed(origin: &str, headers: &HeaderMap, allowed: &[String]) -> bool {
    let listed = allowed
        .iter()
        .any(|entry| entry == "*" || entry.trim_end_matches('/').eq_ignore_ascii_case(origin));
    if listed {
        return true;
    }
    let origin_host = origin.split_once("://").map(|(_, host)| host);
    let host = headers.get(HOST).and_then(|host| host.to_str().ok());
    matches!((origin_host, host), (Some(origin), Some(host)) if origin.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    fn proxies() -> Vec<Cidr> {
        vec![
            "127.0.0.1/32".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ]
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn proxy_headers_from_a_stranger_are_ignored() {
        let sent = headers(&[
            ("x-forwarded-for", "192.0.2.7"),
            ("x-forwarded-proto", "https"),
        ]);
        let found = client(ip("198.51.100.1"), &sent, &proxies());
        assert_eq!(
            found,
            Client {
                ip: ip("198.51.100.1"),
                https: false
            }
        );
    }

    #[test]
    fn the_right_most_address_that_is_not_a_proxy_is_the_client() {
        let sent = headers(&[("x-forwarded-for", "203.0.113.9, 192.0.2.7, 10.1.1.1")]);
        let found = client(ip("127.0.0.1"), &sent, &proxies());
        assert_eq!(found.ip, ip("192.0.2.7"));
    }

    #[test]
    fn forwarded_is_read_before_x_forwarded_for() {
        let sent = headers(&[
            (
                "forwarded",
                "for=192.0.2.60;proto=http, for=\"[2001:db8:cafe::17]:4711\";proto=https",
            ),
            ("x-forwarded-for", "192.0.2.99"),
        ]);
        let found = client(ip("10.0.0.2"), &sent, &proxies());
        assert_eq!(
            found,
            Client {
                ip: ip("2001:db8:cafe::17"),
                https: true
            }
        );
    }

    #[test]
    fn an_unreadable_hop_leaves_the_peer() {
        let sent = headers(&[("forwarded", "for=192.0.2.60, for=unknown")]);
        let found = client(ip("127.0.0.1"), &sent, &proxies());
        assert_eq!(found.ip, ip("127.0.0.1"));
    }

    #[test]
    fn listed_and_same_host_origins_are_allowed() {
        let host = headers(&[("host", "chat.example.org")]);
        let listed = vec!["https://web.example.net".to_owned()];
        assert!(origin_allowed("https://web.example.net", &host, &listed));
        assert!(origin_allowed("https://chat.example.org", &host, &listed));
        assert!(!origin_allowed("https://evil.example", &host, &listed));
        assert!(origin_allowed(
            "https://evil.example",
            &host,
            &["*".to_owned()]
        ));
        assert!(!origin_allowed("null", &host, &listed));
    }
}
