//! Room history on disk, without ever making the core wait.
//!
//! - [`store`]: the SQLite file: schema migrations, batch insert, queries.
//! - `target`: what a line belongs to ([`HistoryTarget`]: a room or a
//!   private conversation), and its one text form in the store.
//! - [`writer`]: the thread that owns the write connection. It takes every
//!   record queued, commits them as one transaction, then publishes the
//!   highest committed sequence number (the watermark).
//! - `reader`: the thread that answers CHATHISTORY queries off the core
//!   (each accepted query answered exactly once) and checkpoints the WAL.
//! - [`retention`]: pruning by line count and age, in small steps between
//!   batches.
//! - [`export`]: JSON lines for `rookery history export`.
//! - [`backend`]: the one seam over the two databases: this node's
//!   SQLite file ([`store`]) or the PostgreSQL one a network shares
//!   ([`postgres`]); [`migrate`] copies the first into the second.
//! - `hooks`: what tests attach to hold or fail commits; compiled in only
//!   for tests and with the `test-hooks` feature.
//!
//! - [`journal`]: where a record becomes durable before its lines go out.
//!
//! Durability: the core gives each record a sequence number
//! ([`HistoryHandle::record`]), appends it to the journal's buffer, and
//! tags the lines it fans out with it (`net::Outbox::push_durable`). After
//! each batch of events it writes the buffer ([`HistoryHandle::flush`])
//! and wakes the connections whose lines waited, so a line a client has
//! received is in the journal, in the operating system's page cache: it
//! survives the server being killed (even `kill -9`), and the next start
//! stores what the database lacked. It may not survive a power cut or an
//! OS crash; with `[history] sync = "full"` there is no journal, and lines
//! wait for the database's own synced commit (the watermark).

pub mod backend;
pub mod export;
mod hooks;
pub mod journal;
pub mod migrate;
pub mod postgres;
mod reader;
pub mod retention;
pub mod ring;
pub mod store;
mod target;
#[cfg(test)]
pub(crate) mod testing;
mod unstored;
pub mod writer;

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tracing::{error, warn};

pub use backend::Backend;
#[cfg(not(any(test, feature = "test-hooks")))]
pub(crate) use hooks::Hooks;
#[cfg(any(test, feature = "test-hooks"))]
pub use hooks::{CommitPause, DiskFull, Hooks};
pub use store::{Store, StoreError};
pub use target::{HistoryTarget, Party};

use crate::config;
use crate::metrics::Metrics;
use crate::proto::Folded;
use reader::{READ_QUEUE, ReadJob, read_loop, refuse};

/// One stored event: a message, notice or tag message in a room or a
/// private conversation, or a room event (topic, join, part, kick, quit,
/// nick change, mode change).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The IRCv3 msgid; unique across the database.
    pub msgid: String,
    /// Server time, milliseconds since the Unix epoch, UTC.
    pub time_ms: i64,
    /// The room or private conversation it belongs to.
    pub target: HistoryTarget,
    /// The room as displayed (for a private message: the recipient's nick).
    pub target_display: String,
    /// `nick!user@host` of the sender.
    pub sender: String,
    /// The account the sender was logged in to, if any.
    pub account: Option<String>,
    /// PRIVMSG, NOTICE, TAGMSG, TOPIC, or a room event: JOIN, PART,
    /// KICK, QUIT, NICK, MODE.
    pub command: String,
    /// PRIVMSG, NOTICE, TOPIC: the text. A room event: its parameters
    /// after the target as they are written on the wire (`bob :reason`
    /// for a KICK). TAGMSG: empty.
    pub text: String,
    /// Client tags to replay, serialized without the leading `@`; "" for none.
    pub tags: String,
}

/// Whether a room event of `command` names the room as its first
/// parameter, which its record leaves out of [`Record::text`]: the room's
/// name is `target_display`, so a renamed room replays its new name.
pub fn event_names_room(command: &str) -> bool {
    matches!(command, "JOIN" | "PART" | "KICK" | "MODE")
}

/// A line to store as the core has it: what was said where, by whom. The
/// msgid and time come from the event that carries it
/// (`NewRecord::stamped`), so history shows what its receivers saw.
#[derive(Clone, Debug)]
pub struct NewRecord<'a> {
    pub target: HistoryTarget,
    /// The room as displayed (for a private message: the recipient's nick).
    pub display: &'a str,
    /// `nick!user@host` of the sender.
    pub sender: &'a str,
    /// The account the sender is logged in to, if any.
    pub account: Option<&'a str>,
    /// As [`Record::command`].
    pub command: &'a str,
    /// As [`Record::text`].
    pub text: &'a str,
}

/// The stored tag marking a record as a multiline message, whose text
/// joins its lines with `\n` or `\r`: without a `+`, so it can never be a
/// client's tag.
const MULTILINE_MARK: &str = "draft/multiline";

impl Record {
    /// Makes the record as history keeps it: a multiline message (its text
    /// from `multiline::encode`) marked so; any other text as it was
    /// relayed, CR, LF and NUL as spaces, so it is never taken for one.
    pub fn prepare(&mut self, multiline: bool) {
        if multiline {
            self.tags = match self.tags.as_str() {
                "" => MULTILINE_MARK.to_owned(),
                tags => format!("{MULTILINE_MARK};{tags}"),
            };
        } else if self.text.contains(['\r', '\n', '\0']) {
            self.text = self.text.replace(['\r', '\n', '\0'], " ");
        }
    }

