//! A `State` driven without sockets, for handler tests: clients are named by
//! nick, lines go in as text and come out as text.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{Channel, ClientId, Clock, Event, Membership, State};
use crate::config::Config;
use crate::net::Outbox;
use crate::proto::message::parse;

/// A clock that stays where the test puts it.
#[derive(Clone)]
pub struct FixedClock(pub Arc<std::sync::Mutex<SystemTime>>);

impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The moment every test starts at: 2021-01-01T00:00:00Z.
pub const START: u64 = 1_609_459_200;

pub struct Harness {
    pub state: State,
    clock: FixedClock,
    outboxes: HashMap<String, (ClientId, Arc<Outbox>)>,
    next_id: u64,
}

impl Harness {
    pub fn new() -> Harness {
        let mut config = Config::default();
        config.server.name = "irc.test".into();
        Harness::with_config(config)
    }

    pub fn with_config(config: Config) -> Harness {
        let clock = FixedClock(Arc::new(std::sync::Mutex::new(
            SystemTime::UNIX_EPOCH + Duration::from_secs(START),
        )));
        Harness {
            state: State::new(Arc::new(config), Box::new(clock.clone())),
            clock,
            outboxes: HashMap::new(),
            next_id: 1,
        }
    }

    /// Moves the clock forward.
    pub fn advance(&mut self, secs: u64) {
        let mut now = self.clock.0.lock().unwrap_or_else(|p| p.into_inner());
        *now += Duration::from_secs(secs);
    }

    /// Connects and registers `nick` (user `nick`, realname `Nick Name`),
    /// and drops the welcome burst.
    pub fn register(&mut self, nick: &str) -> ClientId {
        let id = ClientId(self.next_id);
        self.next_id += 1;
        let outbox = Arc::new(Outbox::new(1 << 20));
        let peer: SocketAddr = ([127, 0, 0, 1], 40000).into();
        self.state.handle(Event::Connected {
            id,
            outbox: outbox.clone(),
            peer,
            secure: false,
        });
        self.outboxes.insert(nick.to_owned(), (id, outbox));
        self.send(nick, &format!("NICK {nick}"));
        self.send(nick, &format!("USER {nick} 0 * :{nick} Name"));
        self.take(nick);
        id
    }

    /// Gives `nick` user mode +o, as OPER would.
    pub fn make_oper(&mut self, nick: &str) {
        let id = self.id(nick);
        if let Some(client) = self.state.clients.get_mut(&id) {
            client.modes.oper = true;
        }
    }

    pub fn id(&self, nick: &str) -> ClientId {
        self.outboxes[nick].0
    }

    /// `nick` sends `line`.
    pub fn send(&mut self, nick: &str, line: &str) {
        let message = parse(line).expect("test lines parse").to_owned();
        let id = self.id(nick);
        self.state.handle(Event::Message { id, message });
    }

    /// Every line `nick` was sent since the last call, without CR LF.
    pub fn take(&mut self, nick: &str) -> Vec<String> {
        self.outboxes[nick]
            .1
            .take_lines()
            .iter()
            .map(|line| {
                String::from_utf8_lossy(line)
                    .trim_end_matches("\r\n")
                    .to_owned()
            })
            .collect()
    }

    /// Creates `name` with the given members (`true` = channel operator),
    /// as JOIN would have.
    pub fn room(&mut self, name: &str, members: &[(&str, bool)]) {
        let folded = self.state.fold(name);
        let now = self.state.clock.now();
        let mut channel = Channel::new(name, now);
        channel.modes.no_external = true;
        channel.modes.topic_ops_only = true;
        for (nick, op) in members {
            let id = self.id(nick);
            channel.members.insert(
                id,
                Membership {
                    op: *op,
                    voice: false,
                },
            );
            if let Some(client) = self.state.clients.get_mut(&id) {
                client.channels.insert(folded.clone());
            }
        }
        self.state.channels.insert(folded, channel);
    }

    pub fn channel(&self, name: &str) -> &Channel {
        &self.state.channels[&self.state.fold(name)]
    }
}
