//! Each room's state in a JetStream key-value bucket, one value per room:
//! its modes (key and limit included), topic, b/e/I lists and creation
//! time. A room's creation is a `create` on its key, so one node's joiner
//! gets ops; a change is an `update` at the revision the node last saw,
//! and on a conflict the change is applied again on top of the latest
//! value; every node watches the whole bucket and applies what is newer.
//!
//! A value read from the bucket is input: [`RoomState::decode`] bounds its
//! size and shape, and the core checks its contents as it checks a peer's
//! command.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use super::claims;
use crate::proto::modes::{self, ChannelModeKind, ListKind};

/// The bucket of room states.
pub const BUCKET: &str = "rookery_rooms";

/// The version of [`RoomState`] this node writes and reads; a value of
/// another version is ignored, so a change of form cannot be misread.
pub const VERSION: u32 = 1;

/// The most bytes a value may have: far above a room with full lists.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// The most entries a list of a value may have; the core keeps at most
/// `[limits] max_list_entries` of them.
pub const MAX_LIST_ENTRIES: usize = 500;

/// The longest text field of a value (name, key, mask, setter, topic).
pub const MAX_FIELD_BYTES: usize = 1024;

/// How many times a change is applied again on a newer value before it is
/// given up: two ops changing one room at once conflict once or twice.
pub const MAX_ATTEMPTS: usize = 8;

/// The pause before reading again after the second conflict in a row,
/// growing with each further one.
const CONFLICT_PAUSE: Duration = Duration::from_millis(5);

/// A room's key: its folded name in hex, as a nick claim's key is.
pub fn key(folded: &str) -> String {
    claims::key(folded)
}

/// The folded name a key stands for, if it is one of [`key`]'s.
pub fn folded_of(key: &str) -> Option<String> {
    if !key.len().is_multiple_of(2) || key.len() > 2 * MAX_FIELD_BYTES {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..key.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(key.get(at..at + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// One room's state as the bucket keeps it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomState {
    /// [`VERSION`].
    pub version: u32,
    /// The room's name as its creator spelled it.
    pub name: String,
    /// When it was created, in seconds since the epoch (329).
    pub created: i64,
    /// The letters of the flag modes set, e.g. `nt`.
    pub flags: String,
    pub key: Option<String>,
    pub limit: Option<u64>,
    pub topic: Option<TopicState>,
    pub bans: Vec<EntryState>,
    pub exceptions: Vec<EntryState>,
    pub invite_exceptions: Vec<EntryState>,
    /// `nick!user@host` of whoever made the last change: the other nodes
    /// show the change as made by it.
    pub by: Option<String>,
    /// The revision this value was written over (0 for a creation): a
    /// write that landed over another made on the same revision is seen
    /// by the node whose write it hid, which applies its change again.
    #[serde(default)]
    pub base: u64,
}

/// A topic with who set it and when (seconds).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicState {
    pub text: String,
    pub by: String,
    pub at: i64,
}

/// One entry of a b/e/I list, as the list shows it (an extban with its
/// prefix), with who set it and when (seconds).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryState {
    pub mask: String,
    pub by: String,
    pub at: i64,
}

/// One mode change that took effect, as a MODE line shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModeChange {
    pub adding: bool,
    pub letter: char,
    pub arg: Option<String>,
}

/// What a node changed in a room: applied again on a newer value when
/// another node wrote first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Mode changes (statuses are not part of a room's value), made by
    /// `by` at `at` (seconds).
    Modes {
        changes: Vec<ModeChange>,
        by: String,
        at: i64,
    },
    /// The topic set (or cleared), by `by`.
    Topic {
        topic: Option<TopicState>,
        by: String,
    },
}

