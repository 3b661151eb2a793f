//! Applying what other nodes say: their users, their joins, their room
//! changes and their messages, each checked as a client's input is.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tracing::warn;

use crate::core::broadcast::Broadcast;
use crate::core::caps::Caps;
use crate::core::{Channel, ChannelModes, Client, ClientId, Membership, State};
use crate::history::{HistoryTarget, NewRecord};
use crate::net::Outbox;
use crate::network::wire::{self, To};
use crate::proto::Line;
use crate::proto::modes;

use super::Remote;

/// The most bytes of client-only tags a message from another node may
/// carry: what one from a client may.
const MAX_TAGS: usize = crate::proto::framing::MAX_TAGS;

/// A peer's msgid, if it is one a client can be shown: a short word of
/// printable ASCII without spaces or `;` (tag syntax); a fresh one
/// otherwise.
fn clean_msgid(msgid: &str) -> String {
    let fits = !msgid.is_empty()
        && msgid.len() <= 64
        && msgid
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b';' && b != b'\\');
    if fits {
        msgid.to_owned()
    } else {
        format!("x-{:016x}", rand_u64())
    }
}

/// A random number for an id that must not collide.
fn rand_u64() -> u64 {
    let mut bytes = [0u8; 8];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    u64::from_le_bytes(bytes)
}

/// Whether a peer's MODE changes only members' statuses (or is a user's
/// own MODE): a room's own modes reach this node through its value in the
/// bucket, and running them here too could undo a later value.
fn only_statuses(message: &crate::proto::Message) -> bool {
    let target = message.param(0);
    if !crate::proto::validate::is_channel_name(target) {
        return true;
    }
    message.param(1).chars().all(|letter| {
        matches!(letter, '+' | '-')
            || matches!(
                modes::channel_mode(letter),
                Some(modes::ChannelModeKind::Prefix { .. })
            )
    })
}

impl State {
    /// A room change made on another node, applied here as its user's
    /// command: its node checked it, and this node's view of the room
    /// agrees (the same changes reached it in the same order). Refusals go
    /// to the remote user, that is nowhere.
    pub(super) fn remote_command(&mut self, id: ClientId, command: String, params: Vec<String>) {
        let message = crate::proto::Message {
            command,
            params,
            ..Default::default()
        };
        use crate::core::commands::{away, invite, kick, mode, setname};
        let _ = match message.command.as_str() {
            "MODE" if !only_statuses(&message) => {
                warn!("a node sent a room's own modes as a command; they come from its state");
                Ok(())
            }
            "MODE" => mode::mode(self, id, &message),
            "KICK" => kick::kick(self, id, &message),
            // Every node keeps the invite (the invitee's own node lets it
            // in) and tells its own members who asked.
            "INVITE" if message.params.len() == 2 => invite::invite(self, id, &message),
            "AWAY" => away::away(self, id, &message),
            "SETNAME" => setname::setname(self, id, &message),
            other => {
                warn!(command = ?other, "a node sent a command this node does not take from others");
                Ok(())
            }
        };
    }

    /// A user of another node, introduced or (in a burst) repeated.
    pub(super) fn remote_user(&mut self, node: &Arc<str>, user: wire::User) {
        if self.remote_id(node, user.uid).is_some() {
            return;
        }
        if !self.acceptable_user(&user) {
            warn!(node = %node, nick = ?user.nick, "a node introduced a user this node would not accept; not shown");
            return;
        }
        let folded = self.fold(&user.nick);
        if let Some(&holder) = self.nicks.get(&folded) {
            warn!(node = %node, nick = ?user.nick, ?holder, "a remote user's nick is taken here; not shown");
            return;
        }
        let Some(network) = &mut self.network else {
            return;
        };
        let id = ClientId(network.next_remote);
        network.next_remote += 1;
        network.remote.insert((Arc::clone(node), user.uid), id);
        let now = self.clock.now();
        let ip = std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
        // Its outbox is never written: the sink skips remote users.
        let mut client = Client::new(id, Arc::new(Outbox::new(0)), ip, now);
        let boot = network.nodes.get(node).map_or(0, |known| known.boot);
        client.remote = Some(Box::new(Remote {
            node: Arc::clone(node),
            boot,
            server: user.server.into(),
            uid: user.uid,
        }));
        client.nick = user.nick;
        client.user = user.user;
        client.host = user.host.clone();
        client.real_host = user.host;
        client.realname = user.realname;
        client.account = self.acceptable_introduced_account(node, user.account);
        client.modes.registered = client.account.is_some();
        client.modes.bot = user.bot;
        client.modes.invisible = user.invisible;
        client.away = user.away;
        client.registered = true;
        client.password_ok = true;
        client.update_source();
        self.clients.insert(id, Box::new(client));
        self.nicks.insert(folded, id);
        self.monitor_online(id);
        for room in user.rooms {
            let membership = Membership {
                op: room.op,
                voice: room.voice,
            };
            self.remote_join(id, &room.name, membership);
        }
    }

