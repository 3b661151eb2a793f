//! Applying requested changes to a room, and telling its members what took
//! effect in one normalized MODE line (signs only where they change).

use bytes::Bytes;

use super::lists;
use super::{Applied, Request, Setter};
use crate::core::Refusal;
use crate::core::isupport::KEYLEN;
use crate::core::{Channel, ClientId, State};
use crate::proto::modes::{ChannelFlag, MemberStatus};
use crate::proto::numeric;
use crate::proto::serialize::MAX_LINE;
use crate::proto::{Folded, Line};

/// Applies one change; answers errors itself. `None` when nothing changed.
pub(super) fn apply(
    state: &mut State,
    id: ClientId,
    folded: &Folded,
    request: Request,
) -> Option<Applied> {
    let outcome = match request {
        Request::Member {
            adding,
            letter,
            status,
            nick,
        } => set_status(state, folded, (letter, status), adding, nick),
        Request::Edit {
            adding,
            letter,
            kind,
            mask,
        } => {
            let casemapping = state.config.server.casemapping;
            let max_entries = state.config.limits.max_list_entries;
            let setter = Setter {
                source: state
                    .clients
                    .get(&id)
                    .map(|c| c.source.clone())
                    .unwrap_or_default(),
                at: state.clock.now(),
            };
            let channel = state.channels.get_mut(folded)?;
            let entry = (letter, kind);
            lists::edit(
                channel,
                entry,
                adding,
                mask,
                casemapping,
                max_entries,
                setter,
            )
        }
        setting => set_setting(state.channels.get_mut(folded)?, setting),
    };
    match outcome {
        Ok(applied) => applied,
        Err(refusal) => {
            state.refuse(id, refusal);
            None
        }
    }
}

/// A flag, the key or the limit.
fn set_setting(channel: &mut Channel, request: Request) -> Result<Option<Applied>, Refusal> {
    match request {
        Request::Flag {
            adding,
            letter,
            flag,
        } => Ok(set_flag(channel, adding, letter, flag)),
        Request::Key {
            adding: true,
            letter,
            key,
        } => set_key(channel, letter, key),
        Request::Key {
            adding: false,
            letter,
            ..
        } => Ok(channel.modes.key.take().map(|_| Applied {
            adding: false,
            letter,
            arg: Some("*".to_owned()),
        })),
        Request::Limit {
            letter,
            value: Some(value),
        } => set_limit(channel, letter, value),
        Request::Limit {
            letter,
            value: None,
        } => Ok(channel.modes.limit.take().map(|_| Applied {
            adding: false,
            letter,
            arg: None,
        })),
        // Statuses and lists are applied by `apply`; a list view changes nothing.
        Request::Member { .. } | Request::Edit { .. } | Request::Show(_) => Ok(None),
    }
}

/// `+o nick`, `-v nick`…: a member's status, shown with the nick as it is
/// spelled now.
fn set_status(
    state: &mut State,
    folded: &Folded,
    (letter, status): (char, MemberStatus),
    adding: bool,
    nick: &str,
) -> Result<Option<Applied>, Refusal> {
    let Some(&target) = state.nicks.get(&state.fold(nick)) else {
        return Err(Refusal::no_such_nick(nick));
    };
    let target_nick = state
        .clients
        .get(&target)
        .map(|client| client.nick.clone())
        .unwrap_or_default();
    let Some(channel) = state.channels.get_mut(folded) else {
        return Ok(None);
    };
    let Some(member) = channel.members.get_mut(&target) else {
        return Err(Refusal::user_not_in_channel(nick, &channel.name));
    };
    Ok(
        changed(member.status_mut(status), adding).then_some(Applied {
            adding,
            letter,
            arg: Some(target_nick),
        }),
    )
}

fn set_flag(
    channel: &mut Channel,
    adding: bool,
    letter: char,
    flag: ChannelFlag,
) -> Option<Applied> {
    let applied = changed(channel.modes.flag_mut(flag), adding).then_some(Applied {
        adding,
        letter,
        arg: None,
    });
    // Invites given under the old rule must not open the room under the
    // new one: an invite to a -i room must not walk through a later +i.
    if applied.is_some() && flag == ChannelFlag::InviteOnly {
        channel.invited.clear();
    }
    applied
}

fn set_key(channel: &mut Channel, letter: char, key: &str) -> Result<Option<Applied>, Refusal> {
    if !is_valid_key(key) {
        // `*`, not the key: it may be overlong, or a password mistyped.
        let letter = letter.to_string();
        return Err(Refusal::new(
            numeric::ERR_INVALIDMODEPARAM,
            &[&channel.name, &letter, "*"],
        )
        .with_text("Invalid key"));
    }
    if channel.modes.key.as_deref() == Some(key) {
        return Ok(None);
    }
    channel.modes.key = Some(key.to_owned());
    Ok(Some(Applied {
        adding: true,
        letter,
        arg: Some(key.to_owned()),
    }))
}

fn set_limit(channel: &mut Channel, letter: char, value: &str) -> Result<Option<Applied>, Refusal> {
    match value.parse::<usize>() {
        Ok(limit) if limit > 0 => Ok((channel.modes.limit != Some(limit)).then(|| {
            channel.modes.limit = Some(limit);
            Applied {
                adding: true,
                letter,
                arg: Some(limit.to_string()),
            }
        })),
        _ => {
            let letter = letter.to_string();
            Err(Refusal::new(
                numeric::ERR_INVALIDMODEPARAM,
                &[&channel.name, &letter, value],
            )
            .with_text("Invalid limit"))
        }
    }
}

