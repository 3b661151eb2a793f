//! The account tables, in the history database file: schema and its
//! migrations (counted apart from history's), and every read and write
//! of an account.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Row, Transaction, TransactionBehavior, params,
};

use super::password::{Credentials, PasswordError, ScramCredentials};
use crate::proto::Casemapping;
use crate::proto::validate::is_valid_nick;

/// The longest account name and owned nick, in bytes, whatever NICKLEN is.
pub const MAX_NAME_LEN: usize = 64;
/// An address's longest form (RFC 5321 §4.5.3.1.3: a path of 256 octets,
/// less its angle brackets).
pub const MAX_EMAIL_LEN: usize = 254;
/// The longest suspension reason, in bytes.
pub const MAX_REASON_LEN: usize = 300;
/// The longest PHC hash string accepted into the store.
const MAX_HASH_LEN: usize = 256;
/// The longest SCRAM salt, in bytes.
const MAX_SALT_LEN: usize = 64;
/// Certificate fingerprints one account may have.
pub const MAX_CERTIFICATES_PER_ACCOUNT: usize = 16;
/// Nicks one account may own, its name's included.
pub const MAX_NICKS_PER_ACCOUNT: usize = 16;
/// A SHA-256 fingerprint in hex.
const FINGERPRINT_LEN: usize = 64;

/// How long a statement waits for another connection's lock (the
/// server's history writer shares the file).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The accounts schema, in order; `accounts_schema.version` counts how
/// many ran. Append new steps; never edit a released one. The `CHECK`s
/// repeat the limits above so no other writer can exceed them either.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: accounts, their certificate fingerprints and their nicks.
    "CREATE TABLE accounts (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
        name_key TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL CHECK (length(password_hash) <= 256),
        scram_salt BLOB NOT NULL CHECK (length(scram_salt) <= 64),
        scram_iterations INTEGER NOT NULL,
        scram_stored_key BLOB NOT NULL CHECK (length(scram_stored_key) = 32),
        scram_server_key BLOB NOT NULL CHECK (length(scram_server_key) = 32),
        email TEXT CHECK (length(email) <= 254),
        created_ms INTEGER NOT NULL,
        suspended_reason TEXT CHECK (length(suspended_reason) <= 300),
        suspended_by TEXT CHECK (length(suspended_by) <= 64),
        suspended_ms INTEGER,
        CHECK ((suspended_ms IS NULL) = (suspended_reason IS NULL)
           AND (suspended_ms IS NULL) = (suspended_by IS NULL))
    );
    CREATE TABLE account_certificates (
        fingerprint TEXT PRIMARY KEY CHECK (length(fingerprint) = 64),
        account INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE
    ) WITHOUT ROWID;
    CREATE INDEX account_certificates_by_account ON account_certificates (account);
    CREATE TABLE account_nicks (
        nick_key TEXT PRIMARY KEY,
        nick TEXT NOT NULL CHECK (length(nick) BETWEEN 1 AND 64),
        account INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
        since_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX account_nicks_by_account ON account_nicks (account);",
    // 2: registered rooms (ChanServ), their access lists and their b/e/I
    // lists; a room goes with its founder's account.
    "CREATE TABLE account_rooms (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
        name_key TEXT NOT NULL UNIQUE,
        founder INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
        registered_ms INTEGER NOT NULL,
        history_floor_ms INTEGER NOT NULL,
        topic TEXT CHECK (length(topic) <= 400),
        topic_by TEXT CHECK (length(topic_by) <= 512),
        topic_ms INTEGER,
        modes TEXT NOT NULL CHECK (length(modes) <= 32),
        channel_key TEXT CHECK (length(channel_key) <= 64),
        member_limit INTEGER CHECK (member_limit >= 0),
        CHECK ((topic IS NULL) = (topic_by IS NULL) AND (topic IS NULL) = (topic_ms IS NULL))
    );
    CREATE INDEX account_rooms_by_founder ON account_rooms (founder);
    CREATE TABLE account_room_access (
        room INTEGER NOT NULL REFERENCES account_rooms (id) ON DELETE CASCADE,
        account INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
        level TEXT NOT NULL CHECK (level IN ('op', 'voice')),
        PRIMARY KEY (room, account)
    );
    CREATE INDEX account_room_access_by_account ON account_room_access (account);
    CREATE TABLE account_room_lists (
        room INTEGER NOT NULL REFERENCES account_rooms (id) ON DELETE CASCADE,
        mode TEXT NOT NULL CHECK (mode IN ('b', 'e', 'I')),
        position INTEGER NOT NULL,
        mask TEXT NOT NULL CHECK (length(mask) BETWEEN 1 AND 160),
        set_by TEXT NOT NULL CHECK (length(set_by) BETWEEN 1 AND 512),
        set_ms INTEGER NOT NULL,
        PRIMARY KEY (room, position)
    ) WITHOUT ROWID;",
    // 3: whether the account's nicks are enforced under
    // `nick_reservation = "optional"` (NickServ SET ENFORCE).
    "ALTER TABLE accounts ADD COLUMN enforce_nicks INTEGER NOT NULL DEFAULT 0
        CHECK (enforce_nicks IN (0, 1));",
    // 4: accounts waiting for the code mailed to their address; one row
    // per account at most, gone once verified.
    "CREATE TABLE account_verifications (
        account INTEGER PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
        code_hash BLOB NOT NULL CHECK (length(code_hash) = 32),
        expires_ms INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX account_verifications_by_expiry ON account_verifications (expires_ms);",
    // 5: IRCv3 metadata of an account's user (avatar, display-name, ...)
    // and of a registered room, one row per key; the lengths are `config::MAX_KEY_BYTES` and
    // `config::MAX_VALUE_BYTES`.
    "CREATE TABLE account_metadata (
        account INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
        key TEXT NOT NULL CHECK (length(key) BETWEEN 1 AND 64),
        value TEXT NOT NULL CHECK (length(CAST(value AS BLOB)) BETWEEN 1 AND 300),
        PRIMARY KEY (account, key)
    ) WITHOUT ROWID;
    CREATE TABLE account_room_metadata (
        room INTEGER NOT NULL REFERENCES account_rooms (id) ON DELETE CASCADE,
        key TEXT NOT NULL CHECK (length(key) BETWEEN 1 AND 64),
        value TEXT NOT NULL CHECK (length(CAST(value AS BLOB)) BETWEEN 1 AND 300),
        PRIMARY KEY (room, key)
    ) WITHOUT ROWID;",
    // 6: read markers (draft/read-marker): the last message each account
    // read in each target, a room or a nick; they go with the account.
    "CREATE TABLE account_read_markers (
        account INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
        target_key TEXT NOT NULL CHECK (length(target_key) BETWEEN 1 AND 200),
        target TEXT NOT NULL CHECK (length(target) BETWEEN 1 AND 200),
        read_ms INTEGER NOT NULL,
        PRIMARY KEY (account, target_key)
    ) WITHOUT ROWID;",
];

