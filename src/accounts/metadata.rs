//! A logged-in user's IRCv3 metadata (avatar, display-name, ...), kept
//! with its account so that it comes back at the next login. Written one
//! key at a time, so two connections of one account never overwrite each
//! other's other keys; a key goes with its account. A registered room's
//! keys are written with the room, whole (`rooms.rs`).

use rusqlite::params;

use super::store::{AccountError, Store, account_id};
use crate::config::{MAX_KEY_BYTES, MAX_VALUE_BYTES};

/// Keys one account keeps at most, whatever `[metadata] max_keys` says;
/// the schema's bounds on key and value lengths are the configuration's.
pub const MAX_KEYS_PER_ACCOUNT: usize = 100;

/// One change to an account's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetadataChange {
    /// Set `key` to `value`, or remove it when `value` is `None`.
    Set { key: String, value: Option<String> },
    /// Remove every key.
    Clear,
}

impl Store {
    /// The account's keys and values, by key; none for an unknown account.
    pub fn metadata(&self, account: &str) -> Result<Vec<(String, String)>, AccountError> {
        if !self.has_tables() {
            return Ok(Vec::new());
        }
        let mut select = self.reader().prepare_cached(
            "SELECT m.key, m.value FROM account_metadata m JOIN accounts a ON a.id = m.account
             WHERE a.name_key = ?1 ORDER BY m.key",
        )?;
        let rows = select.query_map([self.naming().key(account)], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Applies `changes` to the account's metadata in one transaction. A
    /// new key past [`MAX_KEYS_PER_ACCOUNT`] is refused; an account that
    /// no longer exists (dropped meanwhile) has nothing to change.
    pub fn change_metadata(
        &mut self,
        account: &str,
        changes: &[MetadataChange],
    ) -> Result<(), AccountError> {
        let key = self.naming().key(account);
        let transaction = self.connection().transaction()?;
        let Some(id) = account_id(&transaction, &key)? else {
            return Ok(());
        };
        for change in changes {
            match change {
                MetadataChange::Clear => {
                    transaction.execute("DELETE FROM account_metadata WHERE account = ?1", [id])?;
                }
                MetadataChange::Set { key, value: None } => {
                    transaction.execute(
                        "DELETE FROM account_metadata WHERE account = ?1 AND key = ?2",
                        params![id, key],
                    )?;
                }
                MetadataChange::Set {
                    key,
                    value: Some(value),
                } => set_key(&transaction, id, key, value)?,
            }
        }
        transaction.commit()?;
        Ok(())
    }
}

fn set_key(
    transaction: &rusqlite::Transaction<'_>,
    id: i64,
    key: &str,
    value: &str,
) -> Result<(), AccountError> {
    let (count, has): (i64, bool) = transaction.query_row(
        "SELECT count(*), coalesce(sum(key = ?2), 0) > 0 FROM account_metadata WHERE account = ?1",
        params![id, key],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    if !has && usize::try_from(count).unwrap_or(usize::MAX) >= MAX_KEYS_PER_ACCOUNT {
        return Err(AccountError::TooMany {
            what: "metadata keys",
            max: MAX_KEYS_PER_ACCOUNT,
        });
    }
    transaction.execute(
        "INSERT INTO account_metadata (account, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (account, key) DO UPDATE SET value = excluded.value",
        params![id, key, value],
    )?;
    Ok(())
}

/// A registered room's metadata fits the store: bounded keys and values.
pub(super) fn check_room_metadata(metadata: &[(String, String)]) -> Result<(), AccountError> {
    if metadata.len() > MAX_KEYS_PER_ACCOUNT {
        return Err(AccountError::TooMany {
            what: "metadata keys",
            max: MAX_KEYS_PER_ACCOUNT,
        });
    }
    for (key, value) in metadata {
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            return Err(AccountError::TooLong {
                field: "metadata key",
                max: MAX_KEY_BYTES,
            });
        }
        if value.is_empty() || value.len() > MAX_VALUE_BYTES {
            return Err(AccountError::TooLong {
                field: "metadata value",
                max: MAX_VALUE_BYTES,
            });
        }
    }
    Ok(())
}

/// Writes a registered room's metadata beside the room row `room`.
pub(super) fn insert_room_metadata(
    transaction: &rusqlite::Transaction<'_>,
    room: i64,
    metadata: &[(String, String)],
) -> Result<(), AccountError> {
    for (key, value) in metadata {
        transaction.execute(
            "INSERT OR REPLACE INTO account_room_metadata (room, key, value) VALUES (?1, ?2, ?3)",
            params![room, key, value],
        )?;
    }
    Ok(())
}

impl Store {
    /// A registered room's metadata, by key.
    pub(super) fn room_metadata(&self, room: i64) -> Result<Vec<(String, String)>, AccountError> {
        let mut select = self.reader().prepare_cached(
            "SELECT key, value FROM account_room_metadata WHERE room = ?1 ORDER BY key",
        )?;
        let rows = select.query_map([room], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
