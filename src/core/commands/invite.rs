//! INVITE: a member asks someone into a room; on a +i room only an operator
//! may. The target is always told, but an invite is kept only where it
//! opens a door: an operator's invite to a +i or +l room lets the target
//! past those once, within `INVITE_LIFETIME` (`core::channel`). With
//! no parameter, INVITE lists the caller's open invites. invite-notify
//! members are told. In a network every node runs the same INVITE as the
//! inviter's, so the invitee's own node keeps the invite that lets it in.

use crate::core::Refusal;
use crate::core::caps::Caps;
use crate::core::{ClientId, State};
use crate::proto::numeric;
use crate::proto::{Folded, Line, Message};

/// `INVITE <nickname> <channel>`
///
/// INVITE alone lists the rooms the client is invited to.
pub fn invite(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    let (nick, name) = (message.param(0), message.param(1));
    if nick.is_empty() && name.is_empty() {
        list_invites(state, id);
        return Ok(());
    }
    if nick.is_empty() || name.is_empty() {
        return Err(Refusal::need_more_params("INVITE"));
    }
    let Some(target) = state.registered_client(&state.fold(nick)) else {
        return Err(Refusal::no_such_nick(nick));
    };
    let (target, target_nick, away) = (target.id, target.nick.clone(), target.away.clone());
    let folded = state.fold(name);
    if state.visible_channel(id, &folded).is_none() {
        return Err(Refusal::no_such_channel(name));
    }
    let now = state.clock.now();
    let Some(channel) = state.channels.get_mut(&folded) else {
        return Ok(());
    };
    let name = channel.name.clone();
    let invite_only = channel.modes.invite_only;
    let Some(by_op) = channel.members.get(&id).map(|inviter| inviter.op) else {
        return Err(Refusal::not_on_channel(&name));
    };
    if invite_only && !by_op {
        return Err(Refusal::not_channel_operator(&name));
    }
    if channel.members.contains_key(&target) {
        let args = [target_nick.as_str(), &name];
        return Err(Refusal::new(numeric::ERR_USERONCHANNEL, &args));
    }
    if by_op && (invite_only || channel.modes.limit.is_some()) {
        channel.add_invite(target, now);
        remember_invite(state, target, folded.clone());
    }
    let line = state
        .numeric_line(id, numeric::RPL_INVITING)
        .arg(&target_nick)
        .arg(&name)
        .finish();
    state.send(id, line);
    if let Some(away) = away {
        state.reply(id, numeric::RPL_AWAY, &[&target_nick], &away);
    }
    tell_invited(state, id, (target, &target_nick), (&folded, &name));
    state.network_command(id, "INVITE", vec![target_nick, name]);
    Ok(())
}

/// The INVITE line to the one invited and, with invite-notify, to members
/// who asked; in a +i room only the ops, who alone could have invited
/// (InspIRCd does the same).
fn tell_invited(
    state: &mut State,
    id: ClientId,
    (target, target_nick): (ClientId, &str),
    (folded, name): (&Folded, &str),
) {
    let Some(source) = state.clients.get(&id).map(|client| client.source.clone()) else {
        return;
    };
    let invite_only = state
        .channels
        .get(folded)
        .is_some_and(|channel| channel.modes.invite_only);
    let line = Line::new(Some(&source), "INVITE")
        .arg(target_nick)
        .arg(name)
        .finish();
    let mut event = state.event_from(id, line);
    state.send_all([target], &mut event);
    state.send_to_members(folded, &mut event, |member, membership| {
        member.id != id
            && member.id != target
            && member.caps.contains(Caps::INVITE_NOTIFY)
            && (!invite_only || membership.op)
    });
}

/// 336 for each room `id` holds an open invite to, then 337.
fn list_invites(state: &mut State, id: ClientId) {
    let now = state.clock.now();
    let Some(client) = state.clients.get(&id) else {
        return;
    };
    let mut rooms: Vec<String> = client
        .invited_to
        .iter()
        .filter_map(|folded| state.channels.get(folded))
        .filter(|channel| channel.has_open_invite(id, now))
        .map(|channel| channel.name.clone())
        .collect();
    rooms.sort_unstable();
    for room in rooms {
        let line = state
            .numeric_line(id, numeric::RPL_INVITELIST)
            .arg(&room)
            .finish();
        state.send(id, line);
    }
    state.reply(id, numeric::RPL_ENDOFINVITELIST, &[], "End of /INVITE list");
}