    /// A PRIVMSG or NOTICE stored as a multiline message; a record stored
    /// before multiline records were marked is one line.
    pub fn is_multiline(&self) -> bool {
        matches!(self.command.as_str(), "PRIVMSG" | "NOTICE")
            && self.tags.split(';').next() == Some(MULTILINE_MARK)
    }

    /// The stored client tags to replay, without the multiline mark.
    pub fn client_tags(&self) -> &str {
        match self.tags.strip_prefix(MULTILINE_MARK) {
            Some(rest) if rest.is_empty() || rest.starts_with(';') => {
                rest.strip_prefix(';').unwrap_or(rest)
            }
            _ => &self.tags,
        }
    }
}

impl NewRecord<'_> {
    /// The record, under the msgid and time of the event that carries it.
    pub(crate) fn stamped(self, msgid: String, time_ms: i64) -> Record {
        Record {
            msgid,
            time_ms,
            target: self.target,
            target_display: self.display.to_owned(),
            sender: self.sender.to_owned(),
            account: self.account.map(str::to_owned),
            command: self.command.to_owned(),
            text: self.text.to_owned(),
            tags: String::new(),
        }
    }
}

/// The client-only tags of a line (escaped, `;`-joined) that history
/// keeps: all but typing notifications, which tell of a moment, not of
/// the conversation.
pub fn storable_tags(tags: &str) -> String {
    tags.split(';')
        .filter(|tag| !tag.is_empty() && !is_typing_tag(tag))
        .collect::<Vec<_>>()
        .join(";")
}

/// Whether client tags (escaped, `;`-joined) carry a typing notification:
/// a tag message that does is never history, whatever else it carries.
pub fn is_typing(tags: &str) -> bool {
    tags.split(';').any(is_typing_tag)
}

fn is_typing_tag(tag: &str) -> bool {
    let key = tag.split_once('=').map_or(tag, |(key, _)| key);
    key == "+typing" || key == "+draft/typing"
}

/// Milliseconds since the Unix epoch, as stored; times before it are 0.
pub fn millis(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| {
        i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
    })
}

/// A reference point in a target's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bound {
    /// A server time in milliseconds.
    Time(i64),
    /// A stored message; a msgid the target does not hold matches nothing.
    MsgId(String),
}

/// What to read, as CHATHISTORY subcommands name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueryKind {
    /// The newest lines, optionally only those after a reference.
    Latest { after: Option<Bound> },
    /// The lines just before a reference.
    Before { bound: Bound },
    /// The lines just after a reference.
    After { bound: Bound },
    /// Up to half the limit before a reference, the rest from it on.
    Around { bound: Bound },
    /// The lines strictly between two references, counted from `start`
    /// (which may be the later one).
    Between { start: Bound, end: Bound },
}

/// One history query. Answers are oldest first and at most `limit` long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    pub target: HistoryTarget,
    /// Another key of the same conversation, read together with `target`:
    /// a correspondent that is not online now may have spoken logged in
    /// (its account) or not (its nick).
    pub also: Option<HistoryTarget>,
    pub kind: QueryKind,
    pub limit: usize,
    /// Nothing older is returned: the requester's floor
    /// (`crate::core::history_access`).
    pub not_before_ms: Option<i64>,
    /// Every stored event (`draft/event-playback`), not only messages and
    /// notices.
    pub events: bool,
}

/// CHATHISTORY TARGETS: which of the given rooms, and which private
/// conversations of `party`, the requester may read and last saw activity
/// strictly between `from_ms` and `to_ms`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetsQuery {
    pub from_ms: i64,
    pub to_ms: i64,
    /// Casefolded rooms the requester may read, each with the oldest time
    /// it may read there.
    pub rooms: Vec<(Folded, i64)>,
    /// The requester's side of its conversations (its account, or its
    /// nick when not logged in), when private messages are kept, with the
    /// oldest time it may read them from.
    pub party: Option<(Party, i64)>,
    pub limit: usize,
    /// Every stored event counts as activity (`draft/event-playback`),
    /// not only messages and notices: a target is listed when a query
    /// would return something from it.
    pub events: bool,
}

/// A target with activity, for CHATHISTORY TARGETS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetActivity {
    pub target: HistoryTarget,
    /// As displayed in its latest record.
    pub display: String,
    pub latest_ms: i64,
}

/// The last lines of each standing or registered room at startup, keyed
/// by casefolded name, oldest first: playback on join can be served from
/// memory. Other rooms need nothing from disk: a room created after a
/// start is a new incarnation, which may not read what an earlier one
/// said.
pub type Preload = HashMap<String, Vec<Record>>;

/// Counters an operator may want to see.
#[derive(Debug, Default)]
pub struct HistoryStats {
    /// Records refused because the writer's queue was full.
    pub dropped: AtomicU64,
    /// Records lost because their batch could not be committed.
    pub failed: AtomicU64,
    /// Records committed since startup.
    pub committed: AtomicU64,
    /// Queries refused because the reader's queue was full.
    pub queries_refused: AtomicU64,
    /// Commits attempted again after a failure.
    pub retries: AtomicU64,
}

/// How many records may wait for the writer. Group commit drains tens of
/// thousands of records a second, so a queue this deep means the disk has
/// stalled.
pub const WRITE_QUEUE: usize = 65_536;

/// A room renamed (RENAME): its stored lines move from `old` to `new`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomRename {
    pub old: Folded,
    pub new: Folded,
    /// The new name as spelled, for the lines' `target_display`.
    pub display: String,
    /// Where the room's history starts.
    pub floor_ms: i64,
}