/// Sets `flag` to `value`; true when that changed it.
fn changed(flag: &mut bool, value: bool) -> bool {
    let was = *flag;
    *flag = value;
    was != value
}

/// A key must be one word that JOIN can carry: no spaces or commas, no
/// leading `:`, and not too long.
pub(super) fn is_valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= KEYLEN
        && !key.starts_with(':')
        && !key
            .bytes()
            .any(|b| b == b',' || b.is_ascii_whitespace() || b.is_ascii_control())
}

/// Sends the applied changes to every member, sender included: one MODE
/// line, or a few if the arguments would not fit in one.
pub(super) fn broadcast(state: &mut State, id: ClientId, folded: &Folded, applied: &[Applied]) {
    if applied.is_empty() {
        return;
    }
    let Some(source) = state.clients.get(&id).map(|c| c.source.clone()) else {
        return;
    };
    let Some(channel) = state.channels.get(folded) else {
        return;
    };
    let members: Vec<ClientId> = channel.members.keys().copied().collect();
    // `:source MODE #room ` and CR LF, plus room for the mode letters.
    let fixed = source.len() + channel.name.len() + 10 + applied.len() * 2;
    let mut groups: Vec<&[Applied]> = Vec::new();
    let mut start = 0;
    let mut used = fixed;
    for (i, change) in applied.iter().enumerate() {
        let cost = change.arg.as_ref().map_or(0, |arg| arg.len() + 1);
        if used + cost > MAX_LINE && i > start {
            groups.push(&applied[start..i]);
            start = i;
            used = fixed;
        }
        used += cost;
    }
    groups.push(&applied[start..]);
    let name = channel.name.clone();
    for group in groups {
        let line = mode_line(&source, &name, group);
        let mut event = state.broadcast(line);
        state.record_event(folded, &event);
        state.send_all(members.iter().copied(), &mut event);
    }
}

/// `:source MODE #room +lk-i 5 key`: signs only where they change.
fn mode_line(source: &str, channel: &str, changes: &[Applied]) -> Bytes {
    let mut line = Line::new(Some(source), "MODE").arg(channel);
    for param in self::changes(changes) {
        line = line.arg(&param);
    }
    line.finish()
}

/// The changes as MODE's parameters: `+lk-i`, then the arguments.
pub(super) fn changes(changes: &[Applied]) -> Vec<String> {
    let mut letters = String::new();
    let mut sign = None;
    for change in changes {
        if sign != Some(change.adding) {
            letters.push(if change.adding { '+' } else { '-' });
            sign = Some(change.adding);
        }
        letters.push(change.letter);
    }
    let args = changes.iter().filter_map(|change| change.arg.clone());
    std::iter::once(letters).chain(args).collect()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{ALICE, room};

    #[test]
    fn mixed_changes_are_broadcast_once_normalized() {
        let mut h = room();
        h.send("alice", "MODE #room +i");
        h.take("alice");
        h.take("bob");
        h.send("alice", "MODE #room +lk-i 5 key");
        let expected = vec![format!("{ALICE} MODE #room +lk-i 5 key")];
        assert_eq!(h.take("alice"), expected);
        assert_eq!(h.take("bob"), expected);
        assert!(h.take("eve").is_empty());
        let modes = &h.channel("#room").modes;
        assert_eq!((modes.limit, modes.key.as_deref()), (Some(5), Some("key")));
        assert!(!modes.invite_only);
    }

    #[test]
    fn changes_that_change_nothing_are_not_sent() {
        let mut h = room();
        h.send("alice", "MODE #room +nt-mk");
        assert!(h.take("alice").is_empty());
        assert!(h.take("bob").is_empty());
    }

    #[test]
    fn op_and_voice_take_nicks_in_order() {
        let mut h = room();
        // Applied in order, as written: the voice is given, then taken.
        h.send("alice", "MODE #room +ov-v BOB bob bob");
        assert_eq!(
            h.take("bob"),
            [format!("{ALICE} MODE #room +ov-v bob bob bob")]
        );
        h.send("alice", "MODE #room -v+o bob bob");
        assert!(h.take("bob").is_empty());
        h.send("alice", "MODE #room +v-o bob bob");
        assert_eq!(h.take("bob"), [format!("{ALICE} MODE #room +v-o bob bob")]);
        let member = h.channel("#room").members[&h.id("bob")];
        assert!(member.voice && !member.op);
    }

    #[test]
    fn op_of_unknown_or_absent_nick_is_refused() {
        let mut h = room();
        h.send("alice", "MODE #room +o nobody");
        h.send("alice", "MODE #room +o eve");
        assert_eq!(
            h.take("alice"),
            [
                ":irc.test 401 alice nobody :No such nick/channel",
                ":irc.test 441 alice eve #room :They aren't on that channel",
            ]
        );
    }

    #[test]
    fn missing_arguments_and_bad_values_are_ignored() {
        let mut h = room();
        h.send("alice", "MODE #room +kol");
        assert!(h.take("alice").is_empty());
        h.send("alice", "MODE #room +l -3");
        h.send("alice", "MODE #room +k :a b");
        assert_eq!(
            h.take("alice"),
            [
                ":irc.test 696 alice #room l -3 :Invalid limit",
                ":irc.test 696 alice #room k * :Invalid key",
            ]
        );
    }

    #[test]
    fn an_overlong_key_is_refused_without_being_echoed() {
        let mut h = room();
        h.send("alice", &format!("MODE #room +k :{}", "long".repeat(100)));
        assert_eq!(
            h.take("alice"),
            [":irc.test 696 alice #room k * :Invalid key"]
        );
        assert_eq!(h.channel("#room").modes.key, None);
    }
}
