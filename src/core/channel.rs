//! One room: members with their prefixes, modes, topic and lists.

use std::time::{Duration, SystemTime};

use super::extban::{self, Extban, Restriction};
use super::{Client, ClientId, IdMap, State};
use crate::config::Privilege;
use crate::proto::Folded;
use crate::proto::mask::Mask;
use crate::proto::modes::{self, ChannelFlag, MemberStatus, StatusMode};

/// How long an invite lets its target past +i (or +l): long enough to
/// read it and join, short enough that a forgotten one does not linger.
pub const INVITE_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// Open invites one room keeps; past this the oldest is dropped.
pub const MAX_OPEN_INVITES: usize = 100;

/// A member's status in a room.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Membership {
    pub op: bool,
    pub voice: bool,
}

impl Membership {
    /// The highest prefix, or every prefix (highest first) for
    /// multi-prefix clients; empty without a status.
    pub fn prefixes(self, all: bool) -> String {
        let held = self.held().map(|mode| mode.symbol);
        match all {
            true => held.collect(),
            false => held.take(1).collect(),
        }
    }

    /// The statuses held, highest first, as their prefix rows write them.
    pub(crate) fn held(self) -> impl Iterator<Item = StatusMode> {
        modes::status_modes().filter(move |mode| self.has(mode.status))
    }

    /// Whether the member holds `status` or a status above it: an op
    /// hears what is sent to `+#room`.
    pub(crate) fn at_least(self, status: MemberStatus) -> bool {
        for mode in modes::status_modes() {
            if self.has(mode.status) {
                return true;
            }
            if mode.status == status {
                break;
            }
        }
        false
    }

    /// Whether the member holds any status: in an auditorium (+u) only
    /// such members are seen by everyone.
    pub fn has_prefix(self) -> bool {
        self.held().next().is_some()
    }

    /// Whether the member holds `status` itself.
    pub(crate) fn has(self, status: MemberStatus) -> bool {
        match status {
            MemberStatus::Op => self.op,
            MemberStatus::Voice => self.voice,
        }
    }

