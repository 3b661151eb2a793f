//! The account tables in the PostgreSQL database a network shares
//! (`[history] backend = "postgres"`), so an account registered on one
//! node logs in on every other.
//!
//! The same tables, limits and answers as the SQLite store
//! ([`super::store`]), with a schema version of their own
//! (`accounts_schema_version`). Names stay one across nodes under
//! concurrency because the database says so, not a read before the write:
//! every name is a `UNIQUE` key, and the violation of one is mapped to the
//! error a read would have given (`NameTaken`, `NickTaken`,
//! `CertificateTaken`, `RoomTaken`). Each account job opens its own
//! connection, as each SQLite job opens the file.
//!
//! Here: accounts, nicks, certificates and verifications; beside it,
//! `rooms.rs` (registered rooms) and `markers.rs` (metadata and read
//! markers), as the SQLite store is split.

use std::cell::RefCell;

use postgres::error::SqlState;
use postgres::{Client, GenericClient, NoTls, Row, Transaction};

use super::store::{
    Account, AccountError, CodeCheck, EXPIRED_PER_SWEEP, MAX_CERTIFICATES_PER_ACCOUNT,
    MAX_CODE_ATTEMPTS, MAX_NICKS_PER_ACCOUNT, MAX_REASON_LEN, Naming, NickOwner, OlderSchema,
    PendingCode, Suspension, check_credentials, check_email, check_length, normalize_fingerprint,
    same_bytes,
};
use super::{Credentials, ScramCredentials};
use crate::shared_database::{describe, session_config};

mod markers;
mod rooms;

