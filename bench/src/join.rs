//! Registered clients joining rooms, timed: the `join` scenario (every
//! client into one big room, optionally after its first member set a mode
//! such as `+u`), and the rooms of `idle --rooms`.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::{Duration, Instant, timeout, timeout_at};

use crate::client::{self, LineReader, Registered, Writer};
use crate::connect::{self, Pacing};
use crate::fanout;
use crate::procfs;
use crate::report::Report;

/// The big room of the `join` scenario.
const ROOM: &str = "#bigroom";

/// Numerics that refuse a JOIN: full, invite only, banned, keyed, too many
/// channels, no such channel.
const JOIN_REFUSALS: [&[u8]; 6] = [b"471", b"473", b"474", b"475", b"405", b"403"];

/// Numerics that refuse a MODE: unknown mode (472), unknown flag (501), not
/// an operator (482), no such channel (403).
const MODE_REFUSALS: [&[u8]; 4] = [b"472", b"501", b"482", b"403"];

/// Clients in their rooms, still read so the server never blocks on them.
pub struct Joined {
    /// Reads (and answers PING) for every client until aborted.
    pub readers: JoinSet<()>,
    /// Clients that saw their own JOIN and the end of NAMES.
    pub joined: usize,
    /// When the last of those saw its end of NAMES.
    pub last: Option<Instant>,
    pub failures: Vec<String>,
}

/// Sends `JOIN room` and reads until the server echoes it and ends NAMES
/// (366). Before the JOIN the client is in no room, so the first JOIN it
/// sees there is its own.
pub async fn join_one(reader: &mut LineReader, writer: &Writer, room: &str) -> Result<(), String> {
    client::send(writer, format!("JOIN {room}\r\n").as_bytes())
        .await
        .map_err(|error| format!("JOIN: {error}"))?;
    let mut echoed = false;
    loop {
        let line = match reader.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) => return Err("closed while joining".to_owned()),
            Err(error) => return Err(format!("read while joining: {error}")),
        };
        let (command, params) = client::command(&line);
        match command {
            b"PING" => {
                let _ = client::send(writer, &client::pong(params)).await;
            }
            b"JOIN" => echoed = true,
            b"366" if echoed => return Ok(()),
            b"ERROR" => return Err(String::from_utf8_lossy(&line).into_owned()),
            refused if JOIN_REFUSALS.contains(&refused) => {
                return Err(format!("JOIN refused: {}", String::from_utf8_lossy(&line)));
            }
            _ => {}
        }
    }
}

/// Every client joins `room_of(its index)`, at most `pacing.concurrency`
/// joins in flight, each waiting up to `pacing.limit`; then keeps reading.
pub async fn join_all(
    clients: Vec<Registered>,
    room_of: impl Fn(usize) -> String,
    pacing: &Pacing,
) -> Joined {
    let count = clients.len();
    let permits = Arc::new(Semaphore::new(pacing.concurrency.max(1)));
    // One message per client: the channel never holds more than `count`.
    let (done, mut finished) = mpsc::channel(count.max(1));
    let mut readers = JoinSet::new();
    for (i, registered) in clients.into_iter().enumerate() {
        let permit = Arc::clone(&permits)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let (room, done, limit) = (room_of(i), done.clone(), pacing.limit);
        readers.spawn(async move {
            let Registered {
                mut reader, writer, ..
            } = registered;
            let outcome = match timeout(limit, join_one(&mut reader, &writer, &room)).await {
                Ok(outcome) => outcome,
                Err(_) => Err(format!("no end of NAMES for {room} within {limit:?}")),
            };
            drop(permit);
            let _ = done.send((outcome, Instant::now())).await;
            connect::idle_loop(Registered { reader, writer }).await;
        });
    }
    drop(done);
    let mut joined = Joined {
        readers,
        joined: 0,
        last: None,
        failures: Vec::new(),
    };
    for _ in 0..count {
        let Some((outcome, at)) = finished.recv().await else {
            break;
        };
        match outcome {
            Ok(()) => {
                joined.joined += 1;
                joined.last = Some(joined.last.map_or(at, |last| last.max(at)));
            }
            Err(failure) => joined.failures.push(failure),
        }
    }
    joined
}

