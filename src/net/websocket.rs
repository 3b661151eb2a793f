//! Lines over a WebSocket, as the IRCv3 WebSocket specification has them:
//! one line per message, without its CR LF, in both directions; text
//! messages under `text.ircv3.net`, binary ones under `binary.ircv3.net`.
//! The HTTP side (the upgrade request) is in `http/`.

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_util::sync::CancellationToken;

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
    let source = Source { stream, next: None };
    (source, Sink { sink, kind })
}

/// The read half: each text or binary message is one line.
pub(crate) struct Source<S> {
    stream: SplitStream<WebSocketStream<S>>,
    /// The line of the last message, until the reader takes it.
    next: Option<Frame>,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> LineSource for Source<S> {
    async fn fill(&mut self) -> std::io::Result<bool> {
        let message = match self.stream.next().await {
            None => return Ok(false),
            Some(Err(error)) => return Err(std::io::Error::other(error)),
            Some(Ok(message)) => message,
        };
        // Either kind is accepted whatever was negotiated; the line decoder
        // repairs bytes that are not UTF-8.
        let payload = match message {
            Message::Text(text) => Bytes::from(text),
            Message::Binary(bytes) => bytes,
            Message::Close(_) => return Ok(false),
            // Answered by the WebSocket layer; they still show the client is there.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => return Ok(true),
        };
        self.next = framing::frame_message(BytesMut::from(payload));
        Ok(true)
    }

    fn next_frame(&mut self) -> Option<Frame> {
        self.next.take()
    }
}

/// The write half: each line goes out as one message without its CR LF.
pub(crate) struct Sink<S> {
    sink: SplitSink<WebSocketStream<S>, Message>,
    kind: MessageKind,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> LineSink for Sink<S> {
    async fn send(&mut self, lines: &mut Vec<Bytes>, stop: &CancellationToken) -> Result<(), ()> {
        let kind = self.kind;
        let send = async {
            for line in lines.drain(..) {
                self.sink.feed(message(line, kind)).await?;
            }
            self.sink.flush().await
        };
        tokio::select! {
            sent = send => sent.map_err(|_| ()),
            _ = stop.cancelled() => Err(()),
        }
    }

    async fn close(&mut self) {
        let _ = self.sink.close().await;
    }
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