    /// The field a status mode (`proto::modes::CHANNEL_MODES`) sets.
    pub fn status_mut(&mut self, status: MemberStatus) -> &mut bool {
        match status {
            MemberStatus::Op => &mut self.op,
            MemberStatus::Voice => &mut self.voice,
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
    pub registered_only: bool,
    pub registered_only_speak: bool,
    pub secret: bool,
    pub topic_ops_only: bool,
    /// `+u`: members without a status are hidden from all but the room's
    /// operators (see [`Channel::hides`]).
    pub auditorium: bool,
    pub key: Option<String>,
    pub limit: Option<usize>,
}

impl ChannelModes {
    /// The modes of `channels.default_modes` or a `[[room]]`, e.g. `+nt`:
    /// flags only; other letters are left to the configuration checks.
    pub fn from_flags(spec: &str) -> ChannelModes {
        let mut modes = ChannelModes::default();
        for flag in spec.chars().filter_map(modes::channel_flag) {
            *modes.flag_mut(flag) = true;
        }
        modes
    }

    /// Whether a flag mode is set.
    pub fn flag(&self, flag: ChannelFlag) -> bool {
        match flag {
            ChannelFlag::NoCtcp => self.no_ctcp,
            ChannelFlag::InviteOnly => self.invite_only,
            ChannelFlag::Moderated => self.moderated,
            ChannelFlag::NoExternal => self.no_external,
            ChannelFlag::Private => self.private,
            ChannelFlag::RegisteredOnly => self.registered_only,
            ChannelFlag::RegisteredOnlySpeak => self.registered_only_speak,
            ChannelFlag::Secret => self.secret,
            ChannelFlag::TopicOpsOnly => self.topic_ops_only,
            ChannelFlag::Auditorium => self.auditorium,
        }
    }

    /// The field a flag mode (`proto::modes::CHANNEL_MODES`) sets.
    pub fn flag_mut(&mut self, flag: ChannelFlag) -> &mut bool {
        match flag {
            ChannelFlag::NoCtcp => &mut self.no_ctcp,
            ChannelFlag::InviteOnly => &mut self.invite_only,
            ChannelFlag::Moderated => &mut self.moderated,
            ChannelFlag::NoExternal => &mut self.no_external,
            ChannelFlag::Private => &mut self.private,
            ChannelFlag::RegisteredOnly => &mut self.registered_only,
            ChannelFlag::RegisteredOnlySpeak => &mut self.registered_only_speak,
            ChannelFlag::Secret => &mut self.secret,
            ChannelFlag::TopicOpsOnly => &mut self.topic_ops_only,
            ChannelFlag::Auditorium => &mut self.auditorium,
        }
    }
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
    /// The `nick!user@host` mask it matches (after an extban's `~m:`), or
    /// the account mask of an account extban (`~a:`).
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
        self.extban.and_then(Extban::restriction) == restriction
    }

    /// Does the entry match `client`: by its account for an account
    /// extban, otherwise by its shown or (`real`, behind a cloak) its real
    /// `nick!user@host`?
    fn matches(&self, client: &Client, real: Option<&str>) -> bool {
        if self
            .extban
            .is_some_and(|extban| extban.kind == extban::Kind::Account)
        {
            return client
                .account
                .as_deref()
                .is_some_and(|account| self.mask.matches(account));
        }
        self.mask.matches(&client.source) || real.is_some_and(|real| self.mask.matches(real))
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
    /// Clients an operator invited while the room was +i or +l, with
    /// when: an invite is used up by the join, lapses after
    /// `INVITE_LIFETIME`, and is dropped when +i is set or unset.
    pub invited: IdMap<SystemTime>,
    /// When each member joined, for join-time-only history.
    pub joined: IdMap<SystemTime>,
    /// A `[[room]]` from the configuration: kept when its last member leaves.
    pub persistent: bool,
    /// A `[[room]]`'s own `history` setting; unset: `[history] visibility`.
    pub history: Option<crate::config::HistoryVisibility>,
    /// The oldest time (ms) of this incarnation's history: its creation,
    /// or for a `[[room]]`, for ever (`i64::MIN`).
    pub history_floor: i64,
    /// Its founder and access list, when registered with ChanServ: kept
    /// when its last member leaves, as a `[[room]]` is.
    pub registration: Option<super::registered::Registration>,
    /// Its IRCv3 metadata, set by its operators; at most `[metadata] max_keys`.
    pub metadata: super::metadata::Values,
}

impl Channel {
    /// Whether `id` may know this room exists: it is neither secret nor
    /// private, `id` is in it, or `id` may see secret rooms.
    pub fn visible_to(&self, id: ClientId, sees_secret: bool) -> bool {
        !self.is_hidden() || self.members.contains_key(&id) || sees_secret
    }

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
            invited: IdMap::default(),
            joined: IdMap::default(),
            persistent: false,
            history: None,
            history_floor: crate::history::millis(now),
            registration: None,
            metadata: Default::default(),
        }
    }

    /// Lets `id` in with `membership`, noting when for join-time-only
    /// history. The client's side is [`State::add_member`]'s job.
    pub(crate) fn add_member(&mut self, id: ClientId, membership: Membership, now: SystemTime) {
        self.members.insert(id, membership);
        self.joined.insert(id, now);
    }

    /// Takes a member out; true when the room should now disappear.
    pub fn remove_member(&mut self, id: ClientId) -> bool {
        self.members.remove(&id);
        self.joined.remove(&id);
        self.members.is_empty() && !self.persistent && self.registration.is_none()
    }

    /// Whether `id` is a hidden member here: one without a status in an
    /// auditorium (+u). Its joins, parts, quits, nick changes and kicks
    /// reach only those [`sees_hidden`] lets see it, and NAMES and WHO
    /// list it only to them.
    pub fn hides(&self, id: ClientId) -> bool {
        self.modes.auditorium
            && self
                .members
                .get(&id)
                .is_some_and(|membership| !membership.has_prefix())
    }