/// Past this many remembered invites, those used up or of rooms gone are
/// forgotten, so the set stays as small as the invites still open.
const INVITES_BEFORE_PRUNING: usize = 64;

fn remember_invite(state: &mut State, target: ClientId, room: Folded) {
    let Some(invitee) = state.clients.get(&target) else {
        return;
    };
    let stale: Vec<_> = if invitee.invited_to.len() >= INVITES_BEFORE_PRUNING {
        let now = state.clock.now();
        let still_open = |name: &Folded| {
            state
                .channels
                .get(name)
                .is_some_and(|channel| channel.has_open_invite(target, now))
        };
        invitee
            .invited_to
            .iter()
            .filter(|name| !still_open(name))
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    if let Some(invitee) = state.clients.get_mut(&target) {
        for name in &stale {
            invitee.invited_to.remove(name);
        }
        invitee.invited_to.insert(room);
    }
}

#[cfg(test)]
mod tests {
    use crate::core::channel::{INVITE_LIFETIME, MAX_OPEN_INVITES};
    use crate::core::testing::Harness;

    /// alice is op of the +i room #club; bob is outside.
    fn club() -> Harness {
        let mut h = Harness::new();
        h.register("alice");
        h.register("bob");
        h.send("alice", "JOIN #club");
        h.send("alice", "MODE #club +i");
        h.take("alice");
        h
    }

    #[test]
    fn an_invite_lapses_after_its_lifetime() {
        let mut h = club();
        h.send("alice", "INVITE bob #club");
        h.advance(INVITE_LIFETIME.as_secs());
        h.send("bob", "INVITE");
        let lines = h.take("bob");
        assert_eq!(
            lines.last().map(String::as_str),
            Some(":irc.test 337 bob :End of /INVITE list")
        );
        assert!(!lines.iter().any(|line| line.contains(" 336 ")));
        h.send("bob", "JOIN #club");
        assert_eq!(
            h.take("bob"),
            [":irc.test 473 bob #club :Cannot join channel (+i)"]
        );
    }

    #[test]
    fn an_invite_within_its_lifetime_opens_the_room() {
        let mut h = club();
        h.send("alice", "INVITE bob #club");
        h.take("bob");
        h.advance(INVITE_LIFETIME.as_secs() - 1);
        h.send("bob", "JOIN #club");
        assert_eq!(h.take("bob")[0], ":bob!~bob@127.0.0.1 JOIN #club");
    }

    #[test]
    fn a_room_keeps_a_bounded_number_of_invites_dropping_the_oldest() {
        let mut h = club();
        let nicks: Vec<String> = (0..=MAX_OPEN_INVITES)
            .map(|i| format!("guest{i}"))
            .collect();
        for nick in &nicks {
            h.register(nick);
            h.send("alice", &format!("INVITE {nick} #club"));
            h.take(nick);
            h.advance(1);
        }
        assert_eq!(h.channel("#club").invited.len(), MAX_OPEN_INVITES);
        h.send("guest0", "JOIN #club");
        assert_eq!(
            h.take("guest0"),
            [":irc.test 473 guest0 #club :Cannot join channel (+i)"]
        );
        let newest = &nicks[MAX_OPEN_INVITES];
        h.send(newest, "JOIN #club");
        assert_eq!(
            h.take(newest)[0],
            format!(":{newest}!~{newest}@127.0.0.1 JOIN #club")
        );
    }

    #[test]
    fn a_member_who_is_not_op_invites_but_opens_nothing() {
        let mut h = club();
        h.send("alice", "MODE #club -i+l 1");
        h.register("carol");
        h.send("alice", "INVITE carol #club");
        h.send("carol", "JOIN #club");
        h.take("alice");
        h.take("carol");
        h.send("alice", "MODE #club -o alice");
        h.take("carol");
        h.send("carol", "INVITE bob #club");
        assert_eq!(h.take("carol")[0], ":irc.test 341 carol bob #club");
        assert!(h.channel("#club").invited.is_empty());
        h.send("bob", "JOIN #club");
        assert_eq!(
            h.take("bob"),
            [
                ":carol!~carol@127.0.0.1 INVITE bob #club",
                ":irc.test 471 bob #club :Cannot join channel (+l)"
            ]
        );
    }
}