/// What the core holds: cheap to clone, and no method waits.
#[derive(Clone)]
pub struct HistoryHandle {
    shared: Arc<Shared>,
}

struct Shared {
    /// The last sequence number, the writer's queue and the journal, locked
    /// together so records enter both in sequence order whoever sends them.
    writes: Mutex<Writes>,
    /// The journal's mark, when there is a journal.
    journaled: Option<Arc<AtomicU64>>,
    reads: SyncSender<ReadJob>,
    committed: watch::Receiver<u64>,
    stats: Arc<HistoryStats>,
    msgids: MsgIds,
    /// Sequence numbers whose records could not be committed, for the core
    /// to take out of the playback rings.
    lost: Arc<LostRecords>,
    /// True while commits fail and lines go out without being stored.
    degraded: watch::Receiver<bool>,
    /// Where the records waiting for the writer are counted.
    metrics: Arc<Metrics>,
    /// Whether the database is shared by every node of a network (the
    /// postgres backend): it may hold lines this node never saw.
    shared_store: bool,
}

/// Ranges of sequence numbers (inclusive) whose commit failed and that the
/// core has not taken yet. Bounded: past `LostRecords::MAX_RANGES` the
/// ranges are merged into one, which may take a few stored lines out of
/// playback too, never leave an unstored one in.
#[derive(Debug, Default)]
pub struct LostRecords {
    ranges: Mutex<Vec<(u64, u64)>>,
}

impl LostRecords {
    const MAX_RANGES: usize = 1024;

    pub(crate) fn add(&self, low: u64, high: u64) {
        let mut ranges = self.lock();
        match ranges.last_mut() {
            Some(last) if last.1 + 1 >= low => last.1 = last.1.max(high),
            _ => ranges.push((low, high)),
        }
        if ranges.len() > Self::MAX_RANGES {
            let low = ranges.iter().map(|r| r.0).min().unwrap_or(low);
            let high = ranges.iter().map(|r| r.1).max().unwrap_or(high);
            *ranges = vec![(low, high)];
        }
    }

