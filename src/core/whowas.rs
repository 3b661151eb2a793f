//! The nick history behind WHOWAS: who used a nick before it was dropped or
//! changed, newest last, bounded by `limits.whowas_entries`; and
//! [`State::remember_nick`], which fills it.

use std::collections::VecDeque;
use std::time::SystemTime;

use super::{ClientId, State};
use crate::proto::Folded;

/// One nick as it was when its owner changed it or left.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WhowasEntry {
    pub nick: String,
    pub user: String,
    pub host: String,
    pub realname: String,
    pub departed: SystemTime,
}

/// The bounded history; the oldest entry goes first when it is full.
#[derive(Debug)]
pub struct Whowas {
    entries: VecDeque<(Folded, WhowasEntry)>,
    capacity: usize,
}

impl Whowas {
    pub fn new(capacity: usize) -> Whowas {
        Whowas {
            entries: VecDeque::with_capacity(capacity.min(1024)),
            capacity,
        }
    }

    /// Remembers `entry` under its folded nick.
    pub fn record(&mut self, folded: Folded, entry: WhowasEntry) {
        if self.capacity == 0 {
            return;
        }
        while self.entries.len() >= self.capacity {
            self.entries.pop_front();
        }
        self.entries.push_back((folded, entry));
    }

    /// The entries for a nick, most recent first.
    pub fn lookup<'a>(&'a self, folded: &'a Folded) -> impl Iterator<Item = &'a WhowasEntry> {
        self.entries
            .iter()
            .rev()
            .filter(move |(key, _)| key == folded)
            .map(|(_, entry)| entry)
    }
}

impl State {
    /// Records a registered client's current nick in the WHOWAS history,
    /// before it leaves or changes nick.
    pub fn remember_nick(&mut self, id: ClientId) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        if !client.registered || client.nick.is_empty() {
            return;
        }
        let entry = WhowasEntry {
            nick: client.nick.clone(),
            user: client.user.clone(),
            host: client.host.clone(),
            realname: client.realname.clone(),
            departed: self.clock.now(),
        };
        let folded = self.fold(&client.nick);
        self.whowas.record(folded, entry);
        // Whoever takes a nick in this millisecond reads none of its
        // conversations.
        self.nick_ended_ms = crate::history::millis(self.clock.now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Casemapping;

    fn entry(nick: &str, user: &str) -> WhowasEntry {
        WhowasEntry {
            nick: nick.into(),
            user: user.into(),
            host: "h".into(),
            realname: "r".into(),
            departed: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn lookup_returns_newest_first() {
        let mut history = Whowas::new(10);
        let key = Casemapping::Ascii.fold("Bob");
        history.record(key.clone(), entry("Bob", "one"));
        history.record(Casemapping::Ascii.fold("eve"), entry("eve", "x"));
        history.record(key.clone(), entry("bob", "two"));
        let users: Vec<&str> = history.lookup(&key).map(|e| e.user.as_str()).collect();
        assert_eq!(users, ["two", "one"]);
    }

    #[test]
    fn the_oldest_entry_is_dropped_when_full() {
        let mut history = Whowas::new(2);
        for user in ["a", "b", "c"] {
            history.record(Casemapping::Ascii.fold("n"), entry("n", user));
        }
        let key = Casemapping::Ascii.fold("n");
        let users: Vec<&str> = history.lookup(&key).map(|e| e.user.as_str()).collect();
        assert_eq!(users, ["c", "b"]);
    }

    #[test]
    fn zero_capacity_keeps_nothing() {
        let mut history = Whowas::new(0);
        let key = Casemapping::Ascii.fold("n");
        history.record(key.clone(), entry("n", "a"));
        assert_eq!(history.lookup(&key).count(), 0);
    }
}
