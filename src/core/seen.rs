//! How far playback has shown each room: per connection
//! ([`super::Client::playback_seen`]) and per account, across its
//! connections ([`super::State::account_seen`]). A mark is the last ring
//! line number ([`crate::history::ring::PlaybackRings::last`]) shown or
//! seen live there, so a rejoin, a second connection or a reconnect of
//! the same account plays only later lines.
//!
//! Marks live in memory only: ring numbers start again with the server,
//! so a mark from before a restart would mean nothing after it.

use std::collections::HashMap;

use crate::proto::Folded;

/// The most rooms one set of marks remembers.
pub const SEEN_ROOMS: usize = 256;
/// The most accounts whose marks are remembered.
pub const SEEN_ACCOUNTS: usize = 1024;

/// For each room, the last playback line shown or seen live there.
#[derive(Debug, Default)]
pub struct SeenMarks {
    rooms: HashMap<Folded, u64>,
}

impl SeenMarks {
    /// The mark of `room`, 0 for none.
    pub fn get(&self, room: &Folded) -> u64 {
        self.rooms.get(room).copied().unwrap_or(0)
    }

    /// Takes the mark of `room` out (a member needs none: leaving sets a
    /// later one).
    pub fn take(&mut self, room: &Folded) -> u64 {
        self.rooms.remove(room).unwrap_or(0)
    }

    /// Everything up to `seen` was shown in `room`. Past [`SEEN_ROOMS`]
    /// the room left longest ago is forgotten: at worst a rejoin there
    /// shows a few lines again.
    pub fn remember(&mut self, room: &Folded, seen: u64) {
        if let Some(mark) = self.rooms.get_mut(room) {
            *mark = (*mark).max(seen);
            return;
        }
        if self.rooms.len() >= SEEN_ROOMS
            && let Some(oldest) = oldest(&self.rooms, |mark| *mark)
        {
            self.rooms.remove(&oldest);
        }
        self.rooms.insert(room.clone(), seen);
    }

    /// A renamed room's mark follows it, replacing any the new name had.
    pub fn rename(&mut self, old: &Folded, new: &Folded) {
        self.rooms.remove(new);
        if let Some(mark) = self.rooms.remove(old) {
            self.rooms.insert(new.clone(), mark);
        }
    }

    /// The latest mark of any room: when these marks were last added to.
    fn latest(&self) -> u64 {
        self.rooms.values().copied().max().unwrap_or(0)
    }
}

/// Each account's marks, for every connection logged in to it.
#[derive(Debug, Default)]
pub struct AccountMarks {
    accounts: HashMap<Folded, SeenMarks>,
}

impl AccountMarks {
    /// The mark of `room` for `account` (folded), 0 for none.
    pub fn get(&self, account: &Folded, room: &Folded) -> u64 {
        self.accounts
            .get(account)
            .map_or(0, |marks| marks.get(room))
    }

    /// A renamed room's marks follow it, for every account.
    pub fn rename(&mut self, old: &Folded, new: &Folded) {
        for marks in self.accounts.values_mut() {
            marks.rename(old, new);
        }
    }

    /// `account` was shown everything up to `seen` in `room`. Past
    /// [`SEEN_ACCOUNTS`] the account whose marks are oldest is forgotten.
    pub fn remember(&mut self, account: &Folded, room: &Folded, seen: u64) {
        if !self.accounts.contains_key(account)
            && self.accounts.len() >= SEEN_ACCOUNTS
            && let Some(oldest) = oldest(&self.accounts, SeenMarks::latest)
        {
            self.accounts.remove(&oldest);
        }
        self.accounts
            .entry(account.clone())
            .or_default()
            .remember(room, seen);
    }
}

/// The key whose value ranks lowest by `rank`.
fn oldest<V>(map: &HashMap<Folded, V>, rank: impl Fn(&V) -> u64) -> Option<Folded> {
    map.iter()
        .min_by_key(|(_, value)| rank(value))
        .map(|(key, _)| key.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Casemapping;

    fn folded(name: &str) -> Folded {
        Casemapping::Ascii.fold(name)
    }

    #[test]
    fn a_mark_only_moves_forward_and_the_room_left_longest_ago_goes_first() {
        let mut marks = SeenMarks::default();
        marks.remember(&folded("#a"), 5);
        marks.remember(&folded("#a"), 3);
        assert_eq!(marks.get(&folded("#a")), 5);
        for n in 0..SEEN_ROOMS as u64 {
            marks.remember(&folded(&format!("#r{n}")), 10 + n);
        }
        assert_eq!(marks.rooms.len(), SEEN_ROOMS);
        assert_eq!(marks.get(&folded("#a")), 0, "the oldest mark went");
        assert_eq!(marks.take(&folded("#r1")), 11);
        assert_eq!(marks.get(&folded("#r1")), 0);
    }

    #[test]
    fn accounts_are_bounded_and_the_one_seen_longest_ago_goes_first() {
        let mut marks = AccountMarks::default();
        let room = folded("#room");
        marks.remember(&folded("early"), &room, 1);
        for n in 0..SEEN_ACCOUNTS as u64 {
            marks.remember(&folded(&format!("a{n}")), &room, 2 + n);
        }
        assert_eq!(marks.accounts.len(), SEEN_ACCOUNTS);
        assert_eq!(marks.get(&folded("early"), &room), 0);
        assert_eq!(marks.get(&folded("a0"), &room), 2);
    }
}
