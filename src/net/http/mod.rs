//! The browser listener: the web client's files, IRC over WebSocket at
//! `/webirc` (and `/`), and the operators' endpoints, on HTTP/1.1 (hyper).
//!
//! - here: the accept loop, one HTTP connection, and routing.
//! - `upgrade.rs`: the WebSocket handshake, which hands the socket to an
//!   ordinary connection (`connection::run`).
//! - `forwarded.rs`: the client behind a listed proxy, and allowed origins.
//! - `routes.rs`: files, `/metrics`, `/healthz`, `/readyz`, errors.

mod forwarded;
mod routes;
mod upgrade;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use hyper::body::Incoming;
use hyper::header::{CONNECTION, UPGRADE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::time::{Duration, timeout};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::event::ConnectionEvent;
use super::listener::{Acceptor, TLS_HANDSHAKE_TIMEOUT, next_connection};
use super::tls::ReloadableTls;
use crate::config::{Config, ForwardedHeader};
use crate::proto::Cidr;
use routes::Answer;

/// HTTP connections one listener serves at once (a WebSocket, once
/// upgraded, counts as a client instead).
const MAX_HTTP_CONNECTIONS: usize = 512;
/// HTTP connections one address may hold at once before they upgrade, so
/// one host cannot take every place. A browser opens about six per site;
/// a listed proxy, which speaks for many clients, is exempt.
const MAX_HTTP_CONNECTIONS_PER_ADDRESS: usize = 16;
/// The most bytes of a request's head (hyper's smallest allowed buffer is 8 KiB).
const MAX_REQUEST_HEAD: usize = 16 * 1024;
/// How long a request's head may take to arrive, which is also how long a
/// kept-alive connection may idle after an answer: a browser that has its
/// files reconnects in a moment, and an idle or slow client gives its place
/// back soon.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest an HTTP connection lives, whatever it does.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(120);

/// Renders the server's figures for `/metrics`. A function, so the socket
/// layer names nothing of the layers above.
pub type RenderMetrics = Arc<dyn Fn() -> String + Send + Sync>;

/// Whether the server takes clients, for `/readyz`.
#[derive(Clone, Debug)]
pub struct Readiness {
    /// Cancelled when the server starts shutting down.
    pub stopping: CancellationToken,
    /// The history writer's commit watermark, when history is on: its
    /// sender goes away with the writer.
    pub history: Option<watch::Receiver<u64>>,
}

impl Readiness {
    fn is_ready(&self) -> bool {
        let history_runs = self
            .history
            .as_ref()
            .is_none_or(|committed| committed.has_changed().is_ok());
        !self.stopping.is_cancelled() && history_runs
    }
}

/// The operators' endpoints, shared by every HTTP listener.
pub struct Operators {
    /// What `/metrics` answers.
    pub render_metrics: RenderMetrics,
    pub ready: Readiness,
}

/// What REHASH changes of the HTTP listeners, published to them whole.
#[derive(Debug, Default)]
pub struct HttpSettings {
    /// Each `[[http]]` block's rules, in the configuration's order.
    pub sites: Vec<SiteRules>,
    /// `[metrics] token`.
    pub token: Option<String>,
}

/// One `[[http]]` listener's rules for origins and proxies.
#[derive(Debug)]
pub struct SiteRules {
    /// Page origins allowed to open a WebSocket besides the request's own.
    pub origins: Vec<String>,
    /// Proxies whose forwarding headers are believed.
    pub proxies: Vec<Cidr>,
    /// Which forwarding headers they are.
    pub forwarded_header: ForwardedHeader,
}

impl SiteRules {
    /// Whether `ip` is one of these proxies.
    fn is_proxy(&self, ip: IpAddr) -> bool {
        self.proxies.iter().any(|range| range.contains(ip))
    }
}

/// The rules of a listener missing from the published list: none trusted.
static NO_RULES: SiteRules = SiteRules {
    origins: Vec::new(),
    proxies: Vec::new(),
    forwarded_header: ForwardedHeader::XForwardedFor,
};

impl HttpSettings {
    /// The settings `config` asks for.
    pub fn from_config(config: &Config) -> HttpSettings {
        let sites = config
            .http
            .iter()
            .map(|http| SiteRules {
                origins: http.origins.clone(),
                proxies: http.proxies.clone(),
                forwarded_header: http.forwarded_header,
            })
            .collect();
        HttpSettings {
            sites,
            token: config.metrics.token.clone(),
        }
    }

    /// The rules of the listener at `position` in `[[http]]`.
    fn site(&self, position: usize) -> &SiteRules {
        self.sites.get(position).unwrap_or(&NO_RULES)
    }
}

/// One `[[http]]` listener's own settings.
pub struct HttpSite {
    /// Its place in `[[http]]`, which finds its rules in `settings`.
    pub position: usize,
    /// Origins, proxies and the token as last published (on REHASH).
    pub settings: watch::Receiver<Arc<HttpSettings>>,
    /// The certificate when the listener is HTTPS, replaced on REHASH.
    pub tls: Option<Arc<ReloadableTls>>,
    /// The endpoints every listener shares.
    pub operators: Arc<Operators>,
}

impl HttpSite {
    /// The settings in force now, for one request.
    fn current(&self) -> Arc<HttpSettings> {
        Arc::clone(&self.settings.borrow())
    }
}

/// Whether `ip` is one of the listener's proxies, whose forwarding
/// headers are believed and which no per-address cap applies to.
fn is_listed_proxy(site: &HttpSite, ip: IpAddr) -> bool {
    site.current().site(site.position).is_proxy(ip)
}

/// The HTTP connections each address holds. At most one entry per held
/// listener place, so it is bounded by [`MAX_HTTP_CONNECTIONS`].
#[derive(Default)]
struct PlacesPerAddress(Mutex<HashMap<IpAddr, usize>>);

/// One connection counted against its address until dropped.
struct AddressPlace {
    places: Arc<PlacesPerAddress>,
    ip: IpAddr,
}

impl PlacesPerAddress {
    /// Counts a connection from `ip`, unless it already holds the most.
    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<AddressPlace> {
        let mut held = self.lock();
        let count = held.entry(ip).or_insert(0);
        if *count >= MAX_HTTP_CONNECTIONS_PER_ADDRESS {
            return None;
        }
        *count += 1;
        Some(AddressPlace {
            places: Arc::clone(self),
            ip,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for AddressPlace {
    fn drop(&mut self) {
        let mut held = self.places.lock();
        if let Some(count) = held.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.ip);
            }
        }
    }
}

/// What every connection of one listener shares.
struct Listener<E> {
    /// What an upgraded WebSocket is admitted and run with.
    acceptor: Acceptor<E>,
    site: HttpSite,
    /// The bound address, for the log and the loopback rule.
    local: SocketAddr,
    local_text: String,
}

/// One HTTP connection's peer and listener.
struct Connection<E> {
    listener: Arc<Listener<E>>,
    peer: SocketAddr,
    /// Over TLS to this server.
    tls: bool,
}

/// Accepts HTTP connections until `until` is cancelled: after the IRC
/// listeners stop (new WebSockets are refused from then on), so `/readyz`
/// can say 503 while the server shuts down.
pub async fn serve_http<E>(
    listener: TcpListener,
    acceptor: Acceptor<E>,
    site: HttpSite,
    until: CancellationToken,
) where
    E: From<ConnectionEvent> + Send + 'static,
{
    let Ok(local) = listener.local_addr() else {
        warn!("an HTTP listener has no address; not serving it");
        return;
    };
    let places = Arc::new(Semaphore::new(MAX_HTTP_CONNECTIONS));
    let per_address = Arc::new(PlacesPerAddress::default());
    let shared = Arc::new(Listener {
        acceptor,
        site,
        local,
        local_text: local.to_string(),
    });
    loop {
        let Some((stream, peer)) = next_connection(&listener, &until).await else {
            return;
        };
        let Ok(place) = Arc::clone(&places).try_acquire_owned() else {
            debug!(%peer, "HTTP connection refused: the listener is full");
            shared.acceptor.metrics.http_connection_refused();
            continue;
        };
        let address_place = if is_listed_proxy(&shared.site, peer.ip()) {
            None
        } else {
            let Some(address_place) = per_address.take(peer.ip()) else {
                debug!(%peer, "HTTP connection refused: the address holds too many");
                shared.acceptor.metrics.http_connection_refused();
                continue;
            };
            Some(address_place)
        };
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let tls = shared.site.tls.as_ref().map(|tls| tls.acceptor());
            match tls {
                None => serve_connection(stream, shared, peer, false).await,
                Some(tls) => match timeout(TLS_HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                    Ok(Ok(stream)) => serve_connection(stream, shared, peer, true).await,
                    Ok(Err(error)) => debug!(%peer, %error, "TLS handshake failed"),
                    Err(_) => debug!(%peer, "TLS handshake timed out"),
                },
            }
            drop(address_place);
            drop(place);
        });
    }
}

