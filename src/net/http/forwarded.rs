//! Who the client behind a reverse proxy is, and which pages may open a
//! WebSocket. The proxy headers are believed only from a listed proxy:
//! from anyone else they are the client's own words.

use std::net::{IpAddr, SocketAddr};

use hyper::header::{FORWARDED, HOST, HeaderName, ORIGIN};
use hyper::{HeaderMap, StatusCode};
use tracing::info;

use super::Connection;
use super::routes::{self, Answer};

use crate::config::ForwardedHeader;
use crate::proto::Cidr;

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// Why a WebSocket request is refused before it is admitted.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// A listed proxy named no readable client.
    Unnamed,
    /// The page's origin may not connect.
    Origin,
}

impl Refusal {
    /// 400 or 403, with a line saying why.
    pub(super) fn answer(self) -> Answer {
        match self {
            Refusal::Unnamed => routes::plain(
                StatusCode::BAD_REQUEST,
                "the proxy did not name the client\n",
            ),
            Refusal::Origin => {
                routes::plain(StatusCode::FORBIDDEN, "this origin may not connect\n")
            }
        }
    }
}

/// The client of a WebSocket request, or why it is refused (logged here).
pub(super) fn vet<E>(headers: &HeaderMap, connection: &Connection<E>) -> Result<Client, Refusal> {
    let listener = &connection.listener;
    let settings = listener.site.current();
    let rules = settings.site(listener.site.position);
    let peer = connection.peer;
    let Some(client) = client(peer.ip(), headers, &rules.proxies, rules.forwarded_header) else {
        info!(
            %peer,
            listener = %listener.local_text,
            "WebSocket refused: a listed proxy named no client address in its {} header",
            rules.forwarded_header.name()
        );
        return Err(Refusal::Unnamed);
    };
    let Some(origin) = headers.get(ORIGIN) else {
        return Ok(client);
    };
    let origin = String::from_utf8_lossy(origin.as_bytes());
    let scheme = if connection.tls || client.https {
        "https"
    } else {
        "http"
    };
    let local_host_only = listener.local.ip().is_loopback() && !client.proxied;
    if origin_allowed(&origin, headers, &rules.origins, scheme, local_host_only) {
        return Ok(client);
    }
    info!(
        %peer,
        listener = %listener.local_text,
        "WebSocket refused: a page from origin {origin} may not connect; \
         to allow it, add \"{origin}\" to `origins` of this [[http]] block, then REHASH"
    );
    Err(Refusal::Origin)
}

/// The client as the connection's peer or, behind a listed proxy, as the
/// proxy says.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Client {
    pub ip: IpAddr,
    /// The proxy says the client reached it over HTTPS.
    pub https: bool,
    /// Named by a listed proxy rather than met directly.
    pub proxied: bool,
}

/// The client of a request from `peer`. When `peer` is one of `proxies`,
/// the right-most hop of `header`'s family that is not itself a listed
/// proxy, with that family's scheme; `None` when that hop cannot be read
/// (`unknown`, an obfuscated name) or there is none, since the proxy's own
/// address would let the client escape every per-IP limit.
pub(super) fn client(
    peer: IpAddr,
    headers: &HeaderMap,
    proxies: &[Cidr],
    header: ForwardedHeader,
) -> Option<Client> {
    let is_proxy = |ip: IpAddr| proxies.iter().any(|range| range.contains(ip));
    if !is_proxy(peer) {
        return Some(Client {
            ip: peer,
            https: false,
            proxied: false,
        });
    }
    let (ip, proto) = match header {
        ForwardedHeader::XForwardedFor => {
            let hops: Vec<&str> = header_list(headers, &X_FORWARDED_FOR).collect();
            let ip = client_hop(&hops, is_proxy)?.0;
            let proto = header_list(headers, &X_FORWARDED_PROTO).last();
            (ip, proto.map(str::to_owned))
        }
        ForwardedHeader::Forwarded => {
            let elements = forwarded_elements(headers);
            let hops: Vec<&str> = elements
                .iter()
                .filter_map(|element| element.for_node.as_deref())
                .collect();
            let (ip, position) = client_hop(&hops, is_proxy)?;
            // The scheme of the hop that named the client, from the same element.
            let proto = elements
                .iter()
                .filter(|element| element.for_node.is_some())
                .nth(position)
                .and_then(|element| element.proto.clone());
            (ip, proto)
        }
    };
    Some(Client {
        ip,
        https: proto.is_some_and(|proto| proto.eq_ignore_ascii_case("https")),
        proxied: true,
    })
}

