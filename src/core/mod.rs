//! The core: one task that owns every client, nick and channel. Connections
//! send it [`Event`]s; it answers by pushing serialized lines onto each
//! client's outbox. It never awaits and never does I/O, so a run is
//! deterministic and the state needs no locks.
//!
//! `state.rs` holds [`State`] and [`State::handle`]; the methods handlers
//! use live beside their concern: `delivery.rs` (sending and fan-out),
//! `replies.rs` (numerics, FAIL, server NOTICEs, the privilege check),
//! `labeled.rs` (labeled-response), `disconnect.rs`, `whowas.rs`,
//! `monitor.rs`. Beside them: `bans.rs` (K-lines and
//! D-lines), `lockout.rs` (failed OPER and login attempts), `login.rs` (logging in
//! and out of accounts), `registered.rs` (rooms registered with ChanServ),
//! `read_markers.rs` (draft/read-marker),
//! `reservation.rs` (who owns a nick, and renaming those who use one without
//! logging in), `jobs.rs` (what the
//! core hands to the blocking worker), `history_answer.rs` (a CHATHISTORY
//! answer on its way back) and `clock.rs`. `dispatch.rs` is the command
//! table; `commands/` has the handlers, one file per command or family.

mod bans;
pub mod broadcast;
pub mod caps;
mod channel;
mod client;
pub mod cloak;
mod clock;
pub mod commands;
pub(crate) mod delivery;
mod disconnect;
mod dispatch;
mod event_history;
pub mod extban;
pub mod history_access;
mod history_answer;
mod hold;
pub mod isupport;
mod jobs;
mod labeled;
mod lockout;
mod login;
mod metadata;
mod monitor;
pub mod multiline;
pub mod network;
pub mod playback;
pub mod read_markers;
mod registered;
mod replies;
pub mod reservation;
mod seen;
mod state;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod testing;
#[cfg(test)]
mod tests;
pub mod whowas;

use tokio::sync::mpsc;

#[cfg(test)]
pub use bans::BanLine;
pub use bans::BanList;
pub use channel::{Channel, ChannelModes, ListEntry, Membership, Topic};
pub use client::Client;
pub use clock::{Clock, SystemClock};
pub use isupport::isupport_tokens;
pub use jobs::{
    AccountAbout, AccountAnswer, AccountJob, AccountOutcome, AccountPurpose, AdminRequest,
    AdminState, MetadataRequest, OperAnswer, Reloaded,
};
pub use replies::Refusal;
pub use state::State;

use crate::config::ConfigError;
pub use crate::net::ClientId;
use crate::net::{ConnectionEvent, TlsError};

/// What the connections and the server tell the core.
#[derive(Debug)]
pub enum Event {
    /// What a connection reported: accepted, a parsed line, a line too
    /// long, closed.
    Connection(ConnectionEvent),
    /// Reload the configuration file (REHASH from an operator, or SIGHUP).
    Rehash { requested_by: Option<ClientId> },
    /// The admin worker loaded the configuration file, or failed to.
    Reloaded {
        requested_by: Option<ClientId>,
        outcome: Result<Reloaded, ReloadError>,
    },
    /// The admin worker checked an OPER password.
    OperChecked {
        id: ClientId,
        oper: String,
        valid: bool,
    },
    /// The worker did an account job for a client.
    AccountAnswered {
        id: ClientId,
        purpose: AccountPurpose,
        outcome: AccountOutcome,
    },
    /// An account's stored metadata, read for a client that logged in to it.
    MetadataLoaded {
        id: ClientId,
        account: String,
        values: Vec<(String, String)>,
    },
    /// The history reader answered a CHATHISTORY request.
    HistoryAnswered(Box<history_answer::Answer>),
    /// The history reader read a room's last lines from the shared store,
    /// for the members who joined it without a playback ring here.
    PlaybackLoaded(Box<playback::Loaded>),
    /// The history reader found (or not) the line a REDACT names.
    RedactFound(Box<commands::redact::Found>),
    /// History commits started failing (a full disk), or succeed again.
    HistoryHealth { degraded: bool },
    /// Another node of the network said something.
    Network(crate::network::Heard),
    /// A second passed (the server's ticker): deadlines kept in the core
    /// are checked.
    Tick,
    /// The server is stopping: say goodbye to everyone.
    Shutdown,
}

