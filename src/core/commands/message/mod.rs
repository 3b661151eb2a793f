//! PRIVMSG, NOTICE and TAGMSG: to nicks, to rooms, and to a room's ops or
//! voiced members through a STATUSMSG prefix (`@#room`, `+#room`).
//!
//! - here: the commands, their shared checks and the target list.
//! - `to_channel.rs`: who in a room may speak and who hears it.
//! - `to_nick.rs`: one client, with echo-message and the 301 away reply.
//!
//! PRIVMSG and NOTICE are recorded in history where it is kept: a room's
//! lines (but not a STATUSMSG), and private messages when
//! `history.private_messages` is on. TAGMSG carries no text and is not.

mod to_channel;
mod to_nick;

use std::collections::HashSet;

use crate::core::broadcast::Broadcast;
use crate::core::caps::Caps;
use crate::core::isupport::client_tag_denied;
use crate::core::{ClientId, State};
use crate::proto::modes;
use crate::proto::numeric::{self, Numeric};
use crate::proto::tags::client_only_tags;
use crate::proto::validate::is_channel_name;
use crate::proto::{Line, Message};

pub fn privmsg(state: &mut State, id: ClientId, message: &Message) {
    relay(state, id, message, "PRIVMSG");
}

/// Like PRIVMSG, but Modern IRC forbids any error reply to a NOTICE.
pub fn notice(state: &mut State, id: ClientId, message: &Message) {
    relay(state, id, message, "NOTICE");
}

/// Client-only tags with no text, for clients that negotiated message-tags.
pub fn tagmsg(state: &mut State, id: ClientId, message: &Message) {
    relay(state, id, message, "TAGMSG");
}

/// A failed delivery: the numeric and its text; the target is added by the caller.
pub(super) type Refusal = (Numeric, &'static str);

/// What every delivery of one command shares.
pub(super) struct Outgoing<'a> {
    pub source: String,
    bot: bool,
    pub command: &'a str,
    pub text: &'a str,
    client_tags: Option<String>,
}

impl Outgoing<'_> {
    /// The event for one target, with a fresh msgid.
    pub fn event(&self, state: &mut State, target: &str) -> Broadcast {
        let line = Line::new(Some(&self.source), self.command).arg(target);
        let line = if self.command == "TAGMSG" {
            line
        } else {
            line.trailing(self.text)
        };
        let msgid = state.next_msgid();
        state
            .broadcast(line.finish())
            .with_msgid(msgid)
            .with_client_tags(self.client_tags.clone())
            .with_bot(self.bot)
    }

    /// Who may receive it: TAGMSG only reaches message-tags clients.
    pub fn wanted_by(&self, caps: Caps) -> bool {
        self.command != "TAGMSG" || caps.contains(Caps::MESSAGE_TAGS)
    }
}

fn relay(state: &mut State, id: ClientId, message: &Message, command: &str) {
    let answers = command != "NOTICE";
    let (targets, text) = (message.param(0), message.param(1));
    let problem = if targets.is_empty() {
        Some((
            numeric::ERR_NORECIPIENT,
            format!("No recipient given ({command})"),
        ))
    } else if text.is_empty() && command != "TAGMSG" {
        Some((numeric::ERR_NOTEXTTOSEND, "No text to send".to_owned()))
    } else {
        None
    };
    if let Some((numeric, text)) = problem {
        if answers {
            state.reply(id, numeric, &[], &text);
        }
        return;
    }
    let now = state.clock.now();
    let Some(client) = state.clients.get_mut(&id) else {
        return;
    };
    client.last_active = now;
    let deny = &state.config.server.client_tag_deny;
    let outgoing = Outgoing {
        source: client.source.clone(),
        bot: client.modes.bot,
        command,
        text,
        // CLIENTTAGDENY: blocked tags are dropped silently, as message-tags allows.
        client_tags: client_only_tags(&message.tags, |name| client_tag_denied(deny, name)),
    };
    let max = state.config.limits.max_targets;
    let mut seen = HashSet::new();
    for (i, target) in targets.split(',').filter(|t| !t.is_empty()).enumerate() {
        if i == max {
            if answers {
                state.reply(
                    id,
                    numeric::ERR_TOOMANYTARGETS,
                    &[target],
                    "Too many targets",
                );
            }
            break;
        }
        // The same target twice in one command gets the message once.
        if !seen.insert(state.fold(target)) {
            continue;
        }
        let statuses = target.trim_start_matches(modes::is_status_symbol);
        let outcome = if is_channel_name(statuses) {
            let prefixes = &target[..target.len() - statuses.len()];
            to_channel::to_channel(state, id, &outgoing, prefixes, statuses)
        } else {
            to_nick::to_nick(state, id, &outgoing, target)
        };
        if let (Err((numeric, reason)), true) = (outcome, answers) {
            state.reply(id, numeric, &[target], reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::core::testing::Harness;

    /// alice (op) and bob in #room, with their join lines read.
    pub(super) fn room() -> Harness {
        let mut harness = Harness::new();
        harness.register("alice");
        harness.register("bob");
        harness.send("alice", "JOIN #room");
        harness.send("bob", "JOIN #room");
        harness.take("alice");
        harness.take("bob");
        harness
    }

    pub(super) const REFUSED: &str = ":irc.test 404 bob #room :Cannot send to channel";

    #[test]
    fn a_repeated_target_gets_the_message_once() {
        let mut harness = room();
        harness.send("alice", "PRIVMSG bob,BOB,#room,#ROOM :x");
        assert_eq!(
            harness.take("bob"),
            vec![
                ":alice!~alice@127.0.0.1 PRIVMSG bob :x",
                ":alice!~alice@127.0.0.1 PRIVMSG #room :x"
            ]
        );
    }

    #[test]
    fn messages_update_last_active() {
        let mut harness = room();
        let before = std::time::SystemTime::UNIX_EPOCH;
        let alice = harness.id("alice");
        harness.state.clients.get_mut(&alice).unwrap().last_active = before;
        harness.send("alice", "NOTICE #room :x");
        assert!(harness.state.clients[&alice].last_active > before);
    }
}