/// The right-most of `hops` that is not a listed proxy, and its position;
/// `None` when that hop is unreadable or every hop is a proxy.
fn client_hop(hops: &[&str], is_proxy: impl Fn(IpAddr) -> bool) -> Option<(IpAddr, usize)> {
    for (position, hop) in hops.iter().enumerate().rev() {
        let ip = node_address(hop)?;
        if !is_proxy(ip) {
            return Some((ip, position));
        }
    }
    None
}

/// Whether the request carries either family of forwarding header, which
/// only a proxy (or someone posing as one) adds.
pub(super) fn carries_forwarding(headers: &HeaderMap) -> bool {
    headers.contains_key(FORWARDED) || headers.contains_key(&X_FORWARDED_FOR)
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
/// or `*`, or it is the request's own scheme and host. `scheme` is the
/// one the browser used (`https` over TLS here or at a listed proxy).
/// With `local_host_only` (a loopback listener met directly) the host
/// must also be a loopback name, so a name rebound to 127.0.0.1 by its
/// owner's DNS is not taken for this server.
pub(super) fn origin_allowed(
    origin: &str,
    headers: &HeaderMap,
    allowed: &[String],
    scheme: &str,
    local_host_only: bool,
) -> bool {
    let listed = allowed
        .iter()
        .any(|entry| entry == "*" || entry.trim_end_matches('/').eq_ignore_ascii_case(origin));
    if listed {
        return true;
    }
    let Some((origin_scheme, origin_host)) = origin.split_once("://") else {
        return false;
    };
    let Some(host) = headers.get(HOST).and_then(|host| host.to_str().ok()) else {
        return false;
    };
    origin_scheme.eq_ignore_ascii_case(scheme)
        && origin_host.eq_ignore_ascii_case(host)
        && (!local_host_only || is_loopback_host(host))
}

/// Whether the request's `Host` is `localhost`, `127.0.0.1` or `[::1]`,
/// with any port: the names a DNS rebinding cannot forge.
pub(super) fn host_is_loopback(headers: &HeaderMap) -> bool {
    headers
        .get(HOST)
        .and_then(|host| host.to_str().ok())
        .is_some_and(is_loopback_host)
}

/// `localhost`, `127.0.0.1` or `[::1]`, maybe with a port.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map_or(host, |(inside, _)| inside),
        None => host.split_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name == "127.0.0.1" || name == "::1"
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

    const XFF: ForwardedHeader = ForwardedHeader::XForwardedFor;
    const FORWARDED: ForwardedHeader = ForwardedHeader::Forwarded;

    #[test]
    fn proxy_headers_from_a_stranger_are_ignored() {
        let sent = headers(&[
            ("x-forwarded-for", "192.0.2.7"),
            ("x-forwarded-proto", "https"),
        ]);
        let found = client(ip("198.51.100.1"), &sent, &proxies(), XFF);
        assert_eq!(
            found,
            Some(Client {
                ip: ip("198.51.100.1"),
                https: false,
                proxied: false,
            })
        );
    }

    #[test]
    fn the_right_most_address_that_is_not_a_proxy_is_the_client() {
        let sent = headers(&[("x-forwarded-for", "203.0.113.9, 192.0.2.7, 10.1.1.1")]);
        let found = client(ip("127.0.0.1"), &sent, &proxies(), XFF);
        assert_eq!(found.map(|found| found.ip), Some(ip("192.0.2.7")));
    }

    #[test]
    fn only_the_configured_family_is_read() {
        let sent = headers(&[
            ("forwarded", "for=198.51.100.66;proto=https"),
            ("x-forwarded-for", "192.0.2.99"),
            ("x-forwarded-proto", "http"),
        ]);
        let by_xff = client(ip("127.0.0.1"), &sent, &proxies(), XFF);
        assert_eq!(
            by_xff,
            Some(Client {
                ip: ip("192.0.2.99"),
                https: false,
                proxied: true,
            })
        );
        let sent = headers(&[
            ("forwarded", "for=192.0.2.60;proto=http"),
            ("x-forwarded-for", "198.51.100.66"),
            ("x-forwarded-proto", "https"),
        ]);
        let by_forwarded = client(ip("127.0.0.1"), &sent, &proxies(), FORWARDED);
        assert_eq!(
            by_forwarded,
            Some(Client {
                ip: ip("192.0.2.60"),
                https: false,
                proxied: true,
            })
        );
    }

    #[test]
    fn forwarded_takes_the_scheme_of_the_hop_it_names() {
        let sent = headers(&[(
            "forwarded",
            "for=192.0.2.60;proto=http, for=\"[2001:db8:cafe::17]:4711\";proto=https, for=10.0.0.3;proto=http",
        )]);
        let found = client(ip("10.0.0.2"), &sent, &proxies(), FORWARDED);
        assert_eq!(
            found,
            Some(Client {
                ip: ip("2001:db8:cafe::17"),
                https: true,
                proxied: true,
            })
        );
    }

    #[test]
    fn an_unreadable_or_missing_hop_names_no_client() {
        let unknown = headers(&[("forwarded", "for=192.0.2.60, for=unknown")]);
        assert_eq!(
            client(ip("127.0.0.1"), &unknown, &proxies(), FORWARDED),
            None
        );
        let hidden = headers(&[("forwarded", "for=_hidden")]);
        assert_eq!(
            client(ip("127.0.0.1"), &hidden, &proxies(), FORWARDED),
            None
        );
        let only_proxies = headers(&[("x-forwarded-for", "10.0.0.9")]);
        assert_eq!(
            client(ip("127.0.0.1"), &only_proxies, &proxies(), XFF),
            None
        );
        assert_eq!(
            client(ip("127.0.0.1"), &HeaderMap::new(), &proxies(), XFF),
            None
        );
    }

    #[test]
    fn listed_and_same_host_origins_are_allowed() {
        let host = headers(&[("host", "chat.example.org")]);
        let listed = vec!["https://web.example.net".to_owned()];
        assert!(origin_allowed(
            "https://web.example.net",
            &host,
            &listed,
            "http",
            false
        ));
        assert!(origin_allowed(
            "https://chat.example.org",
            &host,
            &listed,
            "https",
            false
        ));
        assert!(!origin_allowed(
            "https://evil.example",
            &host,
            &listed,
            "https",
            false
        ));
        assert!(origin_allowed(
            "https://evil.example",
            &host,
            &["*".to_owned()],
            "https",
            false
        ));
        assert!(!origin_allowed("null", &host, &listed, "https", false));
    }

    #[test]
    fn the_same_host_in_another_scheme_is_another_origin() {
        let host = headers(&[("host", "chat.example.org")]);
        assert!(!origin_allowed(
            "http://chat.example.org",
            &host,
            &[],
            "https",
            false
        ));
        assert!(!origin_allowed(
            "https://chat.example.org",
            &host,
            &[],
            "http",
            false
        ));
    }

    #[test]
    fn a_loopback_listener_takes_only_loopback_names_as_its_own() {
        let rebound = headers(&[("host", "rebound.example:8080")]);
        assert!(!origin_allowed(
            "http://rebound.example:8080",
            &rebound,
            &[],
            "http",
            true
        ));
        assert!(!host_is_loopback(&rebound));
        for name in [
            "localhost:8080",
            "127.0.0.1:8080",
            "[::1]:8080",
            "localhost",
            "[::1]",
        ] {
            let local = headers(&[("host", name)]);
            let origin = format!("http://{name}");
            assert!(origin_allowed(&origin, &local, &[], "http", true), "{name}");
            assert!(host_is_loopback(&local), "{name}");
        }
        assert!(!host_is_loopback(&headers(&[("host", "127.0.0.2")])));
        assert!(!host_is_loopback(&HeaderMap::new()));
    }
}
