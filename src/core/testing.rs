//! A `State` driven without sockets and on a clock that only moves when told,
//! for handler tests, property tests and the fuzz targets: clients are
//! called by name (a test's nick for them), lines go in as text and come
//! out as text. Compiled for tests and with the `fuzzing` feature.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::{Channel, ClientId, Clock, Event, ListEntry, Membership, State};
use crate::config::Config;
use crate::fuzzing::{check_sent_line, invariants};
use crate::net::{ConnectionEvent, Outbox};
use crate::proto::mask::Mask;
use crate::proto::message::parse;

/// A clock that stays where the test puts it, so runs repeat exactly.
#[derive(Clone)]
pub struct FixedClock(pub Arc<Mutex<SystemTime>>);

impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The moment every test starts at: 2021-01-01T00:00:00Z.
pub const START: u64 = 1_609_459_200;

/// One client connection: its id and the outbox the core writes to.
struct Connection {
    id: ClientId,
    outbox: Arc<Outbox>,
}

/// The state machine and its clients, each under the name a test calls it.
pub struct Harness {
    pub state: State,
    clock: FixedClock,
    connections: BTreeMap<String, Connection>,
    next_id: u64,
}

impl Default for Harness {
    fn default() -> Harness {
        Harness::new()
    }
}

impl Harness {
    /// A default configuration with the server named `irc.test`.
    pub fn new() -> Harness {
        let mut config = Config::default();
        config.server.name = "irc.test".into();
        Harness::with_config(config)
    }

    /// Runs `config` with cloaking off: handler tests name clients by their
    /// real `127.0.0.1` host. [`Harness::with_cloaking`] keeps it.
    pub fn with_config(mut config: Config) -> Harness {
        config.cloaking.enabled = false;
        Harness::with_cloaking(config)
    }

    /// Runs `config` as it is, cloaking included.
    pub fn with_cloaking(config: Config) -> Harness {
        let clock = FixedClock(Arc::new(Mutex::new(
            SystemTime::UNIX_EPOCH + Duration::from_secs(START),
        )));
        Harness {
            state: State::new(Arc::new(config), Box::new(clock.clone())),
            clock,
            connections: BTreeMap::new(),
            next_id: 1,
        }
    }

    /// Moves the clock forward.
    pub fn advance(&mut self, secs: u64) {
        let mut now = self.clock.0.lock().unwrap_or_else(|p| p.into_inner());
        *now += Duration::from_secs(secs);
    }

    /// Connects a fresh, unregistered client under `name`.
    pub fn connect(&mut self, name: &str) -> ClientId {
        self.connect_over(name, false, None)
    }

    /// Connects a fresh client over TLS that presented a client
    /// certificate with this fingerprint.
    pub fn connect_with_certificate(&mut self, name: &str, fingerprint: &str) -> ClientId {
        self.connect_over(name, true, Some(fingerprint.to_owned()))
    }

    fn connect_over(&mut self, name: &str, secure: bool, certificate: Option<String>) -> ClientId {
        let id = ClientId(self.next_id);
        self.next_id += 1;
        // The configured send queue, as the server gives a connection.
        let outbox = Arc::new(Outbox::new(self.state.config.limits.sendq_bytes));
        let peer: SocketAddr = ([127, 0, 0, 1], 40000).into();
        self.handle(Event::from(ConnectionEvent::Connected {
            id,
            outbox: outbox.clone(),
            peer,
            secure,
            certificate,
            websocket: false,
        }));
        self.connections
            .insert(name.to_owned(), Connection { id, outbox });
        id
    }

    /// Connects and registers `nick` (user `nick`, realname `nick Name`),
    /// and drops the welcome burst.
    pub fn register(&mut self, nick: &str) -> ClientId {
        let id = self.connect(nick);
        self.send(nick, &format!("NICK {nick}"));
        self.send(nick, &format!("USER {nick} 0 * :{nick} Name"));
        self.take(nick);
        id
    }