    pub(super) fn remote_nick(&mut self, node: &Arc<str>, uid: u64, nick: &str) {
        let Some(id) = self.remote_id(node, uid) else {
            return;
        };
        if !crate::proto::validate::is_valid_nick(nick, self.config.limits.nick_length) {
            warn!(node = %node, nick = ?nick, "a node sent a nick this node would refuse");
            return;
        }
        let folded = self.fold(nick);
        if self.nicks.get(&folded).is_some_and(|&holder| holder != id) {
            warn!(node = %node, nick = ?nick, "a remote user's new nick is taken here");
            return;
        }
        crate::core::commands::registration::force_nick(self, id, nick);
    }

    /// Whether a user another node introduced passes the checks a local
    /// one does: a valid nick that is not a service's, and names within
    /// the limits, without spaces where IRC cannot carry them.
    pub(super) fn acceptable_user(&self, user: &wire::User) -> bool {
        let limits = &self.config.limits;
        let word = |text: &str, max: usize| {
            !text.is_empty()
                && text.len() <= max
                && !text.contains([' ', '\0', '\r', '\n', '@', '!'])
        };
        crate::proto::validate::is_valid_nick(&user.nick, limits.nick_length)
            && !crate::core::commands::nickserv::is_service(self, &user.nick)
            && !crate::core::commands::chanserv::is_service(self, &user.nick)
            && word(&user.user, limits.user_length + 1)
            && word(&user.host, 255)
            && user.realname.len() <= limits.realname_length
            && !user.realname.contains(['\0', '\r', '\n'])
            && crate::proto::validate::is_server_name(&user.server)
            && user.rooms.len() <= limits.channels_per_client
    }

    /// The account an introduced user is logged in to, if this node would
    /// accept its name as one (as a Login's is checked); not logged in
    /// otherwise.
    fn acceptable_introduced_account(
        &self,
        node: &Arc<str>,
        account: Option<String>,
    ) -> Option<String> {
        let name = account?;
        if self.acceptable_account(&name) {
            return Some(name);
        }
        warn!(node = %node, account = ?name, "a node introduced a user logged in to an account name this node would refuse; shown as not logged in");
        None
    }

    /// A remote user enters a room, which its node let it into: created
    /// here when this node had no one in it.
    pub(super) fn remote_join(&mut self, id: ClientId, name: &str, membership: Membership) {
        let valid = crate::proto::validate::is_channel_name(name)
            && name.len() <= self.config.limits.channel_length
            && !name.contains([' ', ',', '\x07', '\0', '\r', '\n']);
        if !valid {
            warn!(room = ?name, "a node sent a join to a room name this node would refuse");
            return;
        }
        let folded = self.fold(name);
        if self
            .channels
            .get(&folded)
            .is_some_and(|channel| channel.members.contains_key(&id))
        {
            return;
        }
        let now = self.clock.now();
        let default_modes = ChannelModes::from_flags(&self.config.channels.default_modes);
        let creating = !self.channels.contains_key(&folded);
        self.channels.entry(folded.clone()).or_insert_with(|| {
            let mut channel = Channel::new(name, now);
            channel.modes = default_modes;
            channel
        });
        if creating {
            self.network_room_restore(&folded);
        }
        self.add_member(id, &folded, membership);
        crate::core::commands::join::announce(self, id, &folded);
    }

    /// The origin's time of a message, if it is within a day of this
    /// node's clock; this node's time otherwise (a clock that far off, or
    /// a forged time, must not reach clients or history).
    pub(super) fn plausible_time(&self, millis: i64) -> SystemTime {
        let now = self.clock.now();
        let day = Duration::from_secs(24 * 60 * 60);
        let time = SystemTime::UNIX_EPOCH
            .checked_add(Duration::from_millis(millis.max(0).unsigned_abs()))
            .unwrap_or(now);
        let near = |a: SystemTime, b: SystemTime| a.duration_since(b).is_ok_and(|d| d <= day);
        if near(time, now) || near(now, time) {
            time
        } else {
            now
        }
    }

    /// A message's client-only tags as a peer sent them, read as a client's
    /// would be: parsed, only `+` tags this server relays, escaped again,
    /// and within the size a client may send.
    pub(super) fn clean_tags(&self, tags: Option<&str>) -> Option<String> {
        let tags = tags.filter(|tags| !tags.is_empty() && tags.len() <= MAX_TAGS)?;
        let line = format!("@{tags} TAGMSG");
        let parsed = crate::proto::message::parse(&line).ok()?.to_owned();
        let deny = &self.config.server.client_tag_deny;
        crate::proto::tags::client_only_tags(&parsed.tags, |name| {
            crate::core::isupport::client_tag_denied(deny, name)
        })
    }

