//! What a connection tells the layer above it. The net layer names no type
//! of the core: it sends [`ConnectionEvent`]s into an [`Inbox`] whose item
//! type the server picks, converted on the way by `From`.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::outbox::Outbox;
use crate::proto::Message;

/// Names one connection for its whole life; the accept loop assigns it and
/// never reuses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub u64);

/// What happened on a connection.
#[derive(Debug)]
pub enum ConnectionEvent {
    /// A connection was accepted and admitted.
    Connected {
        id: ClientId,
        outbox: Arc<Outbox>,
        peer: SocketAddr,
        /// Over TLS.
        secure: bool,
        /// The SHA-256 fingerprint (lowercase hex) of the client's TLS
        /// certificate, when it presented one.
        certificate: Option<String>,
        /// Over a WebSocket, from a browser most likely.
        websocket: bool,
    },
    /// A parsed line from a client.
    Message { id: ClientId, message: Message },
    /// A client sent a line longer than the limits; it was dropped.
    InputTooLong { id: ClientId },
    /// The connection ended on its side (EOF, error, timeout).
    Closed { id: ClientId, reason: String },
}

/// The sending end of the queue a connection reports into. `E` is the
/// receiver's own event type; the conversion is a move, so a parsed line
/// reaches it without another allocation.
pub struct Inbox<E>(mpsc::Sender<E>);

/// The receiving side is gone: the server is stopping.
#[derive(Debug)]
pub(crate) struct InboxClosed;

impl<E: From<ConnectionEvent>> Inbox<E> {
    pub fn new(sender: mpsc::Sender<E>) -> Inbox<E> {
        Inbox(sender)
    }

    /// Waits for room, then queues `event`.
    pub(crate) async fn send(&self, event: ConnectionEvent) -> Result<(), InboxClosed> {
        self.0.send(E::from(event)).await.map_err(|_| InboxClosed)
    }
}

// Derived Clone would ask for `E: Clone`; only the sender is cloned.
impl<E> Clone for Inbox<E> {
    fn clone(&self) -> Inbox<E> {
        Inbox(self.0.clone())
    }
}