    /// Connects and registers `nick`, and returns what its 004 says (the
    /// parameters after the nick) and its 005 tokens.
    pub fn welcome(&mut self, nick: &str) -> (Vec<String>, Vec<String>) {
        self.connect(nick);
        self.send(nick, &format!("NICK {nick}"));
        self.send(nick, &format!("USER {nick} 0 * :{nick} Name"));
        let lines = self.take(nick);
        let params = |code: &str| -> Vec<String> {
            lines
                .iter()
                .filter(|line| line.split(' ').nth(1) == Some(code))
                .flat_map(|line| line.split(' ').skip(3).map(str::to_owned))
                .collect()
        };
        (params("004"), params("005"))
    }

    /// Gives `nick` user mode +o, as OPER would.
    pub fn make_oper(&mut self, nick: &str) {
        let id = self.id(nick);
        if let Some(client) = self.state.clients.get_mut(&id) {
            client.modes.oper = true;
        }
    }

    /// Gives the core a worker that is a channel the test reads: the
    /// jobs it is handed wait there, and the test answers them by hand.
    pub fn attach_worker(&mut self) -> tokio::sync::mpsc::UnboundedReceiver<super::AdminRequest> {
        let (worker, requests) = tokio::sync::mpsc::unbounded_channel();
        self.state.admin.worker = Some(worker);
        requests
    }

    /// The id of the client called `name`.
    pub fn id(&self, name: &str) -> ClientId {
        self.connections[name].id
    }

    /// Handles one event as the core's loop does: then writes the history
    /// journal and releases the lines that waited for it.
    pub fn handle(&mut self, event: Event) {
        self.state.handle(event);
        self.state.flush_history();
    }

    /// `name` sends `line`, which must parse.
    pub fn send(&mut self, name: &str, line: &str) {
        let message = parse(line).expect("test lines parse").to_owned();
        let id = self.id(name);
        self.handle(Event::from(ConnectionEvent::Message { id, message }));
    }

    /// `name` sends a line from a fuzzer. One that does not parse is
    /// dropped, as the read task drops it; if `name`'s client has left, a
    /// fresh connection takes its place first, so a long script keeps
    /// exercising registration.
    pub fn send_fuzzed(&mut self, name: &str, line: &str) {
        let id = self.live_connection(name);
        if let Ok(message) = parse(line) {
            let message = message.to_owned();
            self.handle(Event::from(ConnectionEvent::Message { id, message }));
        }
    }

    /// `name`'s connection ends on its side (EOF, error, timeout), without
    /// a QUIT; a client that has left is connected afresh first.
    pub fn close(&mut self, name: &str) {
        let id = self.live_connection(name);
        self.handle(Event::from(ConnectionEvent::Closed {
            id,
            reason: "Connection closed".to_owned(),
        }));
    }

    fn live_connection(&mut self, name: &str) -> ClientId {
        match self.connections.get(name) {
            Some(connection) if self.state.clients.contains_key(&connection.id) => connection.id,
            _ => self.connect(name),
        }
    }

    /// The history record each line queued for `name` waits for.
    #[cfg(test)]
    pub fn queued_gates(&self, name: &str) -> Vec<crate::net::Gate> {
        self.connections[name].outbox.queued_gates()
    }

    /// Every line `name` was sent since the last call, without CR LF.
    pub fn take(&mut self, name: &str) -> Vec<String> {
        self.connections[name]
            .outbox
            .take_lines()
            .iter()
            .map(|line| {
                String::from_utf8_lossy(line)
                    .trim_end_matches("\r\n")
                    .to_owned()
            })
            .collect()
    }

    /// Checks the state's invariants, then empties every outbox, checking
    /// each line on the way.
    pub fn check(&mut self) -> Result<(), String> {
        invariants(&self.state)?;
        for connection in self.connections.values() {
            for line in connection.outbox.take_lines() {
                check_sent_line(&line)?;
            }
        }
        Ok(())
    }

    /// Creates `name` with the given members (`true` = channel operator),
    /// as JOIN would have.
    pub fn room(&mut self, name: &str, members: &[(&str, bool)]) {
        let folded = self.state.fold(name);
        let now = self.state.clock.now();
        let mut channel = Channel::new(name, now);
        channel.modes.no_external = true;
        channel.modes.topic_ops_only = true;
        self.state.channels.insert(folded.clone(), channel);
        for (nick, op) in members {
            let membership = Membership {
                op: *op,
                voice: false,
            };
            let id = self.id(nick);
            self.state.add_member(id, &folded, membership);
        }
    }

