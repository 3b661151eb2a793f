//! Account metadata's reads and writes, in the order the core asked for
//! them, on a task of their own so that logins never wait behind them. A
//! login's read comes after every write queued before it, so it finds
//! what the connection wrote meanwhile.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tracing::error;

use crate::accounts::{Naming, Store};
use crate::core::{ClientId, Event, MetadataRequest};

/// Changes waiting at most: past it a change is dropped (and logged), so a
/// stalled disk cannot grow the queue without end. A login's read is
/// always queued: logins are bounded by the account jobs already.
pub const MAX_PENDING_CHANGES: usize = 4096;

/// What is waiting to be done, in order.
#[derive(Debug, Default)]
pub struct MetadataQueue {
    requests: VecDeque<MetadataRequest>,
    changes: usize,
    closed: bool,
}

impl MetadataQueue {
    /// Queues `request`; false when a change was dropped because the
    /// queue is full.
    pub fn push(&mut self, request: MetadataRequest) -> bool {
        if matches!(request, MetadataRequest::Change { .. }) {
            if self.changes >= MAX_PENDING_CHANGES {
                return false;
            }
            self.changes += 1;
        }
        self.requests.push_back(request);
        true
    }

    /// Everything queued, in order, emptying the queue.
    fn take(&mut self) -> Vec<MetadataRequest> {
        self.changes = 0;
        self.requests.drain(..).collect()
    }
}

/// The handle the worker keeps.
pub struct MetadataWriter {
    queue: Arc<Mutex<MetadataQueue>>,
    wake: Arc<Notify>,
    task: JoinHandle<()>,
}

impl MetadataWriter {
    /// Starts the task on the store at `path`; loaded metadata goes to `core`.
    pub fn start(path: PathBuf, naming: Naming, core: mpsc::Sender<Event>) -> MetadataWriter {
        let queue = Arc::new(Mutex::new(MetadataQueue::default()));
        let wake = Arc::new(Notify::new());
        let task = tokio::spawn(run(
            Arc::clone(&queue),
            Arc::clone(&wake),
            (path, naming),
            core,
        ));
        MetadataWriter { queue, wake, task }
    }

    /// Queues a read or a change.
    pub fn request(&self, request: MetadataRequest) {
        let queued = self.with_queue(|queue| queue.push(request));
        if !queued {
            error!("account metadata: {MAX_PENDING_CHANGES} changes waiting, one dropped");
        }
    }

    /// Does what is pending, then stops.
    pub async fn finish(self) {
        self.with_queue(|queue| queue.closed = true);
        if let Err(error) = self.task.await {
            error!("the account metadata writer failed: {error}");
        }
    }

    fn with_queue<T>(&self, change: impl FnOnce(&mut MetadataQueue) -> T) -> T {
        let out = change(&mut self.queue.lock().unwrap_or_else(PoisonError::into_inner));
        self.wake.notify_one();
        out
    }
}

async fn run(
    queue: Arc<Mutex<MetadataQueue>>,
    wake: Arc<Notify>,
    (path, naming): (PathBuf, Naming),
    core: mpsc::Sender<Event>,
) {
    loop {
        let batch = {
            let mut queue = queue.lock().unwrap_or_else(PoisonError::into_inner);
            let batch = queue.take();
            if batch.is_empty() && queue.closed {
                return;
            }
            batch
        };
        if batch.is_empty() {
            wake.notified().await;
            continue;
        }
        let path = path.clone();
        let loaded = tokio::task::spawn_blocking(move || apply(&path, naming, batch)).await;
        match loaded {
            Ok(loaded) => {
                for (id, account, values) in loaded {
                    let _ = core
                        .send(Event::MetadataLoaded {
                            id,
                            account,
                            values,
                        })
                        .await;
                }
            }
            Err(error) => error!("the account metadata writer failed: {error}"),
        }
    }
}

/// What one login read: the client, the account and its keys.
type Loaded = (ClientId, String, Vec<(String, String)>);

/// Does `batch` in order; returns what the logins read.
fn apply(path: &std::path::Path, naming: Naming, batch: Vec<MetadataRequest>) -> Vec<Loaded> {
    let mut store = match Store::open(path, naming) {
        Ok(store) => store,
        Err(error) => {
            error!("account metadata: {error}");
            return Vec::new();
        }
    };
    let mut loaded = Vec::new();
    for request in batch {
        match request {
            MetadataRequest::Change { account, change } => {
                if let Err(error) = store.change_metadata(&account, &[change]) {
                    error!(account, "account metadata not stored: {error}");
                }
            }
            MetadataRequest::Load { id, account } => match store.metadata(&account) {
                Ok(values) => loaded.push((id, account, values)),
                Err(error) => error!(account, "account metadata not read: {error}"),
            },
        }
    }
    loaded
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::MetadataChange;

    fn change(n: usize) -> MetadataRequest {
        MetadataRequest::Change {
            account: "alice".into(),
            change: MetadataChange::Set {
                key: format!("k{n}"),
                value: None,
            },
        }
    }

    #[test]
    fn changes_past_the_bound_are_dropped_but_a_login_still_reads() {
        let mut queue = MetadataQueue::default();
        for n in 0..MAX_PENDING_CHANGES {
            assert!(queue.push(change(n)));
        }
        assert!(!queue.push(change(0)));
        let load = MetadataRequest::Load {
            id: ClientId(1),
            account: "alice".into(),
        };
        assert!(queue.push(load));
        let taken = queue.take();
        assert_eq!(taken.len(), MAX_PENDING_CHANGES + 1);
        assert!(matches!(taken.last(), Some(MetadataRequest::Load { .. })));
        assert!(queue.push(change(0)), "taking the queue frees its room");
    }
}
