//! What operators scrape: counters and gauges of the whole server, shared
//! by the tasks that count them, rendered in Prometheus' text exposition
//! format for `/metrics`.
//!
//! Counting is a relaxed atomic add, so the core, the connection tasks and
//! the history writer count without waiting on each other; a scrape reads
//! each figure on its own, which may be a moment apart from the others.
//! Nothing here uses another module of the crate: every layer may count.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The upper bounds, in seconds, of the history commit histogram's
/// buckets: from a fast disk's half millisecond to a stalled one's second.
const COMMIT_BUCKETS: [f64; 11] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// The most label sets `rookery_clients` keeps: one per listener, and the
/// listeners are a handful from the configuration.
const MAX_LISTENERS: usize = 64;

/// The server's counters and gauges. One per server, shared by reference.
#[derive(Debug)]
pub struct Metrics {
    /// When the server started, for `rookery_start_time_seconds`.
    started: SystemTime,
    /// Open connections, one gauge per listener and transport.
    listeners: Mutex<Vec<ListenerGauge>>,
    registered_clients: AtomicI64,
    rooms: AtomicU64,
    messages_received: AtomicU64,
    lines_received: AtomicU64,
    deliveries: AtomicU64,
    sendq_exceeded: AtomicU64,
    flood_disconnects: AtomicU64,
    /// Signed: the writer may take a record off before the core has added
    /// it here; a scrape shows a negative moment as 0.
    history_queue_depth: AtomicI64,
    history_commits: Histogram,
    history_write_failures: AtomicU64,
    sasl_failures: AtomicU64,
    oper_failures: AtomicU64,
    connections: AtomicU64,
    /// One counter per [`RefusedBecause`], in its order.
    refused: [AtomicU64; RefusedBecause::ALL.len()],
    http_refused: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            started: SystemTime::now(),
            listeners: Mutex::new(Vec::new()),
            registered_clients: AtomicI64::new(0),
            rooms: AtomicU64::new(0),
            messages_received: AtomicU64::new(0),
            lines_received: AtomicU64::new(0),
            deliveries: AtomicU64::new(0),
            sendq_exceeded: AtomicU64::new(0),
            flood_disconnects: AtomicU64::new(0),
            history_queue_depth: AtomicI64::new(0),
            history_commits: Histogram::default(),
            history_write_failures: AtomicU64::new(0),
            sasl_failures: AtomicU64::new(0),
            oper_failures: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            refused: Default::default(),
            http_refused: AtomicU64::new(0),
        }
    }
}

/// Why a connection was turned away, the `reason` label of
/// `rookery_connections_refused_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusedBecause {
    /// `[limits] max_clients` reached.
    ServerFull,
    /// `[limits] max_clients_per_ip` reached for the address.
    TooManyFromAddress,
    /// The address connected too often within the throttle window.
    ConnectingTooFast,
    /// A D-line matches the address.
    Dline,
}

impl RefusedBecause {
    /// Every reason, in the order of the counters and of the output.
    const ALL: [RefusedBecause; 4] = [
        RefusedBecause::ServerFull,
        RefusedBecause::TooManyFromAddress,
        RefusedBecause::ConnectingTooFast,
        RefusedBecause::Dline,
    ];

    /// The label value operators query by.
    fn label(self) -> &'static str {
        match self {
            RefusedBecause::ServerFull => "max_clients",
            RefusedBecause::TooManyFromAddress => "per_ip_limit",
            RefusedBecause::ConnectingTooFast => "connect_throttle",
            RefusedBecause::Dline => "dline",
        }
    }
}

/// One listener's count of open connections, with its labels. Cheap to
/// clone: an accept loop keeps one and calls [`ListenerGauge::connect`]
/// per connection, an atomic add without a lock.
#[derive(Clone, Debug)]
pub struct ListenerGauge {
    /// The `listener`, `tls` and `websocket` labels, escaped.
    labels: Arc<str>,
    open: Arc<AtomicI64>,
}

impl ListenerGauge {
    /// Counts one connection open until the returned guard is dropped.
    pub fn connect(&self) -> ConnectionGauge {
        self.open.fetch_add(1, Relaxed);
        ConnectionGauge {
            open: Arc::clone(&self.open),
        }
    }
}