    pub fn channel(&self, name: &str) -> &Channel {
        &self.state.channels[&self.state.fold(name)]
    }

    /// The room `name`, for setting modes the way MODE would.
    pub fn channel_mut(&mut self, name: &str) -> &mut Channel {
        let folded = self.state.fold(name);
        self.state
            .channels
            .get_mut(&folded)
            .expect("the room exists")
    }

    /// A ban, exception or invite-exception entry for `mask`, set by alice.
    pub fn list_entry(&self, mask: &str) -> ListEntry {
        ListEntry {
            mask: Mask::new(mask, self.state.config.server.casemapping),
            extban: None,
            set_by: "alice".to_owned(),
            set_at: SystemTime::UNIX_EPOCH,
        }
    }
}

/// A harness whose core records history, private messages included, in a
/// temporary database and hears the answers to its queries: for tests of
/// playback and CHATHISTORY.
#[cfg(test)]
pub struct HistoryHarness {
    pub h: Harness,
    history: Option<crate::history::History>,
    answers: tokio::sync::mpsc::Receiver<Event>,
    _db: crate::history::testing::TempDb,
}

#[cfg(test)]
impl HistoryHarness {
    pub fn new() -> HistoryHarness {
        HistoryHarness::with_hooks(crate::history::Hooks::default())
    }

    /// As [`HistoryHarness::new`], with `hooks` attached to the history.
    pub fn with_hooks(hooks: crate::history::Hooks) -> HistoryHarness {
        let db = crate::history::testing::TempDb::new();
        let mut config = Config::default();
        config.server.name = "irc.test".into();
        config.history.enabled = true;
        config.history.private_messages = true;
        config.history.path = db.path().to_owned();
        let mut h = Harness::with_config(config);
        let metrics = std::sync::Arc::clone(&h.state.metrics);
        let (history, preload) =
            crate::history::start(&h.state.config.history, "", &[], hooks, metrics)
                .expect("starts");
        h.state.seed_playback(preload);
        let (inbox, answers) = tokio::sync::mpsc::channel(8);
        h.state.history = Some(history.handle());
        h.state.inbox = Some(inbox);
        HistoryHarness {
            h,
            history: Some(history),
            answers,
            _db: db,
        }
    }

    /// Logs `name` in to `account`, as a right password would, and drops
    /// the 900.
    pub fn log_in(&mut self, name: &str, account: &str) {
        let id = self.h.id(name);
        self.h.state.log_in(id, account);
        self.h.take(name);
    }

    /// Waits until every record queued so far is committed, as a line a
    /// client was sent is.
    pub fn settle(&self) {
        let Some(handle) = &self.h.state.history else {
            return;
        };
        let queued = handle.last_queued();
        let mut committed = handle.committed();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        runtime
            .block_on(committed.wait_for(|&seq| seq >= queued))
            .expect("the writer runs");
    }

    /// Stops the history (its writer and its reader), as a failed disk
    /// would: nothing more can be queued, and every query is refused.
    pub fn stop_writer(&mut self) {
        if let Some(history) = self.history.take() {
            history.shutdown();
        }
    }

    /// `name` sends a CHATHISTORY `line` once everything said is stored,
    /// and gets the answer: the lines it was sent.
    pub fn query(&mut self, name: &str, line: &str) -> Vec<String> {
        self.settle();
        self.h.take(name);
        self.h.send(name, line);
        self.answer();
        self.h.take(name)
    }

    /// Hands the core the next answer from the history's reader.
    pub fn answer(&mut self) {
        let answer = self.answers.blocking_recv().expect("the query is answered");
        self.h.handle(answer);
    }
}

#[cfg(test)]
impl Drop for HistoryHarness {
    fn drop(&mut self) {
        if let Some(history) = self.history.take() {
            history.shutdown();
        }
    }
}
