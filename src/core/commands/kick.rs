//! KICK: an operator removes a member from a room.

use super::registration::truncate;
use crate::core::Refusal;
use crate::core::channel::audience_of;
use crate::core::{ClientId, State};
use crate::proto::{Line, Message};

/// `KICK <channel> <user> *( "," <user> ) [<comment>]`
///
/// `KICK #room a,b,c` removes each of them from the room; `KICK #a,#b x,y`
/// pairs rooms and nicks, as RFC 2812 allows. Past TARGMAX (the server's
/// `max_targets`) further targets are dropped, as Modern IRC permits; every
/// KICK line sent names one room and one nick.
pub fn kick(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    let max = state.config.limits.max_targets;
    let list = |param: &str| -> Vec<String> {
        param
            .split(',')
            .filter(|item| !item.is_empty())
            .take(max)
            .map(str::to_owned)
            .collect()
    };
    let (rooms, targets) = (list(message.param(0)), list(message.param(1)));
    if rooms.is_empty() || targets.is_empty() || (rooms.len() != 1 && rooms.len() != targets.len())
    {
        return Err(Refusal::need_more_params("KICK"));
    }
    let reason = message.param(2);
    for (i, target) in targets.iter().enumerate() {
        let Some(room) = rooms.get(i).or(rooms.first()) else {
            break;
        };
        kick_one(state, id, room, target, reason);
    }
    Ok(())
}

/// Removes `target` from the room `name`, if `id` may.
fn kick_one(state: &mut State, id: ClientId, name: &str, target: &str, reason: &str) {
    let folded = state.fold(name);
    let Some(channel) = state.visible_channel(id, &folded) else {
        state.refuse(id, Refusal::no_such_channel(name));
        return;
    };
    let name = channel.name.clone();
    let Some(kicker) = channel.members.get(&id) else {
        state.refuse(id, Refusal::not_on_channel(&name));
        return;
    };
    if !kicker.op {
        state.refuse(id, Refusal::not_channel_operator(&name));
        return;
    }
    // An unknown nick is "not on that channel" too: Modern lists only 441 here.
    let kicked = state
        .nicks
        .get(&state.fold(target))
        .copied()
        .filter(|target| channel.members.contains_key(target));
    let (Some(kicked), Some(kicker)) = (kicked, state.clients.get(&id)) else {
        state.refuse(id, Refusal::user_not_in_channel(target, &name));
        return;
    };
    let reason = match reason {
        "" => kicker.nick.as_str(),
        reason => reason,
    };
    let reason = truncate(reason, state.config.limits.kick_length);
    let kicked_nick = state
        .clients
        .get(&kicked)
        .map_or(target, |client| client.nick.as_str());
    let line = Line::new(Some(&kicker.source), "KICK")
        .arg(&name)
        .arg(kicked_nick)
        .trailing(reason)
        .finish();
    let replay = vec![name.clone(), kicked_nick.to_owned(), reason.to_owned()];
    // Kicking a hidden member of an auditorium is news to those who see it.
    let hidden = state
        .channels
        .get(&folded)
        .is_some_and(|channel| channel.hides(kicked));
    let mut event = state.broadcast(line);
    if !hidden {
        state.record_event(&folded, &event);
    }
    state.send_to_members(&folded, &mut event, audience_of(hidden, kicked));
    state.remove_member(kicked, &folded);
    state.network_command(id, "KICK", replay);
}
