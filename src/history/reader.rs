//! The reader thread: CHATHISTORY queries, answered off the core, and
//! the WAL checkpoints between them. Every query it accepts is answered
//! exactly once, even if it panics or the reader stops first.

use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{error, warn};

use super::StoreError;
use super::backend::Backend;
use super::hooks::Hooks;

/// How many queries may wait for the reader.
pub(super) const READ_QUEUE: usize = 1024;

/// A job for the reader thread.
pub(super) enum ReadJob {
    /// A query, and the last record made before it was asked: it runs once
    /// the database has that record, so it reads every line its asker may
    /// have been sent (a line goes out once in the journal, which can be
    /// before the database has it).
    Run(u64, Instant, Box<dyn ReadTask>),
    Stop,
}

/// A query waiting for the reader: its work and the reply owed for it.
pub(super) trait ReadTask: Send {
    /// Does the work and hands the answer to the reply.
    fn run(self: Box<Self>, store: &mut Backend);
    /// Drops the task without answering: the caller was told at once.
    fn refuse(self: Box<Self>);
}

struct Task<T, W> {
    work: W,
    reply: Reply<T>,
}

impl ReadJob {
    /// A query for the reader: `work` runs on it, `reply` gets the answer,
    /// or a failure if the task is dropped unanswered.
    pub(super) fn task<T: Send + 'static>(
        after: u64,
        work: impl FnOnce(&mut Backend) -> Result<T, StoreError> + Send + 'static,
        reply: impl FnOnce(Result<T, StoreError>) + Send + 'static,
    ) -> ReadJob {
        ReadJob::Run(
            after,
            Instant::now(),
            Box::new(Task {
                work,
                reply: Reply(Some(Box::new(reply))),
            }),
        )
    }
}

impl<T: Send, W: FnOnce(&mut Backend) -> Result<T, StoreError> + Send> ReadTask for Task<T, W> {
    fn run(self: Box<Self>, store: &mut Backend) {
        let Task { work, reply } = *self;
        reply.send(work(store));
    }

    fn refuse(self: Box<Self>) {
        self.reply.disarm();
    }
}

type ReplyFn<T> = Box<dyn FnOnce(Result<T, StoreError>) + Send>;

/// The answer owed to whoever asked: a reply dropped unanswered (its query
/// panicked, or the reader stopped with it queued) answers
/// [`StoreError::Stopped`], so no client waits forever for it.
struct Reply<T>(Option<ReplyFn<T>>);

impl<T> Reply<T> {
    fn send(mut self, answer: Result<T, StoreError>) {
        if let Some(reply) = self.0.take() {
            reply(answer);
        }
    }

    fn disarm(mut self) {
        self.0 = None;
    }
}

impl<T> Drop for Reply<T> {
    fn drop(&mut self) {
        if let Some(reply) = self.0.take() {
            reply(Err(StoreError::Stopped));
        }
    }
}

/// Drops a job the reader never took, without answering it.
pub(super) fn refuse(job: ReadJob) {
    if let ReadJob::Run(_, _, task) = job {
        task.refuse();
    }
}

/// How often the reader copies the WAL into the database file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);
/// The longest a query waits for the writer to store what came before it
/// (a batch's linger and commit, a few milliseconds); past it (a stalled
/// disk) it reads what is there rather than keep its asker waiting.
const CATCH_UP: Duration = Duration::from_millis(500);

/// Waits until the database has record `after`, at most until
/// [`CATCH_UP`] after the query was asked: queries waiting behind a stalled
/// writer time out together, not one after another.
fn catch_up(
    runtime: &tokio::runtime::Runtime,
    committed: &mut watch::Receiver<u64>,
    after: u64,
    asked: Instant,
) {
    let left = CATCH_UP.saturating_sub(asked.elapsed());
    if *committed.borrow() >= after || left.is_zero() {
        return;
    }
    let reached = committed.wait_for(|&seq| seq >= after);
    // A stopped writer (an error) will store nothing more: read now.
    let _ = runtime.block_on(async { tokio::time::timeout(left, reached).await });
}

/// Answers queries and, between them, checkpoints the WAL for the writer.
/// A query that panics is answered as failed (its [`Reply`] is dropped)
/// and the reader goes on with the next.
pub(super) fn read_loop(
    store: &mut Backend,
    jobs: &mpsc::Receiver<ReadJob>,
    mut committed: watch::Receiver<u64>,
    hooks: &Hooks,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            error!(%error, "the history reader cannot wait for the writer; it stops");
            return;
        }
    };
    let mut last_checkpoint = Instant::now();
    loop {
        let wait = CHECKPOINT_INTERVAL.saturating_sub(last_checkpoint.elapsed());
        match jobs.recv_timeout(wait) {
            Ok(ReadJob::Run(after, asked, task)) => {
                catch_up(&runtime, &mut committed, after, asked);
                let run = AssertUnwindSafe(|| {
                    assert!(!hooks.panic_queries(), "a query panicked on purpose");
                    task.run(store);
                });
                if panic::catch_unwind(run).is_err() {
                    error!("a history query panicked; it was answered as failed");
                }
            }
            Ok(ReadJob::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {}
        }
        if last_checkpoint.elapsed() >= CHECKPOINT_INTERVAL {
            if let Err(error) = store.checkpoint() {
                warn!(%error, file = %store.place(), "history checkpoint failed; retrying later");
            }
            last_checkpoint = Instant::now();
        }
    }
}
