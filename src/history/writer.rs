//! The writer thread: owns the write connection, commits whatever is queued
//! as one transaction (group commit), then publishes the watermark that lets
//! the connections send the lines those records carry.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{error, info, warn};

use super::backend::Backend;
use super::hooks::Hooks;
use super::journal::{self, Chunk};
use super::retention::Pruner;
use super::unstored::Unstored;
use super::{HistoryStats, LostRecords, Party, Record, StoreError};
use crate::metrics::Metrics;

/// What the writer is sent.
pub(crate) enum Job {
    /// Records with their sequence numbers, as the journal has them.
    Records(Chunk),
    /// Delete every private conversation this party took part in, after
    /// committing what came before (and before anything queued after),
    /// then move the watermark to the sequence number.
    Forget(u64, Party),
    /// Delete the line with this msgid (REDACT), in order with the records
    /// around it, then move the watermark to the sequence number.
    Redact(u64, String),
    /// Move a renamed room's lines, after committing what came before,
    /// then move the watermark to the sequence number.
    Rename(u64, super::RoomRename),
    /// Commit what came before, then stop.
    Stop,
}

/// The most records in one transaction, so one commit never grows unbounded.
const MAX_BATCH: usize = 10_000;
/// Kept lines stored per transaction: small, so one that fails again fails
/// fast and a statement timeout is out of reach.
const UNSTORED_BATCH: usize = 1_000;
/// How often kept lines are tried while no commit comes.
const RETRY_UNSTORED_EVERY: Duration = Duration::from_secs(5);
/// Failed tries in a row after which kept lines are given up.
const MAX_UNSTORED_TRIES: u32 = 100;
/// How long a batch waits for more records once its first arrived. No
/// line waits for the database (the journal made it durable), so a longer
/// batch costs nothing but this much lag for CHATHISTORY, and spares the
/// commits, each of which writes every page it touched.
const LINGER: Duration = Duration::from_millis(10);
/// Waits between attempts at a batch that failed to commit, while the
/// writer is healthy: a passing lock or I/O hiccup. Its lines wait that
/// long, so these stay short.
pub(crate) const RETRY_DELAYS: [Duration; 2] =
    [Duration::from_millis(10), Duration::from_millis(100)];

/// Starts the writer thread, counting into `metrics`.
pub(crate) fn spawn(
    mut writer: Writer,
    hooks: Hooks,
    metrics: Arc<Metrics>,
) -> std::io::Result<JoinHandle<()>> {
    writer.hooks = hooks;
    writer.metrics = metrics;
    std::thread::Builder::new()
        .name("history-writer".into())
        .spawn(move || writer.run())
}

pub(crate) struct Writer {
    store: Backend,
    jobs: Receiver<Job>,
    committed: watch::Sender<u64>,
    pruner: Pruner,
    stats: Arc<HistoryStats>,
    /// Where a batch that could not be committed is reported to the core.
    lost: Arc<LostRecords>,
    /// Whether the writer is degraded, for the server to tell operators.
    health: watch::Sender<bool>,
    /// Set after a batch failed for good, until a commit succeeds: while
    /// the disk is failing, each batch is tried once and its lines are
    /// released at once, so chat keeps flowing instead of waiting.
    degraded: bool,
    hooks: Hooks,
    /// Where commit times, failures and the queue's depth are counted.
    metrics: Arc<Metrics>,
    /// Records handed over and not yet taken into a batch: the bound the
    /// core checks before making another.
    queued: Arc<AtomicUsize>,
    /// Lines whose commit failed, to store once one succeeds.
    unstored: Unstored,
    /// Tries in a row at storing them that failed.
    unstored_tries: u32,
}

impl Writer {
    pub(crate) fn new(
        store: Backend,
        jobs: Receiver<Job>,
        committed: watch::Sender<u64>,
        pruner: Pruner,
        stats: Arc<HistoryStats>,
        lost: Arc<LostRecords>,
        health: watch::Sender<bool>,
    ) -> Writer {
        Writer {
            store,
            jobs,
            committed,
            pruner,
            stats,
            lost,
            health,
            degraded: false,
            hooks: Hooks::default(),
            // The server's own set is given by `spawn`.
            metrics: Metrics::new(),
            queued: Arc::default(),
            unstored: Unstored::default(),
            unstored_tries: 0,
        }
    }

    /// Counts the records it takes off `queued`, which the core adds to.
    pub(crate) fn with_queue(mut self, queued: Arc<AtomicUsize>) -> Writer {
        self.queued = queued;
        self
    }

