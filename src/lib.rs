//! rookery, an IRC server.
//!
//! Bytes flow one way:
//!
//! - `net`: listeners and per-connection read and write tasks. The read task
//!   frames and parses lines and hands them to the core; the write task
//!   drains the client's outbox into the socket. A line travels over a byte
//!   stream (TCP, TLS) or a WebSocket; `net/http/` is the browser listener
//!   (web client, WebSocket upgrade, operators' endpoints).
//! - [`proto`]: the wire format: framing with byte limits, the nom parser,
//!   the serializer with its trailing-colon policy, numerics, casemapping,
//!   glob masks, address ranges, and the one table of channel and user
//!   mode letters.
//! - `core`: one task owning all state (clients, nicks, channels). The
//!   `State` struct and its event entry point are in `core/state.rs`; its
//!   helpers sit beside their concern (`delivery.rs`, `replies.rs`,
//!   `labeled.rs`, `disconnect.rs`, `whowas.rs`, `bans.rs`), and
//!   `jobs.rs` holds what it hands to the blocking worker. A command table
//!   (`dispatch.rs`) runs the shared checks, then one handler file per
//!   command or command family under `core/commands/`; the larger
//!   families are folders (`channel_mode/`, `chathistory/`, `message/`).
//!   Every answer to the sender, refusals included, is built with the
//!   builders in `replies.rs`. Handlers use the core; the core calls them only through
//!   the table and, for the events that carry a command on (a SIGHUP's
//!   REHASH, an answer from off the core to OPER, REHASH or CHATHISTORY),
//!   through that command's own entry point for it.
//! - [`history`]: room history in SQLite: a writer thread that commits in
//!   batches and a watermark that holds each line until its record is on
//!   disk; queries, retention and export.
//! - [`accounts`]: who a person is across connections: the account store
//!   (in the history database, the node's file or the network's shared
//!   PostgreSQL, its tables versioned on their own),
//!   argon2id and SCRAM-SHA-256 credentials, and the lock that keeps
//!   `rookery accounts` from writing under a running server.
//! - [`config`]: the TOML schema and defaults (`config/mod.rs`), the
//!   semantic checks (`validate.rs`), and error positions and wording
//!   (`locate.rs`).
//! - `worker`: the worker that does the core's blocking jobs: REHASH
//!   loads, OPER password checks, bans file writes; `room_writer`, the
//!   task it hands registered rooms' writes to, one pending per room;
//!   `metadata_writer`, the task that reads and writes account metadata.
//! - [`metrics`]: the counters and gauges operators scrape, counted by
//!   the accept loops, the core and the history writer with one relaxed
//!   atomic add each, and rendered in Prometheus' text format.
//! - [`shared_database`]: the URL check and session options of the
//!   PostgreSQL database a network shares, for history and accounts alike.
//! - [`server`]: wires them together; tests start it on port 0.
//!
//! With the `fuzzing` feature (and in tests), a hidden `fuzzing` module
//! holds what the fuzz targets and property tests drive, and
//! `core::testing` the one harness that runs a `State` without sockets for
//! them and for the handler tests.

pub mod accounts;
pub mod config;
pub(crate) mod core;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod history;
mod metadata_writer;
pub mod metrics;
pub(crate) mod net;
pub mod network;
pub mod proto;
mod room_writer;
pub mod server;
pub mod shared_database;
mod worker;

pub use server::{ServerHandle, start, start_with};
