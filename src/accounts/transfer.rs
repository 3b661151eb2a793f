//! Copying one node's accounts from its SQLite file into the PostgreSQL
//! database a network shares (`rookery history migrate`, beside the
//! history lines): each account whole (its credentials as they are, so
//! its password still works; its nicks, certificates, pending code,
//! metadata and read markers), then the registered rooms.
//!
//! Running it twice copies nothing twice: an account is one transaction,
//! and one whose name the database holds already is not touched. When the
//! stored one is the same account (same name as written and creation
//! time: its password may have changed on the network since) it counts
//! as copied before; otherwise it is another node's namesake, reported,
//! and neither it nor its rooms nor its room access is taken over by this
//! node's account. So is an account whose name is another account's nick:
//! an account always owns the nick of its name. Any other nick or
//! certificate another account holds stays with it and is reported.

use std::collections::HashSet;

use postgres::Transaction;
use rusqlite::{OptionalExtension, params};

use super::postgres::{PgAccounts, taken};
use super::{Account, AccountError, Store};

/// Accounts read from the SQLite file at a time.
const PAGE: usize = 500;

/// What a copy did, for the administrator.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountsCopied {
    /// Accounts in the SQLite file.
    pub read: u64,
    /// Accounts the database did not have and has now.
    pub copied: u64,
    /// Accounts copied by an earlier run.
    pub already: u64,
    /// Accounts whose name the database holds for another account, as an
    /// account or as a nick: not copied.
    pub conflicts: Vec<String>,
    /// Those of `conflicts` whose name is another account's nick.
    pub name_nicks_taken: Vec<String>,
    /// Nicks (with the account they were not given to) another account
    /// owns already.
    pub nicks_kept: Vec<(String, String)>,
    /// Certificates another account holds already.
    pub certificates_kept: u64,
    /// Registered rooms copied.
    pub rooms_copied: u64,
    /// Registered rooms the database has registered already (by an
    /// earlier run, or another node): not touched.
    pub rooms_already: u64,
    /// Registered rooms whose founder's account was not copied.
    pub rooms_skipped: Vec<String>,
}

/// One account as the SQLite file holds it, with all that goes with it.
struct Exported {
    account: Account,
    enforce: bool,
    nicks: Vec<(String, String, i64)>,
    certificates: Vec<String>,
    /// Code hash, expiry and attempts, for an account still pending.
    pending: Option<(Vec<u8>, i64, i64)>,
    metadata: Vec<(String, String)>,
    /// Target key, target, read time.
    markers: Vec<(String, String, i64)>,
}

/// How one account's copy went.
enum Imported {
    Copied {
        nicks_kept: Vec<String>,
        certificates_kept: u64,
    },
    Already,
    /// The name is another account's.
    Conflict,
    /// The nick of the name is another account's.
    NameNickTaken,
}

/// Copies every account and registered room of `from` into `to`.
pub fn copy_accounts(from: &Store, to: &mut PgAccounts) -> Result<AccountsCopied, AccountError> {
    let mut copied = AccountsCopied::default();
    let mut conflicted: HashSet<String> = HashSet::new();
    let mut after: Option<String> = None;
    loop {
        let page = from.list(after.as_deref(), PAGE)?;
        for account in &page {
            copied.read += 1;
            let exported = export(from, account.clone())?;
            match import(to, &exported)? {
                Imported::Copied {
                    nicks_kept,
                    certificates_kept,
                } => {
                    copied.copied += 1;
                    copied.certificates_kept += certificates_kept;
                    let owner = &account.name;
                    let kept = nicks_kept.into_iter().map(|nick| (nick, owner.clone()));
                    copied.nicks_kept.extend(kept);
                }
                Imported::Already => copied.already += 1,
                Imported::Conflict => {
                    conflicted.insert(to.naming().key(&account.name));
                    copied.conflicts.push(account.name.clone());
                }
                Imported::NameNickTaken => {
                    conflicted.insert(to.naming().key(&account.name));
                    copied.conflicts.push(account.name.clone());
                    copied.name_nicks_taken.push(account.name.clone());
                }
            }
        }
        match page.last() {
            Some(last) if page.len() == PAGE => after = Some(last.name.clone()),
            _ => break,
        }
    }
    copy_rooms(from, to, &conflicted, &mut copied)?;
    Ok(copied)
}

