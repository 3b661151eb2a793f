//! rookery, an IRC server.
//!
//! Bytes flow one way:
//!
//! - [`net`]: listeners and per-connection read and write tasks. The read task
//!   frames and parses lines and hands them to the core; the write task
//!   drains the client's outbox into the socket.
//! - [`proto`]: the wire format: framing with byte limits, the nom parser,
//!   the serializer with its trailing-colon policy, numerics, casemapping,
//!   glob masks.
//! - [`core`]: one task owning all state (clients, nicks, channels); a
//!   command table dispatches to one handler file per command family.
//! - [`history`]: room history in SQLite: a writer thread that commits in
//!   batches and a watermark that holds each line until its record is on
//!   disk; queries, retention and export.
//! - [`config`]: the TOML schema, defaults and validation.
//! - [`admin`]: the worker that does the core's blocking jobs: REHASH
//!   loads, OPER password checks, bans file writes.
//! - [`server`]: wires them together; tests start it on port 0.
//!
//! With the `fuzzing` feature (and in tests), a hidden `fuzzing` module
//! holds what the fuzz targets and property tests drive.

pub mod admin;
pub mod config;
pub mod core;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod history;
pub mod net;
pub mod proto;
pub mod server;

pub use server::{ServerHandle, start, start_with};
