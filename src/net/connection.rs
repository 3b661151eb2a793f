//! One client connection: a read task that frames, parses and times out, and
//! a write task that drains the [`Outbox`] into the socket.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::{Duration, Instant, sleep_until, timeout};
use tracing::debug;

use super::event::{ClientId, ConnectionEvent, Inbox};
use super::flood::{self, TokenBucket};
use super::limits::Admission;
use super::outbox::{Drained, Outbox};
use crate::config::Config;
use crate::proto::framing::{Frame, Framer};
use crate::proto::{Line, message};

/// What a connection needs to know from the configuration.
#[derive(Clone, Debug)]
pub struct ConnectionSettings {
    pub server_name: String,
    pub registration_timeout: Duration,
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    /// The token bucket's shape, when flood control is on.
    pub flood: Option<FloodLimits>,
    pub sendq_bytes: usize,
}

impl ConnectionSettings {
    /// What `[server]`, `[timeouts]`, `[flood]` and `[limits]` say a
    /// connection must do.
    pub fn from_config(config: &Config) -> ConnectionSettings {
        ConnectionSettings {
            server_name: config.server.name.clone(),
            registration_timeout: Duration::from_secs(config.timeouts.registration),
            ping_interval: Duration::from_secs(config.timeouts.ping_interval),
            ping_timeout: Duration::from_secs(config.timeouts.ping_timeout),
            flood: config.flood.enabled.then_some(FloodLimits {
                lines_per_second: config.flood.lines_per_second,
                burst: config.flood.burst,
                max_backlog: config.flood.max_backlog,
            }),
            sendq_bytes: config.limits.sendq_bytes,
        }
    }
}

/// `[flood]` as the read loop applies it.
#[derive(Clone, Copy, Debug)]
pub struct FloodLimits {
    pub lines_per_second: f64,
    pub burst: u32,
    /// Lines that may wait behind the rate before "Excess Flood".
    pub max_backlog: u32,
}

/// The smallest and largest reads: small for the many idle clients, large
/// for a client sending a burst.
const READ_MIN: usize = 512;
const READ_MAX: usize = 64 * 1024;
/// The most lines one write call carries (Linux allows 1,024).
const WRITE_SLICES: usize = 128;
/// Lines the write task's list may keep room for between bursts.
const IDLE_LINES: usize = 16;
/// How long a closing connection may take to flush its last lines.
const FLUSH_GRACE: Duration = Duration::from_secs(10);

/// What the accept loop hands a new connection.
pub(crate) struct Accepted<E> {
    pub id: ClientId,
    pub peer: SocketAddr,
    pub settings: Arc<ConnectionSettings>,
    pub inbox: Inbox<E>,
    pub admission: Admission,
    /// The history writer's committed sequence number, for the write gate.
    pub committed: watch::Receiver<u64>,
}

/// Runs a connection until it closes, from either side.
pub(crate) async fn run<S, E>(stream: S, accepted: Accepted<E>, secure: bool)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
    E: From<ConnectionEvent>,
{
    let Accepted {
        id,
        peer,
        settings,
        inbox,
        admission,
        committed,
    } = accepted;
    let (reader, writer) = tokio::io::split(stream);
    let outbox = Arc::new(Outbox::new(settings.sendq_bytes));
    let connected = ConnectionEvent::Connected {
        id,
        outbox: Arc::clone(&outbox),
        peer,
        secure,
    };
    if inbox.send(connected).await.is_err() {
        return;
    }
    let write_task = tokio::spawn(write_loop(writer, Arc::clone(&outbox), committed));
    if let Some(reason) = read_loop(reader, id, &outbox, &settings, &inbox).await {
        debug!(%reason, "connection closed by the client side");
        if inbox
            .send(ConnectionEvent::Closed { id, reason })
            .await
            .is_err()
        {
            outbox.stop_token().cancel();
        }
    }
    // The core closes the outbox in answer; give the writer time to flush.
    if timeout(FLUSH_GRACE, outbox.stop_token().cancelled())
        .await
        .is_err()
    {
        outbox.stop_token().cancel();
    }
    let _ = write_task.await;
    drop(admission);
}

