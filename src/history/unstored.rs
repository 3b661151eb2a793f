//! Lines whose commit failed, kept by the writer to store once commits
//! succeed again.
//!
//! A failed commit does not stop chat: the lines went out (the journal had
//! them), playback drops them, and the checkpoint moves past them with the
//! next batch that commits. A PostgreSQL that is restarted, or a disk that
//! fills for a minute, would then leave a hole in the history for good. So
//! the writer keeps those lines here, up to [`MAX_UNSTORED`] (the oldest
//! go first past it), and stores them once a commit succeeds; both stores
//! insert by msgid, so a line stored meanwhile (by another node of a
//! network) is not stored twice. What the writer does to stored lines
//! meanwhile (a redaction, a dropped account's deletion, a room's rename)
//! is done to the kept ones too, so storing them later undoes none of it.

use std::collections::VecDeque;

use super::{HistoryTarget, Party, Record, RoomRename};

/// Lines kept at most; at about a kilobyte each, 20 MB.
pub const MAX_UNSTORED: usize = 20_000;

/// The lines kept, oldest first.
#[derive(Default)]
pub struct Unstored {
    records: VecDeque<Record>,
    /// Lines that fell out past [`MAX_UNSTORED`]: lost for good.
    dropped: u64,
}

impl Unstored {
    /// Keeps the lines of a batch that could not be committed.
    pub fn keep<'a>(&mut self, records: impl IntoIterator<Item = &'a Record>) {
        for record in records {
            if self.records.len() == MAX_UNSTORED {
                self.records.pop_front();
                self.dropped += 1;
            }
            self.records.push_back(record.clone());
        }
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// How many lines fell out for good since the last call.
    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }

    /// The oldest `count` lines, to store; [`Unstored::put_back`] returns
    /// them when that fails.
    pub fn take(&mut self, count: usize) -> Vec<Record> {
        let count = count.min(self.records.len());
        self.records.drain(..count).collect()
    }

    /// Lines [`Unstored::take`] gave that could not be stored after all,
    /// back in front, in their order.
    pub fn put_back(&mut self, records: Vec<Record>) {
        for record in records.into_iter().rev() {
            self.records.push_front(record);
        }
    }

    /// A REDACT: the line is not stored later.
    pub fn redact(&mut self, msgid: &str) {
        self.records.retain(|record| record.msgid != msgid);
    }

    /// A dropped account's or nick's conversations are not stored later.
    pub fn forget(&mut self, party: &Party) {
        self.records.retain(|record| match &record.target {
            HistoryTarget::Private(conversation) => {
                let (a, b) = conversation.parties();
                a != party && b != party
            }
            HistoryTarget::Room(_) => true,
        });
    }

    /// A renamed room's lines are stored under its new name; kept lines
    /// of an earlier room of the new name from after the renamed room's
    /// floor go first, as the store deletes them.
    pub fn rename(&mut self, rename: &RoomRename) {
        self.records.retain(|record| {
            !matches!(&record.target, HistoryTarget::Room(room) if *room == rename.new)
                || record.time_ms < rename.floor_ms
        });
        for record in &mut self.records {
            if matches!(&record.target, HistoryTarget::Room(room) if *room == rename.old) {
                record.target = HistoryTarget::Room(rename.new.clone());
                rename.display.clone_into(&mut record.target_display);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Casemapping;

    fn record(msgid: &str, target: HistoryTarget) -> Record {
        Record {
            target,
            ..crate::history::testing::record(msgid, 0, "#room")
        }
    }

    fn room(name: &str) -> HistoryTarget {
        HistoryTarget::Room(Casemapping::Ascii.fold(name))
    }

    fn msgids(unstored: &mut Unstored) -> Vec<String> {
        let all = unstored.take(usize::MAX);
        let ids = all.iter().map(|record| record.msgid.clone()).collect();
        unstored.put_back(all);
        ids
    }

    #[test]
    fn the_oldest_go_past_the_bound_and_are_counted() {
        let mut unstored = Unstored::default();
        let records: Vec<Record> = (0..MAX_UNSTORED + 2)
            .map(|n| record(&n.to_string(), room("#room")))
            .collect();
        unstored.keep(&records);
        assert_eq!(unstored.len(), MAX_UNSTORED);
        assert_eq!(unstored.take_dropped(), 2);
        assert_eq!(unstored.take(1)[0].msgid, "2");
    }

    #[test]
    fn what_was_taken_and_not_stored_goes_back_in_front_in_order() {
        let mut unstored = Unstored::default();
        let records = [
            record("a", room("#r")),
            record("b", room("#r")),
            record("c", room("#r")),
        ];
        unstored.keep(&records);
        let taken = unstored.take(2);
        unstored.put_back(taken);
        assert_eq!(msgids(&mut unstored), ["a", "b", "c"]);
    }

    #[test]
    fn redactions_deletions_and_renames_reach_the_kept_lines() {
        let fold = |name: &str| Casemapping::Ascii.fold(name);
        let alice = Party::Account(fold("alice"));
        let private = HistoryTarget::private(alice.clone(), Party::Nick(fold("bob")));
        let mut unstored = Unstored::default();
        let at = |msgid: &str, time_ms: i64| Record {
            time_ms,
            ..record(msgid, room("#new"))
        };
        let records = [
            record("said", room("#old")),
            record("redacted", room("#old")),
            record("private", private),
            record("elsewhere", room("#other")),
            at("earlier room", 500),
            at("earlier room after the floor", 1500),
        ];
        unstored.keep(&records);
        unstored.redact("redacted");
        unstored.forget(&alice);
        unstored.rename(&RoomRename {
            old: fold("#old"),
            new: fold("#new"),
            display: "#New".into(),
            floor_ms: 1000,
        });
        let kept = unstored.take(usize::MAX);
        let view: Vec<(&str, &str)> = kept
            .iter()
            .map(|record| (record.msgid.as_str(), record.target_display.as_str()))
            .collect();
        assert_eq!(view[0], ("said", "#New"));
        assert_eq!(kept[0].target, room("#new"));
        assert_eq!(view[1].0, "elsewhere");
        assert_eq!(view[2].0, "earlier room");
        assert_eq!(view.len(), 3);
    }
}
