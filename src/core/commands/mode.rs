//! MODE: a room's modes go to [`super::channel_mode`], a nick's to
//! [`super::user_mode`].

use super::{channel_mode, user_mode};
use crate::core::Refusal;
use crate::core::{ClientId, State};
use crate::proto::Message;
use crate::proto::validate::is_channel_name;

/// `MODE <target> [<modestring> [<mode arguments>...]]`
pub fn mode(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    if is_channel_name(message.param(0)) {
        channel_mode::mode(state, id, message)
    } else {
        user_mode::mode(state, id, message)
    }
}
