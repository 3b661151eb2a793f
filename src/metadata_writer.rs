//! Account metadata's reads and writes, in the order the core asked for
//! them, on a task of their own so that logins and other account jobs
//! never wait behind them. A login's read comes after every write queued
//! before it, so it finds what the connection wrote meanwhile.

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::error;

use crate::accounts::{Accounts, Naming, Place};
use crate::core::{ClientId, Event, MetadataRequest};

/// Requests waiting at most: the core queues without waiting, and past it
/// a request is dropped and logged ([`crate::core::AdminState`]), so a
/// stalled disk cannot grow the queue without end.
pub const MAX_PENDING: usize = 4096;

/// The core's end of the queue, and the writer's.
pub fn queue() -> (
    mpsc::Sender<MetadataRequest>,
    mpsc::Receiver<MetadataRequest>,
) {
    mpsc::channel(MAX_PENDING)
}

/// Starts the task on the account tables at `place`; loaded metadata goes to
/// `core`. It does what is queued and ends once the core's end is gone.
pub fn start(
    place: Place,
    naming: Naming,
    requests: mpsc::Receiver<MetadataRequest>,
    core: mpsc::Sender<Event>,
) -> JoinHandle<()> {
    tokio::spawn(run(place, naming, requests, core))
}

async fn run(
    place: Place,
    naming: Naming,
    mut requests: mpsc::Receiver<MetadataRequest>,
    core: mpsc::Sender<Event>,
) {
    while let Some(first) = requests.recv().await {
        let mut batch = vec![first];
        while let Ok(next) = requests.try_recv() {
            batch.push(next);
        }
        let place = place.clone();
        let loaded = tokio::task::spawn_blocking(move || apply(&place, naming, batch)).await;
        match loaded {
            Ok(loaded) => {
                for (id, account, values) in loaded {
                    let event = Event::MetadataLoaded {
                        id,
                        account,
                        values,
                    };
                    let _ = core.send(event).await;
                }
            }
            Err(error) => error!("the account metadata writer failed: {error}"),
        }
    }
}

/// What one login read: the client, the account and its keys.
type Loaded = (ClientId, String, Vec<(String, String)>);

/// Does `batch` in order; returns what the logins read.
fn apply(place: &Place, naming: Naming, batch: Vec<MetadataRequest>) -> Vec<Loaded> {
    let mut store = match Accounts::open(place, naming) {
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
