//! The one seam between accounts and their database: the worker, the
//! room and metadata writers, the server's start and `rookery accounts`
//! hold an [`Accounts`].
//!
//! An enum over the two stores, as history's `Backend` is: the set is
//! closed, each call is a `match` the compiler sees through, and the
//! SQLite path runs the code it ran before. Accounts live where history
//! does: in the node's SQLite file, or in the PostgreSQL database every
//! node shares, so that an account is one across the network.

use std::borrow::Cow;
use std::path::PathBuf;

use super::postgres::PgAccounts;
use super::{
    Account, AccountError, CodeCheck, Credentials, MetadataChange, Naming, NickOwner, PendingCode,
    ReadMarkerRecord, RoomRecord, Store, Suspension,
};
use crate::config::{HistoryBackend, HistoryConfig};

/// Where the accounts are: beside history, in the same database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// This node's own SQLite file (`[history] path`).
    Sqlite(PathBuf),
    /// The database the network shares (`[history] postgres`).
    Postgres(String),
}

impl Place {
    /// The database `[history]` names.
    pub fn of(history: &HistoryConfig) -> Place {
        match history.backend {
            HistoryBackend::Sqlite => Place::Sqlite(history.path.clone()),
            HistoryBackend::Postgres => Place::Postgres(history.postgres.clone()),
        }
    }

    /// Whether every node reads and writes these accounts.
    pub fn is_shared(&self) -> bool {
        matches!(self, Place::Postgres(_))
    }
}

/// A connection to the account tables, whichever database holds them.
pub enum Accounts {
    /// This node's SQLite file.
    Sqlite(Store),
    /// The shared PostgreSQL database (boxed: its client is large).
    Postgres(Box<PgAccounts>),
}

impl Accounts {
    /// Opens for reading and writing, creating and migrating the tables.
    /// On SQLite only under the database lock ([`super::DatabaseLock`]).
    pub fn open(place: &Place, naming: Naming) -> Result<Accounts, AccountError> {
        match place {
            Place::Sqlite(path) => Store::open(path, naming).map(Accounts::Sqlite),
            Place::Postgres(url) => {
                PgAccounts::open(url, naming).map(|store| Accounts::Postgres(Box::new(store)))
            }
        }
    }

    /// Opens an existing database for reading only; one without account
    /// tables reads as holding no account.
    pub fn open_read_only(place: &Place, naming: Naming) -> Result<Accounts, AccountError> {
        match place {
            Place::Sqlite(path) => Store::open_read_only(path, naming).map(Accounts::Sqlite),
            Place::Postgres(url) => PgAccounts::open_read_only(url, naming)
                .map(|store| Accounts::Postgres(Box::new(store))),
        }
    }

