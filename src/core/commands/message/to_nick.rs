//! A message to one client: echo-message for the sender, the 301 away
//! reply to PRIVMSG, and the conversation's history when private messages
//! are kept (each side under its account when logged in, else its nick).

use super::{MessageKind, Outgoing};
use crate::core::Refusal;
use crate::core::caps::Caps;
use crate::core::history_access::party;
use crate::core::{ClientId, State};
use crate::history::{HistoryTarget, NewRecord};
use crate::network::wire::To;
use crate::proto::numeric;

pub(super) fn to_nick(
    state: &mut State,
    id: ClientId,
    outgoing: &Outgoing,
    nick: &str,
) -> Result<(), Refusal> {
    let Some(target) = state.registered_client(&state.fold(nick)) else {
        return Err(Refusal::no_such_nick(nick));
    };
    let (target_id, nick, away) = (target.id, target.nick.clone(), target.away.clone());
    let recipient = party(state, target);
    // A user of another node: its node knows whether it takes TAGMSG.
    let wanted = target.remote.is_some() || outgoing.wanted_by(target.caps);
    let mut event = outgoing.event(state, &nick);
    if state.config.history.private_messages && outgoing.is_history(state) {
        let sender = state.clients.get(&id).map(|client| party(state, client));
        if let Some(sender) = sender {
            let record = NewRecord {
                target: HistoryTarget::private(sender, recipient),
                display: &nick,
                sender: &outgoing.source,
                account: outgoing.account.as_deref(),
                command: outgoing.kind.command(),
                text: outgoing.text,
            };
            let gate = state.record_history(record, &event);
            event.set_gate(gate);
        }
    }
    if state.network.is_some() && wanted {
        let to = To::User { uid: 0 };
        if let Some(message) = outgoing.wire(id, to, &event, false) {
            state.network_private_message(target_id, message);
        }
    }
    let echo = state
        .clients
        .get(&id)
        .is_some_and(|c| c.caps.contains(Caps::ECHO_MESSAGE));
    let reached = if target_id == id {
        // To oneself: the delivery is a side effect, the echo the reply
        // (labeled-response), so a labeled command gets two lines, one labeled.
        let delivered = wanted && state.send_unlabeled(id, &mut event);
        let echoed = if echo {
            state.send_all([id], &mut event)
        } else {
            0
        };
        usize::from(delivered) + echoed
    } else {
        let mut audience = Vec::with_capacity(2);
        if wanted {
            audience.push(target_id);
        }
        if echo {
            audience.push(id);
        }
        state.send_all(audience, &mut event)
    };
    state.metrics.delivered(reached);
    if let (Some(away), MessageKind::Privmsg) = (away, outgoing.kind) {
        state.reply(id, numeric::RPL_AWAY, &[&nick], &away);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::room;
    use crate::core::caps::Caps;

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

    /// labeled-response: the delivery to oneself is a side effect, not a
    /// reply; only the echo carries the label, and no batch is needed.
    #[test]
    fn a_labeled_message_to_oneself_is_delivered_then_echoed_with_the_label() {
        let mut harness = room();
        let alice = harness.id("alice");
        let caps = &mut harness.state.clients.get_mut(&alice).unwrap().caps;
        caps.insert(Caps::ECHO_MESSAGE);
        caps.insert(Caps::LABELED_RESPONSE);
        caps.insert(Caps::BATCH);
        caps.insert(Caps::MESSAGE_TAGS);
        for (command, text) in [("PRIVMSG", " :hi"), ("NOTICE", " :hi"), ("TAGMSG", "")] {
            harness.send("alice", &format!("@label=L1 {command} alice{text}"));
            let lines = harness.take("alice");
            assert_eq!(lines.len(), 2, "{lines:?}");
            let labeled: Vec<&String> = lines.iter().filter(|l| l.contains("label=L1")).collect();
            assert_eq!(labeled.len(), 1, "{lines:?}");
            assert!(
                lines
                    .iter()
                    .all(|l| l.contains(&format!(" {command} alice")))
            );
            assert!(lines.iter().all(|l| !l.contains("BATCH")));
        }
    }

    #[test]
    fn without_echo_message_a_message_to_oneself_arrives_once() {
        let mut harness = room();
        harness.send("alice", "PRIVMSG alice :hi");
        assert_eq!(
            harness.take("alice"),
            vec![":alice!~alice@127.0.0.1 PRIVMSG alice :hi"]
        );
    }
}