/// Serves one HTTP connection's requests, until it closes, times out or
/// becomes a WebSocket.
async fn serve_connection<S, E>(stream: S, listener: Arc<Listener<E>>, peer: SocketAddr, tls: bool)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    E: From<ConnectionEvent> + Send + 'static,
{
    let connection = Arc::new(Connection {
        listener,
        peer,
        tls,
    });
    let service = service_fn(move |request| {
        let connection = Arc::clone(&connection);
        async move { Ok::<_, Infallible>(route(request, &connection)) }
    });
    let serving = http1::Builder::new()
        .max_buf_size(MAX_REQUEST_HEAD)
        .header_read_timeout(HEADER_TIMEOUT)
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    match timeout(CONNECTION_LIFETIME, serving).await {
        Ok(Err(error)) => debug!(%peer, %error, "HTTP connection ended"),
        Err(_) => debug!(%peer, "HTTP connection closed after its lifetime"),
        Ok(Ok(())) => {}
    }
}

/// The answer to one request.
fn route<E>(request: Request<Incoming>, connection: &Connection<E>) -> Answer
where
    E: From<ConnectionEvent> + Send + 'static,
{
    let method = request.method();
    if method != Method::GET && method != Method::HEAD {
        return routes::method_not_allowed();
    }
    let path = request.uri().path();
    if is_websocket_upgrade(&request) && method == Method::GET {
        if matches!(path, "/" | "/webirc") {
            return upgrade::accept(request, connection);
        }
        return routes::not_found();
    }
    if let Some(file) = routes::static_file(path) {
        return routes::serve_file(file);
    }
    if routes::is_operator_path(path) {
        let settings = connection.listener.site.current();
        let trusted = trusted_as_local(&request, connection, &settings);
        return routes::operator_endpoint(
            path,
            request.headers(),
            &connection.listener.site.operators,
            settings.token.as_deref(),
            trusted,
        );
    }
    if path == "/webirc" {
        return upgrade::upgrade_required();
    }
    routes::not_found()
}

