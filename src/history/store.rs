//! The SQLite database: schema and its migrations, the batch insert the
//! writer commits, and the queries playback, CHATHISTORY and export use.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior, params};

use super::{Bound, HistoryTarget, Party, Query, QueryKind, Record, TargetActivity, TargetsQuery};
use crate::config::HistorySync;

/// Why the history database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the history database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("no history database at {0}")]
    Missing(PathBuf),
    #[error(
        "the history database has schema version {found}, newer than this rookery knows ({known}); upgrade rookery"
    )]
    TooNew { found: i64, known: i64 },
    #[error("history database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// An error on a named file.
    #[error("history database {path}: {source}")]
    At {
        path: PathBuf,
        source: Box<StoreError>,
    },
    /// The reader thread has too many queries waiting; try again later.
    #[error("the history reader is busy")]
    Busy,
    /// History was shut down.
    #[error("history is stopped")]
    Stopped,
    #[error("cannot start a history thread: {0}")]
    Thread(std::io::Error),
    /// The journal beside the database could not be read or created.
    #[error("history journal of {0}: {1}")]
    Journal(PathBuf, std::io::Error),
    /// `[history] postgres` cannot be used; the reason never repeats the
    /// password.
    #[error("[history] postgres {0}")]
    Url(String),
    /// PostgreSQL refused or failed a statement.
    #[error("history database: {}", crate::shared_database::reason(.0))]
    Postgres(#[from] postgres::Error),
    /// The PostgreSQL database could not be reached; `url` has no password.
    #[error(
        "cannot connect to the history database {url} ([history] postgres): {}",
        crate::shared_database::reason(.source)
    )]
    Connect {
        url: String,
        source: postgres::Error,
    },
    /// The connection to PostgreSQL is lost and the next attempt to
    /// reconnect is not due yet.
    #[error("the history database {0} is unreachable; reconnecting")]
    Unreachable(String),
    /// An error on a named PostgreSQL database (no password in `url`).
    #[error("history database {url}: {source}")]
    AtUrl {
        url: String,
        source: Box<StoreError>,
    },
}

impl StoreError {
    /// The same error, naming the PostgreSQL database (its URL without
    /// the password) it happened on, unless it does.
    pub fn at_url(self, url: &str) -> StoreError {
        match self {
            StoreError::Postgres(_) | StoreError::TooNew { .. } | StoreError::Sqlite(_) => {
                StoreError::AtUrl {
                    url: url.to_owned(),
                    source: Box::new(self),
                }
            }
            other => other,
        }
    }

    /// The same error, naming the file it happened on (unless it does).
    pub fn at(self, path: &Path) -> StoreError {
        match self {
            StoreError::Open { .. } | StoreError::Missing(_) | StoreError::At { .. } => self,
            StoreError::Busy | StoreError::Stopped | StoreError::Thread(_) => self,
            StoreError::Journal(..) => self,
            StoreError::Connect { .. }
            | StoreError::Unreachable(_)
            | StoreError::AtUrl { .. }
            | StoreError::Url(_) => self,
            other => StoreError::At {
                path: path.to_owned(),
                source: Box::new(other),
            },
        }
    }
}

/// Schema versions, in order; `PRAGMA user_version` counts how many ran.
/// Append new steps; never edit a released one.
const MIGRATIONS: &[&str] = &[
    // 1: one row per event. `id` (the rowid) breaks ties between events in
    // the same millisecond and orders them as the writer received them.
    "CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        msgid TEXT NOT NULL,
        time_ms INTEGER NOT NULL,
        target TEXT NOT NULL,
        target_display TEXT NOT NULL,
        sender TEXT NOT NULL,
        account TEXT,
        command TEXT NOT NULL,
        text TEXT NOT NULL,
        tags TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX events_by_target_time ON events (target, time_ms);
    CREATE UNIQUE INDEX events_by_msgid ON events (msgid);",
    // 2: who took part in each private conversation ("a b"), so TARGETS
    // finds a nick's conversations by index instead of scanning every row.
    "CREATE TABLE conversation_parties (
        party TEXT NOT NULL,
        target TEXT NOT NULL,
        PRIMARY KEY (party, target)
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO conversation_parties (party, target)
        SELECT DISTINCT substr(target, 1, instr(target, ' ') - 1), target
        FROM events WHERE instr(target, ' ') > 0;
    INSERT OR IGNORE INTO conversation_parties (party, target)
        SELECT DISTINCT substr(target, instr(target, ' ') + 1), target
        FROM events WHERE instr(target, ' ') > 0;",
    // 3: when each standing `[[room]]` became one: its history starts
    // there, so lines an earlier ad-hoc room of that name said stay out.
    // A file that already holds history was written when standing rooms
    // read all of theirs: the rooms configured at the first start after
    // this step keep doing so (`standing_rooms_adopt` holds one row until
    // then).
    "CREATE TABLE standing_rooms (
        name TEXT PRIMARY KEY,
        since_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE standing_rooms_adopt (pending INTEGER NOT NULL);
    INSERT INTO standing_rooms_adopt SELECT 1 WHERE EXISTS (SELECT 1 FROM events);",
    // 4: how far the database has come in the journal (`history::journal`):
    // the start's epoch and the highest sequence number stored, written in
    // the same transaction as each batch.
    "CREATE TABLE journal_checkpoint (
        only INTEGER PRIMARY KEY CHECK (only = 0),
        epoch INTEGER NOT NULL,
        seq INTEGER NOT NULL
    );
    INSERT INTO journal_checkpoint (only, epoch, seq) VALUES (0, 0, 0);",
];

/// Inserts records within `transaction`, skipping a msgid already stored;
/// returns how many were inserted.
fn insert_records<'a>(
    transaction: &rusqlite::Transaction<'_>,
    records: impl IntoIterator<Item = &'a Record>,
) -> Result<usize, StoreError> {
    let mut insert = transaction.prepare_cached(
        "INSERT INTO events (msgid, time_ms, target, target_display, sender, account, command, text, tags)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (msgid) DO NOTHING",
    )?;
    let mut party = transaction.prepare_cached(
        "INSERT OR IGNORE INTO conversation_parties (party, target) VALUES (?1, ?2)",
    )?;
    let mut inserted = 0;
    for record in records {
        let target = record.target.column();
        if let HistoryTarget::Private(conversation) = &record.target {
            let (a, b) = conversation.parties();
            party.execute(params![a.column(), target])?;
            party.execute(params![b.column(), target])?;
        }
        inserted += insert.execute(params![
            record.msgid,
            record.time_ms,
            target,
            record.target_display,
            record.sender,
            record.account,
            record.command,
            record.text,
            record.tags,
        ])?;
    }
    Ok(inserted)
}

