//! The one seam between history and its database: the writer thread, the
//! reader thread, retention, startup and export all hold a [`Backend`].
//!
//! An enum over the two stores rather than a trait object: the set is
//! closed (SQLite, PostgreSQL), each call is a `match` the compiler can
//! see through, and the SQLite path runs exactly the code it ran before,
//! with no boxing or dynamic dispatch added to it.

use std::borrow::Cow;
use std::collections::HashMap;

use super::postgres::PgStore;
use super::{
    HistoryTarget, Party, Query, Record, RoomRename, Store, StoreError, TargetActivity,
    TargetsQuery,
};
use crate::config::{HistoryBackend, HistoryConfig};

/// A connection to the history database, whichever it is.
pub enum Backend {
    /// This node's own SQLite file.
    Sqlite(Store),
    /// The PostgreSQL database the nodes of a network share (boxed: its
    /// connection is several times a SQLite handle's size).
    Postgres(Box<PgStore>),
}

impl Backend {
    /// Opens the database for writing: created and migrated as needed.
    /// `node` (`Config::history_node`: `[network] node`, "" when alone) keys this node's journal
    /// checkpoint in a shared database.
    pub fn open(config: &HistoryConfig, node: &str) -> Result<Backend, StoreError> {
        match config.backend {
            HistoryBackend::Sqlite => Store::open(&config.path, config.sync).map(Backend::Sqlite),
            HistoryBackend::Postgres => PgStore::open(&config.postgres, node)
                .map(|store| Backend::Postgres(Box::new(store))),
        }
    }

    /// Opens a database that must exist already (a SQLite file), for
    /// queries and export.
    pub fn open_existing(config: &HistoryConfig, node: &str) -> Result<Backend, StoreError> {
        match config.backend {
            HistoryBackend::Sqlite => Store::open_existing(&config.path).map(Backend::Sqlite),
            HistoryBackend::Postgres => PgStore::open(&config.postgres, node)
                .map(|store| Backend::Postgres(Box::new(store))),
        }
    }

