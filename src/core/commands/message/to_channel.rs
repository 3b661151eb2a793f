//! A message to a room, or to its ops or voiced members (STATUSMSG): who
//! may speak, who hears it, and the room's history.

use super::Outgoing;
use crate::core::Refusal;
use crate::core::caps::Caps;
use crate::core::{Channel, Client, ClientId, Membership, State};
use crate::history::{HistoryTarget, NewRecord};
use crate::network::wire::To;
use crate::proto::{modes, numeric};

pub(super) fn to_channel(
    state: &mut State,
    id: ClientId,
    outgoing: &Outgoing,
    target: &str,
) -> Result<(), Refusal> {
    // A STATUSMSG target (`@#room`, `+#room`): the prefixes, then the room.
    let name = target.trim_start_matches(modes::is_status_symbol);
    let prefixes = &target[..target.len() - name.len()];
    let folded = state.fold(name);
    let Some(channel) = state.visible_channel(id, &folded) else {
        // Modern IRC lists 401 (no such nick/channel) for PRIVMSG, not 403;
        // a secret or private room is not there for outsiders.
        return Err(Refusal::no_such_nick(target));
    };
    let Some(client) = state.clients.get(&id) else {
        return Ok(());
    };
    let membership = channel.members.get(&id).copied();
    if !may_speak(channel, membership, client) {
        return Err(Refusal::new(numeric::ERR_CANNOTSENDTOCHAN, &[target]));
    }
    if channel.modes.no_ctcp
        && outgoing.texts().any(is_ctcp_but_action)
        && !membership.is_some_and(|membership| membership.op)
    {
        return Err(Refusal::new(numeric::ERR_CANNOTSENDTOCHAN, &[target])
            .with_text("Cannot send CTCP to channel (+C)"));
    }
    // `@+#room` reaches everyone at the lowest status named, as Modern says.
    let lowest = modes::status_modes()
        .filter(|mode| prefixes.contains(mode.symbol))
        .last();
    let channel_name = channel.name.clone();
    let target = match lowest {
        Some(mode) => format!("{}{channel_name}", mode.symbol),
        None => channel_name.clone(),
    };
    let mut event = outgoing.event(state, &target);
    // A STATUSMSG is not history: playback would show it to every member.
    if prefixes.is_empty() && outgoing.is_history(state) {
        let record = NewRecord {
            target: HistoryTarget::Room(folded.clone()),
            display: &channel_name,
            sender: &outgoing.source,
            account: outgoing.account.as_deref(),
            command: outgoing.kind.command(),
            text: outgoing.text,
        };
        let gate = state.record_history(record, &event);
        event.set_gate(gate);
    }
    if state.network.is_some() {
        let to = To::Room {
            target: target.clone(),
        };
        let history = prefixes.is_empty() && outgoing.is_history(state);
        if let Some(message) = outgoing.wire(id, to, &event, history) {
            state.network_room_message(&folded, message);
        }
    }
    let reached = state.send_to_members(&folded, &mut event, |member, membership| {
        let echo = member.id != id || member.caps.contains(Caps::ECHO_MESSAGE);
        echo && outgoing.wanted_by(member.caps)
            && lowest.is_none_or(|mode| membership.at_least(mode.status) || member.id == id)
    });
    state.metrics.delivered(reached);
    Ok(())
}

/// Ops and voiced members always speak; others not while +m, banned or
/// muted (`~m:`; exceptions honoured), nor logged out while +M, and
/// outsiders not while +n.
fn may_speak(channel: &Channel, membership: Option<Membership>, client: &Client) -> bool {
    let logged_out = client.account.is_none();
    let held = channel.modes.moderated
        || (channel.modes.registered_only_speak && logged_out)
        || channel.bans_speech(client);
    match membership {
        Some(membership) if membership.op || membership.voice => true,
        Some(_) => !held,
        None => !channel.modes.no_external && !held,
    }
}

/// A CTCP other than ACTION (`/me`), which `+C` keeps out: the text starts
/// with `\x01` and its first word is not `ACTION`.
fn is_ctcp_but_action(text: &str) -> bool {
    let Some(ctcp) = text.strip_prefix('\x01') else {
        return false;
    };
    let verb = ctcp.split([' ', '\x01']).next().unwrap_or_default();
    verb != "ACTION"
}