/// Wrong codes a pending account survives; the next frees its name.
pub const MAX_CODE_ATTEMPTS: i64 = 5;
/// Expired pending accounts one registration frees at most.
pub(super) const EXPIRED_PER_SWEEP: i64 = 64;

/// Where a reading command found accounts of an older schema, and what
/// brings them up to date there: a SQLite file is the stopped server's,
/// a shared database is written beside running nodes.
#[derive(Debug)]
pub struct OlderSchema {
    place: String,
    shared: bool,
}

impl OlderSchema {
    /// A node's own SQLite file.
    pub fn file(path: &Path) -> OlderSchema {
        OlderSchema {
            place: path.display().to_string(),
            shared: false,
        }
    }

    /// The database a network shares, named by its URL without password.
    pub fn shared(url: &str) -> OlderSchema {
        OlderSchema {
            place: url.to_owned(),
            shared: true,
        }
    }
}

impl std::fmt::Display for OlderSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let place = &self.place;
        if self.shared {
            write!(
                f,
                "the accounts in {place} have an older schema; run a command that changes accounts (it may run beside the nodes) or start a node of this version to bring it up to date"
            )
        } else {
            write!(
                f,
                "the accounts in {place} have an older schema; run a command that changes accounts (with the server stopped) to bring it up to date"
            )
        }
    }
}

