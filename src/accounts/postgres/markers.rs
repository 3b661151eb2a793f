//! An account's metadata and read markers in the shared database, as
//! the SQLite store keeps them (`super::super::metadata`,
//! `super::super::read_markers`).

use postgres::{Row, Transaction};

use super::{PgAccounts, account_id, pair};
use crate::accounts::metadata::{MAX_KEYS_PER_ACCOUNT, MetadataChange};
use crate::accounts::read_markers::{MAX_MARKERS_PER_ACCOUNT, MAX_TARGET_LEN, ReadMarkerRecord};
use crate::accounts::store::{AccountError, check_length};

impl PgAccounts {
    /// The account's metadata keys and values, by key.
    pub fn metadata(&self, account: &str) -> Result<Vec<(String, String)>, AccountError> {
        if !self.has_tables {
            return Ok(Vec::new());
        }
        let rows = self.client.borrow_mut().query(
            "SELECT m.key, m.value FROM account_metadata m JOIN accounts a ON a.id = m.account
             WHERE a.name_key = $1 ORDER BY m.key",
            &[&self.naming.key(account)],
        )?;
        Ok(rows.iter().map(pair).collect::<Result<_, _>>()?)
    }

    /// Applies `changes` in one transaction; see
    /// [`crate::accounts::Store::change_metadata`].
    pub fn change_metadata(
        &mut self,
        account: &str,
        changes: &[MetadataChange],
    ) -> Result<(), AccountError> {
        let key = self.naming.key(account);
        let mut transaction = self.client.get_mut().transaction()?;
        let Some(id) = account_id(&mut transaction, &key)? else {
            return Ok(());
        };
        transaction.execute("SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE", &[&id])?;
        for change in changes {
            match change {
                MetadataChange::Clear => {
                    transaction
                        .execute("DELETE FROM account_metadata WHERE account = $1", &[&id])?;
                }
                MetadataChange::Set { key, value: None } => {
                    transaction.execute(
                        "DELETE FROM account_metadata WHERE account = $1 AND key = $2",
                        &[&id, key],
                    )?;
                }
                MetadataChange::Set {
                    key,
                    value: Some(value),
                } => set_key(&mut transaction, id, key, value)?,
            }
        }
        transaction.commit()?;
        Ok(())
    }

    /// Moves the account's marker forward; see
    /// [`crate::accounts::Store::save_read_marker`].
    pub fn save_read_marker(&mut self, marker: &ReadMarkerRecord) -> Result<(), AccountError> {
        check_length("target", &marker.target, MAX_TARGET_LEN)?;
        let account_key = self.naming.key(&marker.account);
        let target_key = self.naming.key(&marker.target);
        let renamed_key = marker
            .renamed_from
            .as_deref()
            .map(|old| self.naming.key(old));
        let mut transaction = self.client.get_mut().transaction()?;
        let Some(account) = account_id(&mut transaction, &account_key)? else {
            return Ok(());
        };
        transaction.execute(
            "INSERT INTO account_read_markers (account, target_key, target, read_ms)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (account, target_key) DO UPDATE
             SET target = excluded.target,
                 read_ms = GREATEST(account_read_markers.read_ms, excluded.read_ms)",
            &[&account, &target_key, &marker.target, &marker.read_ms],
        )?;
        if let Some(old) = &renamed_key {
            transaction.execute(
                "DELETE FROM account_read_markers
                 WHERE account = $1 AND target_key = $2 AND read_ms <= $3",
                &[&account, old, &marker.read_ms],
            )?;
        }
        transaction.execute(
            "DELETE FROM account_read_markers WHERE account = $1 AND target_key NOT IN
                 (SELECT target_key FROM account_read_markers WHERE account = $1
                  ORDER BY read_ms DESC, target_key LIMIT $2)",
            &[&account, &(MAX_MARKERS_PER_ACCOUNT as i64)],
        )?;
        transaction.commit()?;
        Ok(())
    }

    /// Every account's markers, by account then target.
    pub fn read_markers(&self) -> Result<Vec<ReadMarkerRecord>, AccountError> {
        if !self.has_tables {
            return Ok(Vec::new());
        }
        let rows = self.client.borrow_mut().query(
            "SELECT a.name, m.target, m.read_ms FROM account_read_markers m
             JOIN accounts a ON a.id = m.account ORDER BY a.name_key, m.target_key",
            &[],
        )?;
        let marker = |row: &Row| -> Result<ReadMarkerRecord, postgres::Error> {
            Ok(ReadMarkerRecord {
                account: row.try_get(0)?,
                target: row.try_get(1)?,
                read_ms: row.try_get(2)?,
                renamed_from: None,
            })
        };
        Ok(rows.iter().map(marker).collect::<Result<_, _>>()?)
    }
}

fn set_key(
    transaction: &mut Transaction<'_>,
    id: i64,
    key: &str,
    value: &str,
) -> Result<(), AccountError> {
    let row = transaction.query_one(
        "SELECT count(*), coalesce(bool_or(key = $2), false) FROM account_metadata
         WHERE account = $1",
        &[&id, &key],
    )?;
    let (count, has): (i64, bool) = (row.try_get(0)?, row.try_get(1)?);
    if !has && usize::try_from(count).unwrap_or(usize::MAX) >= MAX_KEYS_PER_ACCOUNT {
        return Err(AccountError::TooMany {
            what: "metadata keys",
            max: MAX_KEYS_PER_ACCOUNT,
        });
    }
    transaction.execute(
        "INSERT INTO account_metadata (account, key, value) VALUES ($1, $2, $3)
         ON CONFLICT (account, key) DO UPDATE SET value = excluded.value",
        &[&id, &key, &value],
    )?;
    Ok(())
}
