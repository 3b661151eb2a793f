//! The WebSocket handshake (RFC 6455 section 4.2): checks the request,
//! admits the client by its real address, answers 101, and runs the
//! upgraded socket as an ordinary connection.

use std::net::SocketAddr;

use base64::Engine as _;
use hyper::body::Incoming;
use hyper::header::{
    CONNECTION, HOST, HeaderMap, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;
use tracing::{Instrument, debug, info};

use super::routes::{self, Answer};
use super::{Connection, forwarded};
use crate::net::connection::{self, Transport};
use crate::net::event::ConnectionEvent;
use crate::net::listener::{Kind, new_connection, refused_because};
use crate::net::websocket;

/// The answer to an upgrade request: 101 and a connection started, or why not.
pub(super) fn accept<E>(mut request: Request<Incoming>, connection: &Connection<E>) -> Answer
where
    E: From<ConnectionEvent> + Send + 'static,
{
    let listener = &connection.listener;
    if listener.acceptor.shutdown.is_cancelled() {
        return routes::plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down\n",
        );
    }
    let headers = request.headers();
    let version_13 = headers
        .get(SEC_WEBSOCKET_VERSION)
        .is_some_and(|version| version.as_bytes() == b"13");
    if !version_13 {
        return upgrade_required();
    }
    if let Err(problem) = check_handshake(headers) {
        return routes::plain(StatusCode::BAD_REQUEST, problem);
    }
    let Some(key) = headers.get(SEC_WEBSOCKET_KEY) else {
        return routes::plain(StatusCode::BAD_REQUEST, "Sec-WebSocket-Key is missing\n");
    };
    let accept_key = websocket::accept_key(key.as_bytes());
    let client = match forwarded::vet(headers, connection) {
        Ok(client) => client,
        Err(refusal) => return refusal.answer(),
    };
    let peer = SocketAddr::new(client.ip, connection.peer.port());
    let acceptor = &listener.acceptor;
    let admission = match acceptor.limits.admit(client.ip) {
        Ok(admission) => admission,
        Err(refusal) => {
            info!(%peer, refusal = %refusal, websocket = true, "connection refused");
            acceptor
                .metrics
                .connection_refused(refused_because(&refusal));
            let mut refused = routes::answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain; charset=utf-8",
                format!("{refusal}\n").into(),
            );
            refused
                .headers_mut()
                .insert("retry-after", HeaderValue::from_static("60"));
            return refused;
        }
    };
    let offered = headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','));
    let (subprotocol, kind) = websocket::choose_subprotocol(offered);
    let secure = connection.tls || client.https;
    acceptor.metrics.connection_accepted();
    let counted = acceptor
        .metrics
        .connection(&listener.local_text, connection.tls, true);
    let on_upgrade = hyper::upgrade::on(&mut request);
    let (accepted, span) = new_connection(
        &listener.acceptor,
        peer,
        admission,
        &listener.local_text,
        Kind {
            secure,
            websocket: true,
        },
    );
    let run = async move {
        let _counted = counted;
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(error) => {
                debug!(%error, "the WebSocket upgrade did not complete");
                return;
            }
        };
        let socket = TokioIo::new(upgraded);
        let socket =
            WebSocketStream::from_raw_socket(socket, Role::Server, Some(websocket::config())).await;
        let (source, sink) = websocket::split(socket, kind);
        let transport = Transport {
            secure,
            certificate: None,
            websocket: true,
        };
        connection::run(source, sink, accepted, transport).await;
    };
    listener.acceptor.tasks.spawn(run.instrument(span));
    switching_protocols(&accept_key, subprotocol)
}

/// The checks of RFC 6455 section 4.2.1 that the route and version do not
/// make: one `Host`, and one `Sec-WebSocket-Key` that is base64 of 16
/// bytes. The answer to a failed one is 400 with the text given.
fn check_handshake(headers: &HeaderMap) -> Result<(), &'static str> {
    if headers.get_all(HOST).iter().count() != 1 {
        return Err("one Host header is required\n");
    }
    let mut keys = headers.get_all(SEC_WEBSOCKET_KEY).iter();
    let (Some(key), None) = (keys.next(), keys.next()) else {
        return Err("one Sec-WebSocket-Key header is required\n");
    };
    if !is_websocket_key(key.as_bytes()) {
        return Err("Sec-WebSocket-Key is not base64 of 16 bytes\n");
    }
    Ok(())
}

/// A `Sec-WebSocket-Key`: base64 of 16 bytes, which is 24 characters.
fn is_websocket_key(key: &[u8]) -> bool {
    const ENCODED_LENGTH: usize = 24;
    key.len() == ENCODED_LENGTH
        && base64::engine::general_purpose::STANDARD
            .decode(key)
            .is_ok_and(|nonce| nonce.len() == 16)
}

/// 101 Switching Protocols with the handshake's headers.
fn switching_protocols(accept_key: &str, subprotocol: Option<&'static str>) -> Answer {
    let mut answer = routes::answer(
        StatusCode::SWITCHING_PROTOCOLS,
        "text/plain",
        bytes::Bytes::new(),
    );
    let headers = answer.headers_mut();
    headers.remove("content-type");
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(accept_key) {
        headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
    }
    if let Some(subprotocol) = subprotocol {
        headers.insert(
            SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(subprotocol),
        );
    }
    answer
}

/// 426: this path speaks only WebSocket version 13.
pub(super) fn upgrade_required() -> Answer {
    let mut answer = routes::plain(
        StatusCode::UPGRADE_REQUIRED,
        "this address takes a WebSocket (version 13)\n",
    );
    let headers = answer.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_base64_of_exactly_16_bytes() {
        assert!(is_websocket_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(!is_websocket_key(b"dGhlIHNhbXBsZSBub25jZQ"));
        assert!(!is_websocket_key(b"dGhlIHNhbXBsZSBub25jZSE="));
        assert!(!is_websocket_key(b"not base64 at all!!!!!!!"));
        assert!(!is_websocket_key(b""));
    }
}
