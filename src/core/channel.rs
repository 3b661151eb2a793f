//! One room: members with their prefixes, modes, topic and lists.

use std::time::SystemTime;

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
    pub mask: Mask,
    pub set_by: String,
    pub set_at: SystemTime,
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
    /// When each member joined, for `[history] visibility = "since_join"`.
    pub joined: IdMap<SystemTime>,
    /// A `[[room]]` from the configuration: kept when its last member leaves.
    pub persistent: bool,
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
    pub fn is_banned(&self, source: &str) -> bool {
        self.is_banned_as(&[source])
    }

    /// Is a client known by any of `sources` (its cloaked and its real
    /// `nick!user@host`) banned? An exception matching any of them wins.
    pub fn is_banned_as(&self, sources: &[&str]) -> bool {
        let matches = |list: &[ListEntry]| {
            list.iter()
                .any(|entry| sources.iter().any(|source| entry.mask.matches(source)))
        };
        matches(&self.bans) && !matches(&self.ban_exceptions)
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
