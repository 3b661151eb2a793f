//! Accept loops: one per listening address, admitting or refusing each
//! connection before it costs the core anything.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::{Duration, timeout};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, Span, debug, info, info_span, warn};

use super::connection::Transport;
use super::connection::{self, ConnectionSettings};
use super::event::{ClientId, ConnectionEvent, Inbox};
use super::limits::{Admission, ConnectionLimits, Rejection};
use super::outbox::Watermarks;
use super::tls::{ReloadableTls, client_fingerprint};
use crate::metrics::{ConnectionGauge, Metrics, RefusedBecause};

/// How long a client may take to finish the TLS handshake.
pub(super) const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// An address that could not be listened on.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {address}: {source}")]
pub struct BindError {
    address: SocketAddr,
    source: std::io::Error,
}

/// Binds every address, failing on the first that cannot be bound. Each
/// listener comes with its bound address (the port the system picked for
/// port 0).
pub async fn bind(addresses: &[SocketAddr]) -> Result<Vec<(TcpListener, SocketAddr)>, BindError> {
    bind_each(addresses, "listening on")
}

/// [`bind`] for the HTTP listeners, logged as such.
pub async fn bind_http(
    addresses: &[SocketAddr],
) -> Result<Vec<(TcpListener, SocketAddr)>, BindError> {
    bind_each(addresses, "serving HTTP and WebSocket on")
}

/// Binds each address, saying so in the log with `what`.
fn bind_each(
    addresses: &[SocketAddr],
    what: &str,
) -> Result<Vec<(TcpListener, SocketAddr)>, BindError> {
    let mut listeners = Vec::with_capacity(addresses.len());
    for &address in addresses {
        let bound = listen_on(address).and_then(|listener| {
            let local = listener.local_addr()?;
            Ok((listener, local))
        });
        let (listener, local) = bound.map_err(|source| BindError { address, source })?;
        info!("{what} {local}");
        listeners.push((listener, local));
    }
    Ok(listeners)
}