/// The accounts schema on PostgreSQL, in order; `accounts_schema_version`
/// counts how many ran. Append new steps; never edit a released one. The
/// `CHECK`s are the SQLite schema's (`char_length` where SQLite counts a
/// text's characters, `octet_length` where it counts bytes), and every
/// name's uniqueness is a named constraint that [`taken`] recognises.
const MIGRATIONS: &[&str] = &[
    // 1: everything the SQLite schema's six steps make.
    r#"CREATE TABLE accounts (
        id BIGSERIAL PRIMARY KEY,
        name TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 64),
        name_key TEXT COLLATE "C" NOT NULL CONSTRAINT accounts_name_unique UNIQUE,
        password_hash TEXT NOT NULL CHECK (char_length(password_hash) <= 256),
        scram_salt BYTEA NOT NULL CHECK (octet_length(scram_salt) <= 64),
        scram_iterations BIGINT NOT NULL,
        scram_stored_key BYTEA NOT NULL CHECK (octet_length(scram_stored_key) = 32),
        scram_server_key BYTEA NOT NULL CHECK (octet_length(scram_server_key) = 32),
        email TEXT CHECK (char_length(email) <= 254),
        created_ms BIGINT NOT NULL,
        suspended_reason TEXT CHECK (char_length(suspended_reason) <= 300),
        suspended_by TEXT CHECK (char_length(suspended_by) <= 64),
        suspended_ms BIGINT,
        enforce_nicks BOOLEAN NOT NULL DEFAULT false,
        CHECK ((suspended_ms IS NULL) = (suspended_reason IS NULL)
           AND (suspended_ms IS NULL) = (suspended_by IS NULL))
    );
    CREATE TABLE account_certificates (
        fingerprint TEXT COLLATE "C" CONSTRAINT account_certificates_unique PRIMARY KEY
            CHECK (char_length(fingerprint) = 64),
        account BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE
    );
    CREATE INDEX account_certificates_by_account ON account_certificates (account);
    CREATE TABLE account_nicks (
        nick_key TEXT COLLATE "C" CONSTRAINT account_nicks_unique PRIMARY KEY,
        nick TEXT NOT NULL CHECK (char_length(nick) BETWEEN 1 AND 64),
        account BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
        since_ms BIGINT NOT NULL
    );
    CREATE INDEX account_nicks_by_account ON account_nicks (account);
    CREATE TABLE account_verifications (
        account BIGINT PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
        code_hash BYTEA NOT NULL CHECK (octet_length(code_hash) = 32),
        expires_ms BIGINT NOT NULL,
        attempts BIGINT NOT NULL DEFAULT 0
    );
    CREATE INDEX account_verifications_by_expiry ON account_verifications (expires_ms);
    CREATE TABLE account_rooms (
        id BIGSERIAL PRIMARY KEY,
        name TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
        name_key TEXT COLLATE "C" NOT NULL CONSTRAINT account_rooms_name_unique UNIQUE,
        founder BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
        registered_ms BIGINT NOT NULL,
        history_floor_ms BIGINT NOT NULL,
        topic TEXT CHECK (char_length(topic) <= 400),
        topic_by TEXT CHECK (char_length(topic_by) <= 512),
        topic_ms BIGINT,
        modes TEXT NOT NULL CHECK (char_length(modes) <= 32),
        channel_key TEXT CHECK (char_length(channel_key) <= 64),
        member_limit BIGINT CHECK (member_limit >= 0),
        CHECK ((topic IS NULL) = (topic_by IS NULL) AND (topic IS NULL) = (topic_ms IS NULL))
    );
    CREATE INDEX account_rooms_by_founder ON account_rooms (founder);
    CREATE TABLE account_room_access (
        room BIGINT NOT NULL REFERENCES account_rooms (id) ON DELETE CASCADE,
        account BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
        level TEXT NOT NULL CHECK (level IN ('op', 'voice')),
        added BIGSERIAL,
        PRIMARY KEY (room, account)
    );
    CREATE INDEX account_room_access_by_account ON account_room_access (account);
    CREATE TABLE account_room_lists (
        room BIGINT NOT NULL REFERENCES account_rooms (id) ON DELETE CASCADE,
        mode TEXT NOT NULL CHECK (mode IN ('b', 'e', 'I')),
        position BIGINT NOT NULL,
        mask TEXT NOT NULL CHECK (char_length(mask) BETWEEN 1 AND 160),
        set_by TEXT NOT NULL CHECK (char_length(set_by) BETWEEN 1 AND 512),
        set_ms BIGINT NOT NULL,
        PRIMARY KEY (room, position)
    );
    CREATE TABLE account_metadata (
        account BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
        key TEXT COLLATE "C" NOT NULL CHECK (char_length(key) BETWEEN 1 AND 64),
        value TEXT NOT NULL CHECK (octet_length(value) BETWEEN 1 AND 300),
        PRIMARY KEY (account, key)
    );
    CREATE TABLE account_room_metadata (
        room BIGINT NOT NULL REFERENCES account_rooms (id) ON DELETE CASCADE,
        key TEXT COLLATE "C" NOT NULL CHECK (char_length(key) BETWEEN 1 AND 64),
        value TEXT NOT NULL CHECK (octet_length(value) BETWEEN 1 AND 300),
        PRIMARY KEY (room, key)
    );
    CREATE TABLE account_read_markers (
        account BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
        target_key TEXT COLLATE "C" NOT NULL CHECK (char_length(target_key) BETWEEN 1 AND 200),
        target TEXT NOT NULL CHECK (char_length(target) BETWEEN 1 AND 200),
        read_ms BIGINT NOT NULL,
        PRIMARY KEY (account, target_key)
    );"#,
];

/// Taken for the length of a migration, so nodes starting together
/// migrate the account tables one after another (history's lock is
/// another number: the two schemas move apart).
const MIGRATION_LOCK: i64 = 0x726f_6f6b_6572_7933;

const ACCOUNT_COLUMNS: &str = "name, password_hash, scram_salt, scram_iterations, scram_stored_key,
     scram_server_key, email, created_ms, suspended_reason, suspended_by, suspended_ms,
     EXISTS (SELECT 1 FROM account_verifications v WHERE v.account = accounts.id)";

