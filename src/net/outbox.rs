//! The send queue between the core and one connection's write task. The core
//! pushes serialized lines without waiting; the queue is bounded in bytes.
//!
//! A line may carry a [`Gate`]: the history record it waits for. The write
//! task sends lines in order only up to the first whose record is not
//! durable yet, so no client sees a line that a crash could take out of
//! history.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// What a line waits for before it may be written: nothing, a history
/// record reaching the journal the core appends to (most stored lines), or
/// work reaching the database itself (a redaction, a rename, a record
/// under `sync = "full"`). One word: the kind is the top bit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gate(u64);

impl Gate {
    const STORE: u64 = 1 << 63;
    /// Waits for nothing.
    pub const NONE: Gate = Gate(0);

    /// Waits until record `seq` is in the journal (or the database); 0 is
    /// [`Gate::NONE`].
    pub fn journal(seq: u64) -> Gate {
        Gate(seq & !Gate::STORE)
    }

    /// Waits until the database has done job `seq`; 0 is [`Gate::NONE`].
    pub fn store(seq: u64) -> Gate {
        if seq == 0 {
            Gate::NONE
        } else {
            Gate(seq | Gate::STORE)
        }
    }

    fn seq(self) -> u64 {
        self.0 & !Gate::STORE
    }

    fn is_store(self) -> bool {
        self.0 & Gate::STORE != 0
    }

    /// A gate that opens only once both have: a labeled reply holding
    /// lines of several events waits for the last. The database having
    /// done job `n` implies every record up to `n` is stored, so a mixed
    /// pair waits for the database to reach the higher number.
    pub fn and(self, other: Gate) -> Gate {
        match (self.is_store(), other.is_store()) {
            (false, false) => Gate(self.0.max(other.0)),
            _ => Gate::store(self.seq().max(other.seq())),
        }
    }

    /// Whether the line may go, given how far the journal and the database
    /// have come: a record in the database is durable whether or not the
    /// journal has it yet.
    fn open(self, journaled: u64, stored: u64) -> bool {
        let seq = self.seq();
        if self.is_store() {
            seq <= stored
        } else {
            seq <= journaled || seq <= stored
        }
    }
}

/// How far history has come, as a connection's write task sees it: the
/// journal's mark, which the core moves (and then wakes the outboxes whose
/// lines waited for it), and the database's, read from the writer's watch.
#[derive(Clone, Debug)]
pub struct Watermarks {
    pub journaled: Arc<AtomicU64>,
    pub stored: tokio::sync::watch::Receiver<u64>,
}

impl Watermarks {
    /// Marks for a server without history: nothing is ever gated.
    pub fn none() -> Watermarks {
        Watermarks {
            journaled: Arc::new(AtomicU64::new(u64::MAX)),
            stored: tokio::sync::watch::channel(u64::MAX).1,
        }
    }
}

/// What a push asks of the pusher, besides queuing the line.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Nothing more.
    Queued,
    /// The line waits for the journal, and this outbox's writer was not
    /// woken: call [`Outbox::release`] once the journal has the record.
    /// Asked once per outbox between releases.
    ReleaseOwed,
}

/// Returned by [`Outbox::push`] when the queue passed its byte limit; the
/// connection is then already closing.
#[derive(Debug, PartialEq, Eq)]
pub struct Overflow;

/// One client's outbound half, shared by the core and the connection tasks.
#[derive(Debug)]
pub struct Outbox {
    queue: Mutex<Queue>,
    wake: Notify,
    limit: usize,
    /// Set by the core when registration completes; read by the timeout logic.
    registered: AtomicBool,
    /// Set by the core for operators exempt from flood control.
    flood_exempt: AtomicBool,
    /// Cancelled when the connection must stop reading and writing at once.
    stop: CancellationToken,
}

#[derive(Debug, Default)]
struct Queue {
    /// Each line with what it waits for.
    lines: VecDeque<(Bytes, Gate)>,
    bytes: usize,
    /// A line waiting for the journal was queued since the last release,
    /// and the writer will be woken by that release.
    release_owed: bool,
    /// Once set, no more lines are accepted; the writer sends what is queued,
    /// then this last line (if any), then shuts the socket down.
    closing: Option<Option<Bytes>>,
}

/// What the write task should do next.
pub(crate) enum Drained {
    /// Write these lines, then ask again.
    Lines,
    /// Write these lines; the next one waits for the database to reach
    /// this sequence number.
    Waiting(u64),
    /// Write these lines, then this final line (if any), then close.
    Close(Option<Bytes>),
}