    fn run(mut self) {
        let mut batch: Vec<(u64, Record)> = Vec::new();
        while let Some(first) = self.next_job() {
            // Group commit: take every record queued behind the first, up
            // to the first job of another kind.
            let mut next = Some(first);
            let linger_until = Instant::now() + LINGER;
            while let Some(Job::Records(chunk)) = next {
                journal::decode_chunk(&chunk.bytes, &mut batch);
                self.queued.fetch_sub(chunk.records, Ordering::Relaxed);
                next = if batch.len() < MAX_BATCH {
                    self.next_in_batch(linger_until)
                } else {
                    None
                };
            }
            if !batch.is_empty() {
                self.commit(&batch);
                batch.clear();
            }
            if matches!(
                next,
                Some(Job::Forget(..) | Job::Redact(..) | Job::Rename(..))
            ) {
                self.queued.fetch_sub(1, Ordering::Relaxed);
            }
            match next {
                Some(Job::Forget(seq, party)) => {
                    self.unstored.forget(&party);
                    self.forget(&party);
                    self.passed(seq);
                }
                Some(Job::Redact(seq, msgid)) => {
                    self.unstored.redact(&msgid);
                    self.redact(&msgid);
                    self.passed(seq);
                }
                Some(Job::Rename(seq, rename)) => {
                    self.unstored.rename(&rename);
                    self.rename(&rename);
                    self.passed(seq);
                }
                Some(Job::Stop) => {
                    self.store_unstored();
                    if !self.unstored.is_empty() {
                        let file = self.store.place();
                        error!(%file, lines = self.unstored.len(), "stopping with history lines that could not be stored; they are lost");
                    }
                    return;
                }
                Some(Job::Records(..)) | None => {}
            }
        }
    }

    /// Job `seq` (a deletion or a move) is done: the journal's checkpoint
    /// passes it, so a start never replays records from before it over
    /// what it changed (a batch lost before a dropped account's deletion
    /// must not bring its conversations back), and the watermark moves.
    fn passed(&mut self, seq: u64) {
        if let Err(error) = self.store.checkpoint_journal(seq) {
            let file = self.store.place();
            warn!(%error, %file, "noting the history journal's checkpoint failed");
        }
        self.committed.send_replace(seq);
    }