/// One connection to the shared database's account tables.
pub struct PgAccounts {
    /// Behind a cell so reads take `&self`, as the SQLite store's do; a
    /// store is used by one thread at a time.
    client: RefCell<Client>,
    /// The URL without its password, for messages.
    url: String,
    naming: Naming,
    /// False when a read-only store found no account tables.
    has_tables: bool,
}

impl PgAccounts {
    /// Connects and brings the account tables up to date. Every account
    /// job opens one, so a current schema is read without the migration
    /// lock: the nodes' jobs do not queue behind one another for it.
    pub fn open(url: &str, naming: Naming) -> Result<PgAccounts, AccountError> {
        let mut store = PgAccounts::connect(url, naming)?;
        if store.schema_version()? != MIGRATIONS.len() as i64 {
            store.migrate()?;
        }
        Ok(store)
    }

    /// Connects without creating or changing any table, for `rookery
    /// accounts list` and `show`: a database no account was ever created
    /// in reads as holding none.
    pub fn open_read_only(url: &str, naming: Naming) -> Result<PgAccounts, AccountError> {
        let mut store = PgAccounts::connect(url, naming)?;
        let known = MIGRATIONS.len() as i64;
        match store.schema_version()? {
            0 => store.has_tables = false,
            found if found > known => return Err(store.too_new(found)),
            found if found < known => {
                return Err(AccountError::TooOld(OlderSchema::shared(&store.url)));
            }
            _ => {}
        }
        Ok(store)
    }

    fn connect(url: &str, naming: Naming) -> Result<PgAccounts, AccountError> {
        let config = session_config(url).map_err(AccountError::SharedUrl)?;
        let url = describe(&config);
        let client = config
            .connect(NoTls)
            .map_err(|source| AccountError::SharedConnect {
                url: url.clone(),
                source,
            })?;
        Ok(PgAccounts {
            client: RefCell::new(client),
            url,
            naming,
            has_tables: true,
        })
    }

    /// The database as messages name it: its URL without the password.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How names are compared, for the copy's keys.
    pub(super) fn naming(&self) -> Naming {
        self.naming
    }

    /// The connection, for the copy from a SQLite file.
    pub(super) fn client_mut(&mut self) -> &mut Client {
        self.client.get_mut()
    }

    fn too_new(&self, found: i64) -> AccountError {
        AccountError::SharedTooNew {
            url: self.url.clone(),
            found,
            known: MIGRATIONS.len() as i64,
        }
    }

    /// The account schema version: 0 before the first account was made.
    pub fn schema_version(&self) -> Result<i64, AccountError> {
        let mut client = self.client.borrow_mut();
        let exists: bool = client
            .query_one(
                "SELECT to_regclass('accounts_schema_version') IS NOT NULL",
                &[],
            )?
            .try_get(0)?;
        if !exists {
            return Ok(0);
        }
        let row = client.query_opt("SELECT version FROM accounts_schema_version", &[])?;
        Ok(match row {
            Some(row) => row.try_get(0)?,
            None => 0,
        })
    }