/// Why an account operation failed. The texts are for an administrator.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("cannot open the database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("no database at {0}")]
    Missing(PathBuf),
    #[error(
        "the accounts in {path} have schema version {found}, newer than this rookery knows ({known}); upgrade rookery"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("{0}")]
    TooOld(OlderSchema),
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// `[history] postgres` is not a URL this build connects with.
    #[error("the shared database's URL {0}")]
    SharedUrl(String),
    #[error(
        "cannot connect to the shared database {url}: {}",
        crate::shared_database::reason(.source)
    )]
    SharedConnect {
        url: String,
        source: postgres::Error,
    },
    #[error(
        "the accounts in {url} have schema version {found}, newer than this rookery knows ({known}); upgrade rookery"
    )]
    SharedTooNew { url: String, found: i64, known: i64 },
    #[error("shared database: {}", crate::shared_database::reason(.0))]
    Postgres(#[from] postgres::Error),
    #[error("{0:?} is not a valid account name (a nick of at most {1} bytes)")]
    InvalidName(String, usize),
    #[error("an account named {0:?} exists already")]
    NameTaken(String),
    #[error("the nick {0:?} belongs to another account")]
    NickTaken(String),
    #[error("no account named {0:?}")]
    NotFound(String),
    #[error("the {field} is longer than {max} bytes")]
    TooLong { field: &'static str, max: usize },
    #[error("{0:?} is not an email address")]
    InvalidEmail(String),
    #[error("{0:?} is not a SHA-256 fingerprint (64 hexadecimal digits)")]
    InvalidFingerprint(String),
    #[error("that certificate belongs to another account")]
    CertificateTaken,
    #[error("an account may have at most {max} {what}")]
    TooMany { what: &'static str, max: usize },
    #[error("the room {0:?} is registered already, by another registration")]
    RoomTaken(String),
    #[error("{0:?} is not a list mode (b, e or I)")]
    InvalidListMode(char),
    #[error(transparent)]
    Password(#[from] PasswordError),
}

/// How names are compared and how long they may be: the server's
/// casemapping and NICKLEN, since an account's name is also a nick.
#[derive(Clone, Copy, Debug)]
pub struct Naming {
    pub casemapping: Casemapping,
    /// At most [`MAX_NAME_LEN`].
    pub max_len: usize,
}

impl Naming {
    /// The configured casemapping and nick length.
    pub fn from_config(config: &crate::config::Config) -> Naming {
        Naming {
            casemapping: config.server.casemapping,
            max_len: config.limits.nick_length.min(MAX_NAME_LEN),
        }
    }

    pub(super) fn key(&self, name: &str) -> String {
        self.casemapping.fold(name).as_str().to_owned()
    }

    pub(super) fn check(&self, name: &str) -> Result<(), AccountError> {
        if is_valid_nick(name, self.max_len.min(MAX_NAME_LEN)) {
            Ok(())
        } else {
            Err(AccountError::InvalidName(
                name.to_owned(),
                self.max_len.min(MAX_NAME_LEN),
            ))
        }
    }
}

/// Why an account cannot log in, and who decided it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suspension {
    pub reason: String,
    /// An operator's or account's name, or `console` for the command line.
    pub by: String,
    pub at_ms: i64,
}

/// One account as stored, without its nicks and certificates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// As registered: the case the user chose.
    pub name: String,
    pub credentials: Credentials,
    pub email: Option<String>,
    pub created_ms: i64,
    pub suspended: Option<Suspension>,
    /// Waiting for the code mailed to its address: it cannot log in yet.
    pub pending: bool,
}

/// The code a new account must be verified with, as stored: hashed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingCode {
    pub code_hash: [u8; 32],
    pub expires_ms: i64,
}

/// What a code sent with VERIFY did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodeCheck {
    /// Right: the account (by its registered name) may log in now.
    Verified(String),
    /// Wrong or expired; the pending account is freed after
    /// [`MAX_CODE_ATTEMPTS`] wrong ones.
    Wrong,
    /// No account of that name waits for a code.
    NotPending,
}

/// A nick an account owns, as the server's index keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NickOwner {
    /// The nick casefolded under the server's casemapping.
    pub nick_key: String,
    /// The owning account's name as registered.
    pub account: String,
    /// The owner turned enforcement on (NickServ SET ENFORCE).
    pub enforce: bool,
}

/// One connection to the database's account tables.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    naming: Naming,
    /// False when a read-only store found no account tables: a database
    /// no account was ever created in reads as holding none.
    has_tables: bool,
}

