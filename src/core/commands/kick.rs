//! KICK: an operator removes a member from a room.

use super::registration::truncate;
use crate::core::commands::refusals;
use crate::core::{ClientId, State};
use crate::proto::numeric;
use crate::proto::{Line, Message};

/// One target per KICK, as TARGMAX=KICK:1 advertises; Modern IRC lets a
/// server drop further targets silently.
pub fn kick(state: &mut State, id: ClientId, message: &Message) {
    let (name, target) = (message.param(0), message.param(1));
    let target = target.split(',').next().unwrap_or("");
    if target.is_empty() {
        refusals::need_more_params(state, id, "KICK");
        return;
    }
    let folded = state.fold(name);
    let Some(channel) = state.channels.get(&folded) else {
        refusals::no_such_channel(state, id, name);
        return;
    };
    let name = channel.name.clone();
    let Some(kicker) = channel.members.get(&id) else {
        refusals::not_on_channel(state, id, &name);
        return;
    };
    if !kicker.op {
        refusals::not_channel_operator(state, id, &name);
        return;
    }
    // An unknown nick is "not on that channel" too: Modern lists only 441 here.
    let kicked = state
        .nicks
        .get(&state.fold(target))
        .copied()
        .filter(|target| channel.members.contains_key(target));
    let (Some(kicked), Some(kicker)) = (kicked, state.clients.get(&id)) else {
        state.reply(
            id,
            numeric::ERR_USERNOTINCHANNEL,
            &[target, &name],
            "They aren't on that channel",
        );
        return;
    };
    let reason = match message.param(2) {
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
    let mut event = state.broadcast(line);
    state.send_to_members(&folded, &mut event, |_, _| true);
    state.remove_member(kicked, &folded);
}
