//! PING and PONG.

use crate::core::Refusal;
use crate::core::{ClientId, State};
use crate::proto::{Line, Message};

/// `PING <token>`
pub fn ping(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    let server = state.server_name().to_owned();
    let line = Line::new(Some(&server), "PONG")
        .arg(&server)
        .trailing(message.param(0))
        .finish();
    state.send(id, line);
    Ok(())
}

/// `PONG [<server>] <token>`
///
/// Any input resets the connection's ping timer; nothing else to do.
pub fn pong(_: &mut State, _: ClientId, _: &Message) -> Result<(), Refusal> {
    Ok(())
}
