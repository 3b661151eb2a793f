//! A message to a room, or to its ops or voiced members (STATUSMSG): who
//! may speak, who hears it, and the room's history.

use super::{Outgoing, Refusal};
use crate::core::caps::Caps;
use crate::core::{Channel, ClientId, Membership, State};
use crate::proto::numeric;

pub(super) fn to_channel(
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
    // Bans match the real address as well as the cloak; most rooms have
    // none, and a message to them builds no second source.
    let real_source = match state.clients.get(&id) {
        Some(client) if !channel.bans.is_empty() && client.is_cloaked() => client.real_source(),
        _ => String::new(),
    };
    let both = [outgoing.source.as_str(), real_source.as_str()];
    let sources = if real_source.is_empty() {
        &both[..1]
    } else {
        &both[..]
    };
    if !may_speak(channel, channel.members.get(&id).copied(), sources) {
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
fn may_speak(channel: &Channel, membership: Option<Membership>, sources: &[&str]) -> bool {
    match membership {
        Some(membership) if membership.op || membership.voice => true,
        Some(_) => !channel.modes.moderated && !channel.is_banned_as(sources),
        None => {
            !channel.modes.no_external && !channel.modes.moderated && !channel.is_banned_as(sources)
        }
    }
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