/// Reads lines and hands them to the core. Returns why the connection ended
/// when the core does not know yet.
///
/// Lines are read as they arrive and charged to the flood bucket at once;
/// each waits in `pending` until its due time. Reading goes on meanwhile, so
/// a flooder's backlog is seen and bounded rather than left in the kernel.
async fn read_loop<R: AsyncRead + Unpin, E: From<ConnectionEvent>>(
    mut reader: R,
    id: ClientId,
    outbox: &Outbox,
    settings: &ConnectionSettings,
    inbox: &Inbox<E>,
) -> Option<String> {
    let stop = outbox.stop_token().clone();
    let mut buf = BytesMut::with_capacity(READ_MIN);
    // Grows while reads fill the buffer, shrinks while they do not.
    let mut read_size = READ_MIN;
    let mut framer = Framer::default();
    let connected_at = Instant::now();
    let mut bucket = settings
        .flood
        .map(|flood| TokenBucket::new(flood.lines_per_second, flood.burst, connected_at));
    let mut pending: VecDeque<(Instant, ConnectionEvent)> = VecDeque::new();
    let mut last_activity = connected_at;
    let mut ping_sent: Option<Instant> = None;
    loop {
        while let Some(frame) = framer.next_line(&mut buf) {
            let (event, cost) = match frame {
                Frame::TooLong => (ConnectionEvent::InputTooLong { id }, 1),
                Frame::Line(bytes) => match decode(&bytes) {
                    Some(message) => {
                        let cost = flood::cost(&message);
                        (ConnectionEvent::Message { id, message }, cost)
                    }
                    None => continue,
                },
            };
            let now = Instant::now();
            let mut due = now;
            if let (Some(bucket), Some(flood)) = (bucket.as_mut(), settings.flood) {
                if !outbox.is_flood_exempt() {
                    due += bucket.take(now, cost);
                    if bucket.backlog() > f64::from(flood.max_backlog) {
                        return Some("Excess Flood".to_owned());
                    }
                }
            }
            // Lines keep their order even when an exempt line follows lagged ones.
            let due = pending.back().map_or(due, |(last, _)| due.max(*last));
            pending.push_back((due, event));
        }
        while pending
            .front()
            .is_some_and(|(due, _)| *due <= Instant::now())
        {
            let Some((_, event)) = pending.pop_front() else {
                break;
            };
            tokio::select! {
                sent = inbox.send(event) => if sent.is_err() { return None },
                _ = stop.cancelled() => return None,
            }
        }
        let next_due = pending.front().map(|(due, _)| *due);
        let deadline = if !outbox.is_registered() {
            connected_at + settings.registration_timeout
        } else if let Some(sent) = ping_sent {
            sent + settings.ping_timeout
        } else {
            last_activity + settings.ping_interval
        };
        if buf.is_empty() && buf.capacity() > 4 * read_size {
            // Nothing pending: an idle client keeps a small buffer, not a burst's.
            buf = BytesMut::new();
        }
        buf.reserve(read_size);
        let spare = buf.capacity() - buf.len();
        tokio::select! {
            _ = stop.cancelled() => {
                return (!outbox.is_closing()).then(|| "Write error".to_owned());
            }
            read = reader.read_buf(&mut buf) => match read {
                Ok(0) => return Some("Connection closed".to_owned()),
                Ok(read) => {
                    if read == spare {
                        read_size = (read_size * 2).min(READ_MAX);
                    } else if read < read_size / 4 {
                        read_size = (read_size / 2).max(READ_MIN);
                    }
                    last_activity = Instant::now();
                    ping_sent = None;
                }
                Err(error) => return Some(format!("Read error: {error}")),
            },
            _ = sleep_until(next_due.unwrap_or(deadline)), if next_due.is_some() => {}
            _ = sleep_until(deadline) => {
                let now = Instant::now();
                if !outbox.is_registered() {
                    if now >= connected_at + settings.registration_timeout {
                        return Some("Registration timed out".to_owned());
                    }
                } else if ping_sent.is_some() {
                    let waited = settings.ping_interval + settings.ping_timeout;
                    return Some(format!("Ping timeout: {} seconds", waited.as_secs()));
                } else if now >= last_activity + settings.ping_interval {
                    let ping = Line::new(None, "PING").trailing(&settings.server_name).finish();
                    let _ = outbox.push(ping);
                    ping_sent = Some(now);
                }
            }
        }
    }
}

/// Turns a framed line into a message. Invalid UTF-8 is replaced with U+FFFD
/// and marked, so the core can refuse it under UTF8ONLY and otherwise a
/// stray byte never costs a user their line.
fn decode(bytes: &[u8]) -> Option<crate::proto::Message> {
    let text = String::from_utf8_lossy(bytes);
    let invalid_utf8 = matches!(text, std::borrow::Cow::Owned(_));
    match message::parse(&text) {
        Ok(parsed) => Some(crate::proto::Message {
            invalid_utf8,
            ..parsed.to_owned()
        }),
        Err(error) => {
            debug!(%error, "unparsable line dropped");
            None
        }
    }
}

