//! The last lines of each room, in memory, so playback on join is served by
//! the core at once, right after NAMES, without asking the disk.
//!
//! Seeded at startup from the store with the standing rooms' lines
//! ([`super::Preload`]) and appended to whenever the core queues a room
//! message for the writer. A ring belongs to one incarnation of its room:
//! the core drops it when the room disappears ([`PlaybackRings::forget`]),
//! so a room re-created later under the same name plays back nothing of
//! the earlier one. The number of rings is bounded: past [`MAX_ROOMS`] the
//! least recently used ring is dropped, and that room plays back only what
//! is said after (its older lines stay on disk, for CHATHISTORY).
//!
//! Each line pushed gets a number from one counter for all rings, so a
//! client can be told "you have seen everything up to here" when it leaves
//! a room ([`PlaybackRings::last`]), and a rejoin shows nothing twice.

use std::collections::{HashMap, VecDeque};

use super::{HistoryTarget, Preload, Record};
use crate::proto::Folded;

/// The most rooms with a ring: at 25 lines of about 200 bytes, some 50 MB.
pub const MAX_ROOMS: usize = 10_000;

/// One ring per casefolded room name.
#[derive(Debug, Default)]
pub struct PlaybackRings {
    rings: HashMap<Folded, Ring>,
    /// Lines per room; 0 keeps nothing.
    lines: usize,
    max_rooms: usize,
    /// A counter standing for time, to find the least recently used ring.
    clock: u64,
    /// The number of the last line pushed.
    last: u64,
}

#[derive(Debug)]
struct Ring {
    records: VecDeque<Entry>,
    used: u64,
}

#[derive(Debug)]
struct Entry {
    /// The sequence number of its record (0: committed before startup),
    /// so playback too waits for the commit.
    seq: u64,
    /// Its place among every line pushed to any ring.
    number: u64,
    record: Record,
}

impl PlaybackRings {
    /// Rings of `lines` each, seeded with what the store held at startup.
    pub fn new(lines: usize, preload: Preload) -> PlaybackRings {
        PlaybackRings::with_max_rooms(lines, MAX_ROOMS, preload)
    }

    pub fn with_max_rooms(lines: usize, max_rooms: usize, preload: Preload) -> PlaybackRings {
        let mut rings = PlaybackRings {
            rings: HashMap::new(),
            lines,
            max_rooms: max_rooms.max(1),
            clock: 0,
            last: 0,
        };
        // Oldest activity first, so the least recently active go first.
        let mut rooms: Vec<Vec<Record>> = preload.into_values().collect();
        rooms.sort_by_key(|records| records.last().map_or(0, |r| r.time_ms));
        for record in rooms.into_iter().flatten() {
            rings.push(record, 0);
        }
        rings
    }

    /// Appends a room line queued as record `seq`; the oldest falls out of
    /// a full ring. A private message has no ring: nothing plays it back.
    pub fn push(&mut self, record: Record, seq: u64) {
        let HistoryTarget::Room(room) = &record.target else {
            return;
        };
        if self.lines == 0 || !is_playable(&record) {
            return;
        }
        self.last += 1;
        let number = self.last;
        let lines = self.lines;
        let ring = self.ring_for(room);
        if ring.records.len() == lines {
            ring.records.pop_front();
        }
        ring.records.push_back(Entry {
            seq,
            number,
            record,
        });
    }

    /// The room's last lines at `since_ms` or later and numbered after
    /// `seen` (a [`PlaybackRings::last`] taken earlier), oldest first, each
    /// with the record its delivery must wait for.
    pub fn recent(&mut self, room: &Folded, since_ms: i64, seen: u64) -> Vec<(u64, Record)> {
        self.clock += 1;
        let used = self.clock;
        let Some(ring) = self.rings.get_mut(room) else {
            return Vec::new();
        };
        ring.used = used;
        ring.records
            .iter()
            .filter(|entry| entry.record.time_ms >= since_ms && entry.number > seen)
            .map(|entry| (entry.seq, entry.record.clone()))
            .collect()
    }

