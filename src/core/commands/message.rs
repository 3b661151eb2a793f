//! PRIVMSG and NOTICE: to nicks, to rooms, and to a room's ops or voiced
//! members through a STATUSMSG prefix (`@#room`, `+#room`).

use std::collections::HashSet;

use crate::core::{Channel, ClientId, Membership, State};
use crate::proto::numeric::{self, Numeric};
use crate::proto::{Line, Message};

pub fn privmsg(state: &mut State, id: ClientId, message: &Message) {
    relay(state, id, message, "PRIVMSG");
}

/// Like PRIVMSG, but Modern IRC forbids any error reply to a NOTICE.
pub fn notice(state: &mut State, id: ClientId, message: &Message) {
    relay(state, id, message, "NOTICE");
}

/// A failed delivery: the numeric and its text; the target is added by the caller.
type Refusal = (Numeric, &'static str);

fn relay(state: &mut State, id: ClientId, message: &Message, command: &str) {
    let answers = command == "PRIVMSG";
    let (targets, text) = (message.param(0), message.param(1));
    let problem = if targets.is_empty() {
        Some((
            numeric::ERR_NORECIPIENT,
            format!("No recipient given ({command})"),
        ))
    } else if text.is_empty() {
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
    let source = client.source.clone();
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
            to_channel(state, id, &source, command, prefixes, statuses, text)
        } else {
            to_nick(state, id, &source, command, target, text, answers)
        };
        if let (Err((numeric, reason)), true) = (outcome, answers) {
            state.reply(id, numeric, &[target], reason);
        }
    }
}

fn to_channel(
    state: &mut State,
    id: ClientId,
    source: &str,
    command: &str,
    prefixes: &str,
    name: &str,
    text: &str,
) -> Result<(), Refusal> {
    let folded = state.fold(name);
    let Some(channel) = state.channels.get(&folded) else {
        // Modern IRC lists 401 (no such nick/channel) for PRIVMSG, not 403.
        return Err((numeric::ERR_NOSUCHNICK, "No such nick/channel"));
    };
    if !may_speak(channel, channel.members.get(&id).copied(), source) {
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
    let target = format!("{shown_prefix}{}", channel.name);
    let line = Line::new(Some(source), command)
        .arg(&target)
        .trailing(text)
        .finish();
    state.send_to_members(&folded, &line, |member, membership| {
        member != id
            && (!needs_op || membership.op)
            && (!needs_voice || membership.op || membership.voice)
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
    source: &str,
    command: &str,
    nick: &str,
    text: &str,
    answers: bool,
) -> Result<(), Refusal> {
    let target = state
        .nicks
        .get(&state.fold(nick))
        .and_then(|target| state.clients.get(target))
        .filter(|client| client.registered);
    let Some(target) = target else {
        return Err((numeric::ERR_NOSUCHNICK, "No such nick/channel"));
    };
    let (target_id, nick, away) = (target.id, target.nick.clone(), target.away.clone());
    let line = Line::new(Some(source), command)
        .arg(&nick)
        .trailing(text)
        .finish();
    state.send(target_id, line);
    if let (Some(away), true) = (away, answers) {
        state.reply(id, numeric::RPL_AWAY, &[&nick], &away);
    }
    Ok(())
}
