//! The PostgreSQL store: one history for every node of a network.
//!
//! The same rows as the SQLite store ([`super::store`]), answering the same
//! queries the same way: a target's lines are ordered by `(time_ms, id)`,
//! `id` a `BIGSERIAL` given at insertion, so lines of one millisecond keep
//! the order they were stored in, as on SQLite. (Ordering ties by msgid
//! instead would not: msgids count in unpadded hex, so `…-f` sorts after
//! `…-10`.) Every node stores each line it delivers, so the same msgid
//! arrives several times: `ON CONFLICT (msgid) DO NOTHING` keeps the first.
//!
//! Each node's journal checkpoint is its own row, keyed by its node name.
//! The connection is blocking (the `postgres` crate): the writer and the
//! reader are OS threads of their own. A lost connection is reconnected
//! with backoff; until then every call fails at once with
//! [`StoreError::Unreachable`], which the writer treats as any failed
//! commit.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use postgres::{Client, NoTls, Row};
use tracing::{info, warn};

use super::store::{Edge, Lines, Position, answer, listed_targets, recent_of, recent_of_rooms};
use super::{Bound, HistoryTarget, Party, Query, Record, TargetActivity, TargetsQuery};
use super::{RoomRename, StoreError};
use crate::shared_database::{is_shutdown, session_config};

/// Schema versions, in order; `schema_version` holds how many ran.
/// Append new steps; never edit a released one.
const MIGRATIONS: &[&str] = &[
    // 1: the rows, the parties' index, the standing rooms' floors, and
    // one journal checkpoint per node. `COLLATE "C"`: byte order, the same
    // whatever locale the database was created with.
    r#"CREATE TABLE events (
        id BIGSERIAL PRIMARY KEY,
        msgid TEXT COLLATE "C" NOT NULL UNIQUE,
        time_ms BIGINT NOT NULL,
        target TEXT COLLATE "C" NOT NULL,
        target_display TEXT NOT NULL,
        sender TEXT NOT NULL,
        account TEXT,
        command TEXT NOT NULL,
        text TEXT NOT NULL,
        tags TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX events_by_target_time ON events (target, time_ms, id);
    CREATE TABLE conversation_parties (
        party TEXT COLLATE "C" NOT NULL,
        target TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (party, target)
    );
    CREATE TABLE standing_rooms (
        name TEXT COLLATE "C" PRIMARY KEY,
        since_ms BIGINT NOT NULL
    );
    CREATE TABLE journal_checkpoint (
        node TEXT PRIMARY KEY,
        epoch BIGINT NOT NULL,
        seq BIGINT NOT NULL
    );"#,
    // 2: tombstones. Nodes insert the lines they delivered, some late (a
    // batch kept through an outage, a journal replayed at start): a line
    // redacted, or a conversation of a party forgotten, must not come back
    // with another node's insert.
    r#"CREATE TABLE redactions (
        msgid TEXT COLLATE "C" PRIMARY KEY,
        at_ms BIGINT NOT NULL
    );
    CREATE INDEX redactions_by_time ON redactions (at_ms);
    CREATE TABLE forgotten_parties (
        party TEXT COLLATE "C" PRIMARY KEY,
        until_ms BIGINT NOT NULL
    );"#,
];

/// How long a tombstone keeps a late insert out: longer than any node
/// stays down with its journal, or keeps lines through an outage.
const TOMBSTONE_MS: i64 = 30 * 24 * 60 * 60 * 1000;

/// Taken for the length of a migration, so nodes starting together
/// migrate one after another.
const MIGRATION_LOCK: i64 = 0x726f_6f6b_6572_7931;

/// Taken by every batch insert for its transaction: nodes insert the same
/// lines in their own delivery orders, and two transactions each waiting
/// for a msgid the other inserted would deadlock.
const INSERT_LOCK: i64 = 0x726f_6f6b_6572_7932;

const COLUMNS: &str =
    "msgid, time_ms, target, target_display, sender, account, command, text, tags";