    /// Whether the room has a ring, even an empty one: with a shared
    /// store, a room without one has its lines read from the database.
    pub fn has(&self, room: &Folded) -> bool {
        self.rings.contains_key(room)
    }

    /// Whether the room's ring holds the line `msgid`.
    pub fn holds(&self, room: &Folded, msgid: &str) -> bool {
        self.rings
            .get(room)
            .is_some_and(|ring| ring.records.iter().any(|entry| entry.record.msgid == msgid))
    }

    /// Puts lines read from the store (committed, oldest first) before
    /// what the room's ring holds, creating it, empty if need be, so later
    /// joiners are played from memory. A line the ring holds already is
    /// not put twice; the oldest go past the ring's size. Nothing when
    /// playback is off.
    pub fn seed(&mut self, room: &Folded, records: Vec<Record>) {
        if self.lines == 0 {
            return;
        }
        let lines = self.lines;
        let mut last = self.last;
        let ring = self.ring_for(room);
        let fresh: Vec<Record> = records
            .into_iter()
            .filter(|record| {
                is_playable(record)
                    && !ring
                        .records
                        .iter()
                        .any(|entry| entry.record.msgid == record.msgid)
            })
            .collect();
        for record in fresh.into_iter().rev() {
            if ring.records.len() == lines {
                break;
            }
            last += 1;
            ring.records.push_front(Entry {
                seq: 0,
                number: last,
                record,
            });
        }
        self.last = last;
    }

    /// The number of the last line pushed to any ring: whoever has been in
    /// a room until now has seen its lines up to here.
    pub fn last(&self) -> u64 {
        self.last
    }

    /// Drops a room's ring: the room is gone, and a room created later
    /// under its name is another incarnation.
    pub fn forget(&mut self, room: &Folded) {
        self.rings.remove(room);
    }

    /// Takes out a room's line with this msgid (REDACT): playback never
    /// shows it again.
    pub fn redact(&mut self, room: &Folded, msgid: &str) {
        if let Some(ring) = self.rings.get_mut(room) {
            ring.records.retain(|entry| entry.record.msgid != msgid);
        }
    }

    /// A renamed room's ring follows it, its lines shown under the new
    /// name; any ring the new name had (an earlier room's) goes.
    pub fn rename(&mut self, old: &Folded, new: &Folded, display: &str) {
        self.rings.remove(new);
        let Some(mut ring) = self.rings.remove(old) else {
            return;
        };
        for entry in &mut ring.records {
            entry.record.target = HistoryTarget::Room(new.clone());
            display.clone_into(&mut entry.record.target_display);
        }
        self.rings.insert(new.clone(), ring);
    }

    /// Takes out the lines whose records could not be committed (inclusive
    /// ranges of sequence numbers), so playback shows only what is stored.
    pub fn remove_lost(&mut self, lost: &[(u64, u64)]) {
        if lost.is_empty() {
            return;
        }
        let is_lost = |seq: u64| lost.iter().any(|&(low, high)| (low..=high).contains(&seq));
        for ring in self.rings.values_mut() {
            ring.records.retain(|entry| !is_lost(entry.seq));
        }
    }

    /// Keeps `lines` per room from now on (REHASH of `[history]
    /// playback_lines`): a smaller size drops each ring's oldest lines at
    /// once, 0 drops every ring, and a larger one fills as rooms talk (the
    /// core never reads the disk, so older lines are not brought back).
    pub fn resize(&mut self, lines: usize) {
        self.lines = lines;
        if lines == 0 {
            self.rings.clear();
            return;
        }
        for ring in self.rings.values_mut() {
            let excess = ring.records.len().saturating_sub(lines);
            ring.records.drain(..excess);
        }
    }

