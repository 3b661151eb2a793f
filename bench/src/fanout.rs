//! Rooms of members where some members speak: the `fanout` scenario, and
//! with churners joining, parting, renaming and reconnecting, `churn`.
//!
//! Each message carries `rb <sender> <seq> <sent-at>` in its text, the time
//! in nanoseconds since the run began. Receivers count each (sender, seq) and
//! record its latency; a sender keeps at most `window` messages not yet
//! delivered to every member in flight, so the server is driven as fast as it
//! delivers without its queues growing until it drops clients.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::{Duration, Instant, sleep, sleep_until, timeout};
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;

use crate::client::{self, LineReader, Registered, Writer};
use crate::connect::{self, Connected, Pacing};
use crate::histogram::Histogram;
use crate::procfs;
use crate::report::Report;

/// The shape and pace of one run.
#[derive(Clone, Debug)]
pub struct Plan {
    pub rooms: usize,
    pub members: usize,
    pub senders: usize,
    /// Messages each sender sends.
    pub messages: usize,
    /// Bytes of text in each message.
    pub size: usize,
    /// Messages per second per sender; `None` for as fast as the window allows.
    pub rate: Option<f64>,
    pub window: usize,
    /// How long to wait for stragglers after the last send.
    pub drain: Duration,
    /// How long a sender waits on a full window before counting it lost.
    pub stall: Duration,
    pub churn: Option<Churn>,
}

/// Extra clients that come and go while the rooms chat.
#[derive(Clone, Copy, Debug)]
pub struct Churn {
    pub churners: usize,
    /// Operations per second across all churners.
    pub rate: f64,
}

/// What receivers have seen, shared by every task of a run.
struct Tally {
    start: Instant,
    latency: Histogram,
    /// Deliveries of each message, indexed by sender × messages + seq.
    counts: Box<[AtomicU32]>,
    messages: usize,
    /// Deliveries each message should get: its room's other members.
    expected: u32,
    /// Messages of each sender delivered to every member.
    done: Box<[AtomicU64]>,
    wake: Box<[Notify]>,
    delivered: AtomicU64,
    duplicates: AtomicU64,
    last_delivery: AtomicU64,
    joined: AtomicUsize,
    closed: AtomicUsize,
}

impl Tally {
    fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn deliver(&self, text: &[u8]) {
        let now = self.now();
        let Some((sender, seq, sent)) = parse_payload(text) else {
            return;
        };
        if sender >= self.done.len() || seq >= self.messages {
            return;
        }
        self.latency.record(now.saturating_sub(sent));
        self.last_delivery.fetch_max(now, Relaxed);
        let seen = self.counts[sender * self.messages + seq].fetch_add(1, Relaxed) + 1;
        if seen > self.expected {
            self.duplicates.fetch_add(1, Relaxed);
            return;
        }
        self.delivered.fetch_add(1, Relaxed);
        if seen == self.expected {
            self.done[sender].fetch_add(1, Relaxed);
            self.wake[sender].notify_one();
        }
    }
}

/// `rb <sender> <seq> <nanos> …` → the three numbers.
fn parse_payload(text: &[u8]) -> Option<(usize, usize, u64)> {
    let mut words = text.strip_prefix(b"rb ")?.split(|&b| b == b' ');
    let mut number = || -> Option<u64> {
        let word = words.next()?;
        let mut value: u64 = 0;
        for &digit in word {
            if !digit.is_ascii_digit() {
                return None;
            }
            value = value
                .checked_mul(10)?
                .checked_add(u64::from(digit - b'0'))?;
        }
        Some(value)
    };
    Some((number()? as usize, number()? as usize, number()?))
}

/// Reads one client's lines until the socket closes.
async fn read_loop(mut reader: LineReader, writer: Writer, tally: Arc<Tally>, record: bool) {
    loop {
        let Ok(Some(line)) = reader.next_line().await else {
            break;
        };
        let (command, params) = client::command(&line);
        match command {
            b"PRIVMSG" if record => tally.deliver(client::trailing(params)),
            b"PING" => {
                let _ = client::send(&writer, &client::pong(params)).await;
            }
            b"366" => {
                tally.joined.fetch_add(1, Relaxed);
            }
            b"ERROR" => break,
            _ => {}
        }
    }
    // Churners close on purpose; only measured members count as lost.
    if record {
        tally.closed.fetch_add(1, Relaxed);
    }
}

fn room_name(room: usize) -> String {
    format!("#bench{room}")
}

