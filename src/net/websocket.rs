//! Lines over a WebSocket, as the IRCv3 WebSocket specification has them:
//! one line per message, without its CR LF, in both directions; text
//! messages under `text.ircv3.net`, binary ones under `binary.ircv3.net`.
//! The HTTP side (the upgrade request) is in `http/`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Duration, Instant};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error, Message, Utf8Bytes};
use tokio_util::sync::CancellationToken;

use super::flood::TokenBucket;
use super::transport::{LineSink, LineSource};
use crate::proto::framing::{self, Frame, MAX_BODY, MAX_TAGS};

/// The subprotocol for binary messages.
pub(crate) const BINARY: &str = "binary.ircv3.net";
/// The subprotocol for text messages.
pub(crate) const TEXT: &str = "text.ircv3.net";

/// The largest message and frame a client may send: the longest line the
/// server accepts. A longer one ends the connection; one within this but
/// past the line's own limits gets 417 as over TCP.
const MAX_MESSAGE: usize = MAX_TAGS + MAX_BODY;

/// How much the socket reader takes at once: small, as for TCP clients,
/// since most connections are idle.
const READ_BUFFER: usize = 4 * 1024;
/// Lines are gathered up to this many bytes per write to the socket.
const WRITE_BUFFER: usize = 16 * 1024;

/// Pings and unsolicited pongs a client may send per second, after a
/// burst of [`CONTROL_BURST`]. Each ping makes the server write a pong, and
/// none of them is a line the flood bucket sees, so they get a bucket of
/// their own; a client past it is cut off. Browsers send none; a library
/// keeping a connection alive sends one every few seconds at most.
const CONTROL_FRAMES_PER_SECOND: f64 = 1.0;
/// Pings and pongs a client may send at once.
const CONTROL_BURST: u32 = 8;
/// The longest reason a close frame carries: 125 bytes of payload less
/// the two of the code (RFC 6455 section 5.5).
const MAX_CLOSE_REASON: usize = 123;
/// No close code chosen by the read half yet.
const NO_CODE: u16 = 0;

/// The `ERROR` text the core says goodbye with when the server stops; a
/// WebSocket closes with 1001 (going away) after it.
pub const SERVER_SHUTTING_DOWN: &str = "Server shutting down";

/// Which kind of message the lines travel in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MessageKind {
    Text,
    Binary,
}