    fn migrate(&mut self) -> Result<(), AccountError> {
        let known = MIGRATIONS.len() as i64;
        let url = self.url.clone();
        let mut transaction = self.client.get_mut().transaction()?;
        transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        transaction.batch_execute(
            "CREATE TABLE IF NOT EXISTS accounts_schema_version (version BIGINT NOT NULL);
             INSERT INTO accounts_schema_version SELECT 0
                 WHERE NOT EXISTS (SELECT 1 FROM accounts_schema_version);",
        )?;
        let found: i64 = transaction
            .query_one("SELECT version FROM accounts_schema_version", &[])?
            .try_get(0)?;
        if found > known {
            return Err(AccountError::SharedTooNew { url, found, known });
        }
        for (version, step) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            transaction.batch_execute(step)?;
            let version = version as i64 + 1;
            transaction.execute(
                "UPDATE accounts_schema_version SET version = $1",
                &[&version],
            )?;
        }
        transaction.commit()?;
        Ok(())
    }

    /// Registers `name`; see [`super::Store::create`].
    pub fn create(
        &mut self,
        name: &str,
        credentials: &Credentials,
        email: Option<&str>,
        now_ms: i64,
    ) -> Result<Account, AccountError> {
        self.insert(name, credentials, email, now_ms, None)
    }

    /// Registers `name` pending its code; see [`super::Store::create_pending`].
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

    /// The account and its name as a nick in one transaction. Two nodes
    /// registering one name at once both pass the reads; the `UNIQUE`
    /// keys let one commit, and the other gets the error a read would
    /// have given it.
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
        let scram = &credentials.scram;
        let iterations = i64::from(scram.iterations);
        let written = (|| -> Result<(), AccountError> {
            let mut transaction = self.client.get_mut().transaction()?;
            if account_id(&mut transaction, &key)?.is_some() {
                return Err(AccountError::NameTaken(name.to_owned()));
            }
            if nick_owner(&mut transaction, &key)?.is_some() {
                return Err(AccountError::NickTaken(name.to_owned()));
            }
            let id: i64 = transaction
                .query_one(
                    "INSERT INTO accounts (name, name_key, password_hash, scram_salt,
                         scram_iterations, scram_stored_key, scram_server_key, email, created_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
                    &[
                        &name,
                        &key,
                        &credentials.hash,
                        &scram.salt,
                        &iterations,
                        &&scram.stored_key[..],
                        &&scram.server_key[..],
                        &email,
                        &now_ms,
                    ],
                )?
                .try_get(0)?;
            transaction.execute(
                "INSERT INTO account_nicks (nick_key, nick, account, since_ms)
                 VALUES ($1, $2, $3, $4)",
                &[&key, &name, &id, &now_ms],
            )?;
            if let Some(code) = code {
                transaction.execute(
                    "INSERT INTO account_verifications (account, code_hash, expires_ms)
                     VALUES ($1, $2, $3)",
                    &[&id, &&code.code_hash[..], &code.expires_ms],
                )?;
            }
            transaction.commit()?;
            Ok(())
        })();
        match written.map_err(|error| taken(error, name)) {
            // Another node's account of this name committed between the
            // reads: its name is its nick.
            Err(AccountError::NickTaken(_)) if self.find(name)?.is_some() => {
                return Err(AccountError::NameTaken(name.to_owned()));
            }
            written => written?,
        }
        Ok(Account {
            name: name.to_owned(),
            credentials: credentials.clone(),
            email: email.map(str::to_owned),
            created_ms: now_ms,
            suspended: None,
            pending: code.is_some(),
        })
    }

    /// VERIFY; see [`super::Store::check_code`]. The row is locked while
    /// the attempt is counted, so two nodes cannot both count one.
    pub fn check_code(
        &mut self,
        name: &str,
        code_hash: &[u8; 32],
        now_ms: i64,
    ) -> Result<CodeCheck, AccountError> {
        let key = self.naming.key(name);
        let mut transaction = self.client.get_mut().transaction()?;
        let found = transaction.query_opt(
            "SELECT a.id, a.name, v.code_hash, v.expires_ms, v.attempts
             FROM accounts a JOIN account_verifications v ON v.account = a.id
             WHERE a.name_key = $1 FOR UPDATE",
            &[&key],
        )?;
        let Some(row) = found else {
            return Ok(CodeCheck::NotPending);
        };
        let id: i64 = row.try_get(0)?;
        let name: String = row.try_get(1)?;
        let stored: Vec<u8> = row.try_get(2)?;
        let expires_ms: i64 = row.try_get(3)?;
        let attempts: i64 = row.try_get(4)?;
        let outcome = if expires_ms > now_ms && same_bytes(&stored, code_hash) {
            transaction.execute(
                "DELETE FROM account_verifications WHERE account = $1",
                &[&id],
            )?;
            CodeCheck::Verified(name)
        } else if attempts + 1 >= MAX_CODE_ATTEMPTS || expires_ms <= now_ms {
            transaction.execute("DELETE FROM accounts WHERE id = $1", &[&id])?;
            CodeCheck::Wrong
        } else {
            transaction.execute(
                "UPDATE account_verifications SET attempts = attempts + 1 WHERE account = $1",
                &[&id],
            )?;
            CodeCheck::Wrong
        };
        transaction.commit()?;
        Ok(outcome)
    }

    /// Deletes the account if it is still pending.
    pub fn remove_pending(&mut self, name: &str) -> Result<(), AccountError> {
        self.client.get_mut().execute(
            "DELETE FROM accounts WHERE name_key = $1
                 AND id IN (SELECT account FROM account_verifications)",
            &[&self.naming.key(name)],
        )?;
        Ok(())
    }

    /// Frees the names of pending accounts whose code expired, a bounded
    /// number at a time.
    pub fn free_expired(&mut self, now_ms: i64) -> Result<usize, AccountError> {
        let freed = self.client.get_mut().execute(
            "DELETE FROM accounts WHERE id IN (SELECT account FROM account_verifications
                 WHERE expires_ms <= $1 ORDER BY expires_ms LIMIT $2)",
            &[&now_ms, &EXPIRED_PER_SWEEP],
        )?;
        Ok(usize::try_from(freed).unwrap_or(usize::MAX))
    }

    /// The account named `name` in any case, if there is one.
    pub fn find(&self, name: &str) -> Result<Option<Account>, AccountError> {
        if !self.has_tables {
            return Ok(None);
        }
        let row = self.client.borrow_mut().query_opt(
            &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name_key = $1"),
            &[&self.naming.key(name)],
        )?;
        Ok(row.as_ref().map(account_from_row).transpose()?)
    }

    /// Up to `limit` accounts in name order, after `after` when given.
    pub fn list(&self, after: Option<&str>, limit: usize) -> Result<Vec<Account>, AccountError> {
        if !self.has_tables {
            return Ok(Vec::new());
        }
        let after = after.map(|name| self.naming.key(name)).unwrap_or_default();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.client.borrow_mut().query(
            &format!(
                "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name_key > $1
                 ORDER BY name_key LIMIT $2"
            ),
            &[&after, &limit],
        )?;
        Ok(rows
            .iter()
            .map(account_from_row)
            .collect::<Result<_, _>>()?)
    }

    /// Replaces the account's password (hash and SCRAM verifiers).
    pub fn set_password(
        &mut self,
        name: &str,
        credentials: &Credentials,
    ) -> Result<(), AccountError> {
        check_credentials(credentials)?;
        let scram = &credentials.scram;
        let iterations = i64::from(scram.iterations);
        let changed = self.client.get_mut().execute(
            "UPDATE accounts SET password_hash = $2, scram_salt = $3, scram_iterations = $4,
                 scram_stored_key = $5, scram_server_key = $6
             WHERE name_key = $1",
            &[
                &self.naming.key(name),
                &credentials.hash,
                &scram.salt,
                &iterations,
                &&scram.stored_key[..],
                &&scram.server_key[..],
            ],
        )?;
        found(changed, name)
    }

    /// Suspends the account (replacing an earlier suspension).
    pub fn suspend(&mut self, name: &str, suspension: &Suspension) -> Result<(), AccountError> {
        check_length("reason", &suspension.reason, MAX_REASON_LEN)?;
        check_length(
            "suspender's name",
            &suspension.by,
            super::store::MAX_NAME_LEN,
        )?;
        let changed = self.client.get_mut().execute(
            "UPDATE accounts SET suspended_reason = $2, suspended_by = $3, suspended_ms = $4
             WHERE name_key = $1",
            &[
                &self.naming.key(name),
                &suspension.reason,
                &suspension.by,
                &suspension.at_ms,
            ],
        )?;
        found(changed, name)
    }

    /// Lifts a suspension.
    pub fn unsuspend(&mut self, name: &str) -> Result<(), AccountError> {
        let changed = self.client.get_mut().execute(
            "UPDATE accounts SET suspended_reason = NULL, suspended_by = NULL, suspended_ms = NULL
             WHERE name_key = $1",
            &[&self.naming.key(name)],
        )?;
        found(changed, name)
    }

    /// The nicks the account owns, as registered, in order of name.
    pub fn nicks(&self, name: &str) -> Result<Vec<String>, AccountError> {
        self.owned(
            "SELECT n.nick FROM account_nicks n JOIN accounts a ON a.id = n.account
             WHERE a.name_key = $1 ORDER BY n.nick_key",
            name,
        )
    }

    /// Gives the account `nick` too; refused when another account owns
    /// it, here or on another node at the same instant.
    pub fn add_nick(&mut self, name: &str, nick: &str, now_ms: i64) -> Result<(), AccountError> {
        self.naming.check(nick)?;
        let key = self.naming.key(nick);
        let account = self.naming.key(name);
        let written = (|| -> Result<(), AccountError> {
            let mut transaction = self.client.get_mut().transaction()?;
            let id = locked_account(&mut transaction, &account, name)?;
            match nick_owner(&mut transaction, &key)? {
                Some(owner) if owner == id => return Ok(()),
                Some(_) => return Err(AccountError::NickTaken(nick.to_owned())),
                None => {}
            }
            count_below(
                &mut transaction,
                "SELECT count(*) FROM account_nicks WHERE account = $1",
                id,
                "nicks",
                MAX_NICKS_PER_ACCOUNT,
            )?;
            transaction.execute(
                "INSERT INTO account_nicks (nick_key, nick, account, since_ms)
                 VALUES ($1, $2, $3, $4)",
                &[&key, &nick, &id, &now_ms],
            )?;
            transaction.commit()?;
            Ok(())
        })();
        written.map_err(|error| taken(error, nick))
    }

    /// The account that owns `nick`, by its registered name.
    pub fn nick_owner(&self, nick: &str) -> Result<Option<String>, AccountError> {
        self.owner(
            "SELECT a.name FROM account_nicks n JOIN accounts a ON a.id = n.account
             WHERE n.nick_key = $1",
            &self.naming.key(nick),
        )
    }

    /// Every owned nick of an account that is not pending; see
    /// [`super::Store::nick_owners`].
    pub fn nick_owners(&self) -> Result<Vec<NickOwner>, AccountError> {
        if !self.has_tables {
            return Ok(Vec::new());
        }
        let rows = self.client.borrow_mut().query(
            "SELECT n.nick_key, a.name, a.enforce_nicks FROM account_nicks n
             JOIN accounts a ON a.id = n.account
             WHERE a.id NOT IN (SELECT account FROM account_verifications)",
            &[],
        )?;
        let owner = |row: &Row| -> Result<NickOwner, postgres::Error> {
            Ok(NickOwner {
                nick_key: row.try_get(0)?,
                account: row.try_get(1)?,
                enforce: row.try_get(2)?,
            })
        };
        Ok(rows.iter().map(owner).collect::<Result<_, _>>()?)
    }

    /// Turns enforcement of the account's nicks on or off.
    pub fn set_enforce(&mut self, name: &str, on: bool) -> Result<(), AccountError> {
        let changed = self.client.get_mut().execute(
            "UPDATE accounts SET enforce_nicks = $2 WHERE name_key = $1",
            &[&self.naming.key(name), &on],
        )?;
        found(changed, name)
    }

    /// Deletes the account with everything that goes with it.
    pub fn delete(&mut self, name: &str) -> Result<(), AccountError> {
        let changed = self.client.get_mut().execute(
            "DELETE FROM accounts WHERE name_key = $1",
            &[&self.naming.key(name)],
        )?;
        found(changed, name)
    }

    /// The account's certificate fingerprints.
    pub fn certificates(&self, name: &str) -> Result<Vec<String>, AccountError> {
        self.owned(
            "SELECT c.fingerprint FROM account_certificates c JOIN accounts a ON a.id = c.account
             WHERE a.name_key = $1 ORDER BY c.fingerprint",
            name,
        )
    }

    /// Lets a client certificate log in to the account; a fingerprint
    /// names one account only, across every node.
    pub fn add_certificate(&mut self, name: &str, fingerprint: &str) -> Result<(), AccountError> {
        let fingerprint = normalize_fingerprint(fingerprint)?;
        let account = self.naming.key(name);
        let written = (|| -> Result<(), AccountError> {
            let mut transaction = self.client.get_mut().transaction()?;
            let id = locked_account(&mut transaction, &account, name)?;
            let owner = transaction.query_opt(
                "SELECT account FROM account_certificates WHERE fingerprint = $1",
                &[&fingerprint],
            )?;
            match owner.map(|row| row.try_get::<_, i64>(0)).transpose()? {
                Some(owner) if owner == id => return Ok(()),
                Some(_) => return Err(AccountError::CertificateTaken),
                None => {}
            }
            count_below(
                &mut transaction,
                "SELECT count(*) FROM account_certificates WHERE account = $1",
                id,
                "certificates",
                MAX_CERTIFICATES_PER_ACCOUNT,
            )?;
            transaction.execute(
                "INSERT INTO account_certificates (fingerprint, account) VALUES ($1, $2)",
                &[&fingerprint, &id],
            )?;
            transaction.commit()?;
            Ok(())
        })();
        written.map_err(|error| taken(error, name))
    }

    /// Forgets a certificate of the account; true when it had it.
    pub fn remove_certificate(
        &mut self,
        name: &str,
        fingerprint: &str,
    ) -> Result<bool, AccountError> {
        let fingerprint = normalize_fingerprint(fingerprint)?;
        let removed = self.client.get_mut().execute(
            "DELETE FROM account_certificates WHERE fingerprint = $1
                 AND account = (SELECT id FROM accounts WHERE name_key = $2)",
            &[&fingerprint, &self.naming.key(name)],
        )?;
        Ok(removed > 0)
    }

    /// The account a client certificate logs in to.
    pub fn certificate_owner(&self, fingerprint: &str) -> Result<Option<String>, AccountError> {
        let fingerprint = normalize_fingerprint(fingerprint)?;
        self.owner(
            "SELECT a.name FROM account_certificates c JOIN accounts a ON a.id = c.account
             WHERE c.fingerprint = $1",
            &fingerprint,
        )
    }

    fn owner(&self, sql: &str, key: &str) -> Result<Option<String>, AccountError> {
        if !self.has_tables {
            return Ok(None);
        }
        let row = self.client.borrow_mut().query_opt(sql, &[&key])?;
        Ok(row.map(|row| row.try_get(0)).transpose()?)
    }

    fn owned(&self, sql: &str, name: &str) -> Result<Vec<String>, AccountError> {
        if !self.has_tables {
            return Ok(Vec::new());
        }
        let rows = self
            .client
            .borrow_mut()
            .query(sql, &[&self.naming.key(name)])?;
        Ok(rows
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<_, _>>()?)
    }
}