/// What the first member's MODE came to.
enum ModeOutcome {
    Set,
    Refused(String),
}

/// Sends `MODE room mode` and waits for the echo or a refusal.
async fn set_mode(
    reader: &mut LineReader,
    writer: &Writer,
    room: &str,
    mode: &str,
    limit: Duration,
) -> ModeOutcome {
    let line = format!("MODE {room} {mode}\r\n");
    if let Err(error) = client::send(writer, line.as_bytes()).await {
        return ModeOutcome::Refused(format!("MODE: {error}"));
    }
    let deadline = Instant::now() + limit;
    loop {
        let line = match timeout_at(deadline, reader.next_line()).await {
            Err(_) => return ModeOutcome::Refused(format!("no MODE echo within {limit:?}")),
            Ok(Ok(Some(line))) => line,
            Ok(_) => return ModeOutcome::Refused("closed after MODE".to_owned()),
        };
        let (command, params) = client::command(&line);
        match command {
            b"PING" => {
                let _ = client::send(writer, &client::pong(params)).await;
            }
            b"MODE" if params.starts_with(room.as_bytes()) => return ModeOutcome::Set,
            refused if MODE_REFUSALS.contains(&refused) => {
                return ModeOutcome::Refused(String::from_utf8_lossy(&line).into_owned());
            }
            _ => {}
        }
    }
}

/// The `join` scenario: `clients` register (not timed); with `mode`, the
/// first joins, sets it and stays; then every other client sends JOIN at
/// once (paced by `--concurrency`), and the time from the first JOIN sent
/// to the last end of NAMES seen is the figure.
pub async fn run(
    server: SocketAddr,
    pid: Option<u32>,
    pacing: &Pacing,
    clients: usize,
    mode: Option<&str>,
    report: &mut Report,
) {
    let connected = connect::connect_all(server, 'j', 0, clients, pacing).await;
    for failure in &connected.failures {
        report.fail(failure.clone());
    }
    report.add("connect_failures", connected.failed() as f64, "clients");
    if connected.failed() > 0 {
        return;
    }
    let mut members: Vec<Registered> = connected.clients.into_iter().flatten().collect();
    let mut first = None;
    if let Some(mode) = mode {
        let Registered { mut reader, writer } = members.remove(0);
        if let Err(failure) = join_one(&mut reader, &writer, ROOM).await {
            report.fail(format!("the first member: {failure}"));
            return;
        }
        match set_mode(&mut reader, &writer, ROOM, mode, pacing.limit).await {
            ModeOutcome::Set => report.add("mode_refused", 0.0, ""),
            ModeOutcome::Refused(why) => {
                report.add("mode_refused", 1.0, "");
                report.fail(format!("MODE {ROOM} {mode} refused: {why}"));
                return;
            }
        }
        first = Some(tokio::spawn(connect::idle_loop(Registered {
            reader,
            writer,
        })));
    }
    let joining = members.len();
    let server_before = pid.and_then(|pid| procfs::sample(Some(pid)));
    let self_before = procfs::sample(None);
    let started = Instant::now();
    let mut joined = join_all(members, |_| ROOM.to_owned(), pacing).await;
    let wall = started.elapsed().as_secs_f64();
    let server_after = pid.and_then(|pid| procfs::sample(Some(pid)));
    let self_after = procfs::sample(None);
    for failure in joined.failures.drain(..) {
        report.fail(failure);
    }
    if joined.joined == joining {
        let last = joined.last.unwrap_or(started);
        report.add(
            "join_seconds",
            last.duration_since(started).as_secs_f64(),
            "s",
        );
    }
    report.add("joined", joined.joined as f64, "clients");
    report.add("join_failures", (joining - joined.joined) as f64, "clients");
    fanout::add_cpu(
        report,
        server_before,
        server_after,
        self_before,
        self_after,
        wall,
    );
    joined.readers.abort_all();
    if let Some(first) = first {
        first.abort();
    }
}
