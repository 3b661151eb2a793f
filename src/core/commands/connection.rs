//! PING, PONG and QUIT.

use crate::core::{ClientId, State};
use crate::proto::{Line, Message};

pub fn ping(state: &mut State, id: ClientId, message: &Message) {
    let server = state.server_name().to_owned();
    let line = Line::new(Some(&server), "PONG")
        .arg(&server)
        .trailing(message.param(0))
        .finish();
    state.send(id, line);
}

/// Any input resets the connection's ping timer; nothing else to do.
pub fn pong(_: &mut State, _: ClientId, _: &Message) {}

pub fn quit(state: &mut State, id: ClientId, message: &Message) {
    let reason = match message.params.first() {
        Some(reason) if !reason.is_empty() => format!("Quit: {reason}"),
        _ => "Quit".to_owned(),
    };
    state.disconnect(id, &reason);
}