/// A unique key's violation as the error its name's owner means: another
/// node wrote the same name between this transaction's read and its write.
pub(super) fn taken(error: AccountError, name: &str) -> AccountError {
    let AccountError::Postgres(source) = &error else {
        return error;
    };
    let Some(db) = source.as_db_error() else {
        return error;
    };
    if *db.code() != SqlState::UNIQUE_VIOLATION {
        return error;
    }
    match db.constraint() {
        Some("accounts_name_unique") => AccountError::NameTaken(name.to_owned()),
        Some("account_nicks_unique") => AccountError::NickTaken(name.to_owned()),
        Some("account_certificates_unique") => AccountError::CertificateTaken,
        Some("account_rooms_name_unique") => AccountError::RoomTaken(name.to_owned()),
        _ => error,
    }
}

fn found(changed: u64, name: &str) -> Result<(), AccountError> {
    match changed {
        0 => Err(AccountError::NotFound(name.to_owned())),
        _ => Ok(()),
    }
}

/// The id of the account whose casefolded name is `key`.
pub(super) fn account_id(
    client: &mut impl GenericClient,
    key: &str,
) -> Result<Option<i64>, AccountError> {
    let row = client.query_opt("SELECT id FROM accounts WHERE name_key = $1", &[&key])?;
    Ok(row.map(|row| row.try_get(0)).transpose()?)
}

