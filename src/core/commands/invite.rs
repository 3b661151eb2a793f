//! INVITE: a member asks someone into a room; on a +i room only an operator
//! may, and the invite lets the target past +i once. invite-notify members
//! are told.

use crate::core::caps::Caps;
use crate::core::commands::refusals;
use crate::core::{ClientId, State};
use crate::proto::numeric;
use crate::proto::{Line, Message};

pub fn invite(state: &mut State, id: ClientId, message: &Message) {
    let (nick, name) = (message.param(0), message.param(1));
    if nick.is_empty() || name.is_empty() {
        refusals::need_more_params(state, id, "INVITE");
        return;
    }
    let Some(target) = state.registered_client(&state.fold(nick)) else {
        refusals::no_such_nick(state, id, nick);
        return;
    };
    let (target, target_nick, away) = (target.id, target.nick.clone(), target.away.clone());
    let folded = state.fold(name);
    let Some(channel) = state.channels.get_mut(&folded) else {
        refusals::no_such_channel(state, id, name);
        return;
    };
    let name = channel.name.clone();
    let invite_only = channel.modes.invite_only;
    let refuse: Option<fn(&mut State, ClientId, &str)> = match channel.members.get(&id) {
        None => Some(refusals::not_on_channel),
        Some(inviter) if channel.modes.invite_only && !inviter.op => {
            Some(refusals::not_channel_operator)
        }
        Some(_) => None,
    };
    if let Some(refuse) = refuse {
        refuse(state, id, &name);
        return;
    }
    if channel.members.contains_key(&target) {
        state.reply(
            id,
            numeric::ERR_USERONCHANNEL,
            &[&target_nick, &name],
            "is already on channel",
        );
        return;
    }
    channel.invited.insert(target);
    remember_invite(state, target, folded.clone());
    let line = state
        .numeric_line(id, numeric::RPL_INVITING)
        .arg(&target_nick)
        .arg(&name)
        .finish();
    state.send(id, line);
    if let Some(away) = away {
        state.reply(id, numeric::RPL_AWAY, &[&target_nick], &away);
    }
    let Some(source) = state.clients.get(&id).map(|client| client.source.clone()) else {
        return;
    };
    let line = Line::new(Some(&source), "INVITE")
        .arg(&target_nick)
        .arg(&name)
        .finish();
    let mut event = state.event_from(id, line);
    state.send_all([target], &mut event);
    // invite-notify: members who asked hear of it too; in a +i room only
    // the ops, who alone could have invited (InspIRCd does the same).
    state.send_to_members(&folded, &mut event, |member, membership| {
        member.id != id
            && member.id != target
            && member.caps.contains(Caps::INVITE_NOTIFY)
            && (!invite_only || membership.op)
    });
}

/// Past this many remembered invites, those used up or of rooms gone are
/// forgotten, so the set stays as small as the invites still open.
const INVITES_BEFORE_PRUNING: usize = 64;

fn remember_invite(state: &mut State, target: ClientId, room: crate::proto::Folded) {
    let Some(invitee) = state.clients.get(&target) else {
        return;
    };
    let stale: Vec<_> = if invitee.invited_to.len() >= INVITES_BEFORE_PRUNING {
        let still_open = |name: &crate::proto::Folded| {
            state
                .channels
                .get(name)
                .is_some_and(|channel| channel.invited.contains(&target))
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