/// A listening socket. An IPv6 one takes IPv6 only, so `[::]:6667` and
/// `0.0.0.0:6667` can be listened on side by side, as on every system.
fn listen_on(address: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    if address.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// Everything an accept loop shares with the rest of the server.
pub struct Acceptor<E> {
    pub next_id: Arc<AtomicU64>,
    pub limits: Arc<ConnectionLimits>,
    pub settings: watch::Receiver<Arc<ConnectionSettings>>,
    pub inbox: Inbox<E>,
    pub shutdown: CancellationToken,
    /// Every connection task, so shutdown can wait for goodbyes to flush.
    pub tasks: TaskTracker,
    /// How far history has come, for each connection's write gate.
    pub watermarks: Watermarks,
    /// Where connections accepted, refused and open are counted.
    pub metrics: Arc<Metrics>,
}

// Derived Clone would ask for `E: Clone`; only the handles are cloned.
impl<E> Clone for Acceptor<E> {
    fn clone(&self) -> Acceptor<E> {
        Acceptor {
            next_id: Arc::clone(&self.next_id),
            limits: Arc::clone(&self.limits),
            settings: self.settings.clone(),
            inbox: self.inbox.clone(),
            shutdown: self.shutdown.clone(),
            tasks: self.tasks.clone(),
            watermarks: self.watermarks.clone(),
            metrics: Arc::clone(&self.metrics),
        }
    }
}

/// Accepts connections until shutdown.
pub async fn serve<E>(listener: TcpListener, acceptor: Acceptor<E>, tls: Option<Arc<ReloadableTls>>)
where
    E: From<ConnectionEvent> + Send + 'static,
{
    let local = listener
        .local_addr()
        .map_or_else(|_| "?".to_owned(), |address| address.to_string());
    let open = acceptor.metrics.listener(&local, tls.is_some(), false);
    loop {
        let Some((stream, peer)) = next_connection(&listener, &acceptor.shutdown).await else {
            return;
        };
        match acceptor.limits.admit(peer.ip()) {
            Ok(admission) => {
                acceptor.metrics.connection_accepted();
                let admitted = Admitted {
                    admission,
                    counted: open.connect(),
                };
                start_connection(stream, peer, admitted, &acceptor, tls.as_deref(), &local);
            }
            Err(rejection) => {
                info!(%peer, refusal = %rejection, "connection refused");
                acceptor
                    .metrics
                    .connection_refused(refused_because(&rejection));
                // A plaintext ERROR would be noise inside a TLS handshake.
                if tls.is_none() {
                    tell_refused(stream, peer, rejection);
                }
            }
        }
    }
}

/// The next connection `listener` accepts, or `None` once `until` is
/// cancelled. A failed accept (out of file descriptors and the like)
/// backs off and tries again: the listener keeps serving.
pub(super) async fn next_connection(
    listener: &TcpListener,
    until: &CancellationToken,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = until.cancelled() => return None,
        };
        match accepted {
            Ok(accepted) => return Some(accepted),
            Err(error) => {
                warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// What an admitted connection holds until its task ends: its place under
/// the per-address limits and its count among the open connections.
struct Admitted {
    admission: Admission,
    counted: ConnectionGauge,
}

/// Names an admitted connection and spawns its task: the TLS handshake if
/// any, then the connection itself until it closes. The connection counts
/// as open in the metrics until that task ends.
fn start_connection<E>(
    stream: TcpStream,
    peer: SocketAddr,
    admitted: Admitted,
    acceptor: &Acceptor<E>,
    tls: Option<&ReloadableTls>,
    listener: &str,
) where
    E: From<ConnectionEvent> + Send + 'static,
{
    let Admitted { admission, counted } = admitted;
    let _ = stream.set_nodelay(true);
    let kind = Kind {
        secure: tls.is_some(),
        websocket: false,
    };
    let (accepted, span) = new_connection(acceptor, peer, admission, listener, kind);
    // Two tasks, not one future with both paths: a future is as large as
    // its largest state, and the TLS path's (a rustls connection inline)
    // would make every plain-text client's task kilobytes larger.
    let Some(tls) = tls.map(ReloadableTls::acceptor) else {
        let connection = async move {
            let _counted = counted;
            connection::run_stream(stream, accepted, Transport::default()).await;
        };
        acceptor.tasks.spawn(connection.instrument(span));
        return;
    };
    let connection = async move {
        let _counted = counted;
        match timeout(TLS_HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
            Ok(Ok(stream)) => {
                let transport = Transport {
                    secure: true,
                    certificate: client_fingerprint(stream.get_ref().1),
                    websocket: false,
                };
                connection::run_stream(stream, accepted, transport).await;
            }
            Ok(Err(error)) => debug!(%error, "TLS handshake failed"),
            Err(_) => debug!("TLS handshake timed out"),
        }
    };
    acceptor.tasks.spawn(connection.instrument(span));
}

/// The metrics' name for why the limits refused a connection.
pub(super) fn refused_because(rejection: &Rejection) -> RefusedBecause {
    match rejection {
        Rejection::ServerFull => RefusedBecause::ServerFull,
        Rejection::TooManyFromAddress => RefusedBecause::TooManyFromAddress,
        Rejection::ConnectingTooFast => RefusedBecause::ConnectingTooFast,
    }
}

/// How an admitted client is carried, for its log line.
#[derive(Clone, Copy, Debug)]
pub(super) struct Kind {
    /// Over TLS, or behind a proxy that says the client used HTTPS.
    pub secure: bool,
    pub websocket: bool,
}

/// Names an admitted connection and says so in the log: what its task
/// needs, and the span its lines are logged in.
pub(super) fn new_connection<E>(
    acceptor: &Acceptor<E>,
    peer: SocketAddr,
    admission: Admission,
    listener: &str,
    kind: Kind,
) -> (connection::Accepted<E>, Span) {
    let id = ClientId(acceptor.next_id.fetch_add(1, Ordering::Relaxed));
    let span = info_span!("conn", id = id.0, %peer);
    info!(
        parent: &span,
        %peer,
        %listener,
        tls = kind.secure,
        websocket = kind.websocket,
        "client connects"
    );
    let accepted = connection::Accepted {
        id,
        peer,
        settings: Arc::clone(&acceptor.settings.borrow()),
        inbox: acceptor.inbox.clone(),
        admission,
        watermarks: acceptor.watermarks.clone(),
    };
    (accepted, span)
}

/// Tells a refused plain-text client why, without waiting for it.
fn tell_refused(mut stream: TcpStream, peer: SocketAddr, refusal: Rejection) {
    tokio::spawn(async move {
        let line = format!("ERROR :Closing Link: {} ({refusal})\r\n", peer.ip());
        let _ = timeout(Duration::from_secs(5), stream.write_all(line.as_bytes())).await;
    });
}
