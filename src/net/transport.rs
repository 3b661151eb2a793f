//! What a connection reads lines from and writes lines to, whatever
//! carries them: a byte stream (TCP, TLS) frames lines by their endings
//! (`stream.rs`), a WebSocket carries one line per message (`websocket.rs`).
//! The read and write tasks (`reader.rs`, `connection.rs`) see only these
//! two traits, so every transport gets the same limits, flood control,
//! timeouts and history gate.

use std::future::Future;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use crate::proto::framing::Frame;

/// The read side of a transport.
pub(crate) trait LineSource: Send {
    /// Waits for more input. `Ok(false)` is the end of the connection.
    /// Cancel-safe: a read that has not completed loses nothing.
    fn fill(&mut self) -> impl Future<Output = std::io::Result<bool>> + Send;

    /// The next complete line of what was read, if any.
    fn next_frame(&mut self) -> Option<Frame>;
}

/// The write side of a transport.
pub(crate) trait LineSink: Send {
    /// Sends every line of `lines` (each ending in CR LF, as the core
    /// serializes them) in order and empties it. `Err` when the connection
    /// failed or `stop` was cancelled.
    fn send(
        &mut self,
        lines: &mut Vec<Bytes>,
        stop: &CancellationToken,
    ) -> impl Future<Output = Result<(), ()>> + Send;

    /// Ends the connection cleanly after the last line.
    fn close(&mut self) -> impl Future<Output = ()> + Send;
}
