//! Sockets: listeners with connection limits, and per connection a read task
//! (framing, parsing, timeouts, flood control) and a write task (draining the
//! client's [`Outbox`] into the socket, many lines per write). A connection
//! reports to the layer above as [`ConnectionEvent`]s through an [`Inbox`];
//! nothing here names a core type.

mod connection;
mod deadlines;
mod event;
mod flood;
mod limits;
mod listener;
mod outbox;
mod reader;
mod tls;

pub use connection::ConnectionSettings;
pub use event::{ClientId, ConnectionEvent, Inbox};
pub use flood::EXCESS_FLOOD;
pub use limits::{AdmissionRules, ConnectionLimits};
pub use listener::{Acceptor, BindError, bind, serve};
pub use outbox::Outbox;
pub use tls::{ReloadableTls, TlsError, load as load_tls};