    fn take(&self) -> Vec<(u64, u64)> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(u64, u64)>> {
        self.ranges
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What records are sent into, under one lock.
struct Writes {
    /// The last sequence number given out.
    last: u64,
    /// Unbounded: the records it holds are bounded by `queued`, and a
    /// chunk per batch of events is far fewer jobs than records.
    jobs: Sender<writer::Job>,
    /// The records since the last flush, encoded; written to the journal
    /// file unless `sync = "full"`.
    journal: journal::Journal,
    /// Records made and not yet taken by the writer.
    queued: Arc<AtomicUsize>,
    /// Where the queue's depth is counted.
    metrics: Arc<Metrics>,
    /// Set once the writer is gone: records are refused.
    stopped: bool,
}

impl HistoryHandle {
    /// Queues a record for the writer, appends it to the journal's buffer,
    /// and returns its sequence number, to tag the lines that carry it.
    /// Never waits: if the queue is full (the disk has stalled for
    /// [`WRITE_QUEUE`] records) the record is dropped, counted and logged,
    /// and 0 is returned so its lines are not held.
    pub fn record(&self, record: Record) -> u64 {
        let mut writes = self.lock_writes();
        if writes.stopped {
            self.shared.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return 0;
        }
        if writes.queued.load(Ordering::Relaxed) >= WRITE_QUEUE {
            drop(writes);
            let dropped = self.shared.stats.dropped.fetch_add(1, Ordering::Relaxed);
            if dropped.is_power_of_two() {
                error!(
                    dropped = dropped + 1,
                    "the history writer is behind; records are being dropped"
                );
            }
            return 0;
        }
        let seq = writes.last + 1;
        writes.last = seq;
        writes.journal.append(seq, &record);
        writes.queued.fetch_add(1, Ordering::Relaxed);
        drop(writes);
        self.shared.metrics.history_queued();
        seq
    }

    /// Queues the job `make` builds with the next sequence number, and
    /// returns that number; never waits.
    /// The records made before go first, so the writer keeps the order.
    fn enqueue(&self, make: impl FnOnce(u64) -> writer::Job) -> Result<u64, TrySendError<()>> {
        let stored = self.committed_now();
        let mut writes = self.lock_writes();
        Self::hand_over(&mut writes, stored);
        if writes.stopped {
            return Err(TrySendError::Disconnected(()));
        }
        if writes.queued.load(Ordering::Relaxed) >= WRITE_QUEUE {
            return Err(TrySendError::Full(()));
        }
        let seq = writes.last + 1;
        match writes.jobs.send(make(seq)) {
            Ok(()) => {
                writes.last = seq;
                // The job counts against the bound as a record does.
                writes.queued.fetch_add(1, Ordering::Relaxed);
                Ok(seq)
            }
            Err(_) => {
                writes.stopped = true;
                Err(TrySendError::Disconnected(()))
            }
        }
    }

    /// Writes the records made since the last hand-over to the journal and
    /// sends them to the writer; true when there were any.
    fn hand_over(writes: &mut Writes, stored: u64) -> bool {
        let Some(chunk) = writes.journal.flush(stored) else {
            return false;
        };
        let records = chunk.records;
        if writes.jobs.send(writer::Job::Records(chunk)).is_err() {
            // The writer is gone: these records will never be stored.
            writes.stopped = true;
            writes.queued.fetch_sub(records, Ordering::Relaxed);
            writes.metrics.history_abandoned(records);
        }
        true
    }

    fn lock_writes(&self) -> std::sync::MutexGuard<'_, Writes> {
        self.shared
            .writes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes the records appended since the last flush to the journal,
    /// with one system call, and moves its mark; true when it moved, and
    /// the lines waiting for it may go. Called by the core after each batch
    /// of events.
    pub fn flush(&self) -> bool {
        let stored = self.committed_now();
        Self::hand_over(&mut self.lock_writes(), stored)
    }

    /// Whether records become durable in the journal (not under
    /// `sync = "full"`, where lines wait for the database).
    pub fn has_journal(&self) -> bool {
        self.shared.journaled.is_some()
    }

    /// The journal's mark, when records become durable in the journal;
    /// `None` under `sync = "full"`, where lines wait for the database.
    pub fn journaled(&self) -> Option<Arc<AtomicU64>> {
        self.shared.journaled.clone()
    }

    /// Queues the job `make` builds and returns the sequence number the
    /// watermark passes once it is done. Never waits: when the queue is
    /// full (the disk has stalled) or the writer has stopped, nothing is
    /// queued, the refusal is logged with `what` (what is left undone) and
    /// `None` returned, so no line is held for work that will not happen.
    fn submit(&self, make: impl FnOnce(u64) -> writer::Job, what: &str) -> Option<u64> {
        match self.enqueue(make) {
            Ok(seq) => Some(seq),
            Err(TrySendError::Full(())) => {
                error!("the history writer is behind; {what}");
                None
            }
            Err(TrySendError::Disconnected(())) => {
                error!("the history writer has stopped; {what}");
                None
            }
        }
    }

    /// Deletes every private conversation of `party` (an account that was
    /// dropped, so a later account of that name reads none of them) once
    /// the writer has stored what was queued before, and returns the
    /// sequence number the watermark passes when it is done: a line tagged
    /// with it is sent only after the deletion. `None` when the writer
    /// refuses (the queue is full or the writer stopped; logged).
    pub fn forget(&self, party: Party) -> Option<u64> {
        let what = "a dropped account's conversations are kept";
        self.submit(|seq| writer::Job::Forget(seq, party), what)
    }

    /// Deletes the stored line `msgid` (REDACT) after what was queued
    /// before it, and returns the sequence number the watermark passes
    /// once it is gone, for the REDACT lines to carry: nobody is told of a
    /// redaction the store has not made. `None` when the writer refuses:
    /// the line stays stored, and the redaction must be refused.
    pub fn redact(&self, msgid: String) -> Option<u64> {
        let what = "a redacted line stays stored";
        self.submit(|seq| writer::Job::Redact(seq, msgid), what)
    }

    /// Moves a renamed room's stored lines to its new name, after what was
    /// queued before (lines said under the old name) and before anything
    /// after; returns the sequence number the watermark passes when it is
    /// done, or `None` when the writer refuses (queue full or stopped):
    /// the room must then keep its name.
    pub fn rename_room(&self, rename: RoomRename) -> Option<u64> {
        let what = "a room is not renamed";
        self.submit(|seq| writer::Job::Rename(seq, rename), what)
    }

    /// Finds the stored line `msgid` on the reader thread, answering as
    /// [`HistoryHandle::query`] does.
    pub fn find(
        &self,
        msgid: String,
        reply: impl FnOnce(Result<Option<Record>, StoreError>) + Send + 'static,
    ) -> Result<(), StoreError> {
        self.read(reply, move |store| {
            store.find(&msgid).map_err(|e| store.at(e))
        })
    }

    /// The sequence number of the last record queued, for tests to wait
    /// until it is committed.
    #[cfg(test)]
    pub(crate) fn last_queued(&self) -> u64 {
        self.lock_writes().last
    }

    /// The watermark: the highest sequence number whose record is committed.
    pub fn committed(&self) -> watch::Receiver<u64> {
        self.shared.committed.clone()
    }

    /// The watermark now: every record up to it is decided, committed or
    /// reported lost ([`HistoryHandle::take_lost`] after reading this
    /// returns every loss up to it).
    pub fn committed_now(&self) -> u64 {
        *self.shared.committed.borrow()
    }

    /// The durable mark now: every record up to it is in the journal or
    /// decided by the database ([`HistoryHandle::committed_now`]).
    pub fn durable_now(&self) -> u64 {
        let journaled = self
            .shared
            .journaled
            .as_ref()
            .map_or(0, |mark| mark.load(Ordering::Acquire));
        journaled.max(self.committed_now())
    }

    /// Whether commits are failing (a full disk): true from the first batch
    /// lost until a commit succeeds again. The server tells operators.
    pub fn degraded(&self) -> watch::Receiver<bool> {
        self.shared.degraded.clone()
    }

    /// A fresh msgid, unique across restarts.
    pub fn next_msgid(&self) -> String {
        self.shared.msgids.next()
    }

    pub fn stats(&self) -> &HistoryStats {
        &self.shared.stats
    }

    /// The sequence numbers whose records were lost since the last call,
    /// as inclusive ranges: the core takes them out of the playback rings,
    /// so playback never shows a line that is not stored.
    pub fn take_lost(&self) -> Vec<(u64, u64)> {
        self.shared.lost.take()
    }

    /// Runs a query on the reader thread and hands the answer to `reply`
    /// there; the core's `reply` sends an event into its own inbox. If the
    /// reader is swamped (or stopped) the query is refused at once with
    /// [`StoreError::Busy`] (or [`StoreError::Stopped`]) and `reply` is
    /// never called: the caller answers the client itself. Once accepted,
    /// `reply` is called exactly once, with [`StoreError::Stopped`] if the
    /// query panicked or the reader stopped before running it.
    pub fn query(
        &self,
        query: Query,
        reply: impl FnOnce(Result<Vec<Record>, StoreError>) + Send + 'static,
    ) -> Result<(), StoreError> {
        self.read(reply, move |store| {
            store.query(&query).map_err(|e| store.at(e))
        })
    }

    /// Whether the database is shared by every node of a network: a room
    /// this node has no playback ring for may still have lines stored,
    /// said on other nodes.
    pub fn is_shared(&self) -> bool {
        self.shared.shared_store
    }

    /// Reads a room's last `limit` playable lines no older than
    /// `since_ms` on the reader thread, answering as
    /// [`HistoryHandle::query`] does: playback for a room this node has
    /// no ring for.
    pub fn recent(
        &self,
        room: Folded,
        limit: usize,
        since_ms: i64,
        reply: impl FnOnce(Result<Vec<Record>, StoreError>) + Send + 'static,
    ) -> Result<(), StoreError> {
        self.read(reply, move |store| {
            let records = store
                .recent(room.as_str(), limit, Some(since_ms))
                .map_err(|e| store.at(e))?;
            Ok(records.into_iter().filter(ring::is_playable).collect())
        })
    }

    /// Like [`HistoryHandle::query`], for CHATHISTORY TARGETS.
    pub fn targets(
        &self,
        query: TargetsQuery,
        reply: impl FnOnce(Result<Vec<TargetActivity>, StoreError>) + Send + 'static,
    ) -> Result<(), StoreError> {
        self.read(reply, move |store| {
            store.targets(&query).map_err(|e| store.at(e))
        })
    }

    fn read<T: Send + 'static>(
        &self,
        reply: impl FnOnce(Result<T, StoreError>) + Send + 'static,
        work: impl FnOnce(&mut Backend) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<(), StoreError> {
        let after = self.lock_writes().last;
        match self
            .shared
            .reads
            .try_send(ReadJob::task(after, work, reply))
        {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(job)) => {
                refuse(job);
                self.shared
                    .stats
                    .queries_refused
                    .fetch_add(1, Ordering::Relaxed);
                warn!("history query refused: the reader is busy");
                Err(StoreError::Busy)
            }
            Err(TrySendError::Disconnected(job)) => {
                refuse(job);
                Err(StoreError::Stopped)
            }
        }
    }
}

/// A running history: the handle for the core, and the threads to stop.
pub struct History {
    handle: HistoryHandle,
    writer: JoinHandle<()>,
    reader: JoinHandle<()>,
    /// When each standing room (casefolded) became one: its history floor.
    standing_since: HashMap<String, i64>,
}

/// Opens the database (creating and migrating it as needed), loads the
/// recent lines of the standing rooms `rooms` (casefolded), and starts the
/// writer and reader threads, with `hooks` attached (nothing outside
/// tests). Every error names the file.
pub(crate) fn start(
    config: &config::HistoryConfig,
    node: &str,
    rooms: &[String],
    hooks: Hooks,
    metrics: Arc<Metrics>,
) -> Result<(History, Preload), StoreError> {
    let (store, standing_since, preload, journal) = open_for_writing(config, node, rooms)?;
    let queued = Arc::new(AtomicUsize::new(0));
    let mut reader_store = Backend::open_existing(config, node)?;
    let stats = Arc::new(HistoryStats::default());
    let (committed_tx, committed) = watch::channel(0);
    let reader_committed = committed.clone();
    let (writes, jobs) = mpsc::channel();
    let lost = Arc::new(LostRecords::default());
    let (health, degraded) = watch::channel(false);
    let reader_hooks = hooks.clone();
    let writer = writer::spawn(
        writer::Writer::new(
            store,
            jobs,
            committed_tx,
            retention::Pruner::new(config.max_lines_per_room, config.max_age_days)
                .with_total(config.max_lines_total),
            Arc::clone(&stats),
            Arc::clone(&lost),
            health,
        )
        .with_queue(Arc::clone(&queued)),
        hooks,
        Arc::clone(&metrics),
    )
    .map_err(StoreError::Thread)?;
    let (reads, read_jobs) = mpsc::sync_channel::<ReadJob>(READ_QUEUE);
    let reader = std::thread::Builder::new()
        .name("history-reader".into())
        .spawn(move || {
            read_loop(
                &mut reader_store,
                &read_jobs,
                reader_committed,
                &reader_hooks,
            )
        })
        .map_err(StoreError::Thread)?;
    let handle = HistoryHandle {
        shared: Arc::new(Shared {
            journaled: (config.sync == config::HistorySync::Normal).then(|| journal.mark()),
            writes: Mutex::new(Writes {
                last: 0,
                jobs: writes,
                journal,
                queued,
                stopped: false,
                metrics: Arc::clone(&metrics),
            }),
            reads,
            committed,
            stats,
            msgids: MsgIds::new(),
            lost,
            degraded,
            metrics,
            shared_store: config.backend == config::HistoryBackend::Postgres,
        }),
    };
    Ok((
        History {
            handle,
            writer,
            reader,
            standing_since,
        },
        preload,
    ))
}

/// The writer's connection, with what startup reads through it: when each
/// standing room became one, and those rooms' recent lines; and the
/// journal, once the database has what the last one held (without files
/// under `sync = "full"`).
fn open_for_writing(
    config: &config::HistoryConfig,
    node: &str,
    rooms: &[String],
) -> Result<(Backend, HashMap<String, i64>, Preload, journal::Journal), StoreError> {
    if config.backend == config::HistoryBackend::Postgres {
        // The file stays: accounts and rooms are kept in it, and expect
        // it to exist.
        drop(Store::open(&config.path, config.sync)?);
    }
    let mut store = Backend::open(config, node)?;
    let epoch = recover_journal(&mut store, &config.path)?;
    let journal = match config.sync {
        config::HistorySync::Normal => journal::Journal::create(&config.path, epoch)
            .map_err(|source| StoreError::Journal(config.path.clone(), source))?,
        config::HistorySync::Full => {
            for path in journal::paths(&config.path) {
                let _ = std::fs::remove_file(path);
            }
            journal::Journal::without_files(epoch, config.path.clone())
        }
    };
    let standing_since = store
        .standing_since(rooms, millis(SystemTime::now()))
        .map_err(|error| store.at(error))?;
    let preload = recent_lines(&mut store, config, rooms, &standing_since)?;
    store
        .disable_auto_checkpoint()
        .map_err(|error| store.at(error))?;
    Ok((store, standing_since, preload, journal))
}

/// Stores the records the last run's journal holds and the database
/// lacks (the server was killed before its writer stored them), and
/// starts the next epoch; returns it.
fn recover_journal(store: &mut Backend, db: &std::path::Path) -> Result<u64, StoreError> {
    let (epoch, checkpoint) = store.journal_checkpoint().map_err(|e| store.at(e))?;
    let entries = journal::replay(db, epoch, checkpoint)
        .map_err(|source| StoreError::Journal(db.to_owned(), source))?;
    let next = epoch + 1;
    let stored = store
        .begin_epoch(entries.iter().map(|(_, record)| record), next)
        .map_err(|e| store.at(e))?;
    if !entries.is_empty() {
        tracing::info!(
            file = %db.display(),
            database = %store.place(),
            found = entries.len(),
            stored,
            "history lines recovered from the journal"
        );
    }
    Ok(next)
}

/// The recent lines of `rooms` (casefolded), none older than a room's
/// floor in `floors` nor than `playback_max_age`: what playback serves.
fn recent_lines(
    store: &mut Backend,
    config: &config::HistoryConfig,
    rooms: &[String],
    floors: &HashMap<String, i64>,
) -> Result<Preload, StoreError> {
    let since = config
        .playback_max_age()
        .map(|age| millis(SystemTime::now()) - i64::try_from(age.as_millis()).unwrap_or(i64::MAX));
    store
        .recent_rooms(rooms, config.playback_lines, since, floors)
        .map_err(|error| store.at(error))
}

/// The recent lines of the rooms registered with ChanServ (casefolded
/// name to the floor stored with each), read at startup as a standing
/// room's are: such a room is one incarnation across restarts, so a join
/// plays back what it said before. Blocks on the database.
pub fn preload_registered(
    config: &config::HistoryConfig,
    node: &str,
    floors: &HashMap<String, i64>,
) -> Result<Preload, StoreError> {
    let rooms: Vec<String> = floors.keys().cloned().collect();
    if rooms.is_empty() {
        return Ok(Preload::new());
    }
    let mut store = Backend::open_existing(config, node)?;
    recent_lines(&mut store, config, &rooms, floors)
}

impl History {
    pub fn handle(&self) -> HistoryHandle {
        self.handle.clone()
    }