/// The first wait before reconnecting, doubled after each failure.
const RECONNECT_FIRST: Duration = Duration::from_millis(100);
/// The longest wait between two attempts to reconnect.
const RECONNECT_MAX: Duration = Duration::from_secs(5);
/// Rows read at a time by [`PgStore::for_each`].
const PAGE: i64 = 1000;

pub use crate::shared_database::{check_url, describe};

/// One connection to the shared history database, reconnected when lost.
pub struct PgStore {
    config: postgres::Config,
    /// The URL without its password, for messages.
    url: String,
    /// This node's name (`Config::history_node`: `[network] node`, or the server name when alone): its journal
    /// checkpoint's key.
    node: String,
    client: Option<Client>,
    /// When the next attempt to reconnect is due.
    retry_at: Instant,
    /// The wait after the next failed attempt.
    backoff: Duration,
}

impl PgStore {
    /// Connects, creates or migrates the schema, and returns the store;
    /// an error names the database (without the password).
    pub fn open(url: &str, node: &str) -> Result<PgStore, StoreError> {
        let config = session_config(url).map_err(StoreError::Url)?;
        let url = describe(&config);
        let client = config
            .connect(NoTls)
            .map_err(|source| StoreError::Connect {
                url: url.clone(),
                source,
            })?;
        let mut store = PgStore {
            config,
            url,
            node: node.to_owned(),
            client: Some(client),
            retry_at: Instant::now(),
            backoff: RECONNECT_FIRST,
        };
        store.migrate().map_err(|error| store.at(error))?;
        Ok(store)
    }

    /// The database as messages name it: its URL without the password.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The same error, naming this database.
    pub fn at(&self, error: StoreError) -> StoreError {
        error.at_url(&self.url)
    }

    /// The connection, reconnecting when it was lost and an attempt is
    /// due; [`StoreError::Unreachable`] at once when not.
    fn client(&mut self) -> Result<&mut Client, StoreError> {
        if self.client.as_ref().is_some_and(Client::is_closed) {
            warn!(database = %self.url, "the connection to the history database was lost; reconnecting");
            self.client = None;
        }
        if self.client.is_none() {
            let now = Instant::now();
            if now < self.retry_at {
                return Err(StoreError::Unreachable(self.url.clone()));
            }
            match self.config.connect(NoTls) {
                Ok(client) => {
                    info!(database = %self.url, "connected to the history database again");
                    self.backoff = RECONNECT_FIRST;
                    self.client = Some(client);
                }
                Err(source) => {
                    self.retry_at = Instant::now() + self.backoff;
                    self.backoff = (self.backoff * 2).min(RECONNECT_MAX);
                    return Err(StoreError::Connect {
                        url: self.url.clone(),
                        source,
                    });
                }
            }
        }
        self.client
            .as_mut()
            .ok_or_else(|| StoreError::Unreachable(self.url.clone()))
    }