    /// Whether `viewer` sees every member of this room, hidden ones
    /// included: not an auditorium, or it is an operator here, or an IRC
    /// operator allowed to see secret rooms.
    pub fn shows_everyone_to(&self, viewer: &Client) -> bool {
        let membership = self.members.get(&viewer.id).copied().unwrap_or_default();
        !self.modes.auditorium || sees_hidden(viewer, membership, None)
    }

    /// Whether `viewer` sees the member `subject` here.
    pub fn shows(&self, viewer: &Client, subject: ClientId) -> bool {
        viewer.id == subject || !self.hides(subject) || self.shows_everyone_to(viewer)
    }

    /// The members who see `subject` here, e.g. its QUIT or NICK: all of
    /// them, unless it is a hidden member.
    pub fn seers_of<'a>(
        &'a self,
        subject: ClientId,
        clients: &'a IdMap<Box<Client>>,
    ) -> impl Iterator<Item = ClientId> + 'a {
        let hidden = self.hides(subject);
        self.members
            .iter()
            .filter(move |(member, membership)| {
                !hidden
                    || clients
                        .get(member)
                        .is_some_and(|viewer| sees_hidden(viewer, **membership, Some(subject)))
            })
            .map(|(member, _)| *member)
    }

    /// Secret or private rooms are hidden from outsiders.
    pub fn is_hidden(&self) -> bool {
        self.modes.secret || self.modes.private
    }

    /// Does `id` hold an invite to this room that has not lapsed?
    pub fn has_open_invite(&self, id: ClientId, now: SystemTime) -> bool {
        self.invited
            .get(&id)
            .is_some_and(|&at| !invite_lapsed(at, now))
    }

    /// Records an invite for `id`, dropping lapsed ones and, at
    /// `MAX_OPEN_INVITES`, the oldest.
    pub fn add_invite(&mut self, id: ClientId, now: SystemTime) {
        self.invited.retain(|_, at| !invite_lapsed(*at, now));
        if self.invited.len() >= MAX_OPEN_INVITES && !self.invited.contains_key(&id) {
            let oldest = self.invited.iter().min_by_key(|(_, at)| **at);
            if let Some(oldest) = oldest.map(|(id, _)| *id) {
                self.invited.remove(&oldest);
            }
        }
        self.invited.insert(id, now);
    }

    /// Is `client` banned, exceptions considered? Behind a cloak it is
    /// matched by its cloaked and by its real `nick!user@host`, and an
    /// exception matching either wins. Extbans do not ban: they restrict
    /// (see [`Channel::is_restricted`]).
    pub fn is_banned(&self, client: &Client) -> bool {
        self.listed(None, client)
    }

    /// Does an extban of this kind hold `client`? A plain exception lifts
    /// it, as does an exception of the same kind (`+e ~m:mask`).
    pub fn is_restricted(&self, restriction: Restriction, client: &Client) -> bool {
        self.listed(Some(restriction), client)
    }

    fn listed(&self, restriction: Option<Restriction>, client: &Client) -> bool {
        let restricting = |entry: &&ListEntry| entry.restricts(restriction);
        // Most rooms have no ban of the kind: no real source is built then.
        if !self.bans.iter().any(|entry| restricting(&entry)) {
            return false;
        }
        let real = client.is_cloaked().then(|| client.real_source());
        let matches = |entry: &ListEntry| entry.matches(client, real.as_deref());
        self.bans.iter().filter(restricting).any(matches)
            && !self.ban_exceptions.iter().any(|entry| {
                (entry.restricts(None) || entry.restricts(restriction)) && matches(entry)
            })
    }

    /// Does a ban or a mute (`~m:`) keep this member quiet? Ops and voiced
    /// members speak whatever the lists say.
    pub fn silences(&self, membership: Membership, client: &Client) -> bool {
        !membership.op && !membership.voice && self.bans_speech(client)
    }

    /// Does a ban or a mute (`~m:`) match `client`, whoever it is here?
    pub fn bans_speech(&self, client: &Client) -> bool {
        self.is_banned(client) || self.is_restricted(Restriction::Mute, client)
    }

    /// Does `client`, by its shown or its real address, match an invite
    /// exception (+I)?
    pub fn is_invite_excepted(&self, client: &Client) -> bool {
        if self.invite_exceptions.is_empty() {
            return false;
        }
        let real = client.real_source();
        self.invite_exceptions
            .iter()
            .any(|entry| entry.matches(client, Some(&real)))
    }
}