    /// When each standing room (casefolded) became one, as the database
    /// records it: nothing said under its name before that is its history.
    pub fn standing_since(&self) -> &HashMap<String, i64> {
        &self.standing_since
    }

    /// Commits everything queued and stops both threads. Blocks: call it
    /// from a blocking context at shutdown.
    pub fn shutdown(self) {
        {
            let mut writes = self
                .handle
                .shared
                .writes
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            // The records made so far go first; the writer commits them, then stops.
            let stored = self.handle.committed_now();
            HistoryHandle::hand_over(&mut writes, stored);
            let _ = writes.jobs.send(writer::Job::Stop);
            writes.stopped = true;
        }
        if self.writer.join().is_err() {
            error!("the history writer panicked");
        }
        let _ = self.handle.shared.reads.send(ReadJob::Stop);
        if self.reader.join().is_err() {
            error!("the history reader panicked");
        }
    }
}

/// Msgids: a per-start prefix from the clock and a counter.
struct MsgIds {
    prefix: String,
    next: AtomicU64,
}

impl MsgIds {
    fn new() -> MsgIds {
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        MsgIds {
            prefix: format!("{started:x}{:x}", std::process::id()),
            next: AtomicU64::new(1),
        }
    }

    fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n:x}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::testing::{TempDb, record, target};
    use super::*;

