//! Nicks claimed network-wide in a JetStream key-value bucket: a node
//! grants a nick only once its claim was created there (compare-and-set),
//! so two nodes never both grant one. A claim's value names the node, its
//! boot and the user; a claim left by a node that is gone is taken over
//! with the revision it was read at, so only one taker wins that too.

use async_nats::jetstream::{self, kv, stream};
use bytes::Bytes;
use tracing::warn;

/// The bucket of nick claims.
pub const BUCKET: &str = "rookery_nicks";

/// A claim's key: the folded nick in hex, since keys allow only
/// letters, digits and `-/_=.`.
pub fn key(folded: &str) -> String {
    folded.bytes().map(|byte| format!("{byte:02x}")).collect()
}

/// A claim's value: who holds the nick.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub node: String,
    pub boot: u64,
    pub uid: u64,
}

impl Holder {
    pub fn encode(&self) -> Bytes {
        Bytes::from(format!("{} {} {}", self.node, self.boot, self.uid))
    }

    pub fn decode(bytes: &[u8]) -> Option<Holder> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut parts = text.split(' ');
        let holder = Holder {
            node: parts.next()?.to_owned(),
            boot: parts.next()?.parse().ok()?,
            uid: parts.next()?.parse().ok()?,
        };
        parts.next().is_none().then_some(holder)
    }
}

/// How a claim went.
#[derive(Debug)]
pub enum Claimed {
    /// The nick is this user's now.
    Granted,
    /// Someone holds it, as of `revision`.
    Held {
        holder: Option<Holder>,
        revision: u64,
    },
    /// The bucket could not be reached or written.
    Failed(String),
}

/// Opens the bucket of nick claims ([`open_bucket`]).
pub async fn open(
    jetstream: &jetstream::Context,
    replicas: usize,
) -> Result<kv::Store, async_nats::Error> {
    open_bucket(jetstream, BUCKET, replicas).await
}

/// Opens the key-value bucket `bucket`, creating it ([`bucket_stream`])
/// with `replicas` copies (or one, on a server that is not clustered)
/// when it does not exist yet.
pub async fn open_bucket(
    jetstream: &jetstream::Context,
    bucket: &str,
    replicas: usize,
) -> Result<kv::Store, async_nats::Error> {
    if let Ok(store) = jetstream.get_key_value(bucket).await {
        return Ok(store);
    }
    let config = |replicas| bucket_stream(bucket, replicas);
    if let Err(error) = jetstream.get_or_create_stream(config(replicas)).await {
        if replicas == 1 {
            return Err(error.into());
        }
        warn!(%error, replicas, "cannot keep {bucket} in {replicas} copies; keeping one");
        jetstream.get_or_create_stream(config(1)).await?;
    }
    Ok(jetstream.get_key_value(bucket).await?)
}

/// The stream behind the key-value bucket `bucket` (one value per key,
/// kept on `replicas` servers), as async-nats's `create_key_value` makes
/// it; made directly, since that call reads account details nats-server
/// 2.9 does not send.
pub fn bucket_stream(bucket: &str, replicas: usize) -> stream::Config {
    stream::Config {
        name: format!("KV_{bucket}"),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        discard: stream::DiscardPolicy::New,
        num_replicas: replicas,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        ..Default::default()
    }
}

/// Claims `key` for `holder`: created when free, or taken over from the
/// holder read at `over` (a revision) when that one is gone.
pub async fn claim(store: &kv::Store, key: &str, holder: &Holder, over: Option<u64>) -> Claimed {
    let written = match over {
        None => store
            .create(key, holder.encode())
            .await
            .map_err(|error| error.kind() == kv::CreateErrorKind::AlreadyExists),
        Some(revision) => store
            .update(key, holder.encode(), revision)
            .await
            .map_err(|error| error.kind() == kv::UpdateErrorKind::WrongLastRevision),
    };
    match written {
        Ok(_) => Claimed::Granted,
        Err(true) => read(store, key).await,
        Err(false) => Claimed::Failed("the nick claims cannot be written".to_owned()),
    }
}

/// Who holds `key` now.
async fn read(store: &kv::Store, key: &str) -> Claimed {
    match store.entry(key).await {
        Ok(Some(entry)) => Claimed::Held {
            // A deleted claim holds nothing; it is taken at its revision.
            holder: (entry.operation == kv::Operation::Put)
                .then(|| Holder::decode(&entry.value))
                .flatten(),
            revision: entry.revision,
        },
        // Deleted since: the next attempt creates it over the deletion.
        Ok(None) => Claimed::Held {
            holder: None,
            revision: 0,
        },
        Err(error) => Claimed::Failed(error.to_string()),
    }
}

/// Gives `key` up, if `holder` still holds it: a claim taken over since
/// is left alone.
pub async fn release(store: &kv::Store, key: &str, holder: &Holder) {
    let Ok(Some(entry)) = store.entry(key).await else {
        return;
    };
    if Holder::decode(&entry.value).as_ref() != Some(holder) {
        return;
    }
    if let Err(error) = store
        .delete_expect_revision(key, Some(entry.revision))
        .await
    {
        warn!(%error, "cannot give a nick claim up");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_hex_and_a_holder_reads_back() {
        assert_eq!(key("[a]"), "5b615d");
        let holder = Holder {
            node: "a".into(),
            boot: 5,
            uid: 9,
        };
        assert_eq!(Holder::decode(&holder.encode()), Some(holder));
        assert_eq!(Holder::decode(b"a 5"), None);
        assert_eq!(Holder::decode(b"a 5 9 x"), None);
    }
}