/// Writes queued lines, many per system call. `committed` is the history
/// watermark: a line tagged with a higher sequence number, and every line
/// behind it, waits until the history writer has committed it.
async fn write_loop<W: AsyncWrite + Unpin>(
    mut writer: W,
    outbox: Arc<Outbox>,
    mut committed: watch::Receiver<u64>,
) {
    let stop = outbox.stop_token().clone();
    let mut lines: Vec<Bytes> = Vec::new();
    let mut watermark = *committed.borrow();
    loop {
        let drained = tokio::select! {
            drained = outbox.drain(&mut lines, watermark) => drained,
            _ = stop.cancelled() => break,
        };
        let (last, waiting) = match drained {
            Drained::Lines => (None, None),
            Drained::Waiting(seq) => (None, Some(seq)),
            Drained::Close(last) => (Some(last), None),
        };
        lines.extend(last.clone().flatten());
        if write_lines(&mut writer, &mut lines, &stop).await.is_err() {
            break;
        }
        if last.is_some() {
            let _ = timeout(FLUSH_GRACE, writer.shutdown()).await;
            break;
        }
        // A burst may have grown the list; an idle client should not keep it.
        if lines.capacity() > IDLE_LINES {
            lines = Vec::new();
        }
        if let Some(seq) = waiting {
            tokio::select! {
                reached = committed.wait_for(|&committed| committed >= seq) => {
                    watermark = match reached {
                        Ok(committed) => *committed,
                        // The history writer is gone and no commit will come.
                        Err(_) => u64::MAX,
                    };
                }
                _ = stop.cancelled() => break,
            }
        }
    }
    stop.cancel();
}

/// Writes every line with vectored writes straight from the shared buffers:
/// no copy into a per-connection buffer, which idle clients would keep.
async fn write_lines<W: AsyncWrite + Unpin>(
    writer: &mut W,
    lines: &mut Vec<Bytes>,
    stop: &tokio_util::sync::CancellationToken,
) -> Result<(), ()> {
    // The first unwritten line, and how much of it is already written.
    let (mut next, mut offset) = (0, 0);
    while next < lines.len() {
        let write = async {
            // One line, the common case in a fan-out: no slice array to fill.
            if lines.len() - next == 1 {
                return writer.write(&lines[next][offset..]).await;
            }
            let mut slices = [IoSlice::new(&[]); WRITE_SLICES];
            let mut count = 0;
            for (i, line) in lines[next..].iter().take(WRITE_SLICES).enumerate() {
                let skip = if i == 0 { offset } else { 0 };
                slices[i] = IoSlice::new(&line[skip..]);
                count += 1;
            }
            writer.write_vectored(&slices[..count]).await
        };
        let mut written = tokio::select! {
            written = write => written.map_err(|_| ())?,
            _ = stop.cancelled() => return Err(()),
        };
        if written == 0 {
            return Err(());
        }
        while written > 0 {
            let left = lines[next].len() - offset;
            if written >= left {
                written -= left;
                next += 1;
                offset = 0;
            } else {
                offset += written;
                written = 0;
            }
        }
    }
    lines.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_is_repaired_and_marked() {
        let message = decode(b"PRIVMSG #room :caf\xe9").expect("parses");
        assert!(message.invalid_utf8);
        assert_eq!(message.params[1], "caf\u{FFFD}");
        let message = decode("PRIVMSG #room :café".as_bytes()).expect("parses");
        assert!(!message.invalid_utf8);
    }

    /// Accepts at most `max` bytes per write, to force partial writes.
    struct Trickle {
        written: Vec<u8>,
        max: usize,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            let n = buf.len().min(self.max);
            self.written.extend_from_slice(&buf[..n]);
            std::task::Poll::Ready(Ok(n))
        }

        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn partial_writes_send_every_byte_in_order() {
        let mut lines: Vec<Bytes> = (0..700)
            .map(|i| Bytes::from(format!("line {i}\r\n")))
            .collect();
        let expected: Vec<u8> = lines.iter().flat_map(|l| l.to_vec()).collect();
        let mut writer = Trickle {
            written: Vec::new(),
            max: 7,
        };
        let stop = tokio_util::sync::CancellationToken::new();
        write_lines(&mut writer, &mut lines, &stop).await.unwrap();
        assert_eq!(writer.written, expected);
        assert!(lines.is_empty());
    }
}