    /// Runs `work` on the connection. When the connection turns out to be
    /// closed (the server restarted, or ended the session), it is opened
    /// again and `work` runs once more: every statement here is safe to
    /// repeat (inserts skip stored msgids, deletions and moves find
    /// nothing left to do). A second failure is returned, and the next
    /// call reconnects with backoff.
    fn with<T>(
        &mut self,
        mut work: impl FnMut(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        let mut attempts = 2;
        loop {
            attempts -= 1;
            let client = self.client()?;
            match work(client) {
                Ok(value) => return Ok(value),
                Err(error) => {
                    let closed = error.is_closed() || client.is_closed() || is_shutdown(&error);
                    if !closed {
                        return Err(StoreError::Postgres(error));
                    }
                    warn!(database = %self.url, %error, "the connection to the history database was lost");
                    self.client = None;
                    if attempts == 0 {
                        return Err(StoreError::Postgres(error));
                    }
                }
            }
        }
    }

    /// Brings the tables up to date. A current schema is only read, so a
    /// role without the right to create tables can run a node once the
    /// schema is there, and nodes starting together do not queue for the
    /// migration lock.
    fn migrate(&mut self) -> Result<(), StoreError> {
        let known = MIGRATIONS.len() as i64;
        let current = self.with(|client| {
            let exists: bool = client
                .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])?
                .try_get(0)?;
            if !exists {
                return Ok(None);
            }
            let row = client.query_opt("SELECT version FROM schema_version", &[])?;
            row.map(|row| row.try_get::<_, i64>(0)).transpose()
        })?;
        if current == Some(known) {
            return Ok(());
        }
        self.with(|client| {
            let mut transaction = client.transaction()?;
            transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
            transaction.batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL);
                 INSERT INTO schema_version SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM schema_version);",
            )?;
            let found: i64 = transaction
                .query_one("SELECT version FROM schema_version", &[])?
                .try_get(0)?;
            if found > known {
                return Ok(Err(StoreError::TooNew { found, known }));
            }
            for (version, step) in MIGRATIONS.iter().enumerate().skip(found as usize) {
                transaction.batch_execute(step)?;
                let version = version as i64 + 1;
                transaction.execute("UPDATE schema_version SET version = $1", &[&version])?;
            }
            transaction.commit()?;
            Ok(Ok(()))
        })?
    }

    /// The schema version the database is at.
    pub fn schema_version(&mut self) -> Result<i64, StoreError> {
        self.with(|client| {
            client
                .query_one("SELECT version FROM schema_version", &[])?
                .try_get(0)
        })
    }

    /// Inserts records in one transaction and one statement; a msgid
    /// already stored (by this node or another) is skipped. Returns how
    /// many were inserted.
    pub fn insert_batch<'a>(
        &mut self,
        records: impl IntoIterator<Item = &'a Record>,
    ) -> Result<usize, StoreError> {
        let rows = Columns::of(records);
        self.with(|client| {
            let mut transaction = client.transaction()?;
            let inserted = rows.insert(&mut transaction)?;
            transaction.commit()?;
            Ok(inserted)
        })
    }

    /// Inserts a batch of the journal's records, the highest of which is
    /// `seq`, and notes `seq` as this node's checkpoint, in one
    /// transaction.
    pub(crate) fn store_batch<'a>(
        &mut self,
        records: impl IntoIterator<Item = &'a Record>,
        seq: u64,
    ) -> Result<usize, StoreError> {
        let rows = Columns::of(records);
        let node = self.node.clone();
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        self.with(|client| {
            let mut transaction = client.transaction()?;
            let inserted = rows.insert(&mut transaction)?;
            transaction.execute(
                "UPDATE journal_checkpoint SET seq = greatest(seq, $2) WHERE node = $1",
                &[&node, &seq],
            )?;
            transaction.commit()?;
            Ok(inserted)
        })
    }

    /// Notes that everything up to `seq` is done with, outside a batch.
    pub(crate) fn checkpoint_journal(&mut self, seq: u64) -> Result<(), StoreError> {
        let node = self.node.clone();
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        self.with(|client| {
            client.execute(
                "UPDATE journal_checkpoint SET seq = greatest(seq, $2) WHERE node = $1",
                &[&node, &seq],
            )?;
            Ok(())
        })
    }

    /// This node's journal epoch and the highest sequence number of it
    /// stored; a node seen for the first time starts at (0, 0).
    pub(crate) fn journal_checkpoint(&mut self) -> Result<(u64, u64), StoreError> {
        let node = self.node.clone();
        self.with(|client| {
            client.execute(
                "INSERT INTO journal_checkpoint (node, epoch, seq) VALUES ($1, 0, 0)
                 ON CONFLICT (node) DO NOTHING",
                &[&node],
            )?;
            let row = client.query_one(
                "SELECT epoch, seq FROM journal_checkpoint WHERE node = $1",
                &[&node],
            )?;
            let (epoch, seq): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
            Ok((epoch.unsigned_abs(), seq.unsigned_abs()))
        })
    }

    /// Stores the journal's entries the database lacked and starts this
    /// node's epoch `epoch`, in one transaction.
    pub(crate) fn begin_epoch<'a>(
        &mut self,
        replayed: impl IntoIterator<Item = &'a Record>,
        epoch: u64,
    ) -> Result<usize, StoreError> {
        let rows = Columns::of(replayed);
        let node = self.node.clone();
        let epoch = i64::try_from(epoch).unwrap_or(i64::MAX);
        self.with(|client| {
            let mut transaction = client.transaction()?;
            let inserted = rows.insert(&mut transaction)?;
            transaction.execute(
                "UPDATE journal_checkpoint SET epoch = $2, seq = 0 WHERE node = $1",
                &[&node, &epoch],
            )?;
            transaction.commit()?;
            Ok(inserted)
        })
    }

    /// Answers one CHATHISTORY-style query, oldest first, as
    /// [`super::Store::query`] does.
    pub fn query(&mut self, query: &Query) -> Result<Vec<Record>, StoreError> {
        answer(self, query)
    }

    /// The last `limit` messages and notices of one room no older than
    /// `since_ms`, oldest first: what a join replays.
    pub(super) fn recent(
        &mut self,
        target: &str,
        limit: usize,
        since_ms: Option<i64>,
    ) -> Result<Vec<Record>, StoreError> {
        recent_of(self, target, limit, since_ms)
    }

    /// CHATHISTORY TARGETS, as [`super::Store::targets`] answers it.
    pub fn targets(&mut self, query: &TargetsQuery) -> Result<Vec<TargetActivity>, StoreError> {
        let readable = self.readable_targets(query)?;
        let events = query.events;
        let mut found = Vec::new();
        for (target, floor) in readable {
            let row = self.with(|client| {
                client.query_opt(
                    "SELECT target_display, time_ms FROM events
                     WHERE target = $1 AND time_ms >= $2
                       AND ($3 OR command IN ('PRIVMSG', 'NOTICE'))
                     ORDER BY time_ms DESC, id DESC LIMIT 1",
                    &[&target, &floor, &events],
                )
            })?;
            if let Some(row) = row {
                let (display, latest_ms): (String, i64) = (row.try_get(0)?, row.try_get(1)?);
                if query.from_ms < latest_ms && latest_ms < query.to_ms {
                    found.push((target, display, latest_ms));
                }
            }
        }
        Ok(listed_targets(found, query.limit))
    }

    /// The rooms given and the conversations of the reader's party, each
    /// with the reader's floor there.
    fn readable_targets(&mut self, query: &TargetsQuery) -> Result<Vec<(String, i64)>, StoreError> {
        let mut targets: Vec<(String, i64)> = query
            .rooms
            .iter()
            .map(|(room, floor)| (room.as_str().to_owned(), *floor))
            .collect();
        if let Some((party, floor)) = &query.party {
            let party = party.column().into_owned();
            let rows = self.with(|client| {
                client.query(
                    "SELECT target FROM conversation_parties WHERE party = $1 ORDER BY target",
                    &[&party],
                )
            })?;
            for row in &rows {
                targets.push((row.try_get::<_, String>(0)?, *floor));
            }
        }
        Ok(targets)
    }

    /// Deletes every private conversation `party` took part in, both
    /// sides, in one transaction; returns how many lines went.
    pub fn forget_party(&mut self, party: &Party) -> Result<usize, StoreError> {
        let party = party.column().into_owned();
        let now = now_ms();
        self.with(|client| {
            let mut transaction = client.transaction()?;
            // What another node stores later of its conversations up to
            // now stays out; a conversation the name starts after is kept.
            transaction.execute(
                "INSERT INTO forgotten_parties (party, until_ms) VALUES ($1, $2)
                 ON CONFLICT (party) DO UPDATE
                 SET until_ms = greatest(forgotten_parties.until_ms, EXCLUDED.until_ms)",
                &[&party, &now],
            )?;
            let deleted = transaction.execute(
                "DELETE FROM events WHERE target IN
                    (SELECT target FROM conversation_parties WHERE party = $1)",
                &[&party],
            )?;
            transaction.execute(
                "DELETE FROM conversation_parties WHERE target IN
                    (SELECT target FROM conversation_parties WHERE party = $1)",
                &[&party],
            )?;
            transaction.commit()?;
            Ok(usize::try_from(deleted).unwrap_or(usize::MAX))
        })
    }

    /// The stored line with this msgid, if any.
    pub fn find(&mut self, msgid: &str) -> Result<Option<Record>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM events WHERE msgid = $1");
        let row = self.with(|client| client.query_opt(&sql, &[&msgid]))?;
        Ok(row.as_ref().map(record_from_row).transpose()?)
    }

    /// Deletes the line with this msgid (REDACT); returns whether there
    /// was one.
    /// A tombstone keeps the msgid out of later inserts (another node's
    /// late copy) for `TOMBSTONE_MS`; older tombstones go meanwhile.
    pub fn redact(&mut self, msgid: &str) -> Result<bool, StoreError> {
        let now = now_ms();
        let expired = now.saturating_sub(TOMBSTONE_MS);
        let deleted = self.with(|client| {
            let mut transaction = client.transaction()?;
            transaction.execute("DELETE FROM redactions WHERE at_ms < $1", &[&expired])?;
            transaction.execute(
                "INSERT INTO redactions (msgid, at_ms) VALUES ($1, $2) ON CONFLICT (msgid) DO NOTHING",
                &[&msgid, &now],
            )?;
            let deleted = transaction.execute("DELETE FROM events WHERE msgid = $1", &[&msgid])?;
            transaction.commit()?;
            Ok(deleted)
        })?;
        Ok(deleted > 0)
    }

    /// A renamed room's lines follow it, as [`super::Store::rename_room`]
    /// moves them.
    pub fn rename_room(&mut self, rename: &RoomRename) -> Result<usize, StoreError> {
        let (old, new) = (rename.old.as_str(), rename.new.as_str());
        self.with(|client| {
            let mut transaction = client.transaction()?;
            transaction.execute(
                "DELETE FROM events WHERE target = $1 AND time_ms >= $2",
                &[&new, &rename.floor_ms],
            )?;
            let moved = transaction.execute(
                "UPDATE events SET target = $1, target_display = $2 WHERE target = $3",
                &[&new, &rename.display, &old],
            )?;
            transaction.commit()?;
            Ok(usize::try_from(moved).unwrap_or(usize::MAX))
        })
    }

    /// When each of the standing `rooms` became one: `now_ms` for a name
    /// standing for the first time, else the time recorded then. Unlike
    /// the SQLite store, a name no longer standing here is kept: the
    /// database is shared, and another node may still stand the room.
    pub fn standing_since(
        &mut self,
        rooms: &[String],
        now_ms: i64,
    ) -> Result<HashMap<String, i64>, StoreError> {
        self.with(|client| {
            let mut transaction = client.transaction()?;
            let mut since = HashMap::new();
            for room in rooms {
                transaction.execute(
                    "INSERT INTO standing_rooms (name, since_ms) VALUES ($1, $2)
                     ON CONFLICT (name) DO NOTHING",
                    &[room, &now_ms],
                )?;
                let at: i64 = transaction
                    .query_one(
                        "SELECT since_ms FROM standing_rooms WHERE name = $1",
                        &[room],
                    )?
                    .try_get(0)?;
                since.insert(room.clone(), at);
            }
            transaction.commit()?;
            Ok(since)
        })
    }

    /// Records standing rooms' floors (name, since) the database does not
    /// know yet; a floor it has is kept.
    pub fn adopt_standing(&mut self, floors: &[(String, i64)]) -> Result<(), StoreError> {
        let (names, since): (Vec<&str>, Vec<i64>) = floors
            .iter()
            .map(|(name, since)| (name.as_str(), *since))
            .unzip();
        self.with(|client| {
            client.execute(
                "INSERT INTO standing_rooms (name, since_ms)
                 SELECT * FROM UNNEST($1::text[], $2::bigint[])
                 ON CONFLICT (name) DO NOTHING",
                &[&names, &since],
            )
        })?;
        Ok(())
    }

    /// A room's recent lines for each of `rooms`, keyed by name, as
    /// [`super::Store::recent_rooms`] loads them.
    pub fn recent_rooms(
        &mut self,
        rooms: &[String],
        limit: usize,
        since_ms: Option<i64>,
        floors: &HashMap<String, i64>,
    ) -> Result<HashMap<String, Vec<Record>>, StoreError> {
        recent_of_rooms(rooms, limit, since_ms, floors, |room, since| {
            self.recent(room, limit, since)
        })
    }

    /// Calls `each` for every record of a target from `since_ms` on,
    /// oldest first, a page at a time.
    pub fn for_each<E: From<StoreError>>(
        &mut self,
        target: &HistoryTarget,
        since_ms: Option<i64>,
        mut each: impl FnMut(Record) -> Result<(), E>,
    ) -> Result<(), E> {
        let target = target.column().into_owned();
        let sql = format!(
            "SELECT {COLUMNS}, id FROM events
             WHERE target = $1 AND time_ms >= $2 AND (time_ms, id) > ($3, $4)
             ORDER BY time_ms, id LIMIT $5"
        );
        let floor = since_ms.unwrap_or(i64::MIN);
        let mut after = (i64::MIN, i64::MIN);
        loop {
            let rows = self
                .with(|client| client.query(&sql, &[&target, &floor, &after.0, &after.1, &PAGE]))?;
            let full = rows.len() as i64 == PAGE;
            for row in &rows {
                let record = record_from_row(row).map_err(StoreError::from)?;
                after = (record.time_ms, row.try_get(9).map_err(StoreError::from)?);
                each(record)?;
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// How many records a target has.
    pub fn count(&mut self, target: &HistoryTarget) -> Result<u64, StoreError> {
        let target = target.column().into_owned();
        let count: i64 = self.with(|client| {
            client
                .query_one("SELECT count(*) FROM events WHERE target = $1", &[&target])?
                .try_get(0)
        })?;
        Ok(count.unsigned_abs())
    }

    /// Whether a record with this msgid is stored.
    pub fn contains(&mut self, msgid: &str) -> Result<bool, StoreError> {
        let row = self
            .with(|client| client.query_opt("SELECT 1 FROM events WHERE msgid = $1", &[&msgid]))?;
        Ok(row.is_some())
    }

    /// The first target after `after` in name order.
    pub fn next_target(&mut self, after: &str) -> Result<Option<String>, StoreError> {
        let row = self.with(|client| {
            client.query_opt(
                "SELECT target FROM events WHERE target > $1 ORDER BY target LIMIT 1",
                &[&after],
            )
        })?;
        Ok(row.map(|row| row.try_get(0)).transpose()?)
    }

    /// Deletes up to `chunk` of a target's oldest rows older than
    /// `cutoff_ms` or beyond the newest `max_lines`, as
    /// [`super::retention::prune_target`] does on SQLite.
    pub fn prune_target(
        &mut self,
        target: &str,
        max_lines: u64,
        cutoff_ms: Option<i64>,
        chunk: usize,
    ) -> Result<usize, StoreError> {
        let chunk = i64::try_from(chunk).unwrap_or(i64::MAX);
        let mut deleted = 0;
        if let Some(cutoff) = cutoff_ms {
            deleted += self.delete_events(
                "DELETE FROM events WHERE id IN (
                    SELECT id FROM events WHERE target = $1 AND time_ms < $2
                    ORDER BY time_ms, id LIMIT $3) RETURNING target",
                &[&target, &cutoff, &chunk],
            )?;
        }
        let left = chunk - i64::try_from(deleted).unwrap_or(chunk);
        if max_lines > 0 && left > 0 {
            let keep = i64::try_from(max_lines).unwrap_or(i64::MAX);
            let newest_excess = self.with(|client| {
                client.query_opt(
                    "SELECT time_ms, id FROM events WHERE target = $1
                     ORDER BY time_ms DESC, id DESC LIMIT 1 OFFSET $2",
                    &[&target, &keep],
                )
            })?;
            if let Some(row) = newest_excess {
                let (time, id): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
                deleted += self.delete_events(
                    "DELETE FROM events WHERE id IN (
                        SELECT id FROM events WHERE target = $1 AND (time_ms, id) <= ($2, $3)
                        ORDER BY time_ms, id LIMIT $4) RETURNING target",
                    &[&target, &time, &id, &left],
                )?;
            }
        }
        Ok(deleted)
    }

    /// Deletes up to `chunk` of the oldest stored rows beyond the newest
    /// `max_total`. Found by counting back rows, not by id arithmetic as
    /// on SQLite: a msgid another node stored first still takes a number
    /// from the sequence, so ids have gaps.
    pub fn prune_total(&mut self, max_total: u64, chunk: usize) -> Result<usize, StoreError> {
        let chunk = i64::try_from(chunk).unwrap_or(i64::MAX);
        let keep = i64::try_from(max_total).unwrap_or(i64::MAX);
        let newest_excess = self.with(|client| {
            client.query_opt(
                "SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET $1",
                &[&keep],
            )
        })?;
        let Some(row) = newest_excess else {
            return Ok(0);
        };
        let id: i64 = row.try_get(0)?;
        self.delete_events(
            "DELETE FROM events WHERE id IN (
                SELECT id FROM events WHERE id <= $1 ORDER BY id LIMIT $2) RETURNING target",
            &[&id, &chunk],
        )
    }

    /// Runs a `DELETE ... RETURNING target`, then takes every private
    /// conversation it emptied out of the parties' index.
    fn delete_events(
        &mut self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<usize, StoreError> {
        let rows = self.with(|client| client.query(sql, params))?;
        let mut conversations = HashSet::new();
        for row in &rows {
            let target: String = row.try_get(0)?;
            if let HistoryTarget::Private(..) = HistoryTarget::from_column(&target) {
                conversations.insert(target);
            }
        }
        for conversation in conversations {
            self.with(|client| {
                client.execute(
                    "DELETE FROM conversation_parties WHERE target = $1
                     AND NOT EXISTS (SELECT 1 FROM events WHERE target = $1)",
                    &[&conversation],
                )
            })?;
        }
        Ok(rows.len())
    }
}

