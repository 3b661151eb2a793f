//! PART: leave rooms, with an optional reason.

use crate::core::Refusal;
use crate::core::channel::audience_of;
use crate::core::{ClientId, State};
use crate::proto::{Line, Message};

/// `PART <channel>{,<channel>} [<reason>]`
pub fn part(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    let names = message.param(0);
    if names.is_empty() {
        return Err(Refusal::need_more_params("PART"));
    }
    let reason = message.params.get(1).map(String::as_str);
    let max = state.config.limits.max_targets;
    for (i, name) in names.split(',').enumerate() {
        if i == max {
            state.refuse(id, Refusal::too_many_targets(name));
            break;
        }
        part_one(state, id, name, reason);
    }
    Ok(())
}

/// Leaves one room: every member who sees the leaver (all, but in an
/// auditorium), the leaver included, hears the PART; an empty reason is
/// sent as none.
pub fn part_one(state: &mut State, id: ClientId, name: &str, reason: Option<&str>) {
    let folded = state.fold(name);
    let Some(channel) = state.visible_channel(id, &folded) else {
        state.refuse(id, Refusal::no_such_channel(name));
        return;
    };
    if !channel.members.contains_key(&id) {
        state.refuse(id, Refusal::not_on_channel(name));
        return;
    }
    let Some(client) = state.clients.get(&id) else {
        return;
    };
    let room = channel.name.clone();
    let line = Line::new(Some(&client.source), "PART").arg(&room);
    let line = match reason.filter(|reason| !reason.is_empty()) {
        Some(reason) => line.trailing(reason),
        None => line,
    };
    let line = line.finish();
    let hidden = channel.hides(id);
    let mut event = state.broadcast(line);
    if !hidden {
        state.record_event(&folded, &event);
    }
    state.send_to_members(&folded, &mut event, audience_of(hidden, id));
    state.network_part(id, &room, reason);
    state.remove_member(id, &folded);
}
