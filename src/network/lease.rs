//! Each node's lease in JetStream: a key per node, written with every
//! heartbeat. A write needs the quorum of the bucket's NATS servers, so a
//! node that can still reach its own NATS server but is on the minority
//! side of a split of the NATS cluster cannot renew it, and knows, after a
//! node timeout, that the other side may have split it off.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use tokio::time::Instant;

use super::claims;

/// The bucket of node leases.
pub const BUCKET: &str = "rookery_leases";

/// How a renewal of this node's lease went.
#[derive(Debug)]
pub enum Renewal {
    /// Written; it was sent `took` before it was known to be written, so
    /// the lease holds from then.
    Renewed { took: Duration },
    /// Not written in time (no quorum, no stream leader, no link).
    Failed(String),
}

/// A node's key: its name in hex, as a claim's key is the nick's.
pub fn key(node: &str) -> String {
    claims::key(node)
}

/// Opens the bucket, creating it with `replicas` copies (or one, on a
/// server that is not clustered) when it does not exist yet.
pub async fn open(
    jetstream: &jetstream::Context,
    replicas: usize,
) -> Result<kv::Store, async_nats::Error> {
    claims::open_bucket(jetstream, BUCKET, replicas).await
}

/// Writes this node's lease (its boot), giving up after `within`.
pub async fn renew(store: &kv::Store, key: &str, boot: u64, within: Duration) -> Renewal {
    let sent = Instant::now();
    let value = Bytes::from(boot.to_string());
    match tokio::time::timeout(within, store.put(key, value)).await {
        Ok(Ok(_)) => Renewal::Renewed {
            took: sent.elapsed(),
        },
        Ok(Err(error)) => Renewal::Failed(error.to_string()),
        Err(_) => Renewal::Failed(format!("no answer in {within:?}")),
    }
}
