//! Answers to the client that sent a command: numerics (`:server NNN
//! <client> …`) and standard replies (`FAIL`), with client input echoed
//! safely.

use super::caps::Caps;
use super::{Client, ClientId, State};
use crate::config::Privilege;
use crate::proto::Line;
use crate::proto::numeric::{self, Numeric};
use crate::proto::serialize::echo_param;

impl State {
    /// Starts `:server NNN <client>` for a reply to `id`.
    pub fn numeric_line(&self, id: ClientId, numeric: Numeric) -> Line {
        let code = numeric.as_str();
        let code = std::str::from_utf8(&code).unwrap_or("000");
        let target = self.clients.get(&id).map_or("*", Client::target);
        Line::new(Some(self.server_name()), code).arg(target)
    }

    /// Sends `:server NNN <client> args… :text`.
    pub fn reply(&mut self, id: ClientId, numeric: Numeric, args: &[&str], text: &str) {
        let mut line = self.numeric_line(id, numeric);
        for arg in args {
            line = line.arg(echo_param(arg));
        }
        let line = line.trailing(text).finish();
        self.send(id, line);
    }

    /// Sends the standard reply `FAIL <command> <code> [context…] :text`,
    /// for failures whose code a negotiated spec (or 005 token) defines.
    pub fn fail(&mut self, id: ClientId, command: &str, code: &str, context: &[&str], text: &str) {
        let mut line = Line::new(Some(self.server_name()), "FAIL")
            .arg(command)
            .arg(code);
        for arg in context {
            line = line.arg(echo_param(arg));
        }
        let line = line.trailing(text).finish();
        self.send(id, line);
    }

    /// A failure of our own making: a FAIL for clients that negotiated
    /// standard-replies, which lets a server send codes no other spec
    /// defines; a NOTICE with the text for the rest.
    pub fn fail_or_notice(&mut self, id: ClientId, command: &str, code: &str, text: &str) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        if client.caps.contains(Caps::STANDARD_REPLIES) {
            self.fail(id, command, code, &[], text);
        } else {
            let line = Line::new(Some(self.server_name()), "NOTICE")
                .arg(client.target())
                .trailing(text)
                .finish();
            self.send(id, line);
        }
    }
}

/// True when `id` is an operator holding `privilege`; otherwise answers
/// 723 ERR_NOPRIVS.
pub fn require(state: &mut State, id: ClientId, privilege: Privilege) -> bool {
    if state
        .clients
        .get(&id)
        .is_some_and(|client| client.has_privilege(privilege))
    {
        return true;
    }
    state.reply(
        id,
        numeric::ERR_NOPRIVS,
        &[privilege.name()],
        "Insufficient oper privileges.",
    );
    false
}

/// `:server NOTICE <nick> :text`, for answers that have no numeric.
pub fn server_notice(state: &mut State, id: ClientId, text: &str) {
    let Some(client) = state.clients.get(&id) else {
        return;
    };
    let line = Line::new(Some(state.server_name()), "NOTICE")
        .arg(client.target())
        .trailing(text)
        .finish();
    state.send(id, line);
}