impl Outbox {
    /// A queue that holds at most `limit` bytes of unsent lines.
    pub fn new(limit: usize) -> Outbox {
        Outbox {
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
            limit,
            registered: AtomicBool::new(false),
            flood_exempt: AtomicBool::new(false),
            stop: CancellationToken::new(),
        }
    }

    /// Queues one line. Past the byte limit the queue is dropped and the
    /// connection closes with "SendQ exceeded".
    pub fn push(&self, line: Bytes) -> Result<(), Overflow> {
        self.push_durable(line, Gate::NONE).map(|_| ())
    }

    /// Queues a line that must not reach the client before its `gate`
    /// opens. Lines behind it wait too, so the client's order is kept. A
    /// line waiting for the journal does not wake the writer: the core
    /// appends a batch of records to the journal, then releases every
    /// outbox that owes a wake, so a burst costs one wake per client and
    /// the writer never wakes to find its line still closed.
    pub fn push_durable(&self, line: Bytes, gate: Gate) -> Result<Pushed, Overflow> {
        let mut queue = self.lock();
        if queue.closing.is_some() {
            return Ok(Pushed::Queued);
        }
        if queue.bytes + line.len() > self.limit {
            queue.lines.clear();
            queue.bytes = 0;
            queue.closing = Some(Some(Bytes::from_static(b"ERROR :SendQ exceeded\r\n")));
            drop(queue);
            // The writer may be stuck on a socket nobody reads: stop it now.
            self.stop.cancel();
            return Err(Overflow);
        }
        // The writer takes every queued line at once and sleeps only on an
        // empty queue, so only the first line after a drain needs to wake it;
        // a fan-out then costs one wake per member per burst, not per line.
        let was_empty = queue.lines.is_empty();
        queue.bytes += line.len();
        queue.lines.push_back((line, gate));
        if gate != Gate::NONE && !gate.is_store() {
            let first = !std::mem::replace(&mut queue.release_owed, true);
            return Ok(if first {
                Pushed::ReleaseOwed
            } else {
                Pushed::Queued
            });
        }
        // A line queued behind one that waits for the journal is woken for
        // by that line's release.
        let wake = was_empty && !queue.release_owed;
        drop(queue);
        if wake {
            self.wake.notify_one();
        }
        Ok(Pushed::Queued)
    }

    /// Wakes the writer for the lines that waited for the journal, which
    /// now has their records (the pusher moved the journal's mark first).
    pub fn release(&self) {
        self.lock().release_owed = false;
        self.wake.notify_one();
    }

    /// Sends what is queued, then `last`, then closes the connection.
    pub fn close(&self, last: Option<Bytes>) {
        let mut queue = self.lock();
        if queue.closing.is_none() {
            queue.closing = Some(last);
        }
        drop(queue);
        self.wake.notify_one();
    }

    /// True once the core or an overflow has closed this connection.
    pub fn is_closing(&self) -> bool {
        self.lock().closing.is_some()
    }

    /// Bytes waiting to be written.
    pub fn queued_bytes(&self) -> usize {
        self.lock().bytes
    }

    /// The byte limit past which the connection is closed.
    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn set_registered(&self) {
        self.registered.store(true, Ordering::Relaxed);
    }

    pub fn is_registered(&self) -> bool {
        self.registered.load(Ordering::Relaxed)
    }

    pub fn set_flood_exempt(&self, exempt: bool) {
        self.flood_exempt.store(exempt, Ordering::Relaxed);
    }

    pub fn is_flood_exempt(&self) -> bool {
        self.flood_exempt.load(Ordering::Relaxed)
    }

    pub(crate) fn stop_token(&self) -> &CancellationToken {
        &self.stop
    }

    /// Waits for lines or a close, and moves the queued lines whose gates
    /// are open into `out`, stopping at the first that is not. `journaled`
    /// is read under the queue's lock: a line the core queued before
    /// moving the mark and releasing this outbox is seen with the new mark.
    /// `stored` is the database's mark as the caller last saw it.
    pub(crate) async fn drain(
        &self,
        out: &mut Vec<Bytes>,
        journaled: &AtomicU64,
        stored: u64,
    ) -> Drained {
        loop {
            {
                let mut queue = self.lock();
                let journaled = journaled.load(Ordering::Acquire);
                let mut waiting = None;
                while let Some((line, gate)) = queue.lines.pop_front() {
                    if !gate.open(journaled, stored) {
                        // Waiting for the journal is waiting for a release:
                        // as if the queue ended here.
                        if gate.is_store() {
                            waiting = Some(gate.seq());
                        }
                        queue.lines.push_front((line, gate));
                        break;
                    }
                    queue.bytes -= line.len();
                    out.push(line);
                }
                // An idle client keeps no room for lines: most clients are
                // idle most of the time, and a burst's room is a few
                // hundred bytes each.
                if queue.lines.is_empty() && queue.lines.capacity() > 0 {
                    queue.lines = VecDeque::new();
                }
                match (waiting, &queue.closing) {
                    (Some(seq), _) => return Drained::Waiting(seq),
                    // The close waits behind lines still held.
                    (None, Some(_)) if !queue.lines.is_empty() => {
                        if !out.is_empty() {
                            return Drained::Lines;
                        }
                    }
                    (None, Some(last)) => return Drained::Close(last.clone()),
                    (None, None) if !out.is_empty() => return Drained::Lines,
                    (None, None) => {}
                }
            }
            self.wake.notified().await;
        }
    }