impl Store {
    /// Opens or creates the database for reading and writing and brings
    /// the account tables up to date. Run it only under the database
    /// lock ([`super::DatabaseLock`]): a running server must not find its
    /// tables changed under it.
    pub fn open(path: &Path, naming: Naming) -> Result<Store, AccountError> {
        let mut conn = Connection::open(path).map_err(|source| AccountError::Open {
            path: path.to_owned(),
            source,
        })?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Wait for the write lock at BEGIN, as history's connections do
        // (`history::Store::configure` says why).
        conn.set_transaction_behavior(TransactionBehavior::Immediate);
        // The mode history uses too; the file has one.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        let mut store = Store {
            conn,
            path: path.to_owned(),
            naming,
            has_tables: true,
        };
        store.migrate()?;
        Ok(store)
    }

    /// Opens an existing database for reading only, as `accounts list` and
    /// `show` do while the server may be running.
    pub fn open_read_only(path: &Path, naming: Naming) -> Result<Store, AccountError> {
        if !path.exists() {
            return Err(AccountError::Missing(path.to_owned()));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn =
            Connection::open_with_flags(path, flags).map_err(|source| AccountError::Open {
                path: path.to_owned(),
                source,
            })?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let mut store = Store {
            conn,
            path: path.to_owned(),
            naming,
            has_tables: false,
        };
        let known = MIGRATIONS.len() as i64;
        match store.schema_version()? {
            0 => {}
            found if found == known => store.has_tables = true,
            found if found > known => return Err(store.too_new(found)),
            _ => return Err(AccountError::TooOld(OlderSchema::file(&store.path))),
        }
        Ok(store)
    }

    /// The database file, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How names are compared, for the room tables' keys.
    pub(super) fn naming(&self) -> Naming {
        self.naming
    }

    /// The connection, for the room tables' writes.
    pub(super) fn connection(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The connection, for the room tables' reads.
    pub(super) fn reader(&self) -> &Connection {
        &self.conn
    }

    /// Whether the account tables exist (a read-only store of a database
    /// never used for accounts has none).
    pub(super) fn has_tables(&self) -> bool {
        self.has_tables
    }

    /// The account schema version: 0 before the first account command.
    pub fn schema_version(&self) -> Result<i64, AccountError> {
        let exists: bool = self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'accounts_schema')",
            [],
            |row| row.get(0),
        )?;
        if !exists {
            return Ok(0);
        }
        Ok(self
            .conn
            .query_row("SELECT version FROM accounts_schema", [], |row| row.get(0))
            .optional()?
            .unwrap_or(0))
    }

    fn too_new(&self, found: i64) -> AccountError {
        AccountError::TooNew {
            path: self.path.clone(),
            found,
            known: MIGRATIONS.len() as i64,
        }
    }

    fn migrate(&mut self) -> Result<(), AccountError> {
        let known = MIGRATIONS.len() as i64;
        let found = self.schema_version()?;
        if found > known {
            return Err(self.too_new(found));
        }
        for (version, step) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            let transaction = self.conn.transaction()?;
            transaction.execute_batch(
                "CREATE TABLE IF NOT EXISTS accounts_schema (version INTEGER NOT NULL);
                 DELETE FROM accounts_schema;",
            )?;
            transaction.execute_batch(step)?;
            transaction.execute(
                "INSERT INTO accounts_schema (version) VALUES (?1)",
                [version as i64 + 1],
            )?;
            transaction.commit()?;
        }
        Ok(())
    }

    /// Registers `name` with its password credentials; the account owns
    /// its name as a nick from then on.
    pub fn create(
        &mut self,
        name: &str,
        credentials: &Credentials,
        email: Option<&str>,
        now_ms: i64,
    ) -> Result<Account, AccountError> {
        self.insert(name, credentials, email, now_ms, None)
    }

    /// Registers `name` as [`Store::create`] does, but pending: it cannot
    /// log in until [`Store::check_code`] is given the code.
    pub fn create_pending(
        &mut self,
        name: &str,
        credentials: &Credentials,
        email: &str,
        code: &PendingCode,
        now_ms: i64,
    ) -> Result<Account, AccountError> {
        self.insert(name, credentials, Some(email), now_ms, Some(code))
    }

    fn insert(
        &mut self,
        name: &str,
        credentials: &Credentials,
        email: Option<&str>,
        now_ms: i64,
        code: Option<&PendingCode>,
    ) -> Result<Account, AccountError> {
        self.naming.check(name)?;
        check_credentials(credentials)?;
        if let Some(email) = email {
            check_email(email)?;
        }
        let key = self.naming.key(name);
        let transaction = self.conn.transaction()?;
        if account_id(&transaction, &key)?.is_some() {
            return Err(AccountError::NameTaken(name.to_owned()));
        }
        if nick_owner(&transaction, &key)?.is_some() {
            return Err(AccountError::NickTaken(name.to_owned()));
        }
        let scram = &credentials.scram;
        transaction.execute(
            "INSERT INTO accounts (name, name_key, password_hash, scram_salt, scram_iterations,
                 scram_stored_key, scram_server_key, email, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                name,
                key,
                credentials.hash,
                scram.salt,
                scram.iterations,
                &scram.stored_key[..],
                &scram.server_key[..],
                email,
                now_ms
            ],
        )?;
        let id = transaction.last_insert_rowid();
        transaction.execute(
            "INSERT INTO account_nicks (nick_key, nick, account, since_ms) VALUES (?1, ?2, ?3, ?4)",
            params![key, name, id, now_ms],
        )?;
        if let Some(code) = code {
            transaction.execute(
                "INSERT INTO account_verifications (account, code_hash, expires_ms)
                 VALUES (?1, ?2, ?3)",
                params![id, &code.code_hash[..], code.expires_ms],
            )?;
        }
        transaction.commit()?;
        Ok(Account {
            name: name.to_owned(),
            credentials: credentials.clone(),
            email: email.map(str::to_owned),
            created_ms: now_ms,
            suspended: None,
            pending: code.is_some(),
        })
    }

    /// VERIFY: counts the attempt, and on the right code makes the account
    /// an ordinary one. `code_hash` is compared in constant time.
    pub fn check_code(
        &mut self,
        name: &str,
        code_hash: &[u8; 32],
        now_ms: i64,
    ) -> Result<CodeCheck, AccountError> {
        let transaction = self.conn.transaction()?;
        let found: Option<(i64, String, Vec<u8>, i64, i64)> = transaction
            .query_row(
                "SELECT a.id, a.name, v.code_hash, v.expires_ms, v.attempts
                 FROM accounts a JOIN account_verifications v ON v.account = a.id
                 WHERE a.name_key = ?1",
                [self.naming.key(name)],
                |row| {
                    Ok((
                        row.get(0)?,
                        row.get(1)?,
                        row.get(2)?,
                        row.get(3)?,
                        row.get(4)?,
                    ))
                },
            )
            .optional()?;
        let Some((id, name, stored, expires_ms, attempts)) = found else {
            return Ok(CodeCheck::NotPending);
        };
        let outcome = if expires_ms > now_ms && same_bytes(&stored, code_hash) {
            transaction.execute("DELETE FROM account_verifications WHERE account = ?1", [id])?;
            CodeCheck::Verified(name)
        } else if attempts + 1 >= MAX_CODE_ATTEMPTS || expires_ms <= now_ms {
            transaction.execute("DELETE FROM accounts WHERE id = ?1", [id])?;
            CodeCheck::Wrong
        } else {
            transaction.execute(
                "UPDATE account_verifications SET attempts = attempts + 1 WHERE account = ?1",
                [id],
            )?;
            CodeCheck::Wrong
        };
        transaction.commit()?;
        Ok(outcome)
    }

    /// Deletes the account if it is still pending: its code could not be
    /// mailed, so nobody can verify it.
    pub fn remove_pending(&mut self, name: &str) -> Result<(), AccountError> {
        self.conn.execute(
            "DELETE FROM accounts WHERE name_key = ?1
                 AND id IN (SELECT account FROM account_verifications)",
            [self.naming.key(name)],
        )?;
        Ok(())
    }

    /// Frees the names of pending accounts whose code expired, a bounded
    /// number at a time; each registration sweeps. Returns how many.
    pub fn free_expired(&mut self, now_ms: i64) -> Result<usize, AccountError> {
        Ok(self.conn.execute(
            "DELETE FROM accounts WHERE id IN (SELECT account FROM account_verifications
                 WHERE expires_ms <= ?1 ORDER BY expires_ms LIMIT ?2)",
            params![now_ms, EXPIRED_PER_SWEEP],
        )?)
    }

    /// The account named `name` in any case, if there is one.
    pub fn find(&self, name: &str) -> Result<Option<Account>, AccountError> {
        if !self.has_tables {
            return Ok(None);
        }
        let account = self
            .conn
            .query_row(
                &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name_key = ?1"),
                [self.naming.key(name)],
                account_from_row,
            )
            .optional()?;
        Ok(account)
    }

    /// Up to `limit` accounts in name order, after the account named
    /// `after` when given: a page of a listing of any length.
    pub fn list(&self, after: Option<&str>, limit: usize) -> Result<Vec<Account>, AccountError> {
        if !self.has_tables {
            return Ok(Vec::new());
        }
        let after = after.map(|name| self.naming.key(name)).unwrap_or_default();
        let mut select = self.conn.prepare_cached(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name_key > ?1 ORDER BY name_key LIMIT ?2"
        ))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = select.query_map(params![after, limit], account_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Replaces the account's password (both its hash and its SCRAM
    /// verifiers).
    pub fn set_password(
        &mut self,
        name: &str,
        credentials: &Credentials,
    ) -> Result<(), AccountError> {
        check_credentials(credentials)?;
        let scram = &credentials.scram;
        let changed = self.conn.execute(
            "UPDATE accounts SET password_hash = ?2, scram_salt = ?3, scram_iterations = ?4,
                 scram_stored_key = ?5, scram_server_key = ?6
             WHERE name_key = ?1",
            params![
                self.naming.key(name),
                credentials.hash,
                scram.salt,
                scram.iterations,
                &scram.stored_key[..],
                &scram.server_key[..]
            ],
        )?;
        self.found(changed, name)
    }

    /// Suspends the account (replacing an earlier suspension).
    pub fn suspend(&mut self, name: &str, suspension: &Suspension) -> Result<(), AccountError> {
        check_length("reason", &suspension.reason, MAX_REASON_LEN)?;
        check_length("suspender's name", &suspension.by, MAX_NAME_LEN)?;
        let changed = self.conn.execute(
            "UPDATE accounts SET suspended_reason = ?2, suspended_by = ?3, suspended_ms = ?4
             WHERE name_key = ?1",
            params![
                self.naming.key(name),
                suspension.reason,
                suspension.by,
                suspension.at_ms
            ],
        )?;
        self.found(changed, name)
    }

    /// Lifts a suspension; an account not suspended stays as it is.
    pub fn unsuspend(&mut self, name: &str) -> Result<(), AccountError> {
        let changed = self.conn.execute(
            "UPDATE accounts SET suspended_reason = NULL, suspended_by = NULL, suspended_ms = NULL
             WHERE name_key = ?1",
            [self.naming.key(name)],
        )?;
        self.found(changed, name)
    }

    fn found(&self, changed: usize, name: &str) -> Result<(), AccountError> {
        match changed {
            0 => Err(AccountError::NotFound(name.to_owned())),
            _ => Ok(()),
        }
    }

    /// The nicks the account owns, as registered, in order of name.
    pub fn nicks(&self, name: &str) -> Result<Vec<String>, AccountError> {
        self.owned(
            "SELECT n.nick FROM account_nicks n JOIN accounts a ON a.id = n.account
             WHERE a.name_key = ?1 ORDER BY n.nick_key",
            name,
        )
    }

    /// Gives the account `nick` too; refused when another account owns it.
    pub fn add_nick(&mut self, name: &str, nick: &str, now_ms: i64) -> Result<(), AccountError> {
        self.naming.check(nick)?;
        let key = self.naming.key(nick);
        let account = self.naming.key(name);
        let transaction = self.conn.transaction()?;
        let id = account_id(&transaction, &account)?
            .ok_or_else(|| AccountError::NotFound(name.to_owned()))?;
        match nick_owner(&transaction, &key)? {
            Some(owner) if owner == id => return Ok(()),
            Some(_) => return Err(AccountError::NickTaken(nick.to_owned())),
            None => {}
        }
        // Another account's name is its nick, so it is found above.
        count_below(
            &transaction,
            "SELECT count(*) FROM account_nicks WHERE account = ?1",
            id,
            "nicks",
            MAX_NICKS_PER_ACCOUNT,
        )?;
        transaction.execute(
            "INSERT INTO account_nicks (nick_key, nick, account, since_ms) VALUES (?1, ?2, ?3, ?4)",
            params![key, nick, id, now_ms],
        )?;
        transaction.commit()?;
        Ok(())
    }

    /// The account that owns `nick`, by its registered name.
    pub fn nick_owner(&self, nick: &str) -> Result<Option<String>, AccountError> {
        self.owner(
            "SELECT a.name FROM account_nicks n JOIN accounts a ON a.id = n.account
             WHERE n.nick_key = ?1",
            &self.naming.key(nick),
        )
    }

    /// Every owned nick: its casefolded key, the owner's registered name,
    /// and whether the owner asked for it to be enforced. Bounded by the
    /// accounts and [`MAX_NICKS_PER_ACCOUNT`]; the server reads it once.
    /// A pending account's nick is left out: nobody can log in to it yet.
    pub fn nick_owners(&self) -> Result<Vec<NickOwner>, AccountError> {
        if !self.has_tables {
            return Ok(Vec::new());
        }
        let mut select = self.conn.prepare_cached(
            "SELECT n.nick_key, a.name, a.enforce_nicks FROM account_nicks n
             JOIN accounts a ON a.id = n.account
             WHERE a.id NOT IN (SELECT account FROM account_verifications)",
        )?;
        let rows = select.query_map([], |row| {
            Ok(NickOwner {
                nick_key: row.get(0)?,
                account: row.get(1)?,
                enforce: row.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Turns enforcement of the account's nicks on or off.
    pub fn set_enforce(&mut self, name: &str, on: bool) -> Result<(), AccountError> {
        let changed = self.conn.execute(
            "UPDATE accounts SET enforce_nicks = ?2 WHERE name_key = ?1",
            params![self.naming.key(name), on],
        )?;
        self.found(changed, name)
    }

    /// Deletes the account with its nicks and certificates.
    pub fn delete(&mut self, name: &str) -> Result<(), AccountError> {
        let changed = self.conn.execute(
            "DELETE FROM accounts WHERE name_key = ?1",
            [self.naming.key(name)],
        )?;
        self.found(changed, name)
    }

    /// The SHA-256 fingerprints (lowercase hex) of the account's client
    /// certificates.
    pub fn certificates(&self, name: &str) -> Result<Vec<String>, AccountError> {
        self.owned(
            "SELECT c.fingerprint FROM account_certificates c JOIN accounts a ON a.id = c.account
             WHERE a.name_key = ?1 ORDER BY c.fingerprint",
            name,
        )
    }

    /// Lets a client certificate log in to the account. A fingerprint
    /// names one account only.
    pub fn add_certificate(&mut self, name: &str, fingerprint: &str) -> Result<(), AccountError> {
        let fingerprint = normalize_fingerprint(fingerprint)?;
        let account = self.naming.key(name);
        let transaction = self.conn.transaction()?;
        let id = account_id(&transaction, &account)?
            .ok_or_else(|| AccountError::NotFound(name.to_owned()))?;
        let owner: Option<i64> = transaction
            .query_row(
                "SELECT account FROM account_certificates WHERE fingerprint = ?1",
                [&fingerprint],
                |row| row.get(0),
            )
            .optional()?;
        match owner {
            Some(owner) if owner == id => return Ok(()),
            Some(_) => return Err(AccountError::CertificateTaken),
            None => {}
        }
        count_below(
            &transaction,
            "SELECT count(*) FROM account_certificates WHERE account = ?1",
            id,
            "certificates",
            MAX_CERTIFICATES_PER_ACCOUNT,
        )?;
        transaction.execute(
            "INSERT INTO account_certificates (fingerprint, account) VALUES (?1, ?2)",
            params![fingerprint, id],
        )?;
        transaction.commit()?;
        Ok(())
    }

    /// Forgets a certificate of the account; true when it had it.
    pub fn remove_certificate(
        &mut self,
        name: &str,
        fingerprint: &str,
    ) -> Result<bool, AccountError> {
        let fingerprint = normalize_fingerprint(fingerprint)?;
        let removed = self.conn.execute(
            "DELETE FROM account_certificates WHERE fingerprint = ?1
                 AND account = (SELECT id FROM accounts WHERE name_key = ?2)",
            params![fingerprint, self.naming.key(name)],
        )?;
        Ok(removed > 0)
    }

    /// The account a client certificate logs in to, by its registered name.
    pub fn certificate_owner(&self, fingerprint: &str) -> Result<Option<String>, AccountError> {
        let fingerprint = normalize_fingerprint(fingerprint)?;
        self.owner(
            "SELECT a.name FROM account_certificates c JOIN accounts a ON a.id = c.account
             WHERE c.fingerprint = ?1",
            &fingerprint,
        )
    }

    /// The registered name `sql` finds for `key`; none before the account
    /// tables exist (a read-only store of an older database).
    fn owner(&self, sql: &str, key: &str) -> Result<Option<String>, AccountError> {
        if !self.has_tables {
            return Ok(None);
        }
        Ok(self
            .conn
            .query_row(sql, [key], |row| row.get(0))
            .optional()?)
    }

    /// The one-column rows `sql` selects for the account `name` (bounded by
    /// the per-account limits).
    fn owned(&self, sql: &str, name: &str) -> Result<Vec<String>, AccountError> {
        if !self.has_tables {
            return Ok(Vec::new());
        }
        let mut select = self.conn.prepare_cached(sql)?;
        let rows = select.query_map([self.naming.key(name)], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

const ACCOUNT_COLUMNS: &str = "name, password_hash, scram_salt, scram_iterations, scram_stored_key,
     scram_server_key, email, created_ms, suspended_reason, suspended_by, suspended_ms,
     EXISTS (SELECT 1 FROM account_verifications v WHERE v.account = accounts.id)";

fn account_from_row(row: &Row<'_>) -> rusqlite::Result<Account> {
    let suspended = match row.get::<_, Option<i64>>(10)? {
        Some(at_ms) => Some(Suspension {
            reason: row.get(8)?,
            by: row.get(9)?,
            at_ms,
        }),
        None => None,
    };
    Ok(Account {
        name: row.get(0)?,
        credentials: Credentials {
            hash: row.get(1)?,
            scram: ScramCredentials {
                salt: row.get(2)?,
                iterations: row.get(3)?,
                stored_key: row.get(4)?,
                server_key: row.get(5)?,
            },
        },
        email: row.get(6)?,
        created_ms: row.get(7)?,
        suspended,
        pending: row.get(11)?,
    })
}

/// The row id of the account whose casefolded name is `key`.
pub(super) fn account_id(
    transaction: &Transaction<'_>,
    key: &str,
) -> Result<Option<i64>, AccountError> {
    Ok(transaction
        .query_row(
            "SELECT id FROM accounts WHERE name_key = ?1",
            [key],
            |row| row.get(0),
        )
        .optional()?)
}

fn nick_owner(transaction: &Transaction<'_>, key: &str) -> Result<Option<i64>, AccountError> {
    Ok(transaction
        .query_row(
            "SELECT account FROM account_nicks WHERE nick_key = ?1",
            [key],
            |row| row.get(0),
        )
        .optional()?)
}

/// Whether two byte strings are equal, taking as long wherever they differ.
pub(super) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |differ, (x, y)| differ | (x ^ y)) == 0
}

/// Refuses one more row when the account has `max` already.
fn count_below(
    transaction: &Transaction<'_>,
    count: &str,
    id: i64,
    what: &'static str,
    max: usize,
) -> Result<(), AccountError> {
    let n: i64 = transaction.query_row(count, [id], |row| row.get(0))?;
    if usize::try_from(n).unwrap_or(usize::MAX) >= max {
        return Err(AccountError::TooMany { what, max });
    }
    Ok(())
}

pub(super) fn check_length(
    field: &'static str,
    value: &str,
    max: usize,
) -> Result<(), AccountError> {
    if value.len() > max {
        return Err(AccountError::TooLong { field, max });
    }
    Ok(())
}

pub(super) fn check_credentials(credentials: &Credentials) -> Result<(), AccountError> {
    check_length("password hash", &credentials.hash, MAX_HASH_LEN)?;
    if credentials.scram.salt.len() > MAX_SALT_LEN {
        return Err(AccountError::TooLong {
            field: "SCRAM salt",
            max: MAX_SALT_LEN,
        });
    }
    Ok(())
}

/// An address as a person gives one: `local@domain`, no spaces or
/// controls. Whether it works is for a verification mail to find out.
/// Whether `email` is an address mail could be sent to, in form and length.
pub fn check_email(email: &str) -> Result<(), AccountError> {
    check_length("email address", email, MAX_EMAIL_LEN)?;
    let well_formed = email
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if !well_formed {
        return Err(AccountError::InvalidEmail(email.to_owned()));
    }
    Ok(())
}

/// A SHA-256 fingerprint as stored: 64 lowercase hex digits. Colons (as
/// `openssl x509 -fingerprint` prints them) and uppercase are accepted.
pub(super) fn normalize_fingerprint(fingerprint: &str) -> Result<String, AccountError> {
    let digits: String = fingerprint
        .chars()
        .filter(|&c| c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if digits.len() == FINGERPRINT_LEN && digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(digits)
    } else {
        // Echoed to an administrator; cut so a long input stays readable.
        let shown: String = fingerprint.chars().take(FINGERPRINT_LEN * 2).collect();
        Err(AccountError::InvalidFingerprint(shown))
    }
}
