//! One client connection: a read task (`reader.rs`) that frames, parses and
//! times out, and a write task that drains the [`Outbox`] into the socket.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Duration, timeout};
use tracing::debug;

use super::event::{ClientId, ConnectionEvent, Inbox};
use super::limits::Admission;
use super::outbox::{Drained, Outbox, Watermarks};
use super::reader::{End, Reader};
use super::stream::{StreamSink, StreamSource};
use super::transport::{LineSink, LineSource};
use crate::config::Config;

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

/// `[flood]` as the read task applies it.
#[derive(Clone, Copy, Debug)]
pub struct FloodLimits {
    pub lines_per_second: f64,
    pub burst: u32,
    /// Lines that may wait behind the rate before "Excess Flood".
    pub max_backlog: u32,
}

/// How long a closing connection may take to flush its last lines.
const FLUSH_GRACE: Duration = Duration::from_secs(10);

/// What the accept loop hands a new connection.
pub(crate) struct Accepted<E> {
    pub id: ClientId,
    pub peer: SocketAddr,
    pub settings: Arc<ConnectionSettings>,
    pub inbox: Inbox<E>,
    pub admission: Admission,
    /// How far history has come, for the write gate.
    pub watermarks: Watermarks,
}

/// How a connection is carried: over TLS or not, the client's
/// certificate fingerprint when it gave one, and whether over a WebSocket.
#[derive(Debug, Default)]
pub(crate) struct Transport {
    pub secure: bool,
    pub certificate: Option<String>,
    pub websocket: bool,
}

/// Runs a connection over a byte stream (TCP, TLS) until it closes.
pub(crate) async fn run_stream<S, E>(stream: S, accepted: Accepted<E>, transport: Transport)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
    E: From<ConnectionEvent>,
{
    let (read_half, write_half) = tokio::io::split(stream);
    let source = StreamSource::new(read_half);
    run(source, StreamSink(write_half), accepted, transport).await;
}

/// Runs a connection until it closes, from either side: the read task here,
/// the write task spawned.
pub(crate) async fn run<R, W, E>(source: R, sink: W, accepted: Accepted<E>, transport: Transport)
where
    R: LineSource,
    W: LineSink + 'static,
    E: From<ConnectionEvent>,
{
    let Accepted {
        id,
        peer,
        settings,
        inbox,
        admission,
        watermarks,
    } = accepted;
    let outbox = Arc::new(Outbox::new(settings.sendq_bytes));
    let connected = ConnectionEvent::Connected {
        id,
        outbox: Arc::clone(&outbox),
        peer,
        secure: transport.secure,
        certificate: transport.certificate,
        websocket: transport.websocket,
    };
    if inbox.send(connected).await.is_err() {
        return;
    }
    let write_task = tokio::spawn(write_loop(sink, Arc::clone(&outbox), watermarks));
    let end = Reader::new(id, &outbox, &settings, &inbox)
        .run(source)
        .await;
    if let End::Closed(reason) = end {
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

/// Writes queued lines, many per system call. A line waiting for history,
/// and every line behind it, waits for its gate: for the journal (the core
/// releases the outbox once it has the record) or for the database (the
/// writer's watch says when).
async fn write_loop<W: LineSink>(mut writer: W, outbox: Arc<Outbox>, watermarks: Watermarks) {
    let Watermarks {
        journaled,
        stored: mut committed,
    } = watermarks;
    let stop = outbox.stop_token().clone();
    let mut lines: Vec<Bytes> = Vec::new();
    let mut watermark = *committed.borrow();
    loop {
        let drained = tokio::select! {
            drained = outbox.drain(&mut lines, &journaled, watermark) => drained,
            _ = stop.cancelled() => break,
        };
        let (last, waiting) = match drained {
            Drained::Lines => (None, None),
            Drained::Waiting(seq) => (None, Some(seq)),
            Drained::Close(last) => (Some(last), None),
        };
        lines.extend(last.clone().flatten());
        if writer.send(&mut lines, &stop).await.is_err() {
            break;
        }
        if last.is_some() {
            let _ = timeout(FLUSH_GRACE, writer.close()).await;
            break;
        }
        // An idle client keeps no room for lines between bursts.
        lines = Vec::new();
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