/// The subprotocol to answer with: the first one the client offered (in
/// its order of preference) that is supported. Without one, text.
pub(crate) fn choose_subprotocol<'a>(
    offered: impl IntoIterator<Item = &'a str>,
) -> (Option<&'static str>, MessageKind) {
    for name in offered {
        match name.trim() {
            name if name.eq_ignore_ascii_case(BINARY) => {
                return (Some(BINARY), MessageKind::Binary);
            }
            name if name.eq_ignore_ascii_case(TEXT) => return (Some(TEXT), MessageKind::Text),
            _ => {}
        }
    }
    (None, MessageKind::Text)
}

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key` (RFC 6455
/// section 4.2.2): base64 of the SHA-1 of the key and a fixed GUID.
pub(crate) fn accept_key(key: &[u8]) -> String {
    const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    let mut context = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    context.update(key);
    context.update(GUID);
    base64::engine::general_purpose::STANDARD.encode(context.finish())
}

/// The WebSocket settings for an IRC connection: bounded messages and
/// small buffers.
pub(crate) fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(WRITE_BUFFER + 2 * MAX_MESSAGE)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
}

/// Splits an open WebSocket into the two halves a connection runs on.
pub(crate) fn split<S>(socket: WebSocketStream<S>, kind: MessageKind) -> (Source<S>, Sink<S>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let (sink, stream) = socket.split();
    let close_code = Arc::new(AtomicU16::new(NO_CODE));
    let source = Source {
        stream,
        next: None,
        control: TokenBucket::new(CONTROL_FRAMES_PER_SECOND, CONTROL_BURST, Instant::now()),
        close_code: Arc::clone(&close_code),
    };
    let sink = Sink {
        sink,
        kind,
        error_line: None,
        close_code,
    };
    (source, sink)
}

/// The read half: each text or binary message is one line.
pub(crate) struct Source<S> {
    stream: SplitStream<WebSocketStream<S>>,
    /// The line of the last message, until the reader takes it.
    next: Option<Frame>,
    /// What the client's pings and pongs may cost.
    control: TokenBucket,
    /// The close code for the write half when reading failed.
    close_code: Arc<AtomicU16>,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> LineSource for Source<S> {
    async fn fill(&mut self) -> std::io::Result<bool> {
        loop {
            let message = match self.stream.next().await {
                None => return Ok(false),
                Some(Err(error)) => {
                    if let Some(code) = close_code_for(&error) {
                        self.close_code.store(code.into(), Ordering::Relaxed);
                    }
                    return Err(std::io::Error::other(error));
                }
                Some(Ok(message)) => message,
            };
            // Either kind is accepted whatever was negotiated; the line
            // decoder repairs bytes that are not UTF-8.
            let payload = match message {
                Message::Text(text) => Bytes::from(text),
                Message::Binary(bytes) => bytes,
                Message::Close(_) => return Ok(false),
                // Answered by the WebSocket layer. They do not count as
                // hearing from the client (only lines do, so the idle PING
                // still comes), and they are rationed.
                Message::Ping(_) | Message::Pong(_) => {
                    if self.control.take(Instant::now(), 1) > Duration::ZERO {
                        let policy = CloseCode::Policy.into();
                        self.close_code.store(policy, Ordering::Relaxed);
                        return Err(std::io::Error::other("too many pings"));
                    }
                    continue;
                }
                Message::Frame(_) => continue,
            };
            self.next = framing::frame_message(BytesMut::from(payload));
            return Ok(true);
        }
    }

    fn next_frame(&mut self) -> Option<Frame> {
        self.next.take()
    }
}

/// The write half: each line goes out as one message without its CR LF.
pub(crate) struct Sink<S> {
    sink: SplitSink<WebSocketStream<S>, Message>,
    kind: MessageKind,
    /// The `ERROR` line the core said goodbye with, for the close frame.
    error_line: Option<Bytes>,
    /// The close code the read half chose, if reading failed.
    close_code: Arc<AtomicU16>,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> LineSink for Sink<S> {
    async fn send(&mut self, lines: &mut Vec<Bytes>, stop: &CancellationToken) -> Result<(), ()> {
        // The goodbye is the last line of the last batch.
        if let Some(line) = lines.last().filter(|line| line.starts_with(b"ERROR ")) {
            self.error_line = Some(line.clone());
        }
        let kind = self.kind;
        let send = async {
            for line in lines.drain(..) {
                self.sink.feed(message(line, kind)).await?;
            }
            self.sink.flush().await
        };
        let sent = tokio::select! {
            sent = send => sent,
            _ = stop.cancelled() => return Err(()),
        };
        let Err(error) = sent else {
            return Ok(());
        };
        if is_closing(&error) {
            // The client closed first: its close frame's answer is queued
            // and goes out only with a flush, which closing drives.
            tokio::select! {
                _ = self.sink.close() => {}
                _ = stop.cancelled() => {}
            }
        }
        Err(())
    }

    async fn close(&mut self) {
        let code = match self.close_code.load(Ordering::Relaxed) {
            NO_CODE => None,
            code => Some(CloseCode::from(code)),
        };
        let frame = close_frame(code, self.error_line.as_deref());
        let _ = self.sink.send(Message::Close(Some(frame))).await;
        let _ = self.sink.close().await;
    }
}

/// Whether a failed send means the WebSocket is closing rather than broken.
fn is_closing(error: &Error) -> bool {
    matches!(
        error,
        Error::ConnectionClosed | Error::Protocol(ProtocolError::SendAfterClosing)
    )
}

/// The close code a read error calls for (RFC 6455 section 7.4.1), if
/// the client is still there to be told.
fn close_code_for(error: &Error) -> Option<CloseCode> {
    match error {
        Error::Capacity(CapacityError::MessageTooLong { .. }) => Some(CloseCode::Size),
        Error::Utf8(_) => Some(CloseCode::Invalid),
        _ => None,
    }
}

/// The close frame after the core's `ERROR` line: `code` when reading
/// failed, otherwise 1001 for a server going down and 1000 for any other
/// goodbye (QUIT, KILL, a full send queue); the reason is the line's text,
/// cut to fit.
fn close_frame(code: Option<CloseCode>, error_line: Option<&[u8]>) -> CloseFrame {
    let text = error_line
        .map(|line| line.strip_prefix(b"ERROR ").unwrap_or(line))
        .map(|text| text.strip_prefix(b":").unwrap_or(text))
        .map(|text| text.strip_suffix(b"\r\n").unwrap_or(text))
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let code = code.unwrap_or(if text == SERVER_SHUTTING_DOWN {
        CloseCode::Away
    } else {
        CloseCode::Normal
    });
    CloseFrame {
        code,
        reason: truncate(&text, MAX_CLOSE_REASON).to_owned().into(),
    }
}

/// The longest start of `text` within `max` bytes, cut between characters.
fn truncate(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// One serialized line as a message: its CR LF taken off, and as text with
/// U+FFFD for bytes that are not UTF-8 (which the core never produces from
/// its own input, but a line relayed as it came could hold).
fn message(mut line: Bytes, kind: MessageKind) -> Message {
    if line.ends_with(b"\r\n") {
        line.truncate(line.len() - 2);
    }
    match kind {
        MessageKind::Binary => Message::Binary(line),
        // The clone is a reference count: valid text goes out without a copy.
        MessageKind::Text => match Utf8Bytes::try_from(line.clone()) {
            Ok(text) => Message::Text(text),
            Err(_) => Message::Text(String::from_utf8_lossy(&line).into_owned().into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_supported_subprotocol_the_client_offered_wins() {
        assert_eq!(
            choose_subprotocol([TEXT, BINARY]),
            (Some(TEXT), MessageKind::Text)
        );
        assert_eq!(
            choose_subprotocol(["chat", BINARY, TEXT]),
            (Some(BINARY), MessageKind::Binary)
        );
        assert_eq!(choose_subprotocol(["chat"]), (None, MessageKind::Text));
        assert_eq!(choose_subprotocol([]), (None, MessageKind::Text));
    }

    #[test]
    fn the_accept_key_is_the_one_rfc_6455_gives() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn the_close_frame_says_why_within_its_size() {
        let quit = close_frame(None, Some(b"ERROR :Closing Link: host (Quit: bye)\r\n"));
        assert_eq!(quit.code, CloseCode::Normal);
        assert_eq!(quit.reason.as_str(), "Closing Link: host (Quit: bye)");
        let stopping = close_frame(None, Some(b"ERROR :Server shutting down\r\n"));
        assert_eq!(stopping.code, CloseCode::Away);
        let long = format!("ERROR :{}\r\n", "\u{e9}".repeat(100));
        let too_big = close_frame(Some(CloseCode::Size), Some(long.as_bytes()));
        assert_eq!(too_big.code, CloseCode::Size);
        assert_eq!(too_big.reason.as_str(), "\u{e9}".repeat(61));
        assert_eq!(close_frame(None, None).code, CloseCode::Normal);
    }

    #[test]
    fn lines_lose_their_ending_and_text_repairs_bad_bytes() {
        let line = Bytes::from_static(b"PRIVMSG a :caf\xe9\r\n");
        assert_eq!(
            message(line.clone(), MessageKind::Binary),
            Message::Binary(Bytes::from_static(b"PRIVMSG a :caf\xe9"))
        );
        assert_eq!(
            message(line, MessageKind::Text),
            Message::Text("PRIVMSG a :caf\u{FFFD}".into())
        );
    }
}