    /// A message from a user of another node, to a room here or to a
    /// local user: shown as its node made it, same msgid and time.
    pub(super) fn remote_message(&mut self, node: &Arc<str>, message: wire::Message) {
        let Some(sender) = self.remote_id(node, message.uid) else {
            return;
        };
        let Some(client) = self.clients.get(&sender) else {
            return;
        };
        let (source, account, bot) = (
            client.source.clone(),
            client.account.clone(),
            client.modes.bot,
        );
        // Only messages travel this way; anything else would put a line
        // of the peer's choosing in front of local clients.
        if !matches!(message.command.as_str(), "PRIVMSG" | "NOTICE" | "TAGMSG") {
            warn!(node = %node, command = ?message.command, "a node sent a message of an unknown kind");
            return;
        }
        let has_text = message.command != "TAGMSG";
        let (target, to_room) = match &message.to {
            To::Room { target } => (target.clone(), true),
            To::User { uid } => {
                let Some(to) = self.clients.get(&ClientId(*uid)) else {
                    return;
                };
                (to.nick.clone(), false)
            }
        };
        let line = Line::new(Some(&source), &message.command).arg(&target);
        let line = if has_text {
            line.trailing(&message.text)
        } else {
            line
        };
        let time = self.plausible_time(message.time);
        let tags = self.clean_tags(message.tags.as_deref());
        let msgid = clean_msgid(&message.msgid);
        let mut event = Broadcast::new(line.finish(), time)
            .with_msgid(msgid)
            .with_client_tags(tags)
            .with_bot(bot)
            .with_account(account.clone());
        let wanted = move |caps: Caps| has_text || caps.contains(Caps::MESSAGE_TAGS);
        if !to_room {
            if let To::User { uid } = message.to {
                let to = ClientId(uid);
                if self.is_local(to) && self.clients.get(&to).is_some_and(|c| wanted(c.caps)) {
                    let reached = self.send_all([to], &mut event);
                    self.metrics.delivered(reached);
                }
            }
            return;
        }
        let name = target.trim_start_matches(modes::is_status_symbol);
        let prefixes = &target[..target.len() - name.len()];
        let folded = self.fold(name);
        let Some(display) = self.channels.get(&folded).map(|c| c.name.clone()) else {
            return;
        };
        if prefixes.is_empty() && message.history {
            let record = NewRecord {
                target: HistoryTarget::Room(folded.clone()),
                display: &display,
                sender: &source,
                account: account.as_deref(),
                command: &message.command,
                text: &message.text,
            };
            let gate = self.record_history(record, &event);
            event.set_gate(gate);
        }
        let lowest = modes::status_modes()
            .filter(|mode| prefixes.contains(mode.symbol))
            .last();
        let reached = self.send_to_members(&folded, &mut event, |member, membership| {
            wanted(member.caps) && lowest.is_none_or(|mode| membership.at_least(mode.status))
        });
        self.metrics.delivered(reached);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::Harness;

    #[test]
    fn a_peers_tags_are_parsed_filtered_and_escaped_again() {
        let h = Harness::new();
        let forged = "+a=x\r\n:forged 001 alice :hi;server-tag=1";
        let cleaned = h.state.clean_tags(Some(forged));
        assert!(
            cleaned
                .as_deref()
                .is_none_or(|tags| !tags.contains(['\r', '\n', ' '])),
            "{cleaned:?}"
        );
        let cleaned = h.state.clean_tags(Some("+draft/react=a\\sb;time=x"));
        assert_eq!(cleaned.as_deref(), Some("+draft/react=a\\sb"));
        let huge = format!("+a={}", "x".repeat(MAX_TAGS));
        assert_eq!(h.state.clean_tags(Some(&huge)), None);
    }

    #[test]
    fn a_time_far_from_this_nodes_clock_is_replaced_by_it() {
        let h = Harness::new();
        let now = h.state.clock.now();
        let now_ms = crate::history::millis(now);
        assert_eq!(
            h.state.plausible_time(now_ms - 1_000),
            SystemTime::UNIX_EPOCH + Duration::from_millis((now_ms - 1_000) as u64)
        );
        assert_eq!(h.state.plausible_time(9_000_000_000_000_000_000), now);
        assert_eq!(h.state.plausible_time(-5), now);
    }

    #[test]
    fn a_msgid_that_is_no_word_is_replaced() {
        assert_eq!(clean_msgid("a-1_x"), "a-1_x");
        for bad in ["", "a b", "a;b", "a\\b", &"x".repeat(65)] {
            let fresh = clean_msgid(bad);
            assert!(
                fresh.starts_with("x-") && fresh.len() == 18,
                "{bad:?} → {fresh}"
            );
        }
    }
}