/// The account's id, its row locked until the transaction ends: counts
/// of its nicks or certificates cannot be raced past their limits.
fn locked_account(
    transaction: &mut Transaction<'_>,
    key: &str,
    name: &str,
) -> Result<i64, AccountError> {
    let row = transaction.query_opt(
        "SELECT id FROM accounts WHERE name_key = $1 FOR UPDATE",
        &[&key],
    )?;
    let id: Option<i64> = row.map(|row| row.try_get(0)).transpose()?;
    id.ok_or_else(|| AccountError::NotFound(name.to_owned()))
}

fn nick_owner(transaction: &mut Transaction<'_>, key: &str) -> Result<Option<i64>, AccountError> {
    let row = transaction.query_opt(
        "SELECT account FROM account_nicks WHERE nick_key = $1",
        &[&key],
    )?;
    Ok(row.map(|row| row.try_get(0)).transpose()?)
}

/// Refuses one more row when the account has `max` already.
fn count_below(
    transaction: &mut Transaction<'_>,
    count: &str,
    id: i64,
    what: &'static str,
    max: usize,
) -> Result<(), AccountError> {
    let n: i64 = transaction.query_one(count, &[&id])?.try_get(0)?;
    if usize::try_from(n).unwrap_or(usize::MAX) >= max {
        return Err(AccountError::TooMany { what, max });
    }
    Ok(())
}

