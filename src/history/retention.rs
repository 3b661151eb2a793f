//! Retention: prunes each target to `max_lines_per_room` lines, drops
//! lines older than `max_age_days`, and keeps at most `max_lines_total`
//! lines in all (the oldest stored go first). It runs on the writer thread, in small
//! steps taken only while no record is waiting, so a commit is delayed by
//! at most one step.

use std::time::{Duration, Instant, SystemTime};

use rusqlite::{OptionalExtension, params};

use super::backend::Backend;
use super::postgres::PgStore;
use super::{HistoryTarget, Store, StoreError, millis};

/// What a sweep needs of a store: its targets in name order, and the two
/// kinds of deletion. Answered by both backends.
pub trait Prune {
    /// The first target after `after` in name order.
    fn next_target(&mut self, after: &str) -> Result<Option<String>, StoreError>;
    /// As [`prune_target`].
    fn prune_target(
        &mut self,
        target: &str,
        max_lines: u64,
        cutoff_ms: Option<i64>,
        chunk: usize,
    ) -> Result<usize, StoreError>;
    /// As [`prune_total`].
    fn prune_total(&mut self, max_total: u64, chunk: usize) -> Result<usize, StoreError>;
}

impl Prune for Store {
    fn next_target(&mut self, after: &str) -> Result<Option<String>, StoreError> {
        Store::next_target(self, after)
    }

    fn prune_target(
        &mut self,
        target: &str,
        max_lines: u64,
        cutoff_ms: Option<i64>,
        chunk: usize,
    ) -> Result<usize, StoreError> {
        prune_target(self, target, max_lines, cutoff_ms, chunk)
    }

    fn prune_total(&mut self, max_total: u64, chunk: usize) -> Result<usize, StoreError> {
        prune_total(self, max_total, chunk)
    }
}

impl Prune for PgStore {
    fn next_target(&mut self, after: &str) -> Result<Option<String>, StoreError> {
        PgStore::next_target(self, after)
    }

    fn prune_target(
        &mut self,
        target: &str,
        max_lines: u64,
        cutoff_ms: Option<i64>,
        chunk: usize,
    ) -> Result<usize, StoreError> {
        PgStore::prune_target(self, target, max_lines, cutoff_ms, chunk)
    }

    fn prune_total(&mut self, max_total: u64, chunk: usize) -> Result<usize, StoreError> {
        PgStore::prune_total(self, max_total, chunk)
    }
}

impl Prune for Backend {
    fn next_target(&mut self, after: &str) -> Result<Option<String>, StoreError> {
        match self {
            Backend::Sqlite(store) => Prune::next_target(store, after),
            Backend::Postgres(store) => Prune::next_target(&mut **store, after),
        }
    }

    fn prune_target(
        &mut self,
        target: &str,
        max_lines: u64,
        cutoff_ms: Option<i64>,
        chunk: usize,
    ) -> Result<usize, StoreError> {
        match self {
            Backend::Sqlite(store) => {
                Prune::prune_target(store, target, max_lines, cutoff_ms, chunk)
            }
            Backend::Postgres(store) => {
                Prune::prune_target(&mut **store, target, max_lines, cutoff_ms, chunk)
            }
        }
    }

    fn prune_total(&mut self, max_total: u64, chunk: usize) -> Result<usize, StoreError> {
        match self {
            Backend::Sqlite(store) => Prune::prune_total(store, max_total, chunk),
            Backend::Postgres(store) => Prune::prune_total(&mut **store, max_total, chunk),
        }
    }
}

/// Rows deleted per step: a few milliseconds of work.
const CHUNK: usize = 1000;
/// Time between sweeps over every target.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// How long the writer sleeps between checks when retention is off.
const IDLE: Duration = Duration::from_secs(3600);

/// Walks the targets one small step at a time.
#[derive(Debug)]
pub struct Pruner {
    max_lines: u64,
    max_age_days: u64,
    /// Lines kept in all; 0: no limit.
    max_total: u64,
    /// Whether this sweep has brought the whole store under `max_total`.
    total_done: bool,
    /// When the next sweep starts.
    next_sweep: Instant,
    /// The sweep in progress: the last target pruned, and whether that
    /// target still has rows to delete.
    cursor: Option<(String, bool)>,
}

impl Pruner {
    /// A pruner whose first sweep starts at once; limits of 0 are off.
    pub fn new(max_lines: u64, max_age_days: u64) -> Pruner {
        Pruner {
            max_lines,
            max_age_days,
            max_total: 0,
            total_done: false,
            next_sweep: Instant::now(),
            cursor: None,
        }
    }