/// Whether a request may read the operators' endpoints without a token: it
/// reached a loopback listener directly (not from a listed proxy, without
/// forwarding headers), naming it by a loopback name (not a rebound one).
fn trusted_as_local<B, E>(
    request: &Request<B>,
    connection: &Connection<E>,
    settings: &HttpSettings,
) -> bool {
    let listener = &connection.listener;
    let peer = connection.peer.ip();
    let rules = settings.site(listener.site.position);
    let from_proxy = rules.is_proxy(peer);
    let headers = request.headers();
    listener.local.ip().is_loopback()
        && !from_proxy
        && !forwarded::carries_forwarding(headers)
        && forwarded::host_is_loopback(headers)
}

/// `Upgrade: websocket` with `Connection: upgrade`, in any case.
fn is_websocket_upgrade<B>(request: &Request<B>) -> bool {
    let headers = request.headers();
    let upgrade = headers
        .get_all(UPGRADE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("websocket"));
    let connection = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    upgrade && connection
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_places_back_as_its_connections_end() {
        let places = Arc::new(PlacesPerAddress::default());
        let ip = IpAddr::from([192, 0, 2, 7]);
        let held: Vec<_> = (0..MAX_HTTP_CONNECTIONS_PER_ADDRESS)
            .map(|_| places.take(ip).expect("a place"))
            .collect();
        assert!(places.take(ip).is_none());
        assert!(places.take(IpAddr::from([192, 0, 2, 8])).is_some());
        drop(held);
        assert!(places.take(ip).is_some());
        assert!(places.lock().is_empty(), "emptied entries go");
    }

    #[test]
    fn not_ready_once_stopping_or_without_the_history_writer() {
        let (writer, committed) = watch::channel(0);
        let ready = Readiness {
            stopping: CancellationToken::new(),
            history: Some(committed),
        };
        assert!(ready.is_ready());
        drop(writer);
        assert!(!ready.is_ready());
        let without_history = Readiness {
            stopping: CancellationToken::new(),
            history: None,
        };
        assert!(without_history.is_ready());
        without_history.stopping.cancel();
        assert!(!without_history.is_ready());
    }
}
