//! A [`State`] driven without sockets by a fixed number of client slots. A
//! slot whose client left is connected afresh on its next line, so a long
//! script keeps exercising registration.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::invariants::{check_sent_line, invariants};
use crate::config::Config;
use crate::core::{ClientId, Clock, Event, State};
use crate::net::Outbox;
use crate::proto::message::parse;

/// A clock that never moves, so runs repeat exactly.
struct FixedClock;

impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        // 2021-01-01T00:00:00Z
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_609_459_200)
    }
}

/// One connection: its id and the outbox the core writes to.
struct Connection {
    id: ClientId,
    outbox: Arc<Outbox>,
}

/// The state machine and its client slots.
pub struct Harness {
    pub state: State,
    slots: Vec<Option<Connection>>,
    next_id: u64,
}

impl Harness {
    /// A core with `config` and `slots` client slots, none connected yet.
    pub fn new(config: Config, slots: usize) -> Harness {
        Harness {
            state: State::new(Arc::new(config), Box::new(FixedClock)),
            slots: (0..slots).map(|_| None).collect(),
            next_id: 1,
        }
    }

    /// The id of the client in `slot`, connecting one if it has none or its
    /// client has left.
    pub fn connection(&mut self, slot: usize) -> ClientId {
        if let Some(connection) = &self.slots[slot] {
            if self.state.clients.contains_key(&connection.id) {
                return connection.id;
            }
        }
        let id = ClientId(self.next_id);
        self.next_id += 1;
        // Large enough that a script never overflows it between checks.
        let outbox = Arc::new(Outbox::new(1 << 24));
        let peer: SocketAddr = ([127, 0, 0, 1], 40000 + slot as u16).into();
        self.state.handle(Event::Connected {
            id,
            outbox: outbox.clone(),
            peer,
            secure: false,
        });
        self.slots[slot] = Some(Connection { id, outbox });
        id
    }

    /// `slot` sends `line`; a line that does not parse is dropped, as the
    /// connection's read task drops it.
    pub fn send(&mut self, slot: usize, line: &str) {
        let id = self.connection(slot);
        if let Ok(message) = parse(line) {
            let message = message.to_owned();
            self.state.handle(Event::Message { id, message });
        }
    }

    /// The connection of `slot` ends on its side (EOF, error, timeout).
    pub fn close(&mut self, slot: usize) {
        let id = self.connection(slot);
        self.state.handle(Event::Closed {
            id,
            reason: "Connection closed".to_owned(),
        });
    }

    /// Connects and registers `nick` in `slot`.
    pub fn register(&mut self, slot: usize, nick: &str) {
        self.send(slot, &format!("NICK {nick}"));
        self.send(slot, &format!("USER {nick} 0 * :{nick}"));
    }

    /// Checks the invariants, then empties every outbox, checking each line.
    pub fn check(&mut self) -> Result<(), String> {
        invariants(&self.state)?;
        for connection in self.slots.iter().flatten() {
            for line in connection.outbox.take_lines() {
                check_sent_line(&line)?;
            }
        }
        Ok(())
    }
}