    /// Where the database is, for messages: the file, or the URL without
    /// its password.
    pub fn place(&self) -> Cow<'_, str> {
        match self {
            Backend::Sqlite(store) => store.path().to_string_lossy(),
            Backend::Postgres(store) => Cow::Borrowed(store.url()),
        }
    }

    /// The same error, naming the database it happened on.
    pub fn at(&self, error: StoreError) -> StoreError {
        match self {
            Backend::Sqlite(store) => error.at(store.path()),
            Backend::Postgres(store) => store.at(error),
        }
    }

    /// Whether the database is the one every node shares, where lines
    /// this node never saw may be stored.
    pub fn is_shared(&self) -> bool {
        matches!(self, Backend::Postgres(_))
    }

    pub(crate) fn store_batch<'a>(
        &mut self,
        records: impl IntoIterator<Item = &'a Record>,
        seq: u64,
    ) -> Result<usize, StoreError> {
        match self {
            Backend::Sqlite(store) => store.store_batch(records, seq),
            Backend::Postgres(store) => store.store_batch(records, seq),
        }
    }

    pub(crate) fn checkpoint_journal(&mut self, seq: u64) -> Result<(), StoreError> {
        match self {
            Backend::Sqlite(store) => store.checkpoint_journal(seq),
            Backend::Postgres(store) => store.checkpoint_journal(seq),
        }
    }

    pub(crate) fn journal_checkpoint(&mut self) -> Result<(u64, u64), StoreError> {
        match self {
            Backend::Sqlite(store) => store.journal_checkpoint(),
            Backend::Postgres(store) => store.journal_checkpoint(),
        }
    }

    pub(crate) fn begin_epoch<'a>(
        &mut self,
        replayed: impl IntoIterator<Item = &'a Record>,
        epoch: u64,
    ) -> Result<usize, StoreError> {
        match self {
            Backend::Sqlite(store) => store.begin_epoch(replayed, epoch),
            Backend::Postgres(store) => store.begin_epoch(replayed, epoch),
        }
    }

    /// Inserts records in one transaction, skipping stored msgids.
    pub fn insert_batch<'a>(
        &mut self,
        records: impl IntoIterator<Item = &'a Record>,
    ) -> Result<usize, StoreError> {
        match self {
            Backend::Sqlite(store) => store.insert_batch(records),
            Backend::Postgres(store) => store.insert_batch(records),
        }
    }

    /// Answers one CHATHISTORY-style query, oldest first.
    pub fn query(&mut self, query: &Query) -> Result<Vec<Record>, StoreError> {
        match self {
            Backend::Sqlite(store) => store.query(query),
            Backend::Postgres(store) => store.query(query),
        }
    }

    /// CHATHISTORY TARGETS.
    pub fn targets(&mut self, query: &TargetsQuery) -> Result<Vec<TargetActivity>, StoreError> {
        match self {
            Backend::Sqlite(store) => store.targets(query),
            Backend::Postgres(store) => store.targets(query),
        }
    }

    /// Deletes every private conversation `party` took part in.
    pub fn forget_party(&mut self, party: &Party) -> Result<usize, StoreError> {
        match self {
            Backend::Sqlite(store) => store.forget_party(party),
            Backend::Postgres(store) => store.forget_party(party),
        }
    }

    /// The stored line with this msgid, if any.
    pub fn find(&mut self, msgid: &str) -> Result<Option<Record>, StoreError> {
        match self {
            Backend::Sqlite(store) => store.find(msgid),
            Backend::Postgres(store) => store.find(msgid),
        }
    }

    /// Deletes the line with this msgid; whether there was one.
    pub fn redact(&mut self, msgid: &str) -> Result<bool, StoreError> {
        match self {
            Backend::Sqlite(store) => store.redact(msgid),
            Backend::Postgres(store) => store.redact(msgid),
        }
    }

    /// Moves a renamed room's lines to its new name.
    pub fn rename_room(&mut self, rename: &RoomRename) -> Result<usize, StoreError> {
        match self {
            Backend::Sqlite(store) => store.rename_room(rename),
            Backend::Postgres(store) => store.rename_room(rename),
        }
    }

    /// When each standing room became one.
    pub fn standing_since(
        &mut self,
        rooms: &[String],
        now_ms: i64,
    ) -> Result<HashMap<String, i64>, StoreError> {
        match self {
            Backend::Sqlite(store) => store.standing_since(rooms, now_ms),
            Backend::Postgres(store) => store.standing_since(rooms, now_ms),
        }
    }

    /// The recent lines of each of `rooms`, keyed by name.
    pub fn recent_rooms(
        &mut self,
        rooms: &[String],
        limit: usize,
        since_ms: Option<i64>,
        floors: &HashMap<String, i64>,
    ) -> Result<HashMap<String, Vec<Record>>, StoreError> {
        match self {
            Backend::Sqlite(store) => store.recent_rooms(rooms, limit, since_ms, floors),
            Backend::Postgres(store) => store.recent_rooms(rooms, limit, since_ms, floors),
        }
    }

    /// Calls `each` for every record of a target from `since_ms` on,
    /// oldest first.
    pub fn for_each<E: From<StoreError>>(
        &mut self,
        target: &HistoryTarget,
        since_ms: Option<i64>,
        each: impl FnMut(Record) -> Result<(), E>,
    ) -> Result<(), E> {
        match self {
            Backend::Sqlite(store) => store.for_each(target, since_ms, each),
            Backend::Postgres(store) => store.for_each(target, since_ms, each),
        }
    }

    /// The last `limit` messages and notices of one room (casefolded) no
    /// older than `since_ms`, oldest first: playback loaded from the store.
    pub fn recent(
        &mut self,
        room: &str,
        limit: usize,
        since_ms: Option<i64>,
    ) -> Result<Vec<Record>, StoreError> {
        match self {
            Backend::Sqlite(store) => store.recent(room, limit, since_ms),
            Backend::Postgres(store) => store.recent(room, limit, since_ms),
        }
    }

    /// How many records a target has.
    pub fn count(&mut self, target: &HistoryTarget) -> Result<u64, StoreError> {
        match self {
            Backend::Sqlite(store) => store.count(target),
            Backend::Postgres(store) => store.count(target),
        }
    }

    /// Leaves SQLite's WAL checkpoints to the reader; nothing on PostgreSQL.
    pub(crate) fn disable_auto_checkpoint(&self) -> Result<(), StoreError> {
        match self {
            Backend::Sqlite(store) => store.disable_auto_checkpoint(),
            Backend::Postgres(_) => Ok(()),
        }
    }

    /// Copies SQLite's WAL into its file; nothing on PostgreSQL.
    pub(crate) fn checkpoint(&self) -> Result<(), StoreError> {
        match self {
            Backend::Sqlite(store) => store.checkpoint(),
            Backend::Postgres(_) => Ok(()),
        }
    }
}