impl Lines for &mut PgStore {
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
        if limit == 0 {
            return Ok(Vec::new());
        }
        let order = if ascending { "ASC" } else { "DESC" };
        let sql = format!(
            "SELECT {COLUMNS} FROM events
             WHERE target IN ($1, $8) AND time_ms >= $2
               AND ($9 OR command IN ('PRIVMSG', 'NOTICE'))
               AND (time_ms, id) > ($3, $4) AND (time_ms, id) < ($5, $6)
             ORDER BY time_ms {order}, id {order} LIMIT $7"
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let (first, second) = (targets[0].as_ref(), targets[1].as_ref());
        let rows = self.with(|client| {
            client.query(
                &sql,
                &[
                    &first, &floor, &low.time, &low.id, &high.time, &high.id, &limit, &second,
                    &events,
                ],
            )
        })?;
        Ok(rows.iter().map(record_from_row).collect::<Result<_, _>>()?)
    }

    fn position(
        &mut self,
        targets: &[Cow<'_, str>; 2],
        bound: &Bound,
        edge: Edge,
    ) -> Result<Option<Position>, StoreError> {
        match bound {
            Bound::Time(time) => Ok(Some(Position::at_time(*time, edge))),
            Bound::MsgId(msgid) => {
                let (first, second) = (targets[0].as_ref(), targets[1].as_ref());
                let row = self.with(|client| {
                    client.query_opt(
                        "SELECT time_ms, id FROM events WHERE msgid = $1 AND target IN ($2, $3)",
                        &[msgid, &first, &second],
                    )
                })?;
                let Some(row) = row else {
                    return Ok(None);
                };
                Ok(Some(Position {
                    time: row.try_get(0)?,
                    id: row.try_get(1)?,
                }))
            }
        }
    }
}

/// A batch's records as one array per column: inserted with one
/// statement (`UNNEST`), whatever the batch's size.
#[derive(Default)]
struct Columns {
    msgid: Vec<String>,
    time_ms: Vec<i64>,
    target: Vec<String>,
    target_display: Vec<String>,
    sender: Vec<String>,
    account: Vec<Option<String>>,
    command: Vec<String>,
    text: Vec<String>,
    tags: Vec<String>,
    /// Each private conversation's parties, for the parties' index.
    party: Vec<String>,
    party_target: Vec<String>,
}

impl Columns {
    fn of<'a>(records: impl IntoIterator<Item = &'a Record>) -> Columns {
        let mut columns = Columns::default();
        for record in records {
            let target = record.target.column().into_owned();
            if let HistoryTarget::Private(conversation) = &record.target {
                let (a, b) = conversation.parties();
                columns.party.push(a.column().into_owned());
                columns.party_target.push(target.clone());
                columns.party.push(b.column().into_owned());
                columns.party_target.push(target.clone());
            }
            columns.msgid.push(record.msgid.clone());
            columns.time_ms.push(record.time_ms);
            columns.target.push(target);
            columns.target_display.push(record.target_display.clone());
            columns.sender.push(record.sender.clone());
            columns.account.push(record.account.clone());
            columns.command.push(record.command.clone());
            // PostgreSQL's text cannot hold NUL, and one would fail the
            // whole batch; a multiline message may carry one.
            columns.text.push(record.text.replace('\0', " "));
            columns.tags.push(record.tags.replace('\0', " "));
        }
        columns
    }