impl RoomState {
    /// The JSON form.
    pub fn encode(&self) -> Bytes {
        // Plain data: serializing it cannot fail.
        Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Reads a value of this version within the bounds; `None` otherwise.
    pub fn decode(bytes: &[u8]) -> Option<RoomState> {
        if bytes.len() > MAX_VALUE_BYTES {
            return None;
        }
        let state: RoomState = serde_json::from_slice(bytes).ok()?;
        (state.version == VERSION && state.fits()).then_some(state)
    }

    /// Whether every list and text is within the bounds.
    fn fits(&self) -> bool {
        let text = |text: &str| text.len() <= MAX_FIELD_BYTES;
        let lists = [&self.bans, &self.exceptions, &self.invite_exceptions];
        text(&self.name)
            && text(&self.flags)
            && self.key.as_deref().is_none_or(text)
            && self.by.as_deref().is_none_or(text)
            && self
                .topic
                .as_ref()
                .is_none_or(|topic| text(&topic.text) && text(&topic.by))
            && lists.iter().all(|list| {
                list.len() <= MAX_LIST_ENTRIES
                    && list
                        .iter()
                        .all(|entry| text(&entry.mask) && text(&entry.by))
            })
    }

    /// The list a list mode's letter names.
    fn list_mut(&mut self, kind: ListKind) -> &mut Vec<EntryState> {
        match kind {
            ListKind::Bans => &mut self.bans,
            ListKind::Exceptions => &mut self.exceptions,
            ListKind::InviteExceptions => &mut self.invite_exceptions,
        }
    }

    /// Applies `change` to this value, as the node that made it applied it
    /// to its room.
    pub fn apply(&mut self, change: &Change) {
        match change {
            Change::Modes { changes, by, at } => {
                for change in changes {
                    self.apply_mode(change, by, *at);
                }
                self.by = Some(by.clone());
            }
            Change::Topic { topic, by } => {
                self.topic = topic.clone();
                self.by = Some(by.clone());
            }
        }
    }

    fn apply_mode(&mut self, change: &ModeChange, by: &str, at: i64) {
        let Some(kind) = modes::channel_mode(change.letter) else {
            return;
        };
        let arg = change.arg.as_deref();
        match kind {
            ChannelModeKind::Flag(_) => {
                self.flags.retain(|letter| letter != change.letter);
                if change.adding {
                    self.flags.push(change.letter);
                }
            }
            ChannelModeKind::Key => {
                self.key = arg.filter(|_| change.adding).map(str::to_owned);
            }
            ChannelModeKind::Limit => {
                self.limit = arg
                    .filter(|_| change.adding)
                    .and_then(|limit| limit.parse().ok());
            }
            ChannelModeKind::List(kind) => {
                let Some(mask) = arg else { return };
                let list = self.list_mut(kind);
                list.retain(|entry| !entry.mask.eq_ignore_ascii_case(mask));
                if change.adding && list.len() < MAX_LIST_ENTRIES {
                    list.push(EntryState {
                        mask: mask.to_owned(),
                        by: by.to_owned(),
                        at,
                    });
                }
            }
            // A member's status is not the room's: it travels with the
            // membership.
            ChannelModeKind::Prefix { .. } => {}
        }
    }
}

/// How a room's creation went.
#[derive(Debug)]
pub enum Created {
    /// This node created it, at `revision`: its joiner gets ops.
    Won { revision: u64 },
    /// It exists already, as of `revision`; `state` is `None` when the
    /// value was deleted since, or is not one this node reads.
    Exists {
        revision: u64,
        state: Option<Box<RoomState>>,
    },
    /// The bucket could not be reached or written.
    Failed(String),
}

/// Opens the bucket of room states ([`claims::open_bucket`]).
pub async fn open(
    jetstream: &jetstream::Context,
    replicas: usize,
) -> Result<kv::Store, async_nats::Error> {
    claims::open_bucket(jetstream, BUCKET, replicas).await
}

/// Creates `key` with `state`, or (with `over`, a revision of a value left
/// by a room that is gone) takes it over at that revision; gives up after
/// `within`.
pub async fn create(
    store: &kv::Store,
    key: &str,
    state: &RoomState,
    over: Option<u64>,
    within: Duration,
) -> Created {
    let value = RoomState {
        base: over.unwrap_or(0),
        ..state.clone()
    }
    .encode();
    let written = async {
        match over {
            None => store
                .create(key, value)
                .await
                .map_err(|error| error.kind() == kv::CreateErrorKind::AlreadyExists),
            Some(revision) => store
                .update(key, value, revision)
                .await
                .map_err(|error| error.kind() == kv::UpdateErrorKind::WrongLastRevision),
        }
    };
    match tokio::time::timeout(within, written).await {
        Ok(Ok(revision)) => Created::Won { revision },
        Ok(Err(true)) => read(store, key, within).await,
        Ok(Err(false)) => Created::Failed("the room states cannot be written".to_owned()),
        Err(_) => Created::Failed(format!("no answer in {within:?}")),
    }
}

/// The value of `key` now, as [`Created::Exists`].
async fn read(store: &kv::Store, key: &str, within: Duration) -> Created {
    match tokio::time::timeout(within, store.entry(key)).await {
        Ok(Ok(Some(entry))) => Created::Exists {
            revision: entry.revision,
            state: (entry.operation == kv::Operation::Put)
                .then(|| RoomState::decode(&entry.value))
                .flatten()
                .map(Box::new),
        },
        // Deleted since: the next attempt creates it over the deletion.
        Ok(Ok(None)) => Created::Exists {
            revision: 0,
            state: None,
        },
        Ok(Err(error)) => Created::Failed(error.to_string()),
        Err(_) => Created::Failed(format!("no answer in {within:?}")),
    }
}

/// Why one write did not land.
enum Missed {
    /// Someone wrote first: read and apply the change again.
    Conflict,
    Failed(String),
}

/// Writes `value` at `revision` (none: the key must not hold a value).
async fn write_at(
    store: &kv::Store,
    key: &str,
    value: Bytes,
    revision: Option<u64>,
) -> Result<u64, Missed> {
    match revision {
        Some(revision) => {
            store
                .update(key, value, revision)
                .await
                .map_err(|error| match error.kind() {
                    kv::UpdateErrorKind::WrongLastRevision => Missed::Conflict,
                    _ => Missed::Failed(error.to_string()),
                })
        }
        None => store
            .create(key, value)
            .await
            .map_err(|error| match error.kind() {
                kv::CreateErrorKind::AlreadyExists => Missed::Conflict,
                _ => Missed::Failed(error.to_string()),
            }),
    }
}

/// Writes a room's new state `state` at `revision`, the one this node
/// last saw; when another node wrote since, reads the latest value, applies
/// `change` on top of it, and writes again, [`MAX_ATTEMPTS`] times at
/// most. Returns the revision written and the state it holds.
pub async fn change(
    store: &kv::Store,
    key: &str,
    state: &RoomState,
    revision: Option<u64>,
    change: &Change,
) -> Result<(u64, RoomState), String> {
    let (mut writing, mut revision) = (state.clone(), revision);
    for attempt in 0..MAX_ATTEMPTS {
        writing.base = revision.unwrap_or(0);
        match write_at(store, key, writing.encode(), revision).await {
            Ok(written) => return Ok((written, writing)),
            Err(Missed::Failed(reason)) => return Err(reason),
            Err(Missed::Conflict) => {}
        }
        // A read may come from a copy a moment behind the write that beat
        // this one: after a second conflict, give the copies that moment.
        if attempt > 0 {
            tokio::time::sleep(CONFLICT_PAUSE * attempt as u32).await;
        }
        let entry = store.entry(key).await.map_err(|error| error.to_string())?;
        (writing, revision) = match entry {
            // A deleted value is written over at its revision.
            Some(entry) if entry.operation != kv::Operation::Put => {
                (state.clone(), Some(entry.revision))
            }
            Some(entry) => {
                // A value this node cannot read is replaced by its own.
                let mut latest = RoomState::decode(&entry.value).unwrap_or_else(|| state.clone());
                latest.apply(change);
                (latest, Some(entry.revision))
            }
            None => (state.clone(), None),
        };
        debug!(
            key,
            "a room changed elsewhere meanwhile; its change applied again"
        );
    }
    Err(format!(
        "still changed elsewhere after {MAX_ATTEMPTS} attempts"
    ))
}

/// Deletes `key` if it is still at `revision`: a room emptied here whose
/// value someone changed since is left to the next creator to take over.
pub async fn remove(store: &kv::Store, key: &str, revision: u64) {
    if let Err(error) = store.delete_expect_revision(key, Some(revision)).await {
        warn!(%error, "a room's state was not removed; the next creator takes it over");
    }
}

/// One value the watch of the bucket saw.
#[derive(Debug)]
pub struct Seen {
    pub key: String,
    pub revision: u64,
    /// `None` for a deletion (or a value this node does not read).
    pub state: Option<Box<RoomState>>,
    /// Whether it is a deletion.
    pub deleted: bool,
}

impl Seen {
    /// What a watch's entry says.
    pub fn of(entry: kv::Entry) -> Seen {
        let deleted = entry.operation != kv::Operation::Put;
        let state = if deleted {
            None
        } else {
            RoomState::decode(&entry.value).map(Box::new)
        };
        if !deleted && state.is_none() {
            warn!(key = %entry.key, "a room's value in the bucket is not one this node reads");
        }
        Seen {
            key: entry.key,
            revision: entry.revision,
            state,
            deleted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modes(changes: &[(bool, char, Option<&str>)]) -> Change {
        Change::Modes {
            changes: changes
                .iter()
                .map(|&(adding, letter, arg)| ModeChange {
                    adding,
                    letter,
                    arg: arg.map(str::to_owned),
                })
                .collect(),
            by: "op!o@h".into(),
            at: 5,
        }
    }

    #[test]
    fn a_key_reads_back_as_its_folded_name() {
        assert_eq!(folded_of(&key("#a.b")), Some("#a.b".to_owned()));
        assert_eq!(folded_of("2"), None);
        assert_eq!(folded_of("zz"), None);
    }

    #[test]
    fn a_change_applied_again_keeps_what_another_node_wrote() {
        let mut state = RoomState {
            version: VERSION,
            name: "#r".into(),
            flags: "nt".into(),
            ..Default::default()
        };
        state.apply(&modes(&[(true, 'i', None), (true, 'k', Some("x"))]));
        state.apply(&modes(&[(true, 'b', Some("a!*@*")), (false, 't', None)]));
        state.apply(&modes(&[(true, 'o', Some("nick")), (true, 'l', Some("4"))]));
        assert_eq!(state.flags, "ni");
        assert_eq!((state.key.as_deref(), state.limit), (Some("x"), Some(4)));
        assert_eq!(state.bans.len(), 1);
        state.apply(&modes(&[
            (false, 'b', Some("A!*@*")),
            (false, 'k', Some("*")),
        ]));
        assert!(state.bans.is_empty() && state.key.is_none());
        assert_eq!(state.by.as_deref(), Some("op!o@h"));
    }

    #[test]
    fn a_value_out_of_bounds_or_of_another_version_is_not_read() {
        let state = RoomState {
            version: VERSION,
            name: "#r".into(),
            ..Default::default()
        };
        assert_eq!(RoomState::decode(&state.encode()), Some(state.clone()));
        let other = RoomState {
            version: VERSION + 1,
            ..state.clone()
        };
        assert_eq!(RoomState::decode(&other.encode()), None);
        let long = RoomState {
            key: Some("k".repeat(MAX_FIELD_BYTES + 1)),
            ..state
        };
        assert_eq!(RoomState::decode(&long.encode()), None);
        assert_eq!(RoomState::decode(b"{\"version\":1"), None);
    }
}