#[cfg(test)]
mod tests {
    use super::super::tests::{REFUSED, room};
    use crate::core::Membership;

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
    fn no_ctcp_rooms_refuse_ctcp_but_action() {
        let mut harness = room();
        harness.send("alice", "MODE #room +C");
        assert_eq!(
            harness.take("bob"),
            vec![":alice!~alice@127.0.0.1 MODE #room +C"]
        );
        harness.take("alice");
        harness.send("bob", "PRIVMSG #room :\x01ACTION is testing\x01");
        harness.send("bob", "PRIVMSG #room :\x01PING 12345\x01");
        harness.send("bob", "NOTICE #room :\x01VERSION x\x01");
        harness.send("bob", "PRIVMSG #room :plain text");
        assert_eq!(
            harness.take("bob"),
            vec![":irc.test 404 bob #room :Cannot send CTCP to channel (+C)"]
        );
        assert_eq!(
            harness.take("alice"),
            vec![
                ":bob!~bob@127.0.0.1 PRIVMSG #room :\x01ACTION is testing\x01",
                ":bob!~bob@127.0.0.1 PRIVMSG #room :plain text",
            ]
        );
        // Channel operators are not held by it.
        harness.send("alice", "PRIVMSG #room :\x01PING 1\x01");
        assert_eq!(
            harness.take("bob"),
            vec![":alice!~alice@127.0.0.1 PRIVMSG #room :\x01PING 1\x01"]
        );
        harness.send("alice", "MODE #room");
        assert_eq!(harness.take("alice")[0], ":irc.test 324 alice #room +Cnt");
    }

    #[test]
    fn no_ctcp_rooms_look_at_every_line_of_a_multiline_message() {
        let mut harness = room();
        harness.send("alice", "MODE #room +C");
        harness.send("bob", "CAP REQ :batch draft/multiline");
        harness.take("alice");
        harness.take("bob");
        harness.send("bob", "BATCH +r draft/multiline #room");
        harness.send("bob", "@batch=r PRIVMSG #room :hello");
        harness.send("bob", "@batch=r PRIVMSG #room :\x01VERSION\x01");
        harness.send("bob", "BATCH -r");
        assert_eq!(
            harness.take("bob"),
            vec![":irc.test 404 bob #room :Cannot send CTCP to channel (+C)"]
        );
        assert!(harness.take("alice").is_empty());
    }

    #[test]
    fn registered_only_speak_holds_the_logged_out_but_not_the_voiced() {
        let mut harness = room();
        harness.send("alice", "MODE #room +M");
        harness.take("alice");
        harness.take("bob");
        harness.send("bob", "PRIVMSG #room :hi");
        assert_eq!(harness.take("bob"), vec![REFUSED]);
        assert!(harness.take("alice").is_empty());
        let bob = harness.id("bob");
        harness.state.log_in(bob, "bob");
        harness.take("bob");
        harness.send("bob", "PRIVMSG #room :logged in");
        harness.state.log_out(bob);
        harness.take("bob");
        let voiced = Membership {
            op: false,
            voice: true,
        };
        harness.channel_mut("#room").members.insert(bob, voiced);
        harness.send("bob", "PRIVMSG #room :voiced");
        assert_eq!(
            harness.take("alice"),
            vec![
                ":bob!~bob@127.0.0.1 PRIVMSG #room :logged in",
                ":bob!~bob@127.0.0.1 PRIVMSG #room :voiced",
            ]
        );
    }

    #[test]
    fn a_muted_member_may_join_but_not_speak() {
        let mut harness = room();
        harness.send("bob", "PART #room");
        harness.send("alice", "MODE #room +b ~m:bob");
        harness.take("alice");
        harness.send("bob", "JOIN #room");
        assert!(
            harness
                .channel("#room")
                .members
                .contains_key(&harness.id("bob"))
        );
        harness.take("alice");
        harness.take("bob");
        harness.send("bob", "PRIVMSG #room :hi");
        harness.send("bob", "TAGMSG #room");
        assert_eq!(harness.take("bob"), vec![REFUSED, REFUSED]);
        assert!(harness.take("alice").is_empty());
        // A plain ban exception lifts a mute too.
        harness.send("alice", "MODE #room +e bob");
        harness.take("alice");
        harness.take("bob");
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
}