/// Why REHASH kept the running configuration; the text goes to the
/// operator who asked.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("the server was started without a configuration file")]
    NoFile,
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Certificate(#[from] TlsError),
    /// The loading task panicked.
    #[error("the loader failed: {0}")]
    Loader(#[from] tokio::task::JoinError),
}

/// How many events may wait for the core before readers wait in turn.
pub const INBOX_CAPACITY: usize = 4096;

/// A connection's report, as the core's own event: a move, no allocation.
impl From<ConnectionEvent> for Event {
    fn from(event: ConnectionEvent) -> Event {
        Event::Connection(event)
    }
}

/// The most events handled before the history journal is written: their
/// lines wait for it, so a batch stays short; a busy inbox still gets one
/// write per batch instead of one per message.
const BATCH: usize = 64;

/// Runs the core until every sender is gone or a shutdown was handled.
/// Events are handled in batches of those already waiting; after each
/// batch the records it made are written to the history journal and the
/// lines that waited for them released (`State::flush_history`).
pub async fn run(mut state: State, mut inbox: mpsc::Receiver<Event>) {
    // The standing and registered rooms exist before any event.
    state.metrics.set_rooms(state.channels.len());
    while let Some(first) = inbox.recv().await {
        let mut next = Some(first);
        let mut handled = 0;
        let mut shutdown = false;
        while let Some(event) = next.take() {
            shutdown = matches!(event, Event::Shutdown);
            handle_guarded(&mut state, event);
            handled += 1;
            if !shutdown && handled < BATCH {
                next = inbox.try_recv().ok();
            }
        }
        state.flush_history();
        if shutdown {
            break;
        }
    }
}

/// Applies one event; a handler that panics costs only its client.
pub fn handle_guarded(state: &mut State, event: Event) {
    let culprit = match &event {
        Event::Connection(ConnectionEvent::Message { id, .. })
        | Event::Connection(ConnectionEvent::InputTooLong { id })
        | Event::OperChecked { id, .. }
        | Event::AccountAnswered { id, .. } => Some(*id),
        Event::HistoryAnswered(answer) => Some(answer.request.id),
        Event::RedactFound(found) => Some(found.request.id),
        _ => None,
    };
    // A bug in one handler must not take every user down with it: drop
    // the client whose command triggered it and keep serving.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| state.handle(event)));
    if outcome.is_err() {
        tracing::error!(client = ?culprit, "a command handler panicked; dropping its client");
        // The panic may have struck inside a labeled command: its capture
        // and label must not reach the next client's replies.
        state.reset_labeled();
        if let Some(id) = culprit {
            state.disconnect(id, "Internal error");
        }
    }
    // One store per event: cheaper than finding every place a room
    // appears or goes.
    state.metrics.set_rooms(state.channels.len());
}

/// Hashes a [`ClientId`] with one multiplication. Ids are assigned by the
/// server, never chosen by clients, so a keyed hash buys nothing, and
/// SipHash was the largest single cost of a fan-out.
#[derive(Clone, Copy, Debug, Default)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        // Fibonacci hashing spreads sequential ids over the high bits, which
        // the table uses for its control bytes.
        self.0 = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A map keyed by client id.
pub type IdMap<V> = std::collections::HashMap<ClientId, V, std::hash::BuildHasherDefault<IdHasher>>;
/// A set of client ids.
pub type IdSet = std::collections::HashSet<ClientId, std::hash::BuildHasherDefault<IdHasher>>;
