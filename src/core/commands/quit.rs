//! QUIT.

use crate::core::Refusal;
use crate::core::{ClientId, State};
use crate::proto::Message;

/// `QUIT [<reason>]`
pub fn quit(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    let reason = match message.params.first() {
        Some(reason) if !reason.is_empty() => format!("Quit: {reason}"),
        _ => "Quit".to_owned(),
    };
    state.disconnect(id, &reason);
    Ok(())
}