    /// The next job of a batch: one already queued, or one that comes
    /// before `until`; `None` once the queue is empty past it.
    fn next_in_batch(&mut self, until: Instant) -> Option<Job> {
        match self.jobs.try_recv() {
            Ok(job) => Some(job),
            Err(TryRecvError::Empty) => {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    None
                } else {
                    self.jobs.recv_timeout(left).ok()
                }
            }
            Err(TryRecvError::Disconnected) => None,
        }
    }

    /// Deletes a party's conversations; a failure is logged, not retried:
    /// the rows stay, as after any failed write.
    fn forget(&mut self, party: &Party) {
        match self.store.forget_party(party) {
            Ok(deleted) => info!(deleted, "history of a dropped account deleted"),
            Err(error) => {
                let file = self.store.place();
                error!(%error, %file, "deleting the history of a dropped account failed");
            }
        }
    }

    /// Deletes a redacted line; a failure is logged, not retried, as
    /// [`Writer::forget`]'s is.
    fn redact(&mut self, msgid: &str) {
        if let Err(error) = self.store.redact(msgid) {
            let file = self.store.place();
            error!(%error, %file, msgid, "deleting a redacted line failed");
        }
    }

    /// Moves a renamed room's lines; a failure is logged, not retried.
    fn rename(&mut self, rename: &super::RoomRename) {
        match self.store.rename_room(rename) {
            Ok(moved) => info!(moved, room = %rename.display, "history of a renamed room moved"),
            Err(error) => {
                let file = self.store.place();
                error!(%error, %file, "moving the history of a renamed room failed");
            }
        }
    }

    /// The next job, running retention steps while none is queued; `None`
    /// when every sender is gone.
    fn next_job(&mut self) -> Option<Job> {
        loop {
            let job = match self.pruner.next_due(Instant::now()) {
                // Pruning is due: take a job if one is waiting, else prune a step.
                None => match self.jobs.try_recv() {
                    Ok(job) => Ok(job),
                    Err(TryRecvError::Empty) => {
                        if let Err(error) = self.pruner.step(&mut self.store, Instant::now()) {
                            let file = self.store.place();
                            warn!(%error, %file, "history pruning failed; retrying later");
                        }
                        continue;
                    }
                    Err(TryRecvError::Disconnected) => Err(RecvTimeoutError::Disconnected),
                },
                Some(wait) if !self.unstored.is_empty() => {
                    self.jobs.recv_timeout(wait.min(RETRY_UNSTORED_EVERY))
                }
                Some(wait) => self.jobs.recv_timeout(wait),
            };
            match job {
                Ok(job) => return Some(job),
                Err(RecvTimeoutError::Timeout) => {
                    // A quiet server has no commit to follow: the kept
                    // lines are tried on their own now and then.
                    if !self.unstored.is_empty() {
                        self.retry_unstored();
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Commits a batch, then publishes the watermark. A failed commit is
    /// retried briefly while the writer is healthy; a batch that cannot be
    /// committed is counted, logged with the file's name, reported as lost
    /// (so playback drops its lines), and the watermark moves past it
    /// anyway: holding its lines would stop every conversation on the
    /// server. After such a failure the writer is degraded: each later
    /// batch gets one attempt, until one commits. Its time, retries
    /// included (its lines wait that long), goes to the metrics.
    fn commit(&mut self, batch: &[(u64, Record)]) {
        self.hooks.before_commit();
        let started = Instant::now();
        let mut gave_up = false;
        let lowest = batch.iter().map(|(seq, _)| *seq).min().unwrap_or(0);
        let highest = batch.iter().map(|(seq, _)| *seq).max().unwrap_or(0);
        let retries = if self.degraded { 0 } else { RETRY_DELAYS.len() };
        let mut attempt = 0;
        loop {
            match self.insert(batch) {
                Ok(()) => {
                    self.stats
                        .committed
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    self.store_unstored();
                    if std::mem::take(&mut self.degraded) {
                        let file = self.store.place();
                        info!(%file, "history commits succeed again; lines are stored");
                        self.health.send_replace(false);
                    }
                    break;
                }
                Err(error) if attempt < retries => {
                    let file = self.store.place();
                    warn!(%error, %file, records = batch.len(), "history commit failed; retrying");
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(RETRY_DELAYS[attempt]);
                    attempt += 1;
                }
                Err(error) => {
                    let file = self.store.place();
                    let failed = self
                        .stats
                        .failed
                        .fetch_add(batch.len() as u64, Ordering::Relaxed)
                        + batch.len() as u64;
                    if !self.degraded {
                        error!(
                            %error, %file, records = batch.len(),
                            "history commit failed; these records are lost, and until a commit succeeds lines are delivered without being stored"
                        );
                    } else if failed.is_power_of_two() {
                        error!(%error, %file, failed, "history commits still failing; records are lost");
                    }
                    if !std::mem::replace(&mut self.degraded, true) {
                        self.health.send_replace(true);
                    }
                    if lowest != 0 {
                        self.lost.add(lowest, highest);
                    }
                    self.unstored.keep(batch.iter().map(|(_, record)| record));
                    gave_up = true;
                    break;
                }
            }
        }
        let took = started.elapsed();
        self.metrics.history_committed(batch.len(), took, gave_up);
        self.committed.send_replace(highest);
    }

    /// Stores the lines kept through failed commits, a batch at a time;
    /// what fails again stays for the next try, [`MAX_UNSTORED_TRIES`]
    /// times in a row at most. The checkpoint is not moved: these lines
    /// are older than it.
    fn store_unstored(&mut self) -> bool {
        if self.unstored.is_empty() || self.hooks.disk_is_full() {
            return self.unstored.is_empty();
        }
        let dropped = self.unstored.take_dropped();
        if dropped > 0 {
            let file = self.store.place();
            error!(%file, lines = dropped, "too many history lines failed to commit; the oldest are lost");
        }
        let mut stored = 0;
        while !self.unstored.is_empty() {
            let records = self.unstored.take(UNSTORED_BATCH);
            match self.store.store_batch(&records, 0) {
                Ok(_) => stored += records.len(),
                Err(error) => {
                    let file = self.store.place();
                    self.unstored.put_back(records);
                    self.unstored_tries += 1;
                    if self.unstored_tries >= MAX_UNSTORED_TRIES {
                        let lines = self.unstored.take(usize::MAX).len();
                        error!(%error, %file, lines, "the lines of failed commits still cannot be stored; they are lost");
                        self.unstored_tries = 0;
                    } else if self.unstored_tries == 1 {
                        warn!(%error, %file, lines = self.unstored.len(), "storing the lines of failed commits failed; trying again later");
                    }
                    return false;
                }
            }
        }
        self.unstored_tries = 0;
        if stored > 0 {
            let file = self.store.place();
            info!(%file, lines = stored, "history lines whose commit had failed are stored");
        }
        true
    }

    /// Tries the kept lines while no commit comes: once they are stored,
    /// the database works again and the writer is no longer degraded.
    fn retry_unstored(&mut self) {
        if self.store_unstored() && std::mem::take(&mut self.degraded) {
            let file = self.store.place();
            info!(%file, "history commits succeed again; lines are stored");
            self.health.send_replace(false);
        }
    }

    fn insert(&mut self, batch: &[(u64, Record)]) -> Result<(), StoreError> {
        if self.hooks.disk_is_full() {
            return Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
                Some("database or disk is full".into()),
            )));
        }
        let highest = batch.iter().map(|(seq, _)| *seq).max().unwrap_or(0);
        self.store
            .store_batch(batch.iter().map(|(_, record)| record), highest)
            .map(|_| ())
    }
}