/// Sends one sender's messages, paced by its window and rate. Returns how
/// often the window stalled (deliveries missing for `stall`).
async fn send_loop(
    sender: usize,
    room: String,
    writer: Writer,
    tally: Arc<Tally>,
    plan: Plan,
) -> u64 {
    let head = format!("PRIVMSG {room} :rb {sender} ");
    let text_starts = "PRIVMSG  :".len() + room.len();
    let mut batch = Vec::with_capacity(64 * 1024);
    let mut stalls = 0;
    let mut forgiven = 0u64;
    let begin = Instant::now();
    let mut seq = 0;
    while seq < plan.messages {
        // Saturating: deliveries written off as lost may still turn up.
        let in_flight = |forgiven: u64| {
            (seq as u64).saturating_sub(tally.done[sender].load(Relaxed) + forgiven)
        };
        while in_flight(forgiven) >= plan.window as u64 {
            if timeout(plan.stall, tally.wake[sender].notified())
                .await
                .is_err()
            {
                // Still missing deliveries: count them lost and go on.
                stalls += 1;
                forgiven = (seq as u64).saturating_sub(tally.done[sender].load(Relaxed));
            }
        }
        let mut allowed = (plan.window as u64 - in_flight(forgiven)) as usize;
        allowed = allowed.min(plan.messages - seq);
        if let Some(rate) = plan.rate {
            let due = begin + Duration::from_secs_f64(seq as f64 / rate);
            sleep_until(due).await;
            let elapsed = begin.elapsed().as_secs_f64();
            let caught_up = (elapsed * rate).floor() as usize + 1;
            allowed = allowed.min(caught_up.saturating_sub(seq).max(1));
        }
        batch.clear();
        let sent_at = tally.now();
        for _ in 0..allowed {
            let start = batch.len();
            batch.extend_from_slice(head.as_bytes());
            batch.extend_from_slice(format!("{seq} {sent_at} ").as_bytes());
            let text_len = batch.len() - start - text_starts;
            let pad = plan.size.saturating_sub(text_len);
            batch.resize(batch.len() + pad, b'x');
            batch.extend_from_slice(b"\r\n");
            seq += 1;
        }
        if client::send(&writer, &batch).await.is_err() {
            break;
        }
    }
    stalls
}

/// Registers `total` members, member `i` on node `i % nodes.len()`, so
/// every room has members on every node.
async fn connect_spread(nodes: &[SocketAddr], total: usize, pacing: &Pacing) -> Connected {
    let count = nodes.len();
    let mut per_node = Vec::with_capacity(count);
    for (k, &node) in nodes.iter().enumerate() {
        let members = (total + count - 1 - k) / count;
        // Distinct nicks across nodes: node k's j-th member is member j*count+k.
        per_node.push(connect::connect_all(node, 'm', k * total, members, pacing).await);
    }
    let mut clients = Vec::with_capacity(total);
    let mut failures = Vec::new();
    let mut elapsed = Duration::ZERO;
    let mut drained: Vec<_> = per_node
        .into_iter()
        .map(|connected| {
            failures.extend(connected.failures);
            elapsed += connected.elapsed;
            connected.clients.into_iter()
        })
        .collect();
    for i in 0..total {
        clients.push(drained[i % count].next().flatten());
    }
    Connected {
        clients,
        failures,
        elapsed,
    }
}

