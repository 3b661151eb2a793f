//! PRIVMSG, NOTICE and TAGMSG: to nicks, to rooms, and to a room's ops or
//! voiced members through a STATUSMSG prefix (`@#room`, `+#room`).

use std::collections::HashSet;

use crate::core::broadcast::Broadcast;
use crate::core::caps::Caps;
use crate::core::isupport::client_tag_denied;
use crate::core::{Channel, ClientId, Membership, State};
use crate::history;
use crate::proto::numeric::{self, Numeric};
use crate::proto::tags::client_only_tags;
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
type Refusal = (Numeric, &'static str);

/// What every delivery of one command shares.
struct Outgoing<'a> {
    source: String,
    bot: bool,
    command: &'a str,
    text: &'a str,
    client_tags: Option<String>,
}

impl Outgoing<'_> {
    /// The event for one target, with a fresh msgid.
    fn event(&self, state: &mut State, target: &str) -> Broadcast {
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
    fn wanted_by(&self, caps: Caps) -> bool {
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
        let statuses = target.trim_start_matches(['@', '+']);
        let outcome = if statuses.starts_with(['#', '&']) {
            let prefixes = &target[..target.len() - statuses.len()];
            to_channel(state, id, &outgoing, prefixes, statuses)
        } else {
            to_nick(state, id, &outgoing, target)
        };
        if let (Err((numeric, reason)), true) = (outcome, answers) {
            state.reply(id, numeric, &[target], reason);
        }
    }
}

fn to_channel(
    state: &mut State,
    id: ClientId,
    outgoing: &Outgoing,
    prefixes: &str,
    name: &str,
) -> Result<(), Refusal> {
    let folded = state.fold(name);
    let Some(channel) = state.channels.get(&folded) else {
        // Modern IRC lists 401 (no such nick/channel) for PRIVMSG, not 403.
        return Err((numeric::ERR_NOSUCHNICK, "No such nick/channel"));
    };
    if !may_speak(channel, channel.members.get(&id).copied(), &outgoing.source) {
        return Err((numeric::ERR_CANNOTSENDTOCHAN, "Cannot send to channel"));
    }
    // `@+#room` reaches everyone at the lowest status named, as Modern says.
    let needs_op = !prefixes.is_empty() && !prefixes.contains('+');
    let needs_voice = prefixes.contains('+');
    let shown_prefix = match (needs_op, needs_voice) {
        (true, _) => "@",
        (_, true) => "+",
        _ => "",
    };
    let channel_name = channel.name.clone();
    let target = format!("{shown_prefix}{channel_name}");
    let mut event = outgoing.event(state, &target);
    // A STATUSMSG or a TAGMSG is not history: playback would show the one
    // to every member, and the other carries no text.
    if prefixes.is_empty() && outgoing.command != "TAGMSG" {
        let display = channel_name.clone();
        let seq = state.record_history(
            folded.as_str(),
            &display,
            &outgoing.source,
            outgoing.command,
            outgoing.text,
            &event,
        );
        event.set_seq(seq);
    }
    state.send_to_members(&folded, &mut event, |member, membership| {
        let echo = member.id != id || member.caps.contains(Caps::ECHO_MESSAGE);
        echo && outgoing.wanted_by(member.caps)
            && (!needs_op || membership.op || member.id == id)
            && (!needs_voice || membership.op || membership.voice || member.id == id)
    });
    Ok(())
}

/// Ops and voiced members always speak; others not while +m or banned
/// (ban exceptions honoured), and outsiders not while +n.
fn may_speak(channel: &Channel, membership: Option<Membership>, source: &str) -> bool {
    match membership {
        Some(membership) if membership.op || membership.voice => true,
        Some(_) => !channel.modes.moderated && !channel.is_banned(source),
        None => {
            !channel.modes.no_external && !channel.modes.moderated && !channel.is_banned(source)
        }
    }
}

