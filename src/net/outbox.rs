//! The send queue between the core and one connection's write task. The core
//! pushes serialized lines without waiting; the queue is bounded in bytes.
//!
//! A line may carry the sequence number of a history record. The write task
//! sends lines in order only up to the first whose record is not committed
//! yet, so no client sees a line that a crash could take out of history.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

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
    /// Each line with the history sequence number it waits for (0: none).
    lines: VecDeque<(Bytes, u64)>,
    bytes: usize,
    /// Once set, no more lines are accepted; the writer sends what is queued,
    /// then this last line (if any), then shuts the socket down.
    closing: Option<Option<Bytes>>,
}

/// What the write task should do next.
pub(crate) enum Drained {
    /// Write these lines, then ask again.
    Lines,
    /// Write these lines; the next one waits for this history sequence
    /// number to be committed.
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
        self.push_durable(line, 0)
    }

    /// Queues a line that must not reach the client before history record
    /// `seq` is committed; 0 means it waits for nothing of its own. Lines
    /// behind it wait too, so the client's order is kept.
    pub fn push_durable(&self, line: Bytes, seq: u64) -> Result<(), Overflow> {
        let mut queue = self.lock();
        if queue.closing.is_some() {
            return Ok(());
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
        queue.lines.push_back((line, seq));
        drop(queue);
        if was_empty {
            self.wake.notify_one();
        }
        Ok(())
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

    /// Waits for lines or a close, and moves the queued lines whose history
    /// records are committed (sequence numbers up to `committed`) into
    /// `out`, stopping at the first that is not.
    pub(crate) async fn drain(&self, out: &mut Vec<Bytes>, committed: u64) -> Drained {
        loop {
            {
                let mut queue = self.lock();
                let mut waiting = None;
                while let Some((line, seq)) = queue.lines.pop_front() {
                    if seq > committed {
                        queue.lines.push_front((line, seq));
                        waiting = Some(seq);
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

    /// The history record each queued line waits for, in order.
    #[cfg(test)]
    pub(crate) fn queued_seqs(&self) -> Vec<u64> {
        self.lock().lines.iter().map(|(_, seq)| *seq).collect()
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

    #[tokio::test]
    async fn a_line_pushed_after_a_drain_wakes_the_writer() {
        let outbox = Arc::new(Outbox::new(100));
        outbox.push(Bytes::from_static(b"a\r\n")).unwrap();
        outbox.push(Bytes::from_static(b"b\r\n")).unwrap();
        let mut lines = Vec::new();
        outbox.drain(&mut lines, u64::MAX).await;
        let writer = {
            let outbox = Arc::clone(&outbox);
            tokio::spawn(async move {
                let mut lines = Vec::new();
                outbox.drain(&mut lines, u64::MAX).await;
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
        assert!(matches!(outbox.drain(&mut lines, 0).await, Drained::Lines));
        assert_eq!(lines.len(), 2);
        outbox.close(None);
        lines.clear();
        assert!(matches!(
            outbox.drain(&mut lines, 0).await,
            Drained::Close(None)
        ));
    }

    #[tokio::test]
    async fn drain_stops_at_the_first_uncommitted_line() {
        let outbox = Outbox::new(100);
        outbox.push(Bytes::from_static(b"a\r\n")).unwrap();
        outbox
            .push_durable(Bytes::from_static(b"b\r\n"), 7)
            .unwrap();
        outbox.push(Bytes::from_static(b"c\r\n")).unwrap();
        let mut lines = Vec::new();
        assert!(matches!(
            outbox.drain(&mut lines, 6).await,
            Drained::Waiting(7)
        ));
        assert_eq!(lines, [Bytes::from_static(b"a\r\n")]);
        // The waiting lines still count against the byte limit.
        assert_eq!(outbox.queued_bytes(), 6);
        lines.clear();
        assert!(matches!(outbox.drain(&mut lines, 7).await, Drained::Lines));
        assert_eq!(lines.len(), 2);
        assert_eq!(outbox.queued_bytes(), 0);
    }

    #[tokio::test]
    async fn a_close_waits_behind_an_uncommitted_line() {
        let outbox = Outbox::new(100);
        outbox
            .push_durable(Bytes::from_static(b"a\r\n"), 3)
            .unwrap();
        outbox.close(None);
        let mut lines = Vec::new();
        assert!(matches!(
            outbox.drain(&mut lines, 2).await,
            Drained::Waiting(3)
        ));
        assert!(lines.is_empty());
        assert!(matches!(
            outbox.drain(&mut lines, 3).await,
            Drained::Close(None)
        ));
        assert_eq!(lines.len(), 1);
    }

    #[tokio::test]
    async fn a_drained_queue_keeps_no_room() {
        let outbox = Outbox::new(1000);
        for _ in 0..20 {
            outbox.push(Bytes::from_static(b"a\r\n")).unwrap();
        }
        assert!(outbox.room() >= 20);
        let mut lines = Vec::new();
        outbox.drain(&mut lines, 0).await;
        assert_eq!(outbox.room(), 0);
    }
}