/// The rooms whose name is free in `to` and whose founder is this node's
/// account there; access entries of a conflicting name are left out.
fn copy_rooms(
    from: &Store,
    to: &mut PgAccounts,
    conflicted: &HashSet<String>,
    copied: &mut AccountsCopied,
) -> Result<(), AccountError> {
    let naming = to.naming();
    let registered: HashSet<String> = to
        .rooms()?
        .iter()
        .map(|room| naming.key(&room.name))
        .collect();
    for mut room in from.rooms()? {
        if registered.contains(&naming.key(&room.name)) {
            copied.rooms_already += 1;
            continue;
        }
        if conflicted.contains(&naming.key(&room.founder)) {
            copied.rooms_skipped.push(room.name);
            continue;
        }
        room.access
            .retain(|(account, _)| !conflicted.contains(&naming.key(account)));
        match to.save_room(&room) {
            Ok(()) => copied.rooms_copied += 1,
            Err(AccountError::RoomTaken(_) | AccountError::NotFound(_)) => {
                copied.rooms_skipped.push(room.name);
            }
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Reads everything of one account from the SQLite file (each list is
/// bounded by the store's per-account limits).
fn export(from: &Store, account: Account) -> Result<Exported, AccountError> {
    let conn = from.reader();
    let key = from.naming().key(&account.name);
    let (id, enforce): (i64, bool) = conn.query_row(
        "SELECT id, enforce_nicks FROM accounts WHERE name_key = ?1",
        [&key],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    let strings = |sql: &str| -> Result<Vec<String>, AccountError> {
        let mut select = conn.prepare(sql)?;
        let rows = select.query_map([id], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    };
    let certificates = strings("SELECT fingerprint FROM account_certificates WHERE account = ?1")?;
    let mut select =
        conn.prepare("SELECT nick_key, nick, since_ms FROM account_nicks WHERE account = ?1")?;
    let nicks = select
        .query_map([id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let pending = conn
        .query_row(
            "SELECT code_hash, expires_ms, attempts FROM account_verifications WHERE account = ?1",
            [id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()?;
    let mut select = conn.prepare("SELECT key, value FROM account_metadata WHERE account = ?1")?;
    let metadata = select
        .query_map(params![id], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut select = conn.prepare(
        "SELECT target_key, target, read_ms FROM account_read_markers WHERE account = ?1",
    )?;
    let markers = select
        .query_map([id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
        .collect::<Result<_, _>>()?;
    Ok(Exported {
        account,
        enforce,
        nicks,
        certificates,
        pending,
        metadata,
        markers,
    })
}

/// Writes one account in one transaction, unless its name is taken.
fn import(to: &mut PgAccounts, exported: &Exported) -> Result<Imported, AccountError> {
    let key = to.naming().key(&exported.account.name);
    let name = exported.account.name.clone();
    let mut transaction = to.client_mut().transaction()?;
    let stored = transaction.query_opt(
        "SELECT name, created_ms FROM accounts WHERE name_key = $1",
        &[&key],
    )?;
    if let Some(row) = stored {
        let (stored_name, created_ms): (String, i64) = (row.try_get(0)?, row.try_get(1)?);
        // Not the hash: a password changed on the network since is still
        // the copy an earlier run made.
        let same =
            stored_name == exported.account.name && created_ms == exported.account.created_ms;
        return Ok(if same {
            Imported::Already
        } else {
            Imported::Conflict
        });
    }
    let written = write_account(&mut transaction, &key, exported).and_then(|outcome| {
        // Anything else drops the transaction: nothing of it is written.
        if matches!(outcome, Imported::Copied { .. }) {
            transaction.commit()?;
        }
        Ok(outcome)
    });
    match written.map_err(|error| taken(error, &name)) {
        // Another node registered the name meanwhile.
        Err(AccountError::NameTaken(_)) => Ok(Imported::Conflict),
        other => other,
    }
}

/// Writes one account's rows in `transaction`; an outcome other than
/// `Copied` means the caller must not commit it.
fn write_account(
    transaction: &mut Transaction<'_>,
    key: &str,
    exported: &Exported,
) -> Result<Imported, AccountError> {
    let account = &exported.account;
    let scram = &account.credentials.scram;
    let iterations = i64::from(scram.iterations);
    let suspended = account.suspended.as_ref();
    let id: i64 = transaction
        .query_one(
            "INSERT INTO accounts (name, name_key, password_hash, scram_salt, scram_iterations,
                 scram_stored_key, scram_server_key, email, created_ms, suspended_reason,
                 suspended_by, suspended_ms, enforce_nicks)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
            &[
                &account.name,
                &key,
                &account.credentials.hash,
                &scram.salt,
                &iterations,
                &&scram.stored_key[..],
                &&scram.server_key[..],
                &account.email,
                &account.created_ms,
                &suspended.map(|s| &s.reason),
                &suspended.map(|s| &s.by),
                &suspended.map(|s| s.at_ms),
                &exported.enforce,
            ],
        )?
        .try_get(0)?;
    let mut nicks_kept = Vec::new();
    for (nick_key, nick, since_ms) in &exported.nicks {
        let added = transaction.execute(
            "INSERT INTO account_nicks (nick_key, nick, account, since_ms) VALUES ($1, $2, $3, $4)
             ON CONFLICT (nick_key) DO NOTHING",
            &[nick_key, nick, &id, since_ms],
        )?;
        if added == 0 && nick_key == key {
            return Ok(Imported::NameNickTaken);
        }
        if added == 0 {
            nicks_kept.push(nick.clone());
        }
    }
    let mut certificates_kept = 0;
    for fingerprint in &exported.certificates {
        let added = transaction.execute(
            "INSERT INTO account_certificates (fingerprint, account) VALUES ($1, $2)
             ON CONFLICT (fingerprint) DO NOTHING",
            &[fingerprint, &id],
        )?;
        if added == 0 {
            certificates_kept += 1;
        }
    }
    if let Some((code_hash, expires_ms, attempts)) = &exported.pending {
        transaction.execute(
            "INSERT INTO account_verifications (account, code_hash, expires_ms, attempts)
             VALUES ($1, $2, $3, $4)",
            &[&id, code_hash, expires_ms, attempts],
        )?;
    }
    for (key, value) in &exported.metadata {
        transaction.execute(
            "INSERT INTO account_metadata (account, key, value) VALUES ($1, $2, $3)",
            &[&id, key, value],
        )?;
    }
    for (target_key, target, read_ms) in &exported.markers {
        transaction.execute(
            "INSERT INTO account_read_markers (account, target_key, target, read_ms)
             VALUES ($1, $2, $3, $4)",
            &[&id, target_key, target, read_ms],
        )?;
    }
    Ok(Imported::Copied {
        nicks_kept,
        certificates_kept,
    })
}
