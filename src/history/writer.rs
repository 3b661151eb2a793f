//! The writer thread: owns the write connection, commits whatever is queued
//! as one transaction (group commit), then publishes the watermark that lets
//! the connections send the lines those records carry.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{error, warn};

use super::retention::Pruner;
use super::{HistoryStats, Record, Store};

/// What the writer is sent.
pub(crate) enum Job {
    /// A record and its sequence number. Boxed: the queue's slots are
    /// allocated up front, and most of them stay empty.
    Record(u64, Box<Record>),
    /// Commit what came before, then stop.
    Stop,
}

/// The most records in one transaction, so one commit never grows unbounded.
const MAX_BATCH: usize = 10_000;
/// Waits between attempts at a batch that failed to commit.
const RETRY_DELAYS: [Duration; 3] = [
    Duration::from_millis(10),
    Duration::from_millis(100),
    Duration::from_secs(1),
];

/// Starts the writer thread.
pub(crate) fn spawn(
    store: Store,
    jobs: Receiver<Job>,
    committed: watch::Sender<u64>,
    pruner: Pruner,
    stats: Arc<HistoryStats>,
    pause: Option<CommitPause>,
) -> std::io::Result<JoinHandle<()>> {
    let writer = Writer {
        store,
        jobs,
        committed,
        pruner,
        stats,
        pause,
    };
    std::thread::Builder::new()
        .name("history-writer".into())
        .spawn(move || writer.run())
}

struct Writer {
    store: Store,
    jobs: Receiver<Job>,
    committed: watch::Sender<u64>,
    pruner: Pruner,
    stats: Arc<HistoryStats>,
    pause: Option<CommitPause>,
}

impl Writer {
    fn run(mut self) {
        let mut batch: Vec<(u64, Box<Record>)> = Vec::new();
        loop {
            let Some(first) = self.next_job() else {
                return;
            };
            let mut stop = false;
            match first {
                Job::Record(seq, record) => batch.push((seq, record)),
                Job::Stop => stop = true,
            }
            // Group commit: take everything queued behind the first.
            while !stop && batch.len() < MAX_BATCH {
                match self.jobs.try_recv() {
                    Ok(Job::Record(seq, record)) => batch.push((seq, record)),
                    Ok(Job::Stop) => stop = true,
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            if !batch.is_empty() {
                self.commit(&batch);
                batch.clear();
            }
            if stop {
                return;
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
                            warn!(%error, "history pruning failed; retrying later");
                        }
                        continue;
                    }
                    Err(TryRecvError::Disconnected) => Err(RecvTimeoutError::Disconnected),
                },
                Some(wait) => self.jobs.recv_timeout(wait),
            };
            match job {
                Ok(job) => return Some(job),
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Commits a batch, retrying a few times, then publishes the watermark.
    /// A batch that cannot be committed is counted and logged, and the
    /// watermark moves past it anyway: holding its lines forever would stop
    /// every conversation on the server.
    fn commit(&mut self, batch: &[(u64, Box<Record>)]) {
        if let Some(pause) = &self.pause {
            pause.wait();
        }
        let highest = batch.iter().map(|(seq, _)| *seq).max().unwrap_or(0);
        let mut attempt = 0;
        loop {
            match self
                .store
                .insert_batch(batch.iter().map(|(_, record)| &**record))
            {
                Ok(_) => {
                    self.stats
                        .committed
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    break;
                }
                Err(error) if attempt < RETRY_DELAYS.len() => {
                    warn!(%error, records = batch.len(), "history commit failed; retrying");
                    std::thread::sleep(RETRY_DELAYS[attempt]);
                    attempt += 1;
                }
                Err(error) => {
                    error!(%error, records = batch.len(), "history commit failed; these records are lost");
                    self.stats
                        .failed
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    break;
                }
            }
        }
        self.committed.send_replace(highest);
    }
}

/// Holds the writer before each commit while paused, so tests can watch
/// lines wait for their record.
#[derive(Clone, Debug, Default)]
pub struct CommitPause {
    paused: Arc<(Mutex<bool>, Condvar)>,
}

impl CommitPause {
    pub fn pause(&self) {
        *self.lock() = true;
    }

    pub fn resume(&self) {
        *self.lock() = false;
        self.paused.1.notify_all();
    }

    fn wait(&self) {
        let mut paused = self.lock();
        while *paused {
            paused = self
                .paused
                .1
                .wait(paused)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, bool> {
        self.paused
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