/// Whether `viewer`, a member with `membership`, sees a hidden member
/// (`subject`, when one is meant) of an auditorium: the member itself,
/// the room's operators (op or above) and IRC operators allowed to see
/// secret rooms, as InspIRCd's auditorium lets ops and opers with
/// `channels/auspex` see.
pub fn sees_hidden(viewer: &Client, membership: Membership, subject: Option<ClientId>) -> bool {
    subject == Some(viewer.id)
        || membership.at_least(MemberStatus::Op)
        || viewer.has_privilege(Privilege::SeeSecret)
}

/// The `send_to_members` filter for an event about `subject` in a room:
/// everyone, unless `hidden` (see [`Channel::hides`]); then only those
/// [`sees_hidden`] names.
pub fn audience_of(hidden: bool, subject: ClientId) -> impl Fn(&Client, Membership) -> bool {
    move |viewer, membership| !hidden || sees_hidden(viewer, membership, Some(subject))
}

fn invite_lapsed(at: SystemTime, now: SystemTime) -> bool {
    now.duration_since(at)
        .is_ok_and(|age| age >= INVITE_LIFETIME)
}

impl State {
    /// The room `folded` if `id` may know it exists: a room neither secret
    /// nor private, one `id` is in, or any room for an operator allowed to
    /// see secret rooms. Everyone else is answered as if there were no
    /// such room (RFC 2811 §4.2.6), so commands cannot probe for its name.
    pub fn visible_channel(&self, id: ClientId, folded: &Folded) -> Option<&Channel> {
        let channel = self.channels.get(folded)?;
        channel
            .visible_to(id, self.sees_secret(id))
            .then_some(channel)
    }

    /// Whether `id` is an operator allowed to see secret rooms.
    pub fn sees_secret(&self, id: ClientId) -> bool {
        self.clients
            .get(&id)
            .is_some_and(|client| client.has_privilege(Privilege::SeeSecret))
    }
}

#[cfg(test)]
mod tests {
    use super::{ChannelModes, Membership};
    use crate::proto::modes;
    use crate::proto::modes::MemberStatus;

    const NONE: Membership = Membership {
        op: false,
        voice: false,
    };
    const VOICE: Membership = Membership {
        op: false,
        voice: true,
    };
    const OP: Membership = Membership {
        op: true,
        voice: false,
    };
    const BOTH: Membership = Membership {
        op: true,
        voice: true,
    };

    #[test]
    fn every_flag_letter_sets_its_own_flag_and_no_other() {
        for (letter, flag) in modes::channel_flags() {
            let set = ChannelModes::from_flags(&format!("+{letter}"));
            for (_, other) in modes::channel_flags() {
                assert_eq!(set.flag(other), other == flag, "+{letter}");
            }
        }
    }

    #[test]
    fn prefixes_show_the_highest_status_or_all_of_them() {
        assert_eq!(BOTH.prefixes(true), "@+");
        assert_eq!(BOTH.prefixes(false), "@");
        assert_eq!(OP.prefixes(true), "@");
        assert_eq!(VOICE.prefixes(false), "+");
        assert_eq!(NONE.prefixes(true), "");
    }

    #[test]
    fn a_status_includes_those_above_it() {
        assert!(OP.at_least(MemberStatus::Voice));
        assert!(VOICE.at_least(MemberStatus::Voice));
        assert!(!VOICE.at_least(MemberStatus::Op));
        assert!(!NONE.at_least(MemberStatus::Voice));
        assert!(BOTH.at_least(MemberStatus::Op));
    }
}