/// Runs the plan and reports deliveries per second, latency and loss.
pub async fn run(
    nodes: &[SocketAddr],
    pids: &[u32],
    pacing: &Pacing,
    plan: Plan,
    report: &mut Report,
) {
    let server = nodes[0];
    let total = plan.rooms * plan.members;
    let senders = plan.rooms * plan.senders;
    let setup = Instant::now();
    let connected = connect_spread(nodes, total, pacing).await;
    for failure in &connected.failures {
        report.fail(failure.clone());
    }
    report.add("connect_failures", connected.failed() as f64, "clients");
    if connected.failed() > 0 {
        return;
    }
    let tally = Arc::new(Tally {
        start: Instant::now(),
        latency: Histogram::new(),
        counts: (0..senders * plan.messages)
            .map(|_| AtomicU32::new(0))
            .collect(),
        messages: plan.messages,
        expected: (plan.members - 1) as u32,
        done: (0..senders).map(|_| AtomicU64::new(0)).collect(),
        wake: (0..senders).map(|_| Notify::new()).collect(),
        delivered: AtomicU64::new(0),
        duplicates: AtomicU64::new(0),
        last_delivery: AtomicU64::new(0),
        joined: AtomicUsize::new(0),
        closed: AtomicUsize::new(0),
    });
    // Member i is in room i % rooms; the first `senders` of each room speak.
    let mut readers = JoinSet::new();
    let mut speakers = Vec::new();
    for (i, registered) in connected.clients.into_iter().enumerate() {
        let Registered { reader, writer, .. } = registered.expect("every client registered");
        let (room, rank) = (i % plan.rooms, i / plan.rooms);
        readers.spawn(read_loop(
            reader,
            Arc::clone(&writer),
            Arc::clone(&tally),
            true,
        ));
        let join = format!("JOIN {}\r\n", room_name(room));
        let _ = client::send(&writer, join.as_bytes()).await;
        if rank < plan.senders {
            speakers.push((room * plan.senders + rank, room_name(room), writer));
        }
    }
    if !wait_for(|| tally.joined.load(Relaxed) >= total, pacing.limit).await {
        report.fail(format!(
            "only {} of {total} joins confirmed",
            tally.joined.load(Relaxed)
        ));
        return;
    }
    // Let the last JOIN lines reach every member before measuring.
    sleep(Duration::from_millis(300)).await;
    let churn_stop = CancellationToken::new();
    let churn_ops = Arc::new(AtomicU64::new(0));
    let churn_failures = Arc::new(AtomicU64::new(0));
    let mut churners = JoinSet::new();
    if let Some(churn) = plan.churn {
        let extra = connect::connect_all(server, 'c', 0, churn.churners, pacing).await;
        for failure in &extra.failures {
            report.fail(failure.clone());
        }
        churn_failures.fetch_add(extra.failed() as u64, Relaxed);
        let interval = Duration::from_secs_f64(churn.churners as f64 / churn.rate);
        for (i, registered) in extra.clients.into_iter().enumerate() {
            let Some(registered) = registered else {
                continue;
            };
            let churner = Churner {
                index: i,
                server,
                rooms: plan.rooms,
                interval,
                phase: interval.mul_f64(i as f64 / churn.churners as f64),
                limit: pacing.limit,
                tls: pacing.tls.clone(),
                tally: Arc::clone(&tally),
                ops: Arc::clone(&churn_ops),
                failures: Arc::clone(&churn_failures),
                stop: churn_stop.clone(),
            };
            churners.spawn(churner.run(registered));
        }
    }
    report.add("setup_seconds", setup.elapsed().as_secs_f64(), "s");
    let server_before = procfs::sample_all(pids);
    let self_before = procfs::sample(None);
    let measure_start = tally.now();
    let wall = Instant::now();
    let mut sending = JoinSet::new();
    for (sender, room, writer) in speakers {
        sending.spawn(send_loop(
            sender,
            room,
            writer,
            Arc::clone(&tally),
            plan.clone(),
        ));
    }
    let mut stalls = 0;
    while let Some(outcome) = sending.join_next().await {
        stalls += outcome.unwrap_or(0);
    }
    churn_stop.cancel();
    let expected = (senders * plan.messages) as u64 * u64::from(tally.expected);
    // Drain: wait while deliveries still arrive, up to `drain` without progress.
    let mut last = tally.delivered.load(Relaxed);
    let mut quiet_since = Instant::now();
    while last < expected && quiet_since.elapsed() < plan.drain {
        sleep(Duration::from_millis(20)).await;
        let now = tally.delivered.load(Relaxed);
        if now != last {
            last = now;
            quiet_since = Instant::now();
        }
    }
    let wall = wall.elapsed().as_secs_f64();
    let server_after = procfs::sample_all(pids);
    let self_after = procfs::sample(None);
    let ops = churn_ops.load(Relaxed);
    while churners.join_next().await.is_some() {}

    let delivered = tally.delivered.load(Relaxed);
    let elapsed = (tally
        .last_delivery
        .load(Relaxed)
        .saturating_sub(measure_start) as f64
        / 1e9)
        .max(1e-9);
    report.add("deliveries_per_second", delivered as f64 / elapsed, "/s");
    report.add(
        "messages_per_second",
        (senders * plan.messages) as f64 / elapsed,
        "/s",
    );
    let ms = |nanos: u64| nanos as f64 / 1e6;
    report.add("latency_p50_ms", ms(tally.latency.quantile(0.50)), "ms");
    report.add("latency_p99_ms", ms(tally.latency.quantile(0.99)), "ms");
    report.add("latency_max_ms", ms(tally.latency.max()), "ms");
    report.add("expected_deliveries", expected as f64, "");
    report.add(
        "lost_deliveries",
        expected.saturating_sub(delivered) as f64,
        "",
    );
    report.add(
        "duplicate_deliveries",
        tally.duplicates.load(Relaxed) as f64,
        "",
    );
    report.add("window_stalls", stalls as f64, "");
    report.add(
        "disconnected_clients",
        tally.closed.load(Relaxed) as f64,
        "clients",
    );
    report.add("elapsed_seconds", elapsed, "s");
    if plan.churn.is_some() {
        report.add("churn_ops_per_second", ops as f64 / wall, "/s");
        report.add("churn_failures", churn_failures.load(Relaxed) as f64, "");
    }
    add_cpu(
        report,
        server_before,
        server_after,
        self_before,
        self_after,
        wall,
    );
    // Lines per system call is what a server's batching buys on the way out.
    let writes = server_before
        .zip(server_after)
        .and_then(|(before, after)| Some(after.write_calls? - before.write_calls?));
    if let (Some(writes), true) = (writes, delivered > 0) {
        report.add(
            "server_writes_per_delivery",
            writes as f64 / delivered as f64,
            "",
        );
    }
    readers.abort_all();
}