    /// Also keeps at most `max_total` lines in all; 0 is no limit.
    pub fn with_total(mut self, max_total: u64) -> Pruner {
        self.max_total = max_total;
        self
    }

    fn enabled(&self) -> bool {
        self.max_lines > 0 || self.max_age_days > 0 || self.max_total > 0
    }

    /// `None` when a step is due now, else how long until one is.
    pub fn next_due(&self, now: Instant) -> Option<Duration> {
        if !self.enabled() {
            return Some(IDLE);
        }
        if self.cursor.is_some() || now >= self.next_sweep {
            return None;
        }
        Some(self.next_sweep - now)
    }

    /// Deletes at most `CHUNK` rows from one target, moving to the next
    /// target when it is within its limits.
    pub fn step(&mut self, store: &mut impl Prune, now: Instant) -> Result<(), StoreError> {
        // Each sweep starts with the whole store's limit.
        if self.max_total > 0 && !self.total_done {
            self.total_done = store.prune_total(self.max_total, CHUNK)? < CHUNK;
            return Ok(());
        }
        let target = match self.cursor.take() {
            Some((target, true)) => Some(target),
            Some((target, false)) => store.next_target(&target)?,
            None => store.next_target("")?,
        };
        let Some(target) = target else {
            // Every target done: the sweep is over.
            self.next_sweep = now + SWEEP_INTERVAL;
            self.total_done = false;
            return Ok(());
        };
        let cutoff = (self.max_age_days > 0).then(|| {
            let age_ms = i64::try_from(self.max_age_days * 86_400_000).unwrap_or(i64::MAX);
            millis(SystemTime::now()).saturating_sub(age_ms)
        });
        let deleted = store.prune_target(&target, self.max_lines, cutoff, CHUNK)?;
        self.cursor = Some((target, deleted == CHUNK));
        Ok(())
    }
}

/// Runs a `DELETE ... RETURNING target` over at most one chunk of rows,
/// then takes every private conversation it emptied out of the parties'
/// index: whichever pruning deletes rows, the index follows. Returns how
/// many rows went.
fn delete_events(
    store: &mut Store,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<usize, StoreError> {
    let mut conversations = std::collections::HashSet::new();
    let mut deleted = 0;
    {
        let mut statement = store.conn.prepare_cached(sql)?;
        let mut rows = statement.query(params)?;
        while let Some(row) = rows.next()? {
            deleted += 1;
            let target = HistoryTarget::from_column(&row.get::<_, String>(0)?);
            if let HistoryTarget::Private(..) = target {
                conversations.insert(target);
            }
        }
    }
    for conversation in conversations {
        forget_emptied_conversation(store, &conversation)?;
    }
    Ok(deleted)
}

/// Once a private conversation has no rows left, its parties no longer
/// list it (through the primary key: no scan).
fn forget_emptied_conversation(
    store: &mut Store,
    conversation: &HistoryTarget,
) -> Result<(), StoreError> {
    let HistoryTarget::Private(parties) = conversation else {
        return Ok(());
    };
    let (a, b) = parties.parties();
    let target = conversation.column();
    let left: Option<i64> = store
        .conn
        .query_row(
            "SELECT 1 FROM events WHERE target = ?1 LIMIT 1",
            [&target],
            |row| row.get(0),
        )
        .optional()?;
    if left.is_none() {
        store.conn.execute(
            "DELETE FROM conversation_parties WHERE party IN (?1, ?2) AND target = ?3",
            params![a.column(), b.column(), target],
        )?;
    }
    Ok(())
}

/// Deletes up to `chunk` of a target's oldest rows that are older than
/// `cutoff_ms` or beyond the newest `max_lines` (0: no count limit).
/// Returns how many went.
pub fn prune_target(
    store: &mut Store,
    target: &str,
    max_lines: u64,
    cutoff_ms: Option<i64>,
    chunk: usize,
) -> Result<usize, StoreError> {
    let chunk = i64::try_from(chunk).unwrap_or(i64::MAX);
    let mut deleted = 0;
    if let Some(cutoff) = cutoff_ms {
        deleted += delete_events(
            store,
            "DELETE FROM events WHERE id IN (
                SELECT id FROM events WHERE target = ?1 AND time_ms < ?2
                ORDER BY time_ms, id LIMIT ?3) RETURNING target",
            params![target, cutoff, chunk],
        )?;
    }
    let left = chunk - i64::try_from(deleted).unwrap_or(chunk);
    if max_lines > 0 && left > 0 {
        let newest_excess: Option<(i64, i64)> = store
            .conn
            .query_row(
                "SELECT time_ms, id FROM events WHERE target = ?1
                 ORDER BY time_ms DESC, id DESC LIMIT 1 OFFSET ?2",
                params![target, i64::try_from(max_lines).unwrap_or(i64::MAX)],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        if let Some((time, id)) = newest_excess {
            deleted += delete_events(
                store,
                "DELETE FROM events WHERE id IN (
                    SELECT id FROM events WHERE target = ?1 AND (time_ms, id) <= (?2, ?3)
                    ORDER BY time_ms, id LIMIT ?4) RETURNING target",
                params![target, time, id, left],
            )?;
        }
    }
    Ok(deleted)
}