    /// How many rooms have a ring.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.rings.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.rings.is_empty()
    }

    /// The room's ring, made (empty) if it has none, marked as just used;
    /// making one when `max_rooms` rings exist drops the least recently
    /// used first.
    fn ring_for(&mut self, room: &Folded) -> &mut Ring {
        self.clock += 1;
        let used = self.clock;
        if !self.rings.contains_key(room) && self.rings.len() >= self.max_rooms {
            self.evict_least_recently_used();
        }
        let lines = self.lines;
        let ring = self.rings.entry(room.clone()).or_insert(Ring {
            records: VecDeque::with_capacity(lines.min(32)),
            used,
        });
        ring.used = used;
        ring
    }

    fn evict_least_recently_used(&mut self) {
        let oldest = self
            .rings
            .iter()
            .min_by_key(|(_, ring)| ring.used)
            .map(|(room, _)| room.clone());
        if let Some(room) = oldest {
            self.rings.remove(&room);
        }
    }
}

/// What playback replays: messages and notices, not topic changes (the
/// joiner gets 332/333) nor CTCP requests other than ACTION, which every
/// joiner's client would answer.
pub fn is_playable(record: &Record) -> bool {
    let message = matches!(record.command.as_str(), "PRIVMSG" | "NOTICE");
    // A multiline message reaches a client without the capability as
    // separate lines: a CTCP may start any of them.
    let ctcp = |line: &str| line.starts_with('\u{1}') && !line.starts_with("\u{1}ACTION ");
    message && !record.text.split(['\r', '\n']).any(ctcp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::testing::{folded, record};

    fn msgids(records: &[(u64, Record)]) -> Vec<&str> {
        records.iter().map(|(_, r)| r.msgid.as_str()).collect()
    }

    #[test]
    fn seeded_lines_go_before_the_live_ones_once_each() {
        let mut rings = PlaybackRings::new(3, Preload::new());
        let room = folded("#room");
        assert!(!rings.has(&room));
        rings.push(record("live", 50, "#room"), 7);
        let stored = vec![
            record("s1", 10, "#room"),
            record("s2", 20, "#room"),
            record("live", 50, "#room"),
        ];
        rings.seed(&room, stored);
        let played = rings.recent(&room, i64::MIN, 0);
        assert_eq!(msgids(&played), ["s1", "s2", "live"]);
        assert!(rings.holds(&room, "s2"));
        // Past the ring's size the oldest stored lines stay out.
        rings.seed(&room, vec![record("s0", 5, "#room")]);
        assert_eq!(msgids(&rings.recent(&room, i64::MIN, 0)).len(), 3);
        // An empty answer still makes a ring: the store is not asked again.
        let quiet = folded("#quiet");
        rings.seed(&quiet, Vec::new());
        assert!(rings.has(&quiet));
    }

    #[test]
    fn a_ring_keeps_the_last_lines_oldest_first() {
        let mut rings = PlaybackRings::new(2, Preload::new());
        for (i, id) in ["a", "b", "c"].into_iter().enumerate() {
            rings.push(record(id, i as i64, "#room"), 1);
        }
        assert_eq!(
            msgids(&rings.recent(&folded("#room"), i64::MIN, 0)),
            ["b", "c"]
        );
        assert_eq!(msgids(&rings.recent(&folded("#room"), 2, 0)), ["c"]);
        assert!(rings.recent(&folded("#other"), i64::MIN, 0).is_empty());
    }

    #[test]
    fn a_resized_ring_drops_its_oldest_lines_or_grows() {
        let mut rings = PlaybackRings::new(3, Preload::new());
        for (i, id) in ["a", "b", "c"].into_iter().enumerate() {
            rings.push(record(id, i as i64, "#room"), 1);
        }
        rings.resize(2);
        assert_eq!(
            msgids(&rings.recent(&folded("#room"), i64::MIN, 0)),
            ["b", "c"]
        );
        rings.resize(4);
        for (i, id) in ["d", "e", "f"].into_iter().enumerate() {
            rings.push(record(id, 10 + i as i64, "#room"), 1);
        }
        assert_eq!(
            msgids(&rings.recent(&folded("#room"), i64::MIN, 0)),
            ["c", "d", "e", "f"]
        );
        rings.resize(0);
        assert!(rings.is_empty());
        rings.push(record("g", 20, "#room"), 1);
        assert!(rings.is_empty(), "0 keeps nothing");
    }

    #[test]
    fn lines_seen_before_are_left_out() {
        let mut rings = PlaybackRings::new(5, Preload::new());
        rings.push(record("a", 1, "#room"), 1);
        let seen = rings.last();
        rings.push(record("b", 1, "#room"), 2);
        assert_eq!(
            msgids(&rings.recent(&folded("#room"), i64::MIN, seen)),
            ["b"]
        );
        assert!(
            rings
                .recent(&folded("#room"), i64::MIN, rings.last())
                .is_empty()
        );
    }

    #[test]
    fn a_forgotten_ring_and_lost_records_play_nothing_back() {
        let mut rings = PlaybackRings::new(5, Preload::new());
        for (seq, id) in [(1, "a"), (2, "b"), (3, "c"), (4, "d")] {
            rings.push(record(id, 1, "#room"), seq);
        }
        rings.push(record("x", 1, "#other"), 5);
        rings.remove_lost(&[(2, 3)]);
        assert_eq!(
            msgids(&rings.recent(&folded("#room"), i64::MIN, 0)),
            ["a", "d"]
        );
        rings.forget(&folded("#room"));
        assert!(rings.recent(&folded("#room"), i64::MIN, 0).is_empty());
        assert_eq!(msgids(&rings.recent(&folded("#other"), i64::MIN, 0)), ["x"]);
    }

    #[test]
    fn topics_and_ctcp_requests_are_not_played_back() {
        let mut rings = PlaybackRings::new(5, Preload::new());
        let mut topic = record("t", 1, "#room");
        topic.command = "TOPIC".into();
        let mut version = record("v", 2, "#room");
        version.text = "\u{1}VERSION\u{1}".into();
        let mut action = record("a", 3, "#room");
        action.text = "\u{1}ACTION waves\u{1}".into();
        for r in [topic, version, action] {
            rings.push(r, 1);
        }
        assert_eq!(msgids(&rings.recent(&folded("#room"), i64::MIN, 0)), ["a"]);
    }

    #[test]
    fn the_least_recently_used_ring_goes_first() {
        let mut rings = PlaybackRings::with_max_rooms(5, 2, Preload::new());
        rings.push(record("a", 1, "#a"), 1);
        rings.push(record("b", 2, "#b"), 1);
        rings.recent(&folded("#a"), i64::MIN, 0);
        rings.push(record("c", 3, "#c"), 1);
        assert_eq!(rings.len(), 2);
        assert!(
            rings.recent(&folded("#b"), i64::MIN, 0).is_empty(),
            "#b was least recently used"
        );
        assert_eq!(msgids(&rings.recent(&folded("#a"), i64::MIN, 0)), ["a"]);
    }

    #[test]
    fn a_private_conversation_gets_no_ring() {
        let mut rings = PlaybackRings::new(5, Preload::new());
        rings.push(record("pm", 1, "alice bob"), 1);
        assert!(rings.is_empty());
        assert_eq!(rings.last(), 0, "nothing was pushed");
    }

    #[test]
    fn the_preload_seeds_the_rings() {
        let mut preload = Preload::new();
        preload.insert("#room".into(), vec![record("x", 1, "#room")]);
        let mut rings = PlaybackRings::new(25, preload);
        assert_eq!(msgids(&rings.recent(&folded("#room"), i64::MIN, 0)), ["x"]);
        let mut off = PlaybackRings::new(0, Preload::new());
        off.push(record("y", 1, "#room"), 1);
        assert!(off.is_empty());
    }
}