    /// Where the accounts are, for messages: the file, or the URL without
    /// its password.
    pub fn place(&self) -> Cow<'_, str> {
        match self {
            Accounts::Sqlite(store) => store.path().to_string_lossy(),
            Accounts::Postgres(store) => Cow::Borrowed(store.url()),
        }
    }

    /// The account schema version: 0 before the first account was made.
    pub fn schema_version(&self) -> Result<i64, AccountError> {
        match self {
            Accounts::Sqlite(store) => store.schema_version(),
            Accounts::Postgres(store) => store.schema_version(),
        }
    }

    /// Registers `name`; it owns its name as a nick from then on.
    pub fn create(
        &mut self,
        name: &str,
        credentials: &Credentials,
        email: Option<&str>,
        now_ms: i64,
    ) -> Result<Account, AccountError> {
        match self {
            Accounts::Sqlite(store) => store.create(name, credentials, email, now_ms),
            Accounts::Postgres(store) => store.create(name, credentials, email, now_ms),
        }
    }

    /// Registers `name` pending the code mailed to `email`.
    pub fn create_pending(
        &mut self,
        name: &str,
        credentials: &Credentials,
        email: &str,
        code: &PendingCode,
        now_ms: i64,
    ) -> Result<Account, AccountError> {
        match self {
            Accounts::Sqlite(store) => store.create_pending(name, credentials, email, code, now_ms),
            Accounts::Postgres(store) => {
                store.create_pending(name, credentials, email, code, now_ms)
            }
        }
    }

    /// VERIFY: counts the attempt; on the right code the account may log in.
    pub fn check_code(
        &mut self,
        name: &str,
        code_hash: &[u8; 32],
        now_ms: i64,
    ) -> Result<CodeCheck, AccountError> {
        match self {
            Accounts::Sqlite(store) => store.check_code(name, code_hash, now_ms),
            Accounts::Postgres(store) => store.check_code(name, code_hash, now_ms),
        }
    }

    /// Deletes the account if it is still pending.
    pub fn remove_pending(&mut self, name: &str) -> Result<(), AccountError> {
        match self {
            Accounts::Sqlite(store) => store.remove_pending(name),
            Accounts::Postgres(store) => store.remove_pending(name),
        }
    }

    /// Frees the names of pending accounts whose code expired.
    pub fn free_expired(&mut self, now_ms: i64) -> Result<usize, AccountError> {
        match self {
            Accounts::Sqlite(store) => store.free_expired(now_ms),
            Accounts::Postgres(store) => store.free_expired(now_ms),
        }
    }

    /// The account named `name` in any case, if there is one.
    pub fn find(&self, name: &str) -> Result<Option<Account>, AccountError> {
        match self {
            Accounts::Sqlite(store) => store.find(name),
            Accounts::Postgres(store) => store.find(name),
        }
    }

    /// A page of accounts in name order.
    pub fn list(&self, after: Option<&str>, limit: usize) -> Result<Vec<Account>, AccountError> {
        match self {
            Accounts::Sqlite(store) => store.list(after, limit),
            Accounts::Postgres(store) => store.list(after, limit),
        }
    }

    /// Replaces the account's password.
    pub fn set_password(
        &mut self,
        name: &str,
        credentials: &Credentials,
    ) -> Result<(), AccountError> {
        match self {
            Accounts::Sqlite(store) => store.set_password(name, credentials),
            Accounts::Postgres(store) => store.set_password(name, credentials),
        }
    }

    /// Suspends the account.
    pub fn suspend(&mut self, name: &str, suspension: &Suspension) -> Result<(), AccountError> {
        match self {
            Accounts::Sqlite(store) => store.suspend(name, suspension),
            Accounts::Postgres(store) => store.suspend(name, suspension),
        }
    }

    /// Lifts a suspension.
    pub fn unsuspend(&mut self, name: &str) -> Result<(), AccountError> {
        match self {
            Accounts::Sqlite(store) => store.unsuspend(name),
            Accounts::Postgres(store) => store.unsuspend(name),
        }
    }

    /// The nicks the account owns.
    pub fn nicks(&self, name: &str) -> Result<Vec<String>, AccountError> {
        match self {
            Accounts::Sqlite(store) => store.nicks(name),
            Accounts::Postgres(store) => store.nicks(name),
        }
    }

    /// Gives the account `nick` too.
    pub fn add_nick(&mut self, name: &str, nick: &str, now_ms: i64) -> Result<(), AccountError> {
        match self {
            Accounts::Sqlite(store) => store.add_nick(name, nick, now_ms),
            Accounts::Postgres(store) => store.add_nick(name, nick, now_ms),
        }
    }

    /// The account that owns `nick`.
    pub fn nick_owner(&self, nick: &str) -> Result<Option<String>, AccountError> {
        match self {
            Accounts::Sqlite(store) => store.nick_owner(nick),
            Accounts::Postgres(store) => store.nick_owner(nick),
        }
    }

    /// Every owned nick, for the server's index.
    pub fn nick_owners(&self) -> Result<Vec<NickOwner>, AccountError> {
        match self {
            Accounts::Sqlite(store) => store.nick_owners(),
            Accounts::Postgres(store) => store.nick_owners(),
        }
    }

    /// Turns enforcement of the account's nicks on or off.
    pub fn set_enforce(&mut self, name: &str, on: bool) -> Result<(), AccountError> {
        match self {
            Accounts::Sqlite(store) => store.set_enforce(name, on),
            Accounts::Postgres(store) => store.set_enforce(name, on),
        }
    }

    /// Deletes the account with everything that goes with it.
    pub fn delete(&mut self, name: &str) -> Result<(), AccountError> {
        match self {
            Accounts::Sqlite(store) => store.delete(name),
            Accounts::Postgres(store) => store.delete(name),
        }
    }

    /// The account's certificate fingerprints.
    pub fn certificates(&self, name: &str) -> Result<Vec<String>, AccountError> {
        match self {
            Accounts::Sqlite(store) => store.certificates(name),
            Accounts::Postgres(store) => store.certificates(name),
        }
    }

    /// Lets a client certificate log in to the account.
    pub fn add_certificate(&mut self, name: &str, fingerprint: &str) -> Result<(), AccountError> {
        match self {
            Accounts::Sqlite(store) => store.add_certificate(name, fingerprint),
            Accounts::Postgres(store) => store.add_certificate(name, fingerprint),
        }
    }

    /// Forgets a certificate of the account; true when it had it.
    pub fn remove_certificate(
        &mut self,
        name: &str,
        fingerprint: &str,
    ) -> Result<bool, AccountError> {
        match self {
            Accounts::Sqlite(store) => store.remove_certificate(name, fingerprint),
            Accounts::Postgres(store) => store.remove_certificate(name, fingerprint),
        }
    }

    /// The account a client certificate logs in to.
    pub fn certificate_owner(&self, fingerprint: &str) -> Result<Option<String>, AccountError> {
        match self {
            Accounts::Sqlite(store) => store.certificate_owner(fingerprint),
            Accounts::Postgres(store) => store.certificate_owner(fingerprint),
        }
    }

    /// The account's metadata, by key.
    pub fn metadata(&self, account: &str) -> Result<Vec<(String, String)>, AccountError> {
        match self {
            Accounts::Sqlite(store) => store.metadata(account),
            Accounts::Postgres(store) => store.metadata(account),
        }
    }

    /// Applies metadata changes in one transaction.
    pub fn change_metadata(
        &mut self,
        account: &str,
        changes: &[MetadataChange],
    ) -> Result<(), AccountError> {
        match self {
            Accounts::Sqlite(store) => store.change_metadata(account, changes),
            Accounts::Postgres(store) => store.change_metadata(account, changes),
        }
    }

    /// Writes a registered room whole.
    pub fn save_room(&mut self, room: &RoomRecord) -> Result<(), AccountError> {
        match self {
            Accounts::Sqlite(store) => store.save_room(room),
            Accounts::Postgres(store) => store.save_room(room),
        }
    }

    /// Moves a registered room to a new name.
    pub fn rename_room(&mut self, old: &str, new: &str) -> Result<bool, AccountError> {
        match self {
            Accounts::Sqlite(store) => store.rename_room(old, new),
            Accounts::Postgres(store) => store.rename_room(old, new),
        }
    }

    /// Forgets a registered room.
    pub fn drop_room(&mut self, name: &str) -> Result<bool, AccountError> {
        match self {
            Accounts::Sqlite(store) => store.drop_room(name),
            Accounts::Postgres(store) => store.drop_room(name),
        }
    }

    /// Every registered room, in name order.
    pub fn rooms(&self) -> Result<Vec<RoomRecord>, AccountError> {
        match self {
            Accounts::Sqlite(store) => store.rooms(),
            Accounts::Postgres(store) => store.rooms(),
        }
    }

    /// Moves an account's read marker forward.
    pub fn save_read_marker(&mut self, marker: &ReadMarkerRecord) -> Result<(), AccountError> {
        match self {
            Accounts::Sqlite(store) => store.save_read_marker(marker),
            Accounts::Postgres(store) => store.save_read_marker(marker),
        }
    }

    /// Every account's read markers.
    pub fn read_markers(&self) -> Result<Vec<ReadMarkerRecord>, AccountError> {
        match self {
            Accounts::Sqlite(store) => store.read_markers(),
            Accounts::Postgres(store) => store.read_markers(),
        }
    }
}
