//! One room: members with their prefixes, modes, topic and lists.

use std::time::SystemTime;

use super::extban::{self, Extban, Restriction};
use super::{ClientId, IdMap, IdSet};
use crate::proto::mask::Mask;

/// A member's status in a room.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Membership {
    pub op: bool,
    pub voice: bool,
}

impl Membership {
    /// The highest prefix, or every prefix for multi-prefix clients.
    pub fn prefixes(self, all: bool) -> &'static str {
        match (self.op, self.voice, all) {
            (true, true, true) => "@+",
            (true, _, _) => "@",
            (false, true, _) => "+",
            _ => "",
        }
    }
}

/// The flag and parameter modes of a room.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChannelModes {
    pub invite_only: bool,
    pub moderated: bool,
    /// `+C`: no CTCP but ACTION from anyone but channel operators.
    pub no_ctcp: bool,
    pub no_external: bool,
    pub private: bool,
    pub secret: bool,
    pub topic_ops_only: bool,
    pub key: Option<String>,
    pub limit: Option<usize>,
}

/// A topic with who set it and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topic {
    pub text: String,
    /// `nick!user@host` of the setter.
    pub set_by: String,
    pub set_at: SystemTime,
}

/// One entry of a ban, exception or invite-exception list.
#[derive(Clone, Debug)]
pub struct ListEntry {
    /// The `nick!user@host` mask it matches (after an extban's `~m:`).
    pub mask: Mask,
    /// The extban type, for an entry that restricts rather than bans.
    pub extban: Option<&'static Extban>,
    pub set_by: String,
    pub set_at: SystemTime,
}

impl ListEntry {
    /// The entry as it was set and as lists show it.
    pub fn text(&self) -> String {
        extban::text(self.extban, self.mask.as_str())
    }

    fn restricts(&self, restriction: Option<Restriction>) -> bool {
        self.extban.map(|extban| extban.restriction) == restriction
    }
}

/// A room.
#[derive(Debug)]
pub struct Channel {
    /// The name as its creator spelled it.
    pub name: String,
    pub members: IdMap<Membership>,
    pub modes: ChannelModes,
    pub topic: Option<Topic>,
    pub created: SystemTime,
    pub bans: Vec<ListEntry>,
    pub ban_exceptions: Vec<ListEntry>,
    pub invite_exceptions: Vec<ListEntry>,
    /// Clients invited while +i; an invite is used up by the join.
    pub invited: IdSet,
    /// When each member joined, for join-time-only history.
    pub joined: IdMap<SystemTime>,
    /// A `[[room]]` from the configuration: kept when its last member leaves.
    pub persistent: bool,
    /// A `[[room]]`'s own `history` setting; unset: `[history] visibility`.
    pub history: Option<crate::config::HistoryVisibility>,
    /// The oldest time (ms) of this incarnation's history: its creation,
    /// or for a `[[room]]`, for ever (`i64::MIN`).
    pub history_floor: i64,
}

impl Channel {
    pub fn new(name: &str, now: SystemTime) -> Channel {
        Channel {
            name: name.to_owned(),
            members: IdMap::default(),
            modes: ChannelModes::default(),
            topic: None,
            created: now,
            bans: Vec::new(),
            ban_exceptions: Vec::new(),
            invite_exceptions: Vec::new(),
            invited: IdSet::default(),
            joined: IdMap::default(),
            persistent: false,
            history: None,
            history_floor: crate::history::millis(now),
        }
    }

    /// Takes a member out; true when the room should now disappear.
    pub fn remove_member(&mut self, id: ClientId) -> bool {
        self.members.remove(&id);
        self.joined.remove(&id);
        self.members.is_empty() && !self.persistent
    }

    /// Secret or private rooms are hidden from outsiders.
    pub fn is_hidden(&self) -> bool {
        self.modes.secret || self.modes.private
    }

    /// Is `source` (`nick!user@host`) banned, exceptions considered?
    /// Extbans do not ban: they restrict (see [`Channel::is_restricted`]).
    pub fn is_banned(&self, source: &str) -> bool {
        self.is_banned_as(&[source])
    }

    /// Is a client known by any of `sources` (its cloaked and its real
    /// `nick!user@host`) banned? An exception matching any of them wins.
    pub fn is_banned_as(&self, sources: &[&str]) -> bool {
        self.listed(None, sources)
    }

    /// Does an extban of this kind hold `source`? A plain exception lifts
    /// it, as does an exception of the same kind (`+e ~m:mask`).
    pub fn is_restricted(&self, restriction: Restriction, source: &str) -> bool {
        self.is_restricted_as(restriction, &[source])
    }

    /// [`Channel::is_restricted`] for a client known by any of `sources`.
    pub fn is_restricted_as(&self, restriction: Restriction, sources: &[&str]) -> bool {
        self.listed(Some(restriction), sources)
    }

    fn listed(&self, restriction: Option<Restriction>, sources: &[&str]) -> bool {
        let matches = |entry: &ListEntry| sources.iter().any(|source| entry.mask.matches(source));
        self.bans
            .iter()
            .any(|entry| entry.restricts(restriction) && matches(entry))
            && !self.ban_exceptions.iter().any(|entry| {
                (entry.extban.is_none() || entry.restricts(restriction)) && matches(entry)
            })
    }

    /// Does `source` match an invite exception (+I)?
    pub fn is_invite_excepted(&self, source: &str) -> bool {
        self.is_invite_excepted_as(&[source])
    }

    /// Does any of `sources` match an invite exception (+I)?
    pub fn is_invite_excepted_as(&self, sources: &[&str]) -> bool {
        self.invite_exceptions
            .iter()
            .any(|entry| sources.iter().any(|source| entry.mask.matches(source)))
    }
}