fn to_nick(
    state: &mut State,
    id: ClientId,
    outgoing: &Outgoing,
    nick: &str,
) -> Result<(), Refusal> {
    let Some(target) = state.registered_client(&state.fold(nick)) else {
        return Err((numeric::ERR_NOSUCHNICK, "No such nick/channel"));
    };
    let (target_id, nick, away) = (target.id, target.nick.clone(), target.away.clone());
    let wanted = outgoing.wanted_by(target.caps);
    let mut event = outgoing.event(state, &nick);
    if state.config.history.private_messages && outgoing.command != "TAGMSG" {
        let sender = state.clients.get(&id).map(|c| state.fold(&c.nick));
        if let Some(sender) = sender {
            let key = history::private_conversation(&sender, &state.fold(&nick));
            let seq = state.record_history(
                &key,
                &nick,
                &outgoing.source,
                outgoing.command,
                outgoing.text,
                &event,
            );
            event.set_seq(seq);
        }
    }
    let echo = state
        .clients
        .get(&id)
        .is_some_and(|c| c.caps.contains(Caps::ECHO_MESSAGE));
    let mut audience = Vec::with_capacity(2);
    if wanted {
        audience.push(target_id);
    }
    if echo && target_id != id {
        audience.push(id);
    }
    state.send_all(audience, &mut event);
    if let (Some(away), "PRIVMSG") = (away, outgoing.command) {
        state.reply(id, numeric::RPL_AWAY, &[&nick], &away);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::core::Membership;
    use crate::core::testing::Harness;

    /// alice (op) and bob in #room, with their join lines read.
    fn room() -> Harness {
        let mut harness = Harness::new();
        harness.register("alice");
        harness.register("bob");
        harness.send("alice", "JOIN #room");
        harness.send("bob", "JOIN #room");
        harness.take("alice");
        harness.take("bob");
        harness
    }

    const REFUSED: &str = ":irc.test 404 bob #room :Cannot send to channel";

    #[test]
    fn moderated_rooms_need_voice_or_op() {
        let mut harness = room();
        harness.channel_mut("#room").modes.moderated = true;
        harness.send("bob", "PRIVMSG #room :hi");
        assert_eq!(harness.take("bob"), vec![REFUSED]);
        assert!(harness.take("alice").is_empty());
        let voiced = Membership {
            op: false,
            voice: true,
        };
        let bob = harness.id("bob");
        harness.channel_mut("#room").members.insert(bob, voiced);
        harness.send("bob", "PRIVMSG #room :hi");
        assert_eq!(
            harness.take("alice"),
            vec![":bob!~bob@127.0.0.1 PRIVMSG #room :hi"]
        );
    }

    #[test]
    fn a_banned_member_cannot_speak_unless_excepted() {
        let mut harness = room();
        let ban = harness.list_entry("bob!*@*");
        harness.channel_mut("#room").bans.push(ban);
        harness.send("bob", "PRIVMSG #room :hi");
        harness.send("bob", "NOTICE #room :hi");
        assert_eq!(harness.take("bob"), vec![REFUSED]);
        assert!(harness.take("alice").is_empty());
        let exception = harness.list_entry("bob!*@*");
        harness.channel_mut("#room").ban_exceptions.push(exception);
        harness.send("bob", "PRIVMSG #room :hi");
        assert_eq!(harness.take("alice").len(), 1);
    }

    #[test]
    fn statusmsg_to_voiced_reaches_voiced_and_ops_only() {
        let mut harness = room();
        harness.register("carol");
        harness.register("dave");
        harness.send("carol", "JOIN #room");
        harness.send("dave", "JOIN #room");
        let voiced = Membership {
            op: false,
            voice: true,
        };
        let carol = harness.id("carol");
        harness.channel_mut("#room").members.insert(carol, voiced);
        for nick in ["alice", "bob", "carol", "dave"] {
            harness.take(nick);
        }
        harness.send("bob", "PRIVMSG +#room :psst");
        let line = ":bob!~bob@127.0.0.1 PRIVMSG +#room :psst";
        assert_eq!(harness.take("alice"), vec![line]);
        assert_eq!(harness.take("carol"), vec![line]);
        assert!(harness.take("dave").is_empty());
        assert!(harness.take("bob").is_empty());
    }

    #[test]
    fn privmsg_to_an_away_nick_answers_301_and_notice_does_not() {
        let mut harness = room();
        let bob = harness.id("bob");
        harness.state.clients.get_mut(&bob).unwrap().away = Some("lunch".to_owned());
        harness.send("alice", "PRIVMSG bob :there?");
        assert_eq!(
            harness.take("alice"),
            vec![":irc.test 301 alice bob :lunch"]
        );
        harness.send("alice", "NOTICE bob :there?");
        assert!(harness.take("alice").is_empty());
        assert_eq!(harness.take("bob").len(), 2);
    }

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