fn pair(row: &Row) -> Result<(String, String), postgres::Error> {
    Ok((row.try_get(0)?, row.try_get(1)?))
}

/// A row of [`ACCOUNT_COLUMNS`]; a column of an unexpected type (a schema
/// changed by hand) is an error, not a panic.
fn account_from_row(row: &Row) -> Result<Account, postgres::Error> {
    let suspended = match row.try_get::<_, Option<i64>>(10)? {
        Some(at_ms) => Some(Suspension {
            reason: row.try_get(8)?,
            by: row.try_get(9)?,
            at_ms,
        }),
        None => None,
    };
    let iterations: i64 = row.try_get(3)?;
    Ok(Account {
        name: row.try_get(0)?,
        credentials: Credentials {
            hash: row.try_get(1)?,
            scram: ScramCredentials {
                salt: row.try_get(2)?,
                // The store writes only a u32; anything else fails SCRAM.
                iterations: u32::try_from(iterations).unwrap_or(0),
                stored_key: key_bytes(row.try_get(4)?),
                server_key: key_bytes(row.try_get(5)?),
            },
        },
        email: row.try_get(6)?,
        created_ms: row.try_get(7)?,
        suspended,
        pending: row.try_get(11)?,
    })
}

/// A 32-byte SCRAM key column (the schema checks its length).
pub(super) fn key_bytes(bytes: Vec<u8>) -> [u8; 32] {
    let mut key = [0; 32];
    if bytes.len() == key.len() {
        key.copy_from_slice(&bytes);
    }
    key
}