    fn settings(db: &TempDb) -> config::HistoryConfig {
        config::HistoryConfig {
            path: db.path().to_owned(),
            ..config::HistoryConfig::default()
        }
    }

    async fn committed_reaches(handle: &HistoryHandle, seq: u64) {
        // As the core does after each batch of events.
        handle.flush();
        let mut committed = handle.committed();
        tokio::time::timeout(Duration::from_secs(5), committed.wait_for(|&c| c >= seq))
            .await
            .expect("the watermark advances")
            .expect("the writer is running");
    }

    #[tokio::test]
    async fn records_get_sequence_numbers_and_the_watermark_follows_commits() {
        let db = TempDb::new();
        let (history, preload) =
            start(&settings(&db), "", &[], Hooks::default(), Metrics::new()).unwrap();
        assert!(preload.is_empty());
        let handle = history.handle();
        let seqs: Vec<u64> = (0..3)
            .map(|i| handle.record(record(&format!("m{i}"), i, "#room")))
            .collect();
        assert_eq!(seqs, [1, 2, 3]);
        committed_reaches(&handle, 3).await;
        let store = Store::open_existing(db.path()).unwrap();
        assert_eq!(store.count(&target("#room")).unwrap(), 3);
        assert_eq!(handle.stats().committed.load(Ordering::Relaxed), 3);
        history.shutdown();
    }