    /// Inserts the rows in their order (their ids follow it), skipping a
    /// msgid already stored; returns how many were inserted.
    fn insert(
        &self,
        transaction: &mut postgres::Transaction<'_>,
    ) -> Result<usize, postgres::Error> {
        if self.msgid.is_empty() {
            return Ok(0);
        }
        transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&INSERT_LOCK])?;
        if !self.party.is_empty() {
            transaction.execute(
                "INSERT INTO conversation_parties (party, target)
                 SELECT * FROM UNNEST($1::text[], $2::text[])
                 ON CONFLICT DO NOTHING",
                &[&self.party, &self.party_target],
            )?;
        }
        let inserted = transaction.execute(
            "INSERT INTO events (msgid, time_ms, target, target_display, sender, account, command, text, tags)
             SELECT m, t, g, d, s, a, c, x, y
             FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[],
                         $6::text[], $7::text[], $8::text[], $9::text[])
                  WITH ORDINALITY AS batch (m, t, g, d, s, a, c, x, y, n)
             WHERE NOT EXISTS (SELECT 1 FROM redactions WHERE redactions.msgid = m)
               AND (position(' ' IN g) = 0 OR NOT EXISTS (
                    SELECT 1 FROM forgotten_parties f
                    WHERE f.party IN (split_part(g, ' ', 1), split_part(g, ' ', 2))
                      AND t <= f.until_ms))
             ORDER BY n
             ON CONFLICT (msgid) DO NOTHING",
            &[
                &self.msgid,
                &self.time_ms,
                &self.target,
                &self.target_display,
                &self.sender,
                &self.account,
                &self.command,
                &self.text,
                &self.tags,
            ],
        )?;
        Ok(usize::try_from(inserted).unwrap_or(usize::MAX))
    }
}

/// A row of [`COLUMNS`] as a record; a column of an unexpected type (a
/// schema changed by hand) is an error, not a panic.
fn record_from_row(row: &Row) -> Result<Record, postgres::Error> {
    Ok(Record {
        msgid: row.try_get(0)?,
        time_ms: row.try_get(1)?,
        target: HistoryTarget::from_column(row.try_get::<_, &str>(2)?),
        target_display: row.try_get(3)?,
        sender: row.try_get(4)?,
        account: row.try_get(5)?,
        command: row.try_get(6)?,
        text: row.try_get(7)?,
        tags: row.try_get(8)?,
    })
}

/// Now, in ms since the epoch, as the tombstones count time.
fn now_ms() -> i64 {
    super::millis(std::time::SystemTime::now())
}
