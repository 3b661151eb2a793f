//! Sockets: listeners with connection limits, and per connection a read task
//! (framing, parsing, timeouts, flood control) and a write task (draining the
//! client's [`Outbox`] into the socket, many lines per write). A connection
//! reports to the layer above as [`ConnectionEvent`]s through an [`Inbox`];
//! nothing here names a core type. A connection's lines come over a byte
//! stream or a WebSocket (`transport.rs`); the HTTP listener (`http/`)
//! serves the web client and turns WebSocket upgrades into connections.

mod connection;
mod deadlines;
mod event;
mod flood;
mod http;
mod limits;
mod listener;
mod outbox;
mod reader;
mod stream;
mod tls;
mod transport;
mod websocket;

pub use connection::ConnectionSettings;
pub use event::{ClientId, ConnectionEvent, Inbox};
pub use flood::EXCESS_FLOOD;
pub use http::{HttpSettings, HttpSite, Operators, Readiness, RenderMetrics, serve_http};
pub use limits::{AdmissionRules, ConnectionLimits};
pub use listener::{Acceptor, BindError, bind, bind_http, serve};
pub use outbox::{Gate, Outbox, Overflow, Pushed, Watermarks};
pub use tls::{ReloadableTls, TlsError, load as load_tls};
pub use websocket::SERVER_SHUTTING_DOWN;