/// Server and generator CPU over the measured span, in percent of one core.
pub fn add_cpu(
    report: &mut Report,
    server_before: Option<procfs::Sample>,
    server_after: Option<procfs::Sample>,
    self_before: Option<procfs::Sample>,
    self_after: Option<procfs::Sample>,
    wall: f64,
) {
    if let (Some(before), Some(after)) = (server_before, server_after) {
        let used = after.cpu_seconds - before.cpu_seconds;
        report.add("server_cpu_percent", 100.0 * used / wall, "% core");
        report.add("server_rss_mib", after.rss_bytes as f64 / 1048576.0, "MiB");
    }
    if let (Some(before), Some(after)) = (self_before, self_after) {
        let used = after.cpu_seconds - before.cpu_seconds;
        report.add("bench_cpu_percent", 100.0 * used / wall, "% core");
    }
}

/// Polls `done` every 10 ms until it holds or `limit` passes.
async fn wait_for(done: impl Fn() -> bool, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        sleep(Duration::from_millis(10)).await;
    }
    true
}

/// One client that cycles through JOIN, NICK, PART and QUIT-then-reconnect.
struct Churner {
    index: usize,
    server: SocketAddr,
    rooms: usize,
    interval: Duration,
    phase: Duration,
    limit: Duration,
    tls: Option<TlsConnector>,
    tally: Arc<Tally>,
    ops: Arc<AtomicU64>,
    failures: Arc<AtomicU64>,
    stop: CancellationToken,
}

impl Churner {
    async fn run(self, registered: Registered) {
        let mut generation = 0usize;
        let mut current = Some(self.attach(registered));
        let mut next = Instant::now() + self.phase;
        for step in 0usize.. {
            tokio::select! {
                _ = sleep_until(next) => {}
                _ = self.stop.cancelled() => break,
            }
            next += self.interval;
            let Some((writer, reader)) = current.take() else {
                break;
            };
            let room = room_name((self.index + step / 4) % self.rooms);
            let line = match step % 4 {
                0 => format!("JOIN {room}\r\n"),
                1 => {
                    generation += 1;
                    format!("NICK c{:x}g{generation}\r\n", self.index)
                }
                2 => format!("PART {room} :churn\r\n"),
                _ => "QUIT :churn\r\n".to_owned(),
            };
            let written = client::send(&writer, line.as_bytes()).await;
            if written.is_err() {
                self.failures.fetch_add(1, Relaxed);
            }
            self.ops.fetch_add(1, Relaxed);
            if step % 4 != 3 {
                current = Some((writer, reader));
                continue;
            }
            reader.abort();
            generation += 1;
            let nick = format!("c{:x}r{generation}", self.index);
            match client::register(self.server, self.tls.as_ref(), &nick, self.limit).await {
                Ok(registered) => current = Some(self.attach(registered)),
                Err(_) => {
                    self.failures.fetch_add(1, Relaxed);
                    break;
                }
            }
        }
    }

    fn attach(&self, registered: Registered) -> (Writer, tokio::task::JoinHandle<()>) {
        let Registered { reader, writer, .. } = registered;
        let task = tokio::spawn(read_loop(
            reader,
            Arc::clone(&writer),
            Arc::clone(&self.tally),
            false,
        ));
        (writer, task)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_payload;

    #[test]
    fn payload_numbers_are_read_back() {
        assert_eq!(parse_payload(b"rb 3 17 123456 xxxx"), Some((3, 17, 123456)));
        assert_eq!(parse_payload(b"hello"), None);
        assert_eq!(parse_payload(b"rb 3 x 1"), None);
    }
}