/// Deletes up to `chunk` of the oldest stored rows beyond the newest
/// `max_total` (by insertion order, through the primary key: no scan).
/// Counted by row id, so after other pruning a few more may go than
/// strictly needed, never fewer. Returns how many went.
pub fn prune_total(store: &mut Store, max_total: u64, chunk: usize) -> Result<usize, StoreError> {
    let chunk = i64::try_from(chunk).unwrap_or(i64::MAX);
    let keep = i64::try_from(max_total).unwrap_or(i64::MAX);
    delete_events(
        store,
        "DELETE FROM events WHERE id IN (
            SELECT id FROM events WHERE id <= (SELECT max(id) FROM events) - ?1
            ORDER BY id LIMIT ?2) RETURNING target",
        params![keep, chunk],
    )
}

impl Store {
    /// The first target after `after` in name order: one index seek, so a
    /// sweep never scans the whole table at once.
    pub fn next_target(&self, after: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT target FROM events WHERE target > ?1 ORDER BY target LIMIT 1")?
            .query_row([after], |row| row.get(0))
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HistorySync;
    use crate::history::testing::{TempDb, record};

    fn store_with(lines: &[(&str, i64, &str)]) -> (TempDb, Store) {
        let db = TempDb::new();
        let mut store = Store::open(db.path(), HistorySync::Normal).unwrap();
        let records: Vec<_> = lines
            .iter()
            .map(|(msgid, time, target)| record(msgid, *time, target))
            .collect();
        store.insert_batch(&records).unwrap();
        (db, store)
    }

    fn remaining(store: &Store, target: &str) -> Vec<String> {
        store
            .recent(target, 100, None)
            .unwrap()
            .into_iter()
            .map(|record| record.msgid)
            .collect()
    }

    #[test]
    fn count_pruning_keeps_the_newest_lines_in_chunks() {
        let lines: Vec<(String, i64)> = (0..10).map(|i| (format!("m{i}"), i * 10)).collect();
        let lines: Vec<(&str, i64, &str)> = lines
            .iter()
            .map(|(msgid, time)| (msgid.as_str(), *time, "#room"))
            .collect();
        let (_db, mut store) = store_with(&lines);
        assert_eq!(prune_target(&mut store, "#room", 3, None, 4).unwrap(), 4);
        assert_eq!(prune_target(&mut store, "#room", 3, None, 4).unwrap(), 3);
        assert_eq!(prune_target(&mut store, "#room", 3, None, 4).unwrap(), 0);
        assert_eq!(remaining(&store, "#room"), ["m7", "m8", "m9"]);
    }

    #[test]
    fn age_pruning_drops_lines_older_than_the_cutoff() {
        let (_db, mut store) = store_with(&[
            ("old", 100, "#room"),
            ("edge", 200, "#room"),
            ("new", 300, "#room"),
            ("other", 100, "#other"),
        ]);
        assert_eq!(
            prune_target(&mut store, "#room", 0, Some(200), 10).unwrap(),
            1
        );
        assert_eq!(remaining(&store, "#room"), ["edge", "new"]);
        assert_eq!(remaining(&store, "#other"), ["other"]);
    }

    #[test]
    fn a_sweep_visits_every_target_then_rests() {
        let (_db, mut store) = store_with(&[
            ("a1", 1, "#a"),
            ("a2", 2, "#a"),
            ("b1", 1, "#b"),
            ("b2", 2, "#b"),
            ("p1", 1, "alice bob"),
            ("p2", 2, "alice bob"),
        ]);
        let mut pruner = Pruner::new(1, 0);
        let start = Instant::now();
        let mut steps = 0;
        while pruner.next_due(start).is_none() {
            pruner.step(&mut store, start).unwrap();
            steps += 1;
            assert!(steps < 20, "the sweep must end");
        }
        assert_eq!(remaining(&store, "#a"), ["a2"]);
        assert_eq!(remaining(&store, "#b"), ["b2"]);
        assert_eq!(remaining(&store, "alice bob"), ["p2"]);
        assert_eq!(pruner.next_due(start), Some(SWEEP_INTERVAL));
    }

    #[test]
    fn max_age_days_prunes_by_the_wall_clock() {
        let now = millis(SystemTime::now());
        let (_db, mut store) = store_with(&[
            ("ancient", now - 3 * 86_400_000, "#room"),
            ("fresh", now, "#room"),
        ]);
        let mut pruner = Pruner::new(0, 2);
        let start = Instant::now();
        while pruner.next_due(start).is_none() {
            pruner.step(&mut store, start).unwrap();
        }
        assert_eq!(remaining(&store, "#room"), ["fresh"]);
    }

    #[test]
    fn the_total_limit_keeps_the_newest_lines_of_the_whole_store() {
        let lines: Vec<(String, i64, &str)> = (0..10)
            .map(|i| (format!("m{i}"), i, if i % 2 == 0 { "#a" } else { "#b" }))
            .collect();
        let borrowed: Vec<(&str, i64, &str)> =
            lines.iter().map(|(m, t, r)| (m.as_str(), *t, *r)).collect();
        let (_db, mut store) = store_with(&borrowed);
        let mut pruner = Pruner::new(0, 0).with_total(3);
        assert_eq!(pruner.next_due(Instant::now()), None);
        pruner.step(&mut store, Instant::now()).unwrap();
        assert_eq!(remaining(&store, "#a"), ["m8"]);
        assert_eq!(remaining(&store, "#b"), ["m7", "m9"]);
    }

    #[test]
    fn an_emptied_conversation_leaves_its_parties_index() {
        let (_db, mut store) = store_with(&[("old", 1, "alice bob"), ("new", 10, "#room")]);
        let parties = |store: &Store| -> i64 {
            store
                .conn
                .query_row("SELECT count(*) FROM conversation_parties", [], |row| {
                    row.get(0)
                })
                .unwrap()
        };
        assert_eq!(parties(&store), 2);
        let mut pruner = Pruner::new(0, 1);
        for _ in 0..4 {
            pruner.step(&mut store, Instant::now()).unwrap();
        }
        assert!(remaining(&store, "alice bob").is_empty());
        assert_eq!(parties(&store), 0);
    }

    fn parties(store: &Store) -> Vec<(String, String)> {
        store
            .conn
            .prepare("SELECT party, target FROM conversation_parties ORDER BY party, target")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn the_total_limit_takes_emptied_conversations_out_of_the_index() {
        let (_db, mut store) = store_with(&[
            ("p1", 1, "alice bob"),
            ("p2", 2, "alice carol"),
            ("p3", 3, "alice carol"),
        ]);
        assert_eq!(prune_total(&mut store, 1, 10).unwrap(), 2);
        let pair = |p: &str, t: &str| (p.to_owned(), t.to_owned());
        assert_eq!(
            parties(&store),
            [pair("alice", "alice carol"), pair("carol", "alice carol")]
        );
    }

    #[test]
    fn a_conversation_emptied_over_several_chunks_leaves_the_index() {
        let lines: Vec<(String, i64)> = (0..5).map(|i| (format!("p{i}"), i)).collect();
        let lines: Vec<(&str, i64, &str)> = lines
            .iter()
            .map(|(msgid, time)| (msgid.as_str(), *time, "alice bob"))
            .collect();
        let (_db, mut store) = store_with(&lines);
        // Each call deletes a full chunk; the last one empties it.
        assert_eq!(
            prune_target(&mut store, "alice bob", 0, Some(100), 2).unwrap(),
            2
        );
        assert_eq!(parties(&store).len(), 2);
        assert_eq!(
            prune_target(&mut store, "alice bob", 0, Some(100), 2).unwrap(),
            2
        );
        assert_eq!(
            prune_target(&mut store, "alice bob", 0, Some(100), 1).unwrap(),
            1
        );
        assert!(parties(&store).is_empty());
    }

    #[test]
    fn retention_off_never_wakes_the_writer() {
        let pruner = Pruner::new(0, 0);
        assert_eq!(pruner.next_due(Instant::now()), Some(IDLE));
    }
}