/// One open connection in `rookery_clients`: it counts from its creation
/// until it is dropped, so the task that owns it, however it ends, takes
/// it out of the figure.
#[derive(Debug)]
#[must_use = "the connection counts only while this guard lives"]
pub struct ConnectionGauge {
    open: Arc<AtomicI64>,
}

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Relaxed);
    }
}

/// Durations in fixed buckets. Each observation adds to one bucket; the
/// cumulative counts Prometheus expects are summed at render time.
#[derive(Debug, Default)]
struct Histogram {
    /// Observations per bucket of [`COMMIT_BUCKETS`], the last for those
    /// above every bound (`+Inf`).
    buckets: [AtomicU64; COMMIT_BUCKETS.len() + 1],
    /// The sum of every observation, in nanoseconds: an integer adds
    /// atomically, a float does not.
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = COMMIT_BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(COMMIT_BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    /// The `_bucket`, `_sum` and `_count` samples of `name`.
    fn render(&self, out: &mut String, name: &str) {
        let mut cumulative = 0;
        let bounds = COMMIT_BUCKETS.iter().map(|bound| bound.to_string());
        for (bucket, bound) in self.buckets.iter().zip(bounds.chain(["+Inf".to_owned()])) {
            cumulative += bucket.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let sum = Duration::from_nanos(self.sum_nanos.load(Relaxed)).as_secs_f64();
        let _ = writeln!(out, "{name}_sum {sum}");
        // The count is the +Inf bucket: read apart from the buckets, it
        // could disagree with them during an observation.
        let _ = writeln!(out, "{name}_count {cumulative}");
    }
}

impl Metrics {
    /// A fresh set, every figure zero.
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    /// The gauge of open connections on `listener` (its address as
    /// configured or bound), over TLS or not, over WebSocket or not. The
    /// same labels give the same gauge, so a listener restarted by REHASH
    /// goes on counting where it was.
    pub fn listener(&self, listener: &str, tls: bool, websocket: bool) -> ListenerGauge {
        let labels: Arc<str> = format!(
            "listener=\"{}\",tls=\"{tls}\",websocket=\"{websocket}\"",
            escape_label(listener)
        )
        .into();
        let mut listeners = self.lock_listeners();
        if let Some(known) = listeners.iter().find(|known| known.labels == labels) {
            return known.clone();
        }
        let gauge = ListenerGauge {
            labels,
            open: Arc::new(AtomicI64::new(0)),
        };
        // Past the bound a gauge still counts, but is not shown.
        if listeners.len() < MAX_LISTENERS {
            listeners.push(gauge.clone());
        }
        gauge
    }

    /// Counts one connection on `listener` until the guard is dropped; for
    /// a task that accepts rarely. An accept loop keeps a
    /// [`Metrics::listener`] instead, which takes no lock per connection.
    pub fn connection(&self, listener: &str, tls: bool, websocket: bool) -> ConnectionGauge {
        self.listener(listener, tls, websocket).connect()
    }

    /// A connection was admitted by the per-address limits.
    pub fn connection_accepted(&self) {
        self.connections.fetch_add(1, Relaxed);
    }

    /// A connection was turned away, for `reason`.
    pub fn connection_refused(&self, reason: RefusedBecause) {
        let index = RefusedBecause::ALL
            .iter()
            .position(|&known| known == reason)
            .unwrap_or(0);
        self.refused[index].fetch_add(1, Relaxed);
    }

    /// A client completed registration.
    pub fn client_registered(&self) {
        self.registered_clients.fetch_add(1, Relaxed);
    }

    /// A registered client left.
    pub fn registered_client_left(&self) {
        self.registered_clients.fetch_sub(1, Relaxed);
    }

    /// Every client is gone (the server is stopping).
    pub fn clients_cleared(&self) {
        self.registered_clients.store(0, Relaxed);
    }

    /// How many rooms exist now.
    pub fn set_rooms(&self, rooms: usize) {
        self.rooms.store(rooms as u64, Relaxed);
    }

    /// A client sent a line that parsed.
    pub fn line_received(&self) {
        self.lines_received.fetch_add(1, Relaxed);
    }

    /// A PRIVMSG, NOTICE or TAGMSG (or a whole multiline batch) came from
    /// a registered client, before its targets are checked: what users
    /// send, where `rookery_deliveries_total` is what reaches others.
    pub fn message_received(&self) {
        self.messages_received.fetch_add(1, Relaxed);
    }

    /// One message was queued for `recipients` clients.
    pub fn delivered(&self, recipients: usize) {
        self.deliveries.fetch_add(recipients as u64, Relaxed);
    }

    /// An HTTP connection was closed unserved: its listener or its
    /// address had every place taken.
    pub fn http_connection_refused(&self) {
        self.http_refused.fetch_add(1, Relaxed);
    }

    /// A client was dropped because its send queue overflowed.
    pub fn sendq_exceeded(&self) {
        self.sendq_exceeded.fetch_add(1, Relaxed);
    }

    /// A client was dropped for flooding ("Excess Flood").
    pub fn flood_disconnect(&self) {
        self.flood_disconnects.fetch_add(1, Relaxed);
    }

    /// A record was queued for the history writer.
    pub fn history_queued(&self) {
        self.history_queue_depth.fetch_add(1, Relaxed);
    }

    /// `records` queued for history will never reach the writer (it has
    /// stopped): they leave the queue's depth.
    pub fn history_abandoned(&self, records: usize) {
        self.history_queue_depth
            .fetch_sub(i64::try_from(records).unwrap_or(i64::MAX), Relaxed);
    }

    /// The history writer finished with `records` (committed or lost),
    /// and the commit took `took`; `failed` when it could not commit.
    pub fn history_committed(&self, records: usize, took: Duration, failed: bool) {
        self.history_queue_depth
            .fetch_sub(i64::try_from(records).unwrap_or(i64::MAX), Relaxed);
        self.history_commits.observe(took);
        if failed {
            self.history_write_failures.fetch_add(1, Relaxed);
        }
    }

    /// A SASL exchange failed (904).
    pub fn sasl_failed(&self) {
        self.sasl_failures.fetch_add(1, Relaxed);
    }

    /// An OPER attempt failed (464 or 491).
    pub fn oper_failed(&self) {
        self.oper_failures.fetch_add(1, Relaxed);
    }

    /// Every figure in Prometheus' text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        self.render_connections(&mut out);
        self.render_activity(&mut out);
        self.render_history(&mut out);
        self.render_security(&mut out);
        self.render_process(&mut out);
        out
    }

    fn render_connections(&self, out: &mut String) {
        family(
            out,
            "rookery_clients",
            "gauge",
            "Open client connections, per listener.",
        );
        for listener in self.lock_listeners().iter() {
            let open = listener.open.load(Relaxed).max(0);
            let _ = writeln!(out, "rookery_clients{{{}}} {open}", listener.labels);
        }
        let registered = self.registered_clients.load(Relaxed).max(0);
        gauge(
            out,
            "rookery_registered_clients",
            "Clients that completed registration.",
            registered,
        );
        counter(
            out,
            "rookery_connections_total",
            "Connections admitted by the per-address limits.",
            &self.connections,
        );
        family(
            out,
            "rookery_connections_refused_total",
            "counter",
            "Connections turned away, by reason.",
        );
        for (reason, count) in RefusedBecause::ALL.iter().zip(&self.refused) {
            let (reason, count) = (reason.label(), count.load(Relaxed));
            let _ = writeln!(
                out,
                "rookery_connections_refused_total{{reason=\"{reason}\"}} {count}"
            );
        }
        counter(
            out,
            "rookery_http_connections_refused_total",
            "HTTP connections closed unserved: the listener or the address was full.",
            &self.http_refused,
        );
    }

    fn render_activity(&self, out: &mut String) {
        let rooms = self.rooms.load(Relaxed);
        gauge(out, "rookery_rooms", "Rooms that exist.", rooms);
        counter(
            out,
            "rookery_lines_received_total",
            "Lines received from clients that parsed.",
            &self.lines_received,
        );
        counter(
            out,
            "rookery_messages_received_total",
            "PRIVMSG, NOTICE and TAGMSG sent by clients, whatever their targets; a multiline batch counts once.",
            &self.messages_received,
        );
        counter(
            out,
            "rookery_deliveries_total",
            "Messages queued to recipients: one per recipient of each message.",
            &self.deliveries,
        );
        counter(
            out,
            "rookery_sendq_exceeded_total",
            "Clients disconnected because their send queue overflowed.",
            &self.sendq_exceeded,
        );
        counter(
            out,
            "rookery_flood_disconnects_total",
            "Clients disconnected for flooding (Excess Flood).",
            &self.flood_disconnects,
        );
    }

    fn render_history(&self, out: &mut String) {
        let depth = self.history_queue_depth.load(Relaxed).max(0);
        gauge(
            out,
            "rookery_history_queue_depth",
            "History records waiting for the writer.",
            depth,
        );
        let name = "rookery_history_commit_seconds";
        family(
            out,
            name,
            "histogram",
            "Time to commit one batch of history records.",
        );
        self.history_commits.render(out, name);
        counter(
            out,
            "rookery_history_write_failures_total",
            "History batches that could not be committed, after retries.",
            &self.history_write_failures,
        );
    }

    fn render_security(&self, out: &mut String) {
        counter(
            out,
            "rookery_sasl_failures_total",
            "Failed SASL authentications (904).",
            &self.sasl_failures,
        );
        counter(
            out,
            "rookery_oper_failures_total",
            "Failed OPER attempts.",
            &self.oper_failures,
        );
    }

    fn render_process(&self, out: &mut String) {
        let started = self
            .started
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |since| since.as_secs_f64());
        gauge(
            out,
            "rookery_start_time_seconds",
            "When the server started, in seconds since the Unix epoch.",
            started,
        );
        family(
            out,
            "rookery_build_info",
            "gauge",
            "The running version; always 1.",
        );
        let version = escape_label(env!("CARGO_PKG_VERSION"));
        let _ = writeln!(out, "rookery_build_info{{version=\"{version}\"}} 1");
    }

