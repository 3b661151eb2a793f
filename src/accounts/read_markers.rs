//! Read markers (draft/read-marker): for each account, the time of the
//! last message it read in each target (a room or a nick). The server
//! holds them all in memory, reads them once at startup and writes each
//! change; a marker only ever moves forward, here as in the core.

use rusqlite::params;

use super::store::{AccountError, Store, account_id, check_length};

/// The longest target stored, in bytes (a room name is at most 200).
pub const MAX_TARGET_LEN: usize = 200;
/// Targets one account keeps a marker for; past it, the least recently
/// read target's marker goes.
pub const MAX_MARKERS_PER_ACCOUNT: usize = 256;

/// One account's marker in one target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadMarkerRecord {
    /// The account's name, as registered.
    pub account: String,
    /// The target as last spelled by the account's client.
    pub target: String,
    /// The `time` of the last message read, in ms since the epoch.
    pub read_ms: i64,
    /// The room's name before a RENAME: its row is this one's, and goes
    /// (unless the name was marked later since, by a new room of it).
    pub renamed_from: Option<String>,
}

impl Store {
    /// Moves the account's marker in the target forward to `read_ms` (a
    /// later marker stored already is kept), then drops its oldest markers
    /// past [`MAX_MARKERS_PER_ACCOUNT`]. An account dropped meanwhile has
    /// nothing to keep.
    pub fn save_read_marker(&mut self, marker: &ReadMarkerRecord) -> Result<(), AccountError> {
        check_length("target", &marker.target, MAX_TARGET_LEN)?;
        let account_key = self.naming().key(&marker.account);
        let target_key = self.naming().key(&marker.target);
        let renamed_key = marker
            .renamed_from
            .as_deref()
            .map(|old| self.naming().key(old));
        let transaction = self.connection().transaction()?;
        let Some(account) = account_id(&transaction, &account_key)? else {
            return Ok(());
        };
        transaction.execute(
            "INSERT INTO account_read_markers (account, target_key, target, read_ms)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (account, target_key) DO UPDATE
             SET target = excluded.target, read_ms = max(read_ms, excluded.read_ms)",
            params![account, target_key, marker.target, marker.read_ms],
        )?;
        if let Some(old) = &renamed_key {
            transaction.execute(
                "DELETE FROM account_read_markers
                 WHERE account = ?1 AND target_key = ?2 AND read_ms <= ?3",
                params![account, old, marker.read_ms],
            )?;
        }
        transaction.execute(
            "DELETE FROM account_read_markers WHERE account = ?1 AND target_key NOT IN
                 (SELECT target_key FROM account_read_markers WHERE account = ?1
                  ORDER BY read_ms DESC, target_key LIMIT ?2)",
            params![account, MAX_MARKERS_PER_ACCOUNT as i64],
        )?;
        transaction.commit()?;
        Ok(())
    }

    /// Every account's markers, by account then target; none before the
    /// account tables exist.
    pub fn read_markers(&self) -> Result<Vec<ReadMarkerRecord>, AccountError> {
        if !self.has_tables() {
            return Ok(Vec::new());
        }
        let mut select = self.reader().prepare(
            "SELECT a.name, m.target, m.read_ms FROM account_read_markers m
             JOIN accounts a ON a.id = m.account ORDER BY a.name_key, m.target_key",
        )?;
        let rows = select.query_map([], |row| {
            Ok(ReadMarkerRecord {
                account: row.get(0)?,
                target: row.get(1)?,
                read_ms: row.get(2)?,
                renamed_from: None,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
