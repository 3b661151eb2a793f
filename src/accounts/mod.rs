//! Accounts: who a person is across connections.
//!
//! - [`database`]: the one seam the rest holds, [`Accounts`], over the
//!   two stores below, and [`Place`], where the accounts are.
//! - [`store`]: the account tables, in the same SQLite file as history
//!   (one file to back up), with their own schema version.
//! - [`postgres`]: the same tables in the PostgreSQL database a network
//!   shares with `[history] backend = "postgres"`: one account on every node.
//! - [`password`]: argon2id hashes (the one policy, operators' too) and the
//!   SCRAM-SHA-256 verifiers derived from the same password.
//! - [`transfer`]: a node's accounts copied from its SQLite file into the
//!   shared database (`rookery history migrate`).
//! - [`lock`]: the advisory lock a running server holds on the database,
//!   so `rookery accounts` never writes under it.
//! - [`mail`]: verification codes and the SMTP client that mails them.
//! - [`admin`]: what `rookery accounts list` and `show` print.
//! - [`metadata`]: a user's IRCv3 metadata, kept with its account.
//! - [`read_markers`]: where each account last read each target.
//! - [`rooms`]: registered rooms (ChanServ), stored whole beside the
//!   accounts that found them.
//!
//! This module uses only `config`, `proto`, `shared_database` and its own
//! files.

pub mod admin;
pub mod database;
pub mod lock;
pub mod mail;
pub mod metadata;
pub mod password;
pub mod postgres;
pub mod read_markers;
pub mod rooms;
pub mod store;
#[cfg(test)]
mod tests;
pub mod transfer;

pub use database::{Accounts, Place};
pub use lock::{DatabaseLock, LockError};
pub use metadata::MetadataChange;
pub use password::{Credentials, PasswordError, ScramCredentials};
pub use postgres::PgAccounts;
pub use read_markers::ReadMarkerRecord;
pub use rooms::{AccessLevel, ListRecord, RoomRecord, TopicRecord};
pub use store::{
    Account, AccountError, CodeCheck, Naming, NickOwner, OlderSchema, PendingCode, Store,
    Suspension,
};