    #[tokio::test]
    async fn a_paused_commit_holds_the_watermark_back() {
        let db = TempDb::new();
        let pause = CommitPause::default();
        pause.pause();
        let hooks = Hooks {
            commit_pause: Some(pause.clone()),
            ..Hooks::default()
        };
        let (history, _) = start(&settings(&db), "", &[], hooks, Metrics::new()).unwrap();
        let handle = history.handle();
        let seq = handle.record(record("held", 1, "#room"));
        let mut committed = handle.committed();
        let early = tokio::time::timeout(
            Duration::from_millis(200),
            committed.wait_for(|&c| c >= seq),
        )
        .await;
        assert!(early.is_err(), "nothing is committed while paused");
        pause.resume();
        committed_reaches(&handle, seq).await;
        history.shutdown();
    }

    #[test]
    fn shutdown_commits_everything_queued() {
        let db = TempDb::new();
        let (history, _) =
            start(&settings(&db), "", &[], Hooks::default(), Metrics::new()).unwrap();
        let handle = history.handle();
        for i in 0..5000 {
            handle.record(record(&format!("m{i}"), i, "#room"));
        }
        history.shutdown();
        assert_eq!(*handle.committed().borrow(), 5000);
        let store = Store::open_existing(db.path()).unwrap();
        assert_eq!(store.count(&target("#room")).unwrap(), 5000);
        // After shutdown a record is refused, not queued forever.
        assert_eq!(handle.record(record("late", 1, "#room")), 0);
    }

    #[test]
    fn a_start_stores_what_the_journal_holds_and_the_database_lacks() {
        let db = TempDb::new();
        let (history, _) =
            start(&settings(&db), "", &[], Hooks::default(), Metrics::new()).unwrap();
        history.shutdown();
        // What a run killed mid-stream leaves: records 1–3 in its journal,
        // only record 1 stored, and a stored record 2 that was since
        // redacted, which a restart must not bring back.
        let mut store = Store::open_existing(db.path()).unwrap();
        let (epoch, _) = store.journal_checkpoint().unwrap();
        let mut journal = journal::Journal::create(db.path(), epoch).unwrap();
        for seq in 1..=4 {
            journal.append(seq, &record(&format!("m{seq}"), seq as i64, "#room"));
        }
        journal.flush(0);
        let first = record("m1", 1, "#room");
        let second = record("m2", 2, "#room");
        store.store_batch([&first, &second], 2).unwrap();
        store.redact("m2").unwrap();
        drop(store);

        let (history, _) =
            start(&settings(&db), "", &[], Hooks::default(), Metrics::new()).unwrap();
        history.shutdown();
        let store = Store::open_existing(db.path()).unwrap();
        let mut stored = Vec::new();
        store
            .for_each(&target("#room"), None, |record| {
                stored.push(record.msgid);
                Ok::<_, StoreError>(())
            })
            .unwrap();
        assert_eq!(stored, ["m1", "m3", "m4"]);
        assert_eq!(store.journal_checkpoint().unwrap().0, epoch + 1);
        // The next start finds nothing more to store.
        let (history, _) =
            start(&settings(&db), "", &[], Hooks::default(), Metrics::new()).unwrap();
        history.shutdown();
        let store = Store::open_existing(db.path()).unwrap();
        assert_eq!(store.count(&target("#room")).unwrap(), 3);
    }

    #[tokio::test]
    async fn queries_answer_on_the_reader_thread() {
        let db = TempDb::new();
        let (history, _) =
            start(&settings(&db), "", &[], Hooks::default(), Metrics::new()).unwrap();
        let handle = history.handle();
        for i in 0..5 {
            handle.record(record(&format!("m{i}"), i, "#room"));
        }
        committed_reaches(&handle, 5).await;
        let (reply, answer) = tokio::sync::oneshot::channel();
        let query = Query {
            target: target("#room"),
            also: None,
            kind: QueryKind::Latest { after: None },
            limit: 2,
            not_before_ms: None,
            events: false,
        };
        handle
            .query(query, move |records| {
                let _ = reply.send(records);
            })
            .unwrap();
        let records = answer.await.unwrap().unwrap();
        let msgids: Vec<_> = records.iter().map(|r| r.msgid.as_str()).collect();
        assert_eq!(msgids, ["m3", "m4"]);
        history.shutdown();
    }

