//! WALLOPS: an operator's message to every user with mode +w.

use crate::core::Refusal;
use crate::core::{ClientId, State};
use crate::proto::{Line, Message};

/// `WALLOPS <text>`
///
/// To every user with mode +w.
pub fn wallops(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    let Some(oper) = state.clients.get(&id) else {
        return Ok(());
    };
    let line = Line::new(Some(&oper.source), "WALLOPS")
        .trailing(message.param(0))
        .finish();
    let readers: Vec<ClientId> = state
        .clients
        .values()
        .filter(|client| client.registered && client.modes.wallops)
        .map(|client| client.id)
        .collect();
    let mut event = state.broadcast(line);
    state.send_all(readers, &mut event);
    Ok(())
}