    /// The value of the sample named exactly `series` (name and labels),
    /// as a scrape would read it: for the tests of the counting sites.
    #[cfg(test)]
    pub(crate) fn value(&self, series: &str) -> Option<f64> {
        let text = self.render();
        let value = text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))?;
        value.parse().ok()
    }

    fn lock_listeners(&self) -> std::sync::MutexGuard<'_, Vec<ListenerGauge>> {
        self.listeners
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The `# HELP` and `# TYPE` lines that open a family.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let help = help.replace('\\', "\\\\").replace('\n', "\\n");
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A gauge family of one sample without labels.
fn gauge(out: &mut String, name: &str, help: &str, value: impl std::fmt::Display) {
    family(out, name, "gauge", help);
    let _ = writeln!(out, "{name} {value}");
}

/// A counter family of one sample without labels.
fn counter(out: &mut String, name: &str, help: &str, value: &AtomicU64) {
    family(out, name, "counter", help);
    let _ = writeln!(out, "{name} {}", value.load(Relaxed));
}

/// A label value as the exposition format needs it: backslash, double
/// quote and line feed escaped.
fn escape_label(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every sample of `text` whose name and labels are exactly `series`.
    fn sample(text: &str, series: &str) -> Option<String> {
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .find_map(|line| {
                line.strip_prefix(series)?
                    .strip_prefix(' ')
                    .map(str::to_owned)
            })
    }

    #[test]
    fn every_family_has_help_and_type_and_the_output_ends_with_a_newline() {
        let metrics = Metrics::new();
        let _open = metrics.connection("127.0.0.1:6667", false, false);
        let text = metrics.render();
        assert!(text.ends_with('\n'));
        let mut declared = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap();
                let help = format!("# HELP {name} ");
                assert!(text.contains(&help), "{name} has no HELP");
                declared.push(name.to_owned());
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let series = line.split([' ', '{']).next().unwrap();
            let family = declared.last().expect("a sample before any TYPE");
            assert!(
                series.starts_with(family.as_str()),
                "{series} outside {family}"
            );
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
        for name in declared.iter().filter(|name| name.ends_with("_total")) {
            assert!(text.contains(&format!("# TYPE {name} counter")), "{name}");
        }
        assert_eq!(declared.len(), 18, "{declared:?}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
        let metrics = Metrics::new();
        let _open = metrics.connection("odd\"name\\\n", true, true);
        let text = metrics.render();
        let series =
            "rookery_clients{listener=\"odd\\\"name\\\\\\n\",tls=\"true\",websocket=\"true\"}";
        assert_eq!(sample(&text, series).as_deref(), Some("1"), "{text}");
    }

    #[test]
    fn a_connection_counts_while_its_guard_lives_on_its_own_listener() {
        let metrics = Metrics::new();
        let listener = metrics.listener("127.0.0.1:6667", false, false);
        let first = listener.connect();
        let second = metrics.connection("127.0.0.1:6667", false, false);
        let web = metrics.connection("127.0.0.1:8080", false, true);
        let plain =
            "rookery_clients{listener=\"127.0.0.1:6667\",tls=\"false\",websocket=\"false\"}";
        let websocket =
            "rookery_clients{listener=\"127.0.0.1:8080\",tls=\"false\",websocket=\"true\"}";
        assert_eq!(sample(&metrics.render(), plain).as_deref(), Some("2"));
        assert_eq!(sample(&metrics.render(), websocket).as_deref(), Some("1"));
        drop((first, web));
        assert_eq!(sample(&metrics.render(), plain).as_deref(), Some("1"));
        assert_eq!(sample(&metrics.render(), websocket).as_deref(), Some("0"));
        drop(second);
        assert_eq!(sample(&metrics.render(), plain).as_deref(), Some("0"));
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_inf() {
        let metrics = Metrics::new();
        for millis in [0, 2, 2, 30, 5_000] {
            let took = Duration::from_millis(millis);
            metrics.history_committed(1, took, false);
        }
        let text = metrics.render();
        let bucket = |le: &str| {
            let series = format!("rookery_history_commit_seconds_bucket{{le=\"{le}\"}}");
            sample(&text, &series).unwrap_or_else(|| panic!("no {series} in {text}"))
        };
        assert_eq!(bucket("0.0005"), "1");
        assert_eq!(bucket("0.001"), "1");
        assert_eq!(bucket("0.0025"), "3");
        assert_eq!(bucket("0.025"), "3");
        assert_eq!(bucket("0.05"), "4");
        assert_eq!(bucket("1"), "4");
        assert_eq!(bucket("+Inf"), "5");
        let buckets: Vec<&str> = text
            .lines()
            .filter(|line| line.starts_with("rookery_history_commit_seconds_bucket"))
            .collect();
        assert!(buckets.last().unwrap().contains("le=\"+Inf\""));
        assert_eq!(buckets.len(), 12);
        assert_eq!(
            sample(&text, "rookery_history_commit_seconds_count").as_deref(),
            Some("5")
        );
        let sum: f64 = sample(&text, "rookery_history_commit_seconds_sum")
            .unwrap()
            .parse()
            .unwrap();
        assert!((sum - 5.034).abs() < 1e-9, "{sum}");
    }

    #[test]
    fn history_queue_depth_follows_queued_and_committed_records_and_failures_count() {
        let metrics = Metrics::new();
        for _ in 0..3 {
            metrics.history_queued();
        }
        assert_eq!(
            sample(&metrics.render(), "rookery_history_queue_depth").as_deref(),
            Some("3")
        );
        metrics.history_committed(2, Duration::ZERO, true);
        let text = metrics.render();
        assert_eq!(
            sample(&text, "rookery_history_queue_depth").as_deref(),
            Some("1")
        );
        assert_eq!(
            sample(&text, "rookery_history_write_failures_total").as_deref(),
            Some("1")
        );
        // The writer ahead of the core shows 0, not a negative depth.
        metrics.history_committed(5, Duration::ZERO, false);
        assert_eq!(
            sample(&metrics.render(), "rookery_history_queue_depth").as_deref(),
            Some("0")
        );
    }

    #[test]
    fn refusals_are_counted_by_reason_and_build_info_names_the_version() {
        let metrics = Metrics::new();
        metrics.connection_refused(RefusedBecause::Dline);
        metrics.connection_refused(RefusedBecause::Dline);
        metrics.connection_refused(RefusedBecause::ServerFull);
        let text = metrics.render();
        let refused = |reason: &str| {
            sample(
                &text,
                &format!("rookery_connections_refused_total{{reason=\"{reason}\"}}"),
            )
        };
        assert_eq!(refused("dline").as_deref(), Some("2"));
        assert_eq!(refused("max_clients").as_deref(), Some("1"));
        assert_eq!(refused("per_ip_limit").as_deref(), Some("0"));
        let version = format!(
            "rookery_build_info{{version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(sample(&text, &version).as_deref(), Some("1"));
        let started: f64 = sample(&text, "rookery_start_time_seconds")
            .unwrap()
            .parse()
            .unwrap();
        assert!(started > 1.0e9, "{started}");
    }
}
