//! The last lines of each room, in memory, so playback on join is served by
//! the core at once, right after NAMES, without asking the disk.
//!
//! Seeded at startup from the store ([`super::Preload`]) and appended to
//! whenever the core queues a room message for the writer. A room keeps its
//! ring when it empties, so a room that is re-created later still plays its
//! history back. The number of rings is bounded: past [`MAX_ROOMS`] the
//! least recently used ring is dropped, and that room plays back only what
//! is said after (its older lines stay on disk, for CHATHISTORY).

use std::collections::{HashMap, VecDeque};

use super::{Preload, Record};

/// The most rooms with a ring: at 25 lines of about 200 bytes, some 50 MB.
pub const MAX_ROOMS: usize = 10_000;

/// One ring per casefolded room name.
#[derive(Debug, Default)]
pub struct PlaybackRings {
    rings: HashMap<String, Ring>,
    /// Lines per room; 0 keeps nothing.
    lines: usize,
    max_rooms: usize,
    /// A counter standing for time, to find the least recently used ring.
    clock: u64,
}

#[derive(Debug)]
struct Ring {
    /// Each line with the sequence number of its record (0: committed
    /// before startup), so playback too waits for the commit.
    records: VecDeque<(u64, Record)>,
    used: u64,
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
    /// a full ring.
    pub fn push(&mut self, record: Record, seq: u64) {
        if self.lines == 0 || !is_playable(&record) {
            return;
        }
        self.clock += 1;
        let used = self.clock;
        if !self.rings.contains_key(&record.target) && self.rings.len() >= self.max_rooms {
            self.evict_least_recently_used();
        }
        let lines = self.lines;
        let ring = self.rings.entry(record.target.clone()).or_insert(Ring {
            records: VecDeque::with_capacity(lines.min(32)),
            used,
        });
        ring.used = used;
        if ring.records.len() == lines {
            ring.records.pop_front();
        }
        ring.records.push_back((seq, record));
    }

    /// The room's last lines at `since_ms` or later, oldest first, each
    /// with the record its delivery must wait for.
    pub fn recent(&mut self, room: &str, since_ms: Option<i64>) -> Vec<(u64, Record)> {
        self.clock += 1;
        let used = self.clock;
        let Some(ring) = self.rings.get_mut(room) else {
            return Vec::new();
        };
        ring.used = used;
        let floor = since_ms.unwrap_or(i64::MIN);
        ring.records
            .iter()
            .filter(|(_, record)| record.time_ms >= floor)
            .cloned()
            .collect()
    }

    /// How many rooms have a ring.
    pub fn len(&self) -> usize {
        self.rings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rings.is_empty()
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
    let ctcp = record.text.starts_with('\u{1}') && !record.text.starts_with("\u{1}ACTION ");
    message && !ctcp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::testing::record;

    fn msgids(records: &[(u64, Record)]) -> Vec<&str> {
        records.iter().map(|(_, r)| r.msgid.as_str()).collect()
    }

    #[test]
    fn a_ring_keeps_the_last_lines_oldest_first() {
        let mut rings = PlaybackRings::new(2, Preload::new());
        for (i, id) in ["a", "b", "c"].into_iter().enumerate() {
            rings.push(record(id, i as i64, "#room"), 1);
        }
        assert_eq!(msgids(&rings.recent("#room", None)), ["b", "c"]);
        assert_eq!(msgids(&rings.recent("#room", Some(2))), ["c"]);
        assert!(rings.recent("#other", None).is_empty());
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
        assert_eq!(msgids(&rings.recent("#room", None)), ["a"]);
    }

    #[test]
    fn the_least_recently_used_ring_goes_first() {
        let mut rings = PlaybackRings::with_max_rooms(5, 2, Preload::new());
        rings.push(record("a", 1, "#a"), 1);
        rings.push(record("b", 2, "#b"), 1);
        rings.recent("#a", None);
        rings.push(record("c", 3, "#c"), 1);
        assert_eq!(rings.len(), 2);
        assert!(
            rings.recent("#b", None).is_empty(),
            "#b was least recently used"
        );
        assert_eq!(msgids(&rings.recent("#a", None)), ["a"]);
    }

    #[test]
    fn the_preload_seeds_the_rings() {
        let mut preload = Preload::new();
        preload.insert("#room".into(), vec![record("x", 1, "#room")]);
        let mut rings = PlaybackRings::new(25, preload);
        assert_eq!(msgids(&rings.recent("#room", None)), ["x"]);
        let mut off = PlaybackRings::new(0, Preload::new());
        off.push(record("y", 1, "#room"), 1);
        assert!(off.is_empty());
    }
}
