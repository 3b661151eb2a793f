//! A core with registered clients and readable outboxes, for handler tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use super::{Channel, ClientId, Event, ListEntry, State, SystemClock};
use crate::config::Config;
use crate::net::Outbox;
use crate::proto::mask::Mask;
use crate::proto::message::parse;

/// A state machine and its clients, driven one line at a time.
pub struct Harness {
    pub state: State,
    next_id: u64,
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with_config(Config::default())
    }

    pub fn with_config(config: Config) -> Harness {
        Harness {
            state: State::new(Arc::new(config), Box::new(SystemClock)),
            next_id: 1,
        }
    }

    /// Connects and registers `nick`, and forgets the welcome burst.
    pub fn register(&mut self, nick: &str) -> ClientId {
        let id = ClientId(self.next_id);
        self.next_id += 1;
        let peer: SocketAddr = ([127, 0, 0, 1], 40000).into();
        self.state.handle(Event::Connected {
            id,
            outbox: Arc::new(Outbox::new(1 << 20)),
            peer,
            secure: false,
        });
        self.send(id, &format!("NICK {nick}"));
        self.send(id, &format!("USER {nick} 0 * :{nick}"));
        self.lines(id);
        id
    }

    /// The room named `name`, for setting modes the way MODE would.
    pub fn room(&mut self, name: &str) -> &mut Channel {
        let folded = self.state.fold(name);
        self.state
            .channels
            .get_mut(&folded)
            .expect("the room exists")
    }

    /// A ban, exception or invite-exception entry for `mask`.
    pub fn entry(&self, mask: &str) -> ListEntry {
        ListEntry {
            mask: Mask::new(mask, self.state.config.server.casemapping),
            set_by: "alice".to_owned(),
            set_at: SystemTime::UNIX_EPOCH,
        }
    }

    /// Hands one client line to the core.
    pub fn send(&mut self, id: ClientId, line: &str) {
        let message = parse(line).expect("a test line parses").to_owned();
        self.state.handle(Event::Message { id, message });
    }

    /// Everything `id` received since the last call, without CR LF.
    pub fn lines(&mut self, id: ClientId) -> Vec<String> {
        let Some(client) = self.state.clients.get(&id) else {
            return Vec::new();
        };
        client
            .outbox
            .take_lines()
            .iter()
            .map(|line| String::from_utf8_lossy(line).trim_end().to_owned())
            .collect()
    }
}