/// How long a statement waits for another connection's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const COLUMNS: &str =
    "msgid, time_ms, target, target_display, sender, account, command, text, tags";

/// One connection to the history database.
pub struct Store {
    pub(crate) conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens or creates the database, brings its schema up to date, and
    /// turns on WAL mode. An error names the file.
    pub fn open(path: &Path, sync: HistorySync) -> Result<Store, StoreError> {
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })?;
        let mut store = Store::configure(conn, path, sync).map_err(|e| e.at(path))?;
        store.migrate().map_err(|e| e.at(path))?;
        Ok(store)
    }

    /// The file this connection is to, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens a database that must exist already, for queries and export;
    /// an older schema is brought up to date, a newer one refused.
    pub fn open_existing(path: &Path) -> Result<Store, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing(path.to_owned()));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })?;
        let mut store =
            Store::configure(conn, path, HistorySync::Normal).map_err(|e| e.at(path))?;
        store.migrate().map_err(|e| e.at(path))?;
        Ok(store)
    }

    fn configure(
        mut conn: Connection,
        path: &Path,
        sync: HistorySync,
    ) -> Result<Store, StoreError> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Several connections write this file (history, accounts, rooms).
        // A deferred transaction that reads first cannot wait for another
        // writer when it then writes: SQLite fails it at once with "database
        // is locked". Taking the write lock at BEGIN makes it wait instead.
        conn.set_transaction_behavior(TransactionBehavior::Immediate);
        // WAL: readers never block the writer, and a commit is one append.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        let synchronous = match sync {
            HistorySync::Normal => "NORMAL",
            HistorySync::Full => "FULL",
        };
        conn.pragma_update(None, "synchronous", synchronous)?;
        Ok(Store {
            conn,
            path: path.to_owned(),
        })
    }

    /// Leaves WAL checkpoints to [`Store::checkpoint`] on another thread,
    /// so a commit never also copies the log into the database (with its
    /// fsync): that made the slowest commits several times slower.
    pub fn disable_auto_checkpoint(&self) -> Result<(), StoreError> {
        self.conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        Ok(())
    }

    /// Copies committed WAL pages into the database file without waiting
    /// for, or blocking, the writer.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// The schema version the file is at.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .pragma_query_value(None, "user_version", |row| row.get(0))?)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let known = MIGRATIONS.len() as i64;
        let found = self.schema_version()?;
        if found > known {
            return Err(StoreError::TooNew { found, known });
        }
        for (version, step) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            let transaction = self.conn.transaction()?;
            transaction.execute_batch(step)?;
            transaction.pragma_update(None, "user_version", version as i64 + 1)?;
            transaction.commit()?;
        }
        Ok(())
    }

    /// Inserts records in one transaction: one commit, one WAL sync, for the
    /// whole batch. A record whose msgid is already stored is skipped.
    /// Returns how many were inserted.
    pub fn insert_batch<'a>(
        &mut self,
        records: impl IntoIterator<Item = &'a Record>,
    ) -> Result<usize, StoreError> {
        let transaction = self.conn.transaction()?;
        let inserted = insert_records(&transaction, records)?;
        transaction.commit()?;
        Ok(inserted)
    }

    /// Inserts a batch of the journal's records, the highest of which is
    /// `seq`, and notes `seq` as the journal's checkpoint, in one
    /// transaction: a start replays only what comes after it.
    pub(crate) fn store_batch<'a>(
        &mut self,
        records: impl IntoIterator<Item = &'a Record>,
        seq: u64,
    ) -> Result<usize, StoreError> {
        let transaction = self.conn.transaction()?;
        let inserted = insert_records(&transaction, records)?;
        transaction.execute(
            "UPDATE journal_checkpoint SET seq = max(seq, ?1)",
            params![i64::try_from(seq).unwrap_or(i64::MAX)],
        )?;
        transaction.commit()?;
        Ok(inserted)
    }

    /// Notes that everything up to `seq` is done with, outside a batch.
    pub(crate) fn checkpoint_journal(&self, seq: u64) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE journal_checkpoint SET seq = max(seq, ?1)",
            params![i64::try_from(seq).unwrap_or(i64::MAX)],
        )?;
        Ok(())
    }

    /// The journal's epoch and the highest sequence number of it stored.
    pub(crate) fn journal_checkpoint(&self) -> Result<(u64, u64), StoreError> {
        let (epoch, seq): (i64, i64) =
            self.conn
                .query_row("SELECT epoch, seq FROM journal_checkpoint", [], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })?;
        Ok((epoch as u64, seq as u64))
    }

    /// Stores the journal's entries the database lacked and starts epoch
    /// `epoch`, in one transaction: a start that dies after it replays
    /// nothing twice, one that dies before it replays the same again.
    pub(crate) fn begin_epoch<'a>(
        &mut self,
        replayed: impl IntoIterator<Item = &'a Record>,
        epoch: u64,
    ) -> Result<usize, StoreError> {
        let transaction = self.conn.transaction()?;
        let inserted = insert_records(&transaction, replayed)?;
        transaction.execute(
            "UPDATE journal_checkpoint SET epoch = ?1, seq = 0",
            params![i64::try_from(epoch).unwrap_or(i64::MAX)],
        )?;
        transaction.commit()?;
        Ok(inserted)
    }

    /// Answers one CHATHISTORY-style query, oldest first.
    pub fn query(&self, query: &Query) -> Result<Vec<Record>, StoreError> {
        answer(self, query)
    }

    /// Rooms and conversations whose latest line (from the reader's floor
    /// on; a message or notice unless `query.events`) falls strictly
    /// between the window's two times, the least recently active first,
    /// as CHATHISTORY TARGETS lists them: a target active again since the
    /// window is not listed.
    pub fn targets(&self, query: &TargetsQuery) -> Result<Vec<TargetActivity>, StoreError> {
        let mut found = Vec::new();
        let mut latest = self.conn.prepare_cached(
            "SELECT target_display, time_ms FROM events
             WHERE target = ?1 AND time_ms >= ?2
               AND (?3 OR command IN ('PRIVMSG', 'NOTICE'))
             ORDER BY time_ms DESC, id DESC LIMIT 1",
        )?;
        for (target, floor) in self.readable_targets(query)? {
            let row = latest
                .query_row(params![target, floor, query.events], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
                })
                .optional()?;
            if let Some((display, latest_ms)) = row
                && query.from_ms < latest_ms
                && latest_ms < query.to_ms
            {
                found.push((target, display, latest_ms));
            }
        }
        Ok(listed_targets(found, query.limit))
    }

    /// Deletes every private conversation `party` took part in, both
    /// sides, in one transaction; returns how many lines went.
    pub fn forget_party(&mut self, party: &Party) -> Result<usize, StoreError> {
        let transaction = self.conn.transaction()?;
        let targets: Vec<String> = transaction
            .prepare("SELECT target FROM conversation_parties WHERE party = ?1")?
            .query_map([party.column()], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        let mut deleted = 0;
        for target in &targets {
            deleted += transaction.execute("DELETE FROM events WHERE target = ?1", [target])?;
            transaction.execute(
                "DELETE FROM conversation_parties WHERE target = ?1",
                [target],
            )?;
        }
        transaction.commit()?;
        Ok(deleted)
    }

    /// The stored message, notice or tag message with this msgid, if any:
    /// what REDACT checks the redactor against.
    pub fn find(&self, msgid: &str) -> Result<Option<Record>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM events WHERE msgid = ?1");
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row([msgid], record_from_row)
            .optional()?)
    }

    /// Deletes the line with this msgid (REDACT); returns whether there
    /// was one. The row goes rather than being blanked: a blanked row
    /// would still say who spoke where and when.
    pub fn redact(&mut self, msgid: &str) -> Result<bool, StoreError> {
        let deleted = self
            .conn
            .execute("DELETE FROM events WHERE msgid = ?1", [msgid])?;
        Ok(deleted > 0)
    }

    /// A renamed room's lines follow it (RENAME): stored under `new`,
    /// shown as `display`. Lines an earlier room of the new name left at
    /// or after `floor_ms` (where the renamed room's history starts) are
    /// deleted first: no room could read them any more (one created later
    /// starts after them), and the renamed one must not. Returns the
    /// lines moved.
    pub fn rename_room(&mut self, rename: &super::RoomRename) -> Result<usize, StoreError> {
        let transaction = self.conn.transaction()?;
        transaction.execute(
            "DELETE FROM events WHERE target = ?1 AND time_ms >= ?2",
            rusqlite::params![rename.new.as_str(), rename.floor_ms],
        )?;
        let moved = transaction.execute(
            "UPDATE events SET target = ?1, target_display = ?2 WHERE target = ?3",
            rusqlite::params![rename.new.as_str(), rename.display, rename.old.as_str()],
        )?;
        transaction.commit()?;
        Ok(moved)
    }

    /// The `target` columns TARGETS looks at, each with the reader's
    /// floor there: the rooms given, and the conversations of the
    /// reader's party, found through the party index.
    fn readable_targets(&self, query: &TargetsQuery) -> Result<Vec<(String, i64)>, StoreError> {
        let mut targets: Vec<(String, i64)> = query
            .rooms
            .iter()
            .map(|(room, floor)| (room.as_str().to_owned(), *floor))
            .collect();
        if let Some((party, floor)) = &query.party {
            let mut conversations = self.conn.prepare_cached(
                "SELECT target FROM conversation_parties WHERE party = ?1 ORDER BY target",
            )?;
            let rows = conversations.query_map([party.column()], |row| row.get::<_, String>(0))?;
            for row in rows {
                targets.push((row?, *floor));
            }
        }
        Ok(targets)
    }

    /// The last `limit` records of one room (its stored name) no older
    /// than `since_ms`, oldest first: what a join replays.
    pub(super) fn recent(
        &self,
        target: &str,
        limit: usize,
        since_ms: Option<i64>,
    ) -> Result<Vec<Record>, StoreError> {
        recent_of(self, target, limit, since_ms)
    }

    /// When each of the standing `rooms` (casefolded) became one, keyed by
    /// name: `now_ms` for a name standing for the first time, else the
    /// time recorded then. A name no longer standing is forgotten, so one
    /// that becomes standing again starts anew: the ad-hoc rooms of that
    /// name in between are not its history. At the first start after the
    /// upgrade that began recording this, the rooms configured then keep
    /// all their earlier history, as they did before.
    pub fn standing_since(
        &mut self,
        rooms: &[String],
        now_ms: i64,
    ) -> Result<HashMap<String, i64>, StoreError> {
        let transaction = self.conn.transaction()?;
        let known: Vec<String> = transaction
            .prepare("SELECT name FROM standing_rooms")?
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        for name in known.iter().filter(|name| !rooms.contains(name)) {
            transaction.execute("DELETE FROM standing_rooms WHERE name = ?1", [name])?;
        }
        let adopting: bool = transaction.query_row(
            "SELECT EXISTS (SELECT 1 FROM standing_rooms_adopt)",
            [],
            |row| row.get(0),
        )?;
        let first_ms = if adopting { i64::MIN } else { now_ms };
        let mut since = HashMap::new();
        for room in rooms {
            transaction.execute(
                "INSERT OR IGNORE INTO standing_rooms (name, since_ms) VALUES (?1, ?2)",
                params![room, first_ms],
            )?;
            let at: i64 = transaction.query_row(
                "SELECT since_ms FROM standing_rooms WHERE name = ?1",
                [room],
                |row| row.get(0),
            )?;
            since.insert(room.clone(), at);
        }
        if adopting {
            transaction.execute("DELETE FROM standing_rooms_adopt", [])?;
        }
        transaction.commit()?;
        Ok(since)
    }

    /// `Store::recent` for each of `rooms` (casefolded), keyed by name.
    /// Loaded once at startup, for the standing rooms only: its cost
    /// follows the configuration, not what the database holds.
    /// Nothing older than a room's entry in `floors` is loaded.
    pub fn recent_rooms(
        &self,
        rooms: &[String],
        limit: usize,
        since_ms: Option<i64>,
        floors: &HashMap<String, i64>,
    ) -> Result<HashMap<String, Vec<Record>>, StoreError> {
        recent_of_rooms(rooms, limit, since_ms, floors, |room, since| {
            self.recent(room, limit, since)
        })
    }

    /// Calls `each` for every record of a target from `since_ms` on, oldest
    /// first, without holding them all in memory.
    pub fn for_each<E: From<StoreError>>(
        &self,
        target: &HistoryTarget,
        since_ms: Option<i64>,
        mut each: impl FnMut(Record) -> Result<(), E>,
    ) -> Result<(), E> {
        let sql = format!(
            "SELECT {COLUMNS} FROM events WHERE target = ?1 AND time_ms >= ?2 ORDER BY time_ms, id"
        );
        let mut statement = self.conn.prepare(&sql).map_err(StoreError::from)?;
        let mut rows = statement
            .query(params![target.column(), since_ms.unwrap_or(i64::MIN)])
            .map_err(StoreError::from)?;
        while let Some(row) = rows.next().map_err(StoreError::from)? {
            each(record_from_row(row).map_err(StoreError::from)?)?;
        }
        Ok(())
    }

    /// Up to `limit` records stored after row `after_id`, in the order
    /// they were stored, each with its row id: a page of a migration.
    pub fn page_after(
        &self,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Record)>, StoreError> {
        let sql = format!("SELECT {COLUMNS}, id FROM events WHERE id > ?1 ORDER BY id LIMIT ?2");
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut statement = self.conn.prepare(&sql)?;
        let rows = statement.query_map(params![after_id, limit], |row| {
            Ok((row.get(9)?, record_from_row(row)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Each standing room's floor, as recorded.
    pub fn standing_floors(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut statement = self
            .conn
            .prepare("SELECT name, since_ms FROM standing_rooms ORDER BY name")?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many records a target has; for tests and tools.
    pub fn count(&self, target: &HistoryTarget) -> Result<u64, StoreError> {
        let count: i64 = self.conn.query_row(
            "SELECT count(*) FROM events WHERE target = ?1",
            [target.column()],
            |row| row.get(0),
        )?;
        Ok(count.unsigned_abs())
    }

    /// Whether a record with this msgid is stored.
    #[cfg(test)]
    pub fn contains(&self, msgid: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT 1 FROM events WHERE msgid = ?1", [msgid], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Lines of `target` with `low < position < high` and `time_ms >=
    /// floor`, nearest `low` first when `ascending`, else nearest `high`.
    /// Only messages and notices unless `events`: other events (topic
    /// changes, joins, tag messages, ...) go to `draft/event-playback`
    /// readers only.
    #[allow(clippy::too_many_arguments)]
    fn range(
        &self,
        targets: &[Cow<'_, str>; 2],
        floor: i64,
        events: bool,
        low: Position,
        high: Position,
        ascending: bool,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let order = if ascending { "ASC" } else { "DESC" };
        let sql = format!(
            "SELECT {COLUMNS} FROM events
             WHERE target IN (?1, ?8) AND time_ms >= ?2
               AND (?9 OR command IN ('PRIVMSG', 'NOTICE'))
               AND (time_ms, id) > (?3, ?4) AND (time_ms, id) < (?5, ?6)
             ORDER BY time_ms {order}, id {order} LIMIT ?7"
        );
        let mut statement = self.conn.prepare_cached(&sql)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = statement.query_map(
            params![
                targets[0], floor, low.time, low.id, high.time, high.id, limit, targets[1], events
            ],
            record_from_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Where a reference falls in a target's order; `None` for a msgid the
    /// target does not hold.
    fn position(
        &self,
        targets: &[Cow<'_, str>; 2],
        bound: &Bound,
        edge: Edge,
    ) -> Result<Option<Position>, StoreError> {
        match bound {
            Bound::Time(time) => Ok(Some(Position::at_time(*time, edge))),
            Bound::MsgId(msgid) => Ok(self
                .conn
                .prepare_cached(
                    "SELECT time_ms, id FROM events WHERE msgid = ?1 AND target IN (?2, ?3)",
                )?
                .query_row(params![msgid, targets[0], targets[1]], |row| {
                    Ok(Position {
                        time: row.get(0)?,
                        id: row.get(1)?,
                    })
                })
                .optional()?),
        }
    }
}

/// TARGETS' answer from each target's (stored name, display, latest
/// time): the least recently active first, ties in time by the stored
/// name (as they always have been), at most `limit`.
pub(super) fn listed_targets(
    mut found: Vec<(String, String, i64)>,
    limit: usize,
) -> Vec<TargetActivity> {
    found.sort_by(|a, b| (a.2, &a.0).cmp(&(b.2, &b.0)));
    found.truncate(limit);
    found
        .into_iter()
        .map(|(target, display, latest_ms)| TargetActivity {
            target: HistoryTarget::from_column(&target),
            display,
            latest_ms,
        })
        .collect()
}

/// The recent lines `recent` reads for each of `rooms`, from the later of
/// `since_ms` and the room's floor, keyed by name; rooms without any are
/// left out, and nothing is read when `limit` is 0.
pub(super) fn recent_of_rooms(
    rooms: &[String],
    limit: usize,
    since_ms: Option<i64>,
    floors: &HashMap<String, i64>,
    mut recent: impl FnMut(&str, Option<i64>) -> Result<Vec<Record>, StoreError>,
) -> Result<HashMap<String, Vec<Record>>, StoreError> {
    let mut found = HashMap::new();
    if limit == 0 {
        return Ok(found);
    }
    for room in rooms {
        let since = since_ms.max(floors.get(room).copied());
        let records = recent(room, since)?;
        if !records.is_empty() {
            found.insert(room.clone(), records);
        }
    }
    Ok(found)
}

/// What a query's steps read: a range of one target's order, and where a
/// reference falls in it. The SQLite store and the PostgreSQL one each
/// answer these two, and [`answer`] builds every CHATHISTORY query from
/// them, so both backends page alike, by `(time_ms, id)`.
pub(super) trait Lines {
    /// Lines of `targets` with `low < position < high` and `time_ms >=
    /// floor`, nearest `low` first when `ascending`, else nearest `high`;
    /// only messages and notices unless `events`.
    #[allow(clippy::too_many_arguments)]
    fn range(
        &mut self,
        targets: &[Cow<'_, str>; 2],
        floor: i64,
        events: bool,
        low: Position,
        high: Position,
        ascending: bool,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError>;

    /// Where a reference falls in the targets' order; `None` for a msgid
    /// they do not hold.
    fn position(
        &mut self,
        targets: &[Cow<'_, str>; 2],
        bound: &Bound,
        edge: Edge,
    ) -> Result<Option<Position>, StoreError>;
}

impl Lines for &Store {
    fn range(
        &mut self,
        targets: &[Cow<'_, str>; 2],
        floor: i64,
        events: bool,
        low: Position,
        high: Position,
        ascending: bool,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        Store::range(self, targets, floor, events, low, high, ascending, limit)
    }

    fn position(
        &mut self,
        targets: &[Cow<'_, str>; 2],
        bound: &Bound,
        edge: Edge,
    ) -> Result<Option<Position>, StoreError> {
        Store::position(self, targets, bound, edge)
    }
}

/// Answers one CHATHISTORY-style query from `store`, oldest first.
pub(super) fn answer(store: impl Lines, query: &Query) -> Result<Vec<Record>, StoreError> {
    let target = query.target.column();
    let also = query
        .also
        .as_ref()
        .map_or(target.clone(), HistoryTarget::column);
    let mut visible = Visible {
        store,
        targets: [target, also],
        floor: query.not_before_ms.unwrap_or(i64::MIN),
        events: query.events,
    };
    let limit = query.limit;
    let mut records = match &query.kind {
        QueryKind::Latest { after } => visible.latest(after.as_ref(), limit)?,
        QueryKind::Before { bound } => visible.before(bound, limit)?,
        QueryKind::After { bound } => visible.after(bound, limit)?,
        QueryKind::Around { bound } => visible.around(bound, limit)?,
        QueryKind::Between { start, end } => visible.between(start, end, limit)?,
    };
    records.truncate(limit);
    Ok(records)
}

/// The last `limit` messages and notices of one room (its stored name)
/// no older than `since_ms`, oldest first: what a join replays.
pub(super) fn recent_of(
    store: impl Lines,
    target: &str,
    limit: usize,
    since_ms: Option<i64>,
) -> Result<Vec<Record>, StoreError> {
    let mut visible = Visible {
        store,
        targets: [Cow::Borrowed(target), Cow::Borrowed(target)],
        floor: since_ms.unwrap_or(i64::MIN),
        events: false,
    };
    visible.counted_back(Position::FIRST, Position::LAST, limit)
}

/// One target's lines from a reader's floor on: the steps a query is
/// made of. A reference the target does not hold matches nothing.
struct Visible<'a, S> {
    store: S,
    /// The `target` column, under either of two keys (the same one twice
    /// for a target with one).
    targets: [Cow<'a, str>; 2],
    /// Nothing older is read.
    floor: i64,
    /// Every event, not only messages and notices (`draft/event-playback`).
    events: bool,
}

impl<S: Lines> Visible<'_, S> {
    /// The newest lines, only those after `after` if given.
    fn latest(&mut self, after: Option<&Bound>, limit: usize) -> Result<Vec<Record>, StoreError> {
        let low = match after {
            Some(bound) => match self.position(bound, Edge::High)? {
                Some(position) => position,
                None => return Ok(Vec::new()),
            },
            None => Position::FIRST,
        };
        self.counted_back(low, Position::LAST, limit)
    }

    /// The lines just before a reference.
    fn before(&mut self, bound: &Bound, limit: usize) -> Result<Vec<Record>, StoreError> {
        let Some(high) = self.position(bound, Edge::Low)? else {
            return Ok(Vec::new());
        };
        self.counted_back(Position::FIRST, high, limit)
    }

    /// The lines just after a reference.
    fn after(&mut self, bound: &Bound, limit: usize) -> Result<Vec<Record>, StoreError> {
        let Some(low) = self.position(bound, Edge::High)? else {
            return Ok(Vec::new());
        };
        self.counted_forward(low, Position::LAST, limit)
    }

    /// Up to half the limit before a reference, the rest from it on.
    fn around(&mut self, bound: &Bound, limit: usize) -> Result<Vec<Record>, StoreError> {
        let Some(centre) = self.position(bound, Edge::Low)? else {
            return Ok(Vec::new());
        };
        let mut records = self.counted_back(Position::FIRST, centre, limit / 2)?;
        let rest = limit - records.len();
        // The centre itself belongs to the later half.
        records.extend(self.counted_forward(centre.just_before(), Position::LAST, rest)?);
        Ok(records)
    }

    /// The lines strictly between two references, counted from `start`
    /// (which may be the later one).
    fn between(
        &mut self,
        start: &Bound,
        end: &Bound,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let (Some(start_low), Some(end_low)) = (
            self.position(start, Edge::Low)?,
            self.position(end, Edge::Low)?,
        ) else {
            return Ok(Vec::new());
        };
        let (Some(start_high), Some(end_high)) = (
            self.position(start, Edge::High)?,
            self.position(end, Edge::High)?,
        ) else {
            return Ok(Vec::new());
        };
        if start_low <= end_low {
            self.counted_forward(start_high, end_low, limit)
        } else {
            // Counted back from `start`, the later reference.
            self.counted_back(end_high, start_low, limit)
        }
    }

    /// Up to `limit` lines strictly between `low` and `high`, those nearest
    /// `high`, oldest first.
    fn counted_back(
        &mut self,
        low: Position,
        high: Position,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let mut records = self.store.range(
            &self.targets,
            self.floor,
            self.events,
            low,
            high,
            false,
            limit,
        )?;
        records.reverse();
        Ok(records)
    }

    /// Up to `limit` lines strictly between `low` and `high`, those nearest
    /// `low`, oldest first.
    fn counted_forward(
        &mut self,
        low: Position,
        high: Position,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        self.store.range(
            &self.targets,
            self.floor,
            self.events,
            low,
            high,
            true,
            limit,
        )
    }

    fn position(&mut self, bound: &Bound, edge: Edge) -> Result<Option<Position>, StoreError> {
        self.store.position(&self.targets, bound, edge)
    }
}

/// A place in a target's order: time, then insertion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Position {
    pub(super) time: i64,
    pub(super) id: i64,
}

impl Position {
    const FIRST: Position = Position {
        time: i64::MIN,
        id: i64::MIN,
    };
    const LAST: Position = Position {
        time: i64::MAX,
        id: i64::MAX,
    };

    /// Where a time reference falls: before every event of its
    /// millisecond (`Edge::Low`) or after them all.
    pub(super) fn at_time(time: i64, edge: Edge) -> Position {
        match edge {
            Edge::Low => Position { time, id: i64::MIN },
            Edge::High => Position { time, id: i64::MAX },
        }
    }

    /// The position just before this one, so a strict `>` includes it.
    fn just_before(self) -> Position {
        match self.id.checked_sub(1) {
            Some(id) => Position { id, ..self },
            None => Position {
                time: self.time.saturating_sub(1),
                id: i64::MAX,
            },
        }
    }
}

/// Which side of a time reference counts as past it: a time names every
/// event in that millisecond, a msgid exactly one.
#[derive(Clone, Copy)]
pub(super) enum Edge {
    Low,
    High,
}

fn record_from_row(row: &Row<'_>) -> rusqlite::Result<Record> {
    Ok(Record {
        msgid: row.get(0)?,
        time_ms: row.get(1)?,
        target: HistoryTarget::from_column(&row.get::<_, String>(2)?),
        target_display: row.get(3)?,
        sender: row.get(4)?,
        account: row.get(5)?,
        command: row.get(6)?,
        text: row.get(7)?,
        tags: row.get(8)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Party;
    use crate::history::testing::{TempDb, folded, record, target};

    /// `#room` with r0..r9 one second apart from 1 s, and one line elsewhere.
    fn room() -> (TempDb, Store, Vec<Record>) {
        let db = TempDb::new();
        let mut store = Store::open(db.path(), HistorySync::Normal).unwrap();
        let lines: Vec<Record> = (0..10)
            .map(|i| record(&format!("r{i}"), 1000 * (i + 1), "#room"))
            .collect();
        store.insert_batch(&lines).unwrap();
        store
            .insert_batch([&record("elsewhere", 5500, "#other")])
            .unwrap();
        (db, store, lines)
    }

    fn ask(store: &Store, kind: QueryKind, limit: usize) -> Vec<String> {
        let query = Query {
            also: None,
            target: target("#room"),
            kind,
            limit,
            not_before_ms: None,
            events: false,
        };
        msgids(store.query(&query).unwrap())
    }

    fn msgids(records: Vec<Record>) -> Vec<String> {
        records.into_iter().map(|record| record.msgid).collect()
    }

    fn id(msgid: &str) -> Bound {
        Bound::MsgId(msgid.into())
    }

    #[test]
    fn redacting_deletes_that_one_row() {
        let (_db, mut store, _) = room();
        assert!(store.redact("r3").unwrap());
        assert!(!store.redact("r3").unwrap(), "already gone");
        assert!(store.find("r3").unwrap().is_none());
        assert_eq!(
            store.find("r4").unwrap().map(|r| r.msgid),
            Some("r4".into())
        );
        let left = ask(&store, QueryKind::Latest { after: None }, 20);
        assert_eq!(left.len(), 9);
        assert!(!left.contains(&"r3".to_owned()));
    }

    #[test]
    fn other_events_are_returned_only_when_asked_for() {
        let db = TempDb::new();
        let mut store = Store::open(db.path(), HistorySync::Normal).unwrap();
        let mut join = record("j", 1000, "#room");
        join.command = "JOIN".into();
        join.text = String::new();
        let mut topic = record("t", 2000, "#room");
        topic.command = "TOPIC".into();
        store
            .insert_batch([&join, &topic, &record("m", 3000, "#room")])
            .unwrap();
        let mut query = Query {
            also: None,
            target: target("#room"),
            kind: QueryKind::Latest { after: None },
            limit: 10,
            not_before_ms: None,
            events: false,
        };
        assert_eq!(msgids(store.query(&query).unwrap()), ["m"]);
        query.events = true;
        assert_eq!(msgids(store.query(&query).unwrap()), ["j", "t", "m"]);
    }

    #[test]
    fn an_empty_file_is_migrated_to_the_latest_schema() {
        let db = TempDb::new();
        std::fs::write(db.path(), b"").unwrap();
        let store = Store::open(db.path(), HistorySync::Normal).unwrap();
        assert_eq!(store.schema_version().unwrap(), MIGRATIONS.len() as i64);
        let mode: String = store
            .conn
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        drop(store);
        // Opening again runs nothing twice.
        let store = Store::open(db.path(), HistorySync::Full).unwrap();
        assert_eq!(store.count(&target("#room")).unwrap(), 0);
    }

    #[test]
    fn a_schema_newer_than_this_build_is_refused() {
        let db = TempDb::new();
        let store = Store::open(db.path(), HistorySync::Normal).unwrap();
        store.conn.pragma_update(None, "user_version", 99).unwrap();
        drop(store);
        let Err(StoreError::At { path, source }) = Store::open(db.path(), HistorySync::Normal)
        else {
            panic!("a newer schema is refused, naming the file");
        };
        assert_eq!(path, db.path());
        assert!(matches!(*source, StoreError::TooNew { found: 99, .. }));
    }

    #[test]
    fn open_existing_does_not_create_a_file() {
        let db = TempDb::new();
        assert!(matches!(
            Store::open_existing(db.path()),
            Err(StoreError::Missing(_))
        ));
        assert!(!db.path().exists());
    }

    #[test]
    fn records_read_back_field_for_field() {
        let (_db, store, lines) = room();
        let mut stored = Vec::new();
        store
            .for_each(&target("#room"), None, |record| {
                stored.push(record);
                Ok::<_, StoreError>(())
            })
            .unwrap();
        assert_eq!(stored, lines);
    }

    #[test]
    fn a_repeated_msgid_is_skipped_without_failing_the_batch() {
        let (_db, mut store, _) = room();
        let inserted = store
            .insert_batch([
                &record("r1", 99_000, "#room"),
                &record("new", 99_000, "#room"),
            ])
            .unwrap();
        assert_eq!(inserted, 1);
        assert_eq!(store.count(&target("#room")).unwrap(), 11);
    }

    #[test]
    fn latest_returns_the_newest_oldest_first() {
        let (_db, store, _) = room();
        assert_eq!(
            ask(&store, QueryKind::Latest { after: None }, 3),
            ["r7", "r8", "r9"]
        );
        let after = QueryKind::Latest {
            after: Some(id("r5")),
        };
        assert_eq!(ask(&store, after, 10), ["r6", "r7", "r8", "r9"]);
        let after_time = QueryKind::Latest {
            after: Some(Bound::Time(9000)),
        };
        assert_eq!(ask(&store, after_time, 10), ["r9"]);
    }

    #[test]
    fn before_counts_back_from_the_reference() {
        let (_db, store, _) = room();
        let before = QueryKind::Before { bound: id("r5") };
        assert_eq!(ask(&store, before, 2), ["r3", "r4"]);
        // r4 is at exactly 5000 ms: a time excludes its own millisecond.
        let before_time = QueryKind::Before {
            bound: Bound::Time(5000),
        };
        assert_eq!(ask(&store, before_time, 10), ["r0", "r1", "r2", "r3"]);
    }

    #[test]
    fn after_counts_forward_from_the_reference() {
        let (_db, store, _) = room();
        let after = QueryKind::After {
            bound: Bound::Time(5000),
        };
        assert_eq!(ask(&store, after, 2), ["r5", "r6"]);
        assert_eq!(ask(&store, QueryKind::After { bound: id("r8") }, 5), ["r9"]);
    }

    #[test]
    fn around_takes_half_before_and_the_rest_from_the_reference() {
        let (_db, store, _) = room();
        let around = QueryKind::Around { bound: id("r5") };
        assert_eq!(ask(&store, around, 4), ["r3", "r4", "r5", "r6"]);
        // With nothing before, the later half takes the whole limit.
        let at_start = QueryKind::Around { bound: id("r0") };
        assert_eq!(ask(&store, at_start, 3), ["r0", "r1", "r2"]);
        let by_time = QueryKind::Around {
            bound: Bound::Time(5000),
        };
        assert_eq!(ask(&store, by_time, 2), ["r3", "r4"]);
    }

    #[test]
    fn between_is_exclusive_and_counts_from_start() {
        let (_db, store, _) = room();
        let forward = QueryKind::Between {
            start: id("r2"),
            end: id("r6"),
        };
        assert_eq!(ask(&store, forward.clone(), 10), ["r3", "r4", "r5"]);
        assert_eq!(ask(&store, forward, 2), ["r3", "r4"]);
        let backward = QueryKind::Between {
            start: id("r6"),
            end: id("r2"),
        };
        assert_eq!(ask(&store, backward, 2), ["r4", "r5"]);
        let times = QueryKind::Between {
            start: Bound::Time(2000),
            end: Bound::Time(4000),
        };
        assert_eq!(ask(&store, times, 10), ["r2"]);
    }

    #[test]
    fn an_unknown_or_foreign_msgid_matches_nothing() {
        let (_db, store, _) = room();
        assert!(ask(&store, QueryKind::After { bound: id("nope") }, 5).is_empty());
        let foreign = QueryKind::After {
            bound: id("elsewhere"),
        };
        assert!(ask(&store, foreign, 5).is_empty());
    }

    #[test]
    fn not_before_hides_what_was_said_before_the_join() {
        let (_db, store, _) = room();
        let query = Query {
            also: None,
            target: target("#room"),
            kind: QueryKind::Latest { after: None },
            limit: 10,
            not_before_ms: Some(8000),
            events: false,
        };
        assert_eq!(msgids(store.query(&query).unwrap()), ["r7", "r8", "r9"]);
    }

    #[test]
    fn targets_lists_rooms_and_conversations_least_recent_first() {
        let (_db, mut store, _) = room();
        store
            .insert_batch([
                &record("pm1", 3000, "alice bob"),
                &record("pm2", 4000, "bob carol"),
                &record("pm3", 4500, "alice carol"),
            ])
            .unwrap();
        let query = TargetsQuery {
            from_ms: 0,
            to_ms: 11_000,
            rooms: vec![
                (folded("#room"), i64::MIN),
                (folded("#other"), i64::MIN),
                (folded("#empty"), i64::MIN),
            ],
            party: Some((Party::Nick(folded("bob")), i64::MIN)),
            limit: 10,
            events: false,
        };
        let found: Vec<(String, i64)> = store
            .targets(&query)
            .unwrap()
            .into_iter()
            .map(|found| (found.target.column().into_owned(), found.latest_ms))
            .collect();
        let expected = [
            ("alice bob", 3000),
            ("bob carol", 4000),
            ("#other", 5500),
            ("#room", 10_000),
        ];
        let expected: Vec<(String, i64)> = expected
            .iter()
            .map(|(target, time)| ((*target).to_owned(), *time))
            .collect();
        assert_eq!(found, expected);
        let limited = TargetsQuery {
            limit: 1,
            ..query.clone()
        };
        assert_eq!(store.targets(&limited).unwrap().len(), 1);
        // Nothing from before a floor: the room's incarnation, or the
        // moment the reader took its nick.
        let floored = TargetsQuery {
            rooms: vec![(folded("#room"), 10_001), (folded("#other"), 0)],
            party: Some((Party::Nick(folded("bob")), 3500)),
            ..query
        };
        let found: Vec<String> = store
            .targets(&floored)
            .unwrap()
            .into_iter()
            .map(|found| found.target.column().into_owned())
            .collect();
        assert_eq!(found, ["bob carol", "#other"]);
    }

    #[test]
    fn targets_lists_a_target_whose_latest_line_is_strictly_inside_the_window() {
        let (_db, store, _) = room();
        let query = TargetsQuery {
            from_ms: 0,
            to_ms: 5000,
            rooms: vec![(folded("#room"), i64::MIN), (folded("#other"), i64::MIN)],
            party: None,
            limit: 10,
            events: false,
        };
        // #room spoke at 1000..=10000: its latest line is past the window.
        assert!(store.targets(&query).unwrap().is_empty());
        let wider = TargetsQuery {
            to_ms: 10_001,
            ..query
        };
        let latest = |query: &TargetsQuery| -> Vec<i64> {
            let found = store.targets(query).unwrap();
            found.into_iter().map(|found| found.latest_ms).collect()
        };
        assert_eq!(latest(&wider), [5500, 10_000]);
        // Both ends are excluded: a window from #other's latest line to
        // #room's lists neither.
        let between = TargetsQuery {
            from_ms: 5500,
            to_ms: 10_000,
            ..wider
        };
        assert_eq!(latest(&between), Vec::<i64>::new());
    }

    #[test]
    fn an_accounts_conversations_are_found_by_the_account_not_the_nick() {
        let (_db, mut store, _) = room();
        store
            .insert_batch([
                &record("by-account", 3000, "@alice @bob"),
                &record("by-nick", 4000, "alice bob"),
                &record("mixed", 4500, "carol @alice"),
            ])
            .unwrap();
        let query = TargetsQuery {
            from_ms: 0,
            to_ms: 6000,
            rooms: Vec::new(),
            party: Some((Party::Account(folded("alice")), i64::MIN)),
            limit: 10,
            events: false,
        };
        let found: Vec<String> = store
            .targets(&query)
            .unwrap()
            .into_iter()
            .map(|found| found.target.column().into_owned())
            .collect();
        assert_eq!(found, ["@alice @bob", "carol @alice"]);
        let nick = TargetsQuery {
            party: Some((Party::Nick(folded("alice")), i64::MIN)),
            ..query
        };
        let found = store.targets(&nick).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].target.column(), "alice bob");
    }

    #[test]
    fn forgetting_an_account_deletes_its_conversations_and_nothing_else() {
        let (_db, mut store, _) = room();
        store
            .insert_batch([
                &record("with-bob", 3000, "@alice @bob"),
                &record("with-carol", 3100, "carol @alice"),
                &record("as-nick", 4000, "alice bob"),
                &record("others", 4500, "@bob carol"),
            ])
            .unwrap();
        let deleted = store
            .forget_party(&Party::Account(folded("alice")))
            .unwrap();
        assert_eq!(deleted, 2);
        for gone in ["with-bob", "with-carol"] {
            assert!(!store.contains(gone).unwrap(), "{gone}");
        }
        for kept in ["as-nick", "others", "r0", "elsewhere"] {
            assert!(store.contains(kept).unwrap(), "{kept}");
        }
        let bob = TargetsQuery {
            from_ms: 0,
            to_ms: 6000,
            rooms: Vec::new(),
            party: Some((Party::Account(folded("bob")), i64::MIN)),
            limit: 10,
            events: false,
        };
        let found: Vec<String> = store
            .targets(&bob)
            .unwrap()
            .into_iter()
            .map(|found| found.target.column().into_owned())
            .collect();
        assert_eq!(found, ["carol @bob"]);
    }

    #[test]
    fn a_query_with_a_second_key_reads_both_in_one_order() {
        let (_db, mut store, _) = room();
        store
            .insert_batch([
                &record("a1", 3000, "@alice @bob"),
                &record("n1", 3500, "bob @alice"),
                &record("a2", 4000, "@alice @bob"),
                &record("other", 3700, "@alice @carol"),
            ])
            .unwrap();
        let both = |kind| Query {
            target: target("@alice @bob"),
            also: Some(target("bob @alice")),
            kind,
            limit: 10,
            not_before_ms: None,
            events: false,
        };
        let latest = store
            .query(&both(QueryKind::Latest { after: None }))
            .unwrap();
        assert_eq!(msgids(latest), ["a1", "n1", "a2"]);
        let before = store
            .query(&both(QueryKind::Before { bound: id("a2") }))
            .unwrap();
        assert_eq!(msgids(before), ["a1", "n1"]);
        let after = store
            .query(&both(QueryKind::After { bound: id("n1") }))
            .unwrap();
        assert_eq!(msgids(after), ["a2"]);
        let one = Query {
            also: None,
            ..both(QueryKind::Latest { after: None })
        };
        assert_eq!(msgids(store.query(&one).unwrap()), ["a1", "a2"]);
    }

    #[test]
    fn conversations_stored_before_the_party_index_are_found_after_migrating() {
        let db = TempDb::new();
        let store = Store::open(db.path(), HistorySync::Normal).unwrap();
        // A file at schema 1, holding a conversation.
        store
            .conn
            .execute_batch(
                "DROP TABLE conversation_parties; DROP TABLE standing_rooms;
                 DROP TABLE standing_rooms_adopt; DROP TABLE journal_checkpoint;
                 PRAGMA user_version = 1;
                 INSERT INTO events (msgid, time_ms, target, target_display, sender, command, text)
                 VALUES ('old', 10, 'alice bob', 'bob', 'alice!a@h', 'PRIVMSG', 'hi');",
            )
            .unwrap();
        drop(store);
        let store = Store::open(db.path(), HistorySync::Normal).unwrap();
        assert_eq!(store.schema_version().unwrap(), MIGRATIONS.len() as i64);
        let query = TargetsQuery {
            from_ms: 0,
            to_ms: 100,
            rooms: Vec::new(),
            party: Some((Party::Nick(folded("bob")), i64::MIN)),
            limit: 10,
            events: false,
        };
        let found = store.targets(&query).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].target.column(), "alice bob");
        let plan: String = store
            .conn
            .query_row(
                "EXPLAIN QUERY PLAN SELECT target FROM conversation_parties WHERE party = 'bob'",
                [],
                |row| row.get(3),
            )
            .unwrap();
        assert!(plan.contains("SEARCH"), "{plan}");
    }

    #[test]
    fn a_standing_room_keeps_the_time_it_first_became_one() {
        let db = TempDb::new();
        let mut store = Store::open(db.path(), HistorySync::Normal).unwrap();
        let rooms = ["#x".to_owned(), "#y".to_owned()];
        let first = store.standing_since(&rooms, 100).unwrap();
        assert_eq!(first["#x"], 100);
        let later = store.standing_since(&rooms, 200).unwrap();
        assert_eq!(later, first, "a restart keeps the time");
        // #y stops standing, then stands again: it starts anew.
        store.standing_since(&rooms[..1], 300).unwrap();
        let again = store.standing_since(&rooms, 400).unwrap();
        assert_eq!((again["#x"], again["#y"]), (100, 400));
    }

    #[test]
    fn rooms_standing_when_an_older_file_is_upgraded_keep_their_history() {
        let db = TempDb::new();
        let store = Store::open(db.path(), HistorySync::Normal).unwrap();
        // A file at schema 2, holding a line of the standing #x.
        store
            .conn
            .execute_batch(
                "DROP TABLE standing_rooms; DROP TABLE standing_rooms_adopt;
                 DROP TABLE journal_checkpoint;
                 PRAGMA user_version = 2;
                 INSERT INTO events (msgid, time_ms, target, target_display, sender, command, text)
                 VALUES ('old', 10, '#x', '#x', 'alice!a@h', 'PRIVMSG', 'hi');",
            )
            .unwrap();
        drop(store);
        let mut store = Store::open(db.path(), HistorySync::Normal).unwrap();
        let upgraded = store.standing_since(&["#x".to_owned()], 100).unwrap();
        assert_eq!(upgraded["#x"], i64::MIN, "all of its history stays");
        // Only at that first start: a room configured later starts then.
        let rooms = ["#x".to_owned(), "#y".to_owned()];
        let later = store.standing_since(&rooms, 200).unwrap();
        assert_eq!((later["#x"], later["#y"]), (i64::MIN, 200));
    }

    #[test]
    fn recent_rooms_loads_the_named_rooms_last_lines() {
        let (_db, mut store, _) = room();
        store
            .insert_batch([&record("pm", 9999, "alice bob")])
            .unwrap();
        let wanted = [
            "#room".to_owned(),
            "#other".to_owned(),
            "alice bob".to_owned(),
        ];
        let none = HashMap::new();
        let rooms = store
            .recent_rooms(&wanted[..2], 2, Some(6000), &none)
            .unwrap();
        assert_eq!(rooms.len(), 1, "#other is older than the age limit");
        assert_eq!(msgids(rooms["#room"].clone()), ["r8", "r9"]);
        assert!(
            store
                .recent_rooms(&wanted, 0, None, &none)
                .unwrap()
                .is_empty()
        );
        // A room's floor (when it became standing) bounds it too.
        let floors = HashMap::from([("#room".to_owned(), 9500)]);
        let rooms = store.recent_rooms(&wanted[..1], 5, None, &floors).unwrap();
        assert_eq!(msgids(rooms["#room"].clone()), ["r9"]);
        assert_eq!(
            msgids(store.recent("#other", 5, None).unwrap()),
            ["elsewhere"]
        );
    }

    #[test]
    fn a_renamed_rooms_lines_move_and_an_earlier_rooms_later_lines_go() {
        let (_db, mut store, _) = room();
        store
            .insert_batch([
                &record("before-floor", 500, "#new"),
                &record("after-floor", 2500, "#new"),
            ])
            .unwrap();
        let rename = crate::history::RoomRename {
            old: folded("#room"),
            new: folded("#new"),
            display: "#New".to_owned(),
            floor_ms: 1000,
        };
        assert_eq!(store.rename_room(&rename).unwrap(), 10);
        assert_eq!(store.count(&target("#room")).unwrap(), 0);
        assert_eq!(store.count(&target("#new")).unwrap(), 11);
        assert!(store.contains("before-floor").unwrap());
        assert!(!store.contains("after-floor").unwrap());
        assert!(store.contains("elsewhere").unwrap());
    }
}