    /// Takes every queued line without a writer task, so core tests can read
    /// what a client was sent.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn take_lines(&self) -> Vec<Bytes> {
        let mut queue = self.lock();
        queue.bytes = 0;
        queue.lines.drain(..).map(|(line, _)| line).collect()
    }

    /// What each queued line waits for, in order.
    #[cfg(test)]
    pub(crate) fn queued_gates(&self) -> Vec<Gate> {
        self.lock().lines.iter().map(|(_, gate)| *gate).collect()
    }

    /// Lines the queue has room for, used or not.
    #[cfg(test)]
    pub(crate) fn room(&self) -> usize {
        self.lock().lines.capacity()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // A panic while holding this lock cannot leave the queue inconsistent.
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn push_past_the_limit_closes_with_sendq_exceeded() {
        let outbox = Outbox::new(10);
        assert_eq!(outbox.push(Bytes::from_static(b"12345\r\n")), Ok(()));
        assert_eq!(outbox.push(Bytes::from_static(b"12345\r\n")), Err(Overflow));
        assert!(outbox.is_closing());
        assert_eq!(outbox.queued_bytes(), 0);
        assert!(outbox.stop_token().is_cancelled());
    }

    #[test]
    fn take_lines_empties_the_queue() {
        let outbox = Outbox::new(100);
        outbox.push(Bytes::from_static(b"a\r\n")).unwrap();
        assert_eq!(outbox.take_lines(), [Bytes::from_static(b"a\r\n")]);
        assert_eq!(outbox.queued_bytes(), 0);
    }

    /// Marks that let everything through.
    fn open() -> AtomicU64 {
        AtomicU64::new(u64::MAX)
    }

    #[tokio::test]
    async fn a_line_pushed_after_a_drain_wakes_the_writer() {
        let outbox = Arc::new(Outbox::new(100));
        outbox.push(Bytes::from_static(b"a\r\n")).unwrap();
        outbox.push(Bytes::from_static(b"b\r\n")).unwrap();
        let mut lines = Vec::new();
        outbox.drain(&mut lines, &open(), u64::MAX).await;
        let writer = {
            let outbox = Arc::clone(&outbox);
            tokio::spawn(async move {
                let mut lines = Vec::new();
                outbox.drain(&mut lines, &open(), u64::MAX).await;
                lines
            })
        };
        tokio::task::yield_now().await;
        outbox.push(Bytes::from_static(b"c\r\n")).unwrap();
        let lines = tokio::time::timeout(std::time::Duration::from_secs(5), writer)
            .await
            .expect("the writer wakes")
            .unwrap();
        assert_eq!(lines, [Bytes::from_static(b"c\r\n")]);
    }

    #[tokio::test]
    async fn drain_takes_every_queued_line_at_once() {
        let outbox = Outbox::new(100);
        outbox.push(Bytes::from_static(b"a\r\n")).unwrap();
        outbox.push(Bytes::from_static(b"b\r\n")).unwrap();
        let mut lines = Vec::new();
        let drained = outbox.drain(&mut lines, &open(), 0).await;
        assert!(matches!(drained, Drained::Lines));
        assert_eq!(lines.len(), 2);
        outbox.close(None);
        lines.clear();
        let drained = outbox.drain(&mut lines, &open(), 0).await;
        assert!(matches!(drained, Drained::Close(None)));
    }

    #[tokio::test]
    async fn drain_stops_at_the_first_line_the_database_has_not_reached() {
        let outbox = Outbox::new(100);
        outbox.push(Bytes::from_static(b"a\r\n")).unwrap();
        let pushed = outbox.push_durable(Bytes::from_static(b"b\r\n"), Gate::store(7));
        assert_eq!(pushed, Ok(Pushed::Queued));
        outbox.push(Bytes::from_static(b"c\r\n")).unwrap();
        let mut lines = Vec::new();
        let drained = outbox.drain(&mut lines, &open(), 6).await;
        assert!(matches!(drained, Drained::Waiting(7)));
        assert_eq!(lines, [Bytes::from_static(b"a\r\n")]);
        // The waiting lines still count against the byte limit.
        assert_eq!(outbox.queued_bytes(), 6);
        lines.clear();
        let drained = outbox.drain(&mut lines, &open(), 7).await;
        assert!(matches!(drained, Drained::Lines));
        assert_eq!(lines.len(), 2);
        assert_eq!(outbox.queued_bytes(), 0);
    }

    #[tokio::test]
    async fn a_close_waits_behind_a_line_the_database_has_not_reached() {
        let outbox = Outbox::new(100);
        outbox
            .push_durable(Bytes::from_static(b"a\r\n"), Gate::store(3))
            .unwrap();
        outbox.close(None);
        let mut lines = Vec::new();
        let drained = outbox.drain(&mut lines, &open(), 2).await;
        assert!(matches!(drained, Drained::Waiting(3)));
        assert!(lines.is_empty());
        let drained = outbox.drain(&mut lines, &open(), 3).await;
        assert!(matches!(drained, Drained::Close(None)));
        assert_eq!(lines.len(), 1);
    }

    #[tokio::test]
    async fn a_line_waiting_for_the_journal_goes_once_released() {
        let outbox = Arc::new(Outbox::new(100));
        let journaled = Arc::new(AtomicU64::new(4));
        outbox.push(Bytes::from_static(b"before\r\n")).unwrap();
        let first = outbox.push_durable(Bytes::from_static(b"held\r\n"), Gate::journal(5));
        assert_eq!(first, Ok(Pushed::ReleaseOwed));
        let second = outbox.push_durable(Bytes::from_static(b"also\r\n"), Gate::journal(6));
        assert_eq!(second, Ok(Pushed::Queued), "one release per outbox");
        outbox.push(Bytes::from_static(b"behind\r\n")).unwrap();
        let writer = {
            let (outbox, journaled) = (Arc::clone(&outbox), Arc::clone(&journaled));
            tokio::spawn(async move {
                let mut before = Vec::new();
                outbox.drain(&mut before, &journaled, 0).await;
                // Nothing more may pass until the journal has record 6.
                let mut lines = Vec::new();
                outbox.drain(&mut lines, &journaled, 0).await;
                (before.len(), lines)
            })
        };
        tokio::task::yield_now().await;
        journaled.store(6, Ordering::Release);
        outbox.release();
        let (before, lines) = tokio::time::timeout(std::time::Duration::from_secs(5), writer)
            .await
            .expect("the release wakes the writer")
            .unwrap();
        assert_eq!(before, 1);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines[2], Bytes::from_static(b"behind\r\n"));
    }

    #[tokio::test]
    async fn a_close_waits_behind_a_line_held_for_the_journal() {
        let outbox = Outbox::new(100);
        let journaled = AtomicU64::new(0);
        outbox
            .push_durable(Bytes::from_static(b"a\r\n"), Gate::journal(1))
            .unwrap();
        outbox.close(None);
        let mut lines = Vec::new();
        let early = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            outbox.drain(&mut lines, &journaled, 0),
        )
        .await;
        assert!(early.is_err(), "the close does not pass the held line");
        journaled.store(1, Ordering::Release);
        outbox.release();
        let drained = outbox.drain(&mut lines, &journaled, 0).await;
        assert!(matches!(drained, Drained::Close(None)));
        assert_eq!(lines.len(), 1, "the line, then the close");
    }

    #[test]
    fn a_record_in_the_database_opens_its_journal_gate_too() {
        assert!(Gate::journal(5).open(4, 5));
        assert!(Gate::journal(5).open(5, 0));
        assert!(!Gate::journal(5).open(4, 4));
        assert!(
            !Gate::store(5).open(9, 4),
            "the journal is not the database"
        );
        assert_eq!(Gate::store(0), Gate::NONE);
        assert_eq!(Gate::journal(3).and(Gate::journal(7)), Gate::journal(7));
        assert_eq!(Gate::journal(9).and(Gate::store(2)), Gate::store(9));
        assert_eq!(Gate::NONE.and(Gate::journal(2)), Gate::journal(2));
    }

    #[tokio::test]
    async fn a_drained_queue_keeps_no_room() {
        let outbox = Outbox::new(1000);
        for _ in 0..20 {
            outbox.push(Bytes::from_static(b"a\r\n")).unwrap();
        }
        assert!(outbox.room() >= 20);
        let mut lines = Vec::new();
        outbox.drain(&mut lines, &open(), 0).await;
        assert_eq!(outbox.room(), 0);
    }
}
