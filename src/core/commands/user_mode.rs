//! MODE on a nick: +B, +i and +w by the user, -o to drop operator status.
//! Channel targets go to [`super::channel_mode`].

use super::channel_mode;
use crate::core::commands::refusals;
use crate::core::{ClientId, State};
use crate::proto::numeric;
use crate::proto::{Line, Message};

pub fn mode(state: &mut State, id: ClientId, message: &Message) {
    let target = message.param(0);
    if target.starts_with(['#', '&']) {
        channel_mode::mode(state, id, message);
        return;
    }
    let folded = state.fold(target);
    match state.registered_client(&folded).map(|client| client.id) {
        None => {
            refusals::no_such_nick(state, id, target);
            return;
        }
        Some(owner) if owner != id => {
            let text = if message.params.len() > 1 {
                "Can't change mode for other users"
            } else {
                "Can't view modes for other users"
            };
            state.reply(id, numeric::ERR_USERSDONTMATCH, &[], text);
            return;
        }
        Some(_) => {}
    }
    let Some(client) = state.clients.get_mut(&id) else {
        return;
    };
    let Some(changes) = message.params.get(1) else {
        let modes = client.modes.to_mode_string();
        let line = state
            .numeric_line(id, numeric::RPL_UMODEIS)
            .arg(&modes)
            .finish();
        state.send(id, line);
        return;
    };
    let mut adding = true;
    let mut unknown = false;
    let mut applied = String::new();
    let mut applied_sign = None;
    for letter in changes.chars() {
        let flag = match letter {
            '+' | '-' => {
                adding = letter == '+';
                continue;
            }
            'B' => &mut client.modes.bot,
            'i' => &mut client.modes.invisible,
            'w' => &mut client.modes.wallops,
            // +o comes only through OPER.
            'o' if !adding => &mut client.modes.oper,
            'o' => continue,
            _ => {
                unknown = true;
                continue;
            }
        };
        if *flag != adding {
            *flag = adding;
            if applied_sign != Some(adding) {
                applied.push(if adding { '+' } else { '-' });
                applied_sign = Some(adding);
            }
            applied.push(letter);
        }
    }
    if !client.modes.oper {
        client.outbox.set_flood_exempt(false);
    }
    let nick = client.nick.clone();
    let source = client.source.clone();
    if unknown {
        state.reply(id, numeric::ERR_UMODEUNKNOWNFLAG, &[], "Unknown MODE flag");
    }
    if !applied.is_empty() {
        let line = Line::new(Some(&source), "MODE")
            .arg(&nick)
            .arg(&applied)
            .finish();
        state.send(id, line);
    }
}