    #[tokio::test]
    async fn forgetting_a_party_deletes_what_was_queued_before_not_after() {
        let db = TempDb::new();
        let (history, _) =
            start(&settings(&db), "", &[], Hooks::default(), Metrics::new()).unwrap();
        let handle = history.handle();
        handle.record(record("before", 1, "@alice bob"));
        let alice = Party::Account(crate::proto::Casemapping::Ascii.fold("alice"));
        let forgotten = handle.forget(alice).expect("queued");
        let after = handle.record(record("after", 2, "@alice bob"));
        committed_reaches(&handle, forgotten).await;
        committed_reaches(&handle, after).await;
        let store = Store::open_existing(db.path()).unwrap();
        assert!(!store.contains("before").unwrap());
        assert!(store.contains("after").unwrap());
        // A start replays nothing from before the deletion.
        assert!(store.journal_checkpoint().unwrap().1 >= forgotten);
        history.shutdown();
    }

    #[test]
    fn registered_rooms_preload_from_their_floor() {
        let db = TempDb::new();
        let (history, _) =
            start(&settings(&db), "", &[], Hooks::default(), Metrics::new()).unwrap();
        let now = millis(SystemTime::now());
        let handle = history.handle();
        handle.record(record("earlier-room", now - 10, "#reg"));
        handle.record(record("kept", now + 1, "#reg"));
        handle.record(record("unregistered", now, "#other"));
        history.shutdown();
        let floors = HashMap::from([("#reg".to_owned(), now)]);
        let preload = preload_registered(&settings(&db), "", &floors).unwrap();
        assert_eq!(preload.len(), 1, "{preload:?}");
        let msgids: Vec<&str> = preload["#reg"].iter().map(|r| r.msgid.as_str()).collect();
        assert_eq!(msgids, ["kept"]);
    }

    #[test]
    fn a_restart_preloads_the_standing_rooms_recent_lines_only() {
        let db = TempDb::new();
        let standing = ["#room".to_owned()];
        let (history, _) = start(
            &settings(&db),
            "",
            &standing,
            Hooks::default(),
            Metrics::new(),
        )
        .unwrap();
        // Said since #room became standing, except one line too old.
        let now = millis(SystemTime::now());
        let handle = history.handle();
        handle.record(record("stale", now - 2 * 86_400_000, "#room"));
        for i in 0..30 {
            handle.record(record(&format!("m{i}"), now + i, "#room"));
        }
        handle.record(record("gone", now, "#other"));
        history.shutdown();
        let (history, preload) = start(
            &settings(&db),
            "",
            &standing,
            Hooks::default(),
            Metrics::new(),
        )
        .unwrap();
        assert_eq!(preload.len(), 1, "#other is no standing room: {preload:?}");
        let lines = &preload["#room"];
        assert_eq!(lines.len(), 25, "playback_lines defaults to 25");
        assert_eq!(lines[0].msgid, "m5");
        assert_eq!(lines[24].msgid, "m29");
        history.shutdown();
    }

    #[tokio::test]
    async fn a_full_disk_releases_lines_at_once_and_stores_them_once_it_frees() {
        let db = TempDb::new();
        let disk_full = DiskFull::default();
        let hooks = Hooks {
            disk_full: Some(disk_full.clone()),
            ..Hooks::default()
        };
        let (history, _) = start(&settings(&db), "", &[], hooks, Metrics::new()).unwrap();
        let handle = history.handle();
        disk_full.set(true);
        let first = handle.record(record("lost1", 1, "#room"));
        committed_reaches(&handle, first).await;
        let second = handle.record(record("lost2", 2, "#room"));
        committed_reaches(&handle, second).await;
        let stats = handle.stats();
        assert_eq!(stats.failed.load(Ordering::Relaxed), 2);
        // Only the first failure is retried; after it each batch gets one
        // attempt, so lines are not held for long while the disk is full.
        assert_eq!(
            stats.retries.load(Ordering::Relaxed),
            writer::RETRY_DELAYS.len() as u64
        );
        assert_eq!(handle.take_lost(), [(first, second)]);
        assert!(handle.take_lost().is_empty());
        // Redacted while it could not be stored: it is not stored later.
        let redaction = handle.redact("lost2".to_owned()).unwrap();
        committed_reaches(&handle, redaction).await;
        disk_full.set(false);
        let third = handle.record(record("kept", 3, "#room"));
        committed_reaches(&handle, third).await;
        assert!(handle.take_lost().is_empty());
        history.shutdown();
        let store = Store::open_existing(db.path()).unwrap();
        assert!(store.contains("kept").unwrap());
        assert!(
            store.contains("lost1").unwrap(),
            "stored once the disk freed"
        );
        assert!(!store.contains("lost2").unwrap(), "redacted meanwhile");
    }

    #[test]
    fn a_startup_error_names_the_file() {
        let db = TempDb::new();
        std::fs::write(db.path(), vec![b'x'; 4096]).unwrap();
        let Err(error) = start(&settings(&db), "", &[], Hooks::default(), Metrics::new()) else {
            panic!("a file that is no database is refused");
        };
        let message = error.to_string();
        assert!(
            message.contains(&db.path().display().to_string()),
            "{message}"
        );
    }

    #[test]
    fn typing_notifications_are_not_kept_among_client_tags() {
        assert_eq!(storable_tags("+typing=active"), "");
        assert_eq!(storable_tags("+draft/typing=paused"), "");
        assert_eq!(
            storable_tags("+draft/reply=m1;+typing=active;+draft/react=x"),
            "+draft/reply=m1;+draft/react=x"
        );
        assert_eq!(storable_tags(""), "");
    }

    #[test]
    fn msgids_are_unique() {
        let ids = MsgIds::new();
        assert_ne!(ids.next(), ids.next());
    }
}
