//! Answers to the client that sent a command: numerics (`:server NNN
//! <client> …`) and standard replies (`FAIL`), with client input echoed
//! safely.

use super::caps::Caps;
use super::{Client, ClientId, State};
use crate::proto::Line;
use crate::proto::numeric::Numeric;
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
