//! Refusals that several commands share, so each numeric's text is
//! written once. Names from the client go in as sent: `State::reply`
//! replaces any that cannot be echoed safely.

use crate::core::{ClientId, State};
use crate::proto::numeric;

/// 451: the command needs a registered client.
pub fn not_registered(state: &mut State, id: ClientId) {
    state.reply(
        id,
        numeric::ERR_NOTREGISTERED,
        &[],
        "You have not registered",
    );
}

/// 462: PASS and USER once registration is over.
pub fn already_registered(state: &mut State, id: ClientId) {
    state.reply(
        id,
        numeric::ERR_ALREADYREGISTRED,
        &[],
        "You may not reregister",
    );
}

/// 481: the command needs user mode +o.
pub fn not_an_operator(state: &mut State, id: ClientId) {
    state.reply(
        id,
        numeric::ERR_NOPRIVILEGES,
        &[],
        "Permission Denied- You're not an IRC operator",
    );
}

/// 442: the command needs the client to be in `channel`.
pub fn not_on_channel(state: &mut State, id: ClientId, channel: &str) {
    state.reply(
        id,
        numeric::ERR_NOTONCHANNEL,
        &[channel],
        "You're not on that channel",
    );
}

/// 482: the command needs channel operator status in `channel`.
pub fn not_channel_operator(state: &mut State, id: ClientId, channel: &str) {
    state.reply(
        id,
        numeric::ERR_CHANOPRIVSNEEDED,
        &[channel],
        "You're not channel operator",
    );
}

/// 461: a parameter the command needs is missing or empty.
pub fn need_more_params(state: &mut State, id: ClientId, command: &str) {
    state.reply(
        id,
        numeric::ERR_NEEDMOREPARAMS,
        &[command],
        "Not enough parameters",
    );
}

/// 401: no client uses `nick`.
pub fn no_such_nick(state: &mut State, id: ClientId, nick: &str) {
    state.reply(id, numeric::ERR_NOSUCHNICK, &[nick], "No such nick/channel");
}

/// 403: no room is called `channel`.
pub fn no_such_channel(state: &mut State, id: ClientId, channel: &str) {
    state.reply(
        id,
        numeric::ERR_NOSUCHCHANNEL,
        &[channel],
        "No such channel",
    );
}
