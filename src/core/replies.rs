//! Every way the server answers the client that sent a command: numerics
//! (`:server NNN <client> …`), refusals, standard replies (`FAIL`) and
//! server NOTICEs, with client input echoed safely.
//!
//! A handler that refuses returns a [`Refusal`] and dispatch sends it; one
//! that goes on after a refusal (JOIN `#a,#b`: each target is answered on
//! its own) sends it with [`State::refuse`]. An error's text is the one in
//! `proto::numeric`'s table unless the case needs its own.

use std::borrow::Cow;

use super::caps::Caps;
use super::{Client, ClientId, State};
use crate::config::Privilege;
use crate::proto::Line;
use crate::proto::numeric::{self, Numeric};
use crate::proto::serialize::echo_param;

/// A numeric error for the client that sent the command:
/// `:server NNN <client> args… :text`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "a refusal is sent by returning it from a handler or with State::refuse"]
pub struct Refusal {
    numeric: Numeric,
    args: Vec<String>,
    text: Cow<'static, str>,
}

impl Refusal {
    /// `numeric` with `args` (names from the client go in as sent) and
    /// the numeric's text from the table.
    pub fn new(numeric: Numeric, args: &[&str]) -> Refusal {
        Refusal {
            numeric,
            args: args.iter().map(|arg| (*arg).to_owned()).collect(),
            text: Cow::Borrowed(numeric.text().unwrap_or_default()),
        }
    }

    /// The numeric it answers with.
    pub fn numeric(&self) -> Numeric {
        self.numeric
    }

    /// The same refusal with a text of its own, for an error whose text
    /// depends on the case.
    pub fn with_text(mut self, text: impl Into<Cow<'static, str>>) -> Refusal {
        self.text = text.into();
        self
    }

    /// 401: no client uses `nick` (or, to PRIVMSG, no room `nick` is visible).
    pub fn no_such_nick(nick: &str) -> Refusal {
        Refusal::new(numeric::ERR_NOSUCHNICK, &[nick])
    }

    /// 403: no room is called `channel`.
    pub fn no_such_channel(channel: &str) -> Refusal {
        Refusal::new(numeric::ERR_NOSUCHCHANNEL, &[channel])
    }

    /// 407: more targets than `limits.max_targets`, from `target` on.
    pub fn too_many_targets(target: &str) -> Refusal {
        Refusal::new(numeric::ERR_TOOMANYTARGETS, &[target])
    }

    /// 431: NICK, WHOIS or WHOWAS without a nick.
    pub fn no_nickname_given() -> Refusal {
        Refusal::new(numeric::ERR_NONICKNAMEGIVEN, &[])
    }

    /// 441: `nick` is not in `channel`.
    pub fn user_not_in_channel(nick: &str, channel: &str) -> Refusal {
        Refusal::new(numeric::ERR_USERNOTINCHANNEL, &[nick, channel])
    }

    /// 442: the command needs the client to be in `channel`.
    pub fn not_on_channel(channel: &str) -> Refusal {
        Refusal::new(numeric::ERR_NOTONCHANNEL, &[channel])
    }

    /// 451: the command needs a registered client.
    pub fn not_registered() -> Refusal {
        Refusal::new(numeric::ERR_NOTREGISTERED, &[])
    }

    /// 461: a parameter `command` needs is missing or empty.
    pub fn need_more_params(command: &str) -> Refusal {
        Refusal::new(numeric::ERR_NEEDMOREPARAMS, &[command])
    }

    /// 462: PASS and USER once registration is over.
    pub fn already_registered() -> Refusal {
        Refusal::new(numeric::ERR_ALREADYREGISTRED, &[])
    }

    /// 464: a wrong server or operator password.
    pub fn password_mismatch() -> Refusal {
        Refusal::new(numeric::ERR_PASSWDMISMATCH, &[])
    }

    /// 481: the command needs user mode +o.
    pub fn not_an_operator() -> Refusal {
        Refusal::new(numeric::ERR_NOPRIVILEGES, &[])
    }

    /// 482: the command needs channel operator status in `channel`.
    pub fn not_channel_operator(channel: &str) -> Refusal {
        Refusal::new(numeric::ERR_CHANOPRIVSNEEDED, &[channel])
    }

    /// 491: no `[[oper]]` block lets this client in.
    pub fn no_oper_host() -> Refusal {
        Refusal::new(numeric::ERR_NOOPERHOST, &[])
    }

    /// 723: an operator without `privilege`.
    pub fn missing_privilege(privilege: Privilege) -> Refusal {
        Refusal::new(numeric::ERR_NOPRIVS, &[privilege.name()])
    }
}

/// Whether `client` may do what needs `privilege`: 481 for a client that
/// is not an operator, 723 for an operator who lacks it. Dispatch asks it
/// for a command's row, and only dispatch: a command open to everyone with
/// operator-only parts (STATS) refuses those with `not_an_operator`.
pub(super) fn check_privilege(client: &Client, privilege: Privilege) -> Result<(), Refusal> {
    if !client.modes.oper {
        Err(Refusal::not_an_operator())
    } else if !client.has_privilege(privilege) {
        Err(Refusal::missing_privilege(privilege))
    } else {
        Ok(())
    }
}

impl State {
    /// Starts `:server NNN <client>` for a reply to `id`.
    pub fn numeric_line(&self, id: ClientId, numeric: Numeric) -> Line {
        let code = numeric.as_str();
        let code = std::str::from_utf8(&code).unwrap_or("000");
        let target = self.clients.get(&id).map_or("*", |client| client.target());
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

    /// Sends a refusal now, for a handler that goes on afterwards.
    pub fn refuse(&mut self, id: ClientId, refusal: Refusal) {
        debug_assert!(
            !refusal.text.is_empty(),
            "{:?} has no text in the numeric table: give it one with with_text",
            refusal.numeric
        );
        let args: Vec<&str> = refusal.args.iter().map(String::as_str).collect();
        self.reply(id, refusal.numeric, &args, &refusal.text);
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
            self.server_notice(id, text);
        }
    }

    /// `:server NOTICE <nick> :text`, for answers that have no numeric.
    pub fn server_notice(&mut self, id: ClientId, text: &str) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let line = Line::new(Some(self.server_name()), "NOTICE")
            .arg(client.target())
            .trailing(text)
            .finish();
        self.send(id, line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::Harness;

    #[test]
    fn a_refusal_carries_its_numerics_text_from_the_table() {
        let mut h = Harness::new();
        h.register("alice");
        let id = h.id("alice");
        h.state.refuse(id, Refusal::no_such_nick("bob"));
        h.state.refuse(id, Refusal::need_more_params("JOIN"));
        assert_eq!(
            h.take("alice"),
            [
                ":irc.test 401 alice bob :No such nick/channel",
                ":irc.test 461 alice JOIN :Not enough parameters",
            ]
        );
    }

    #[test]
    fn a_refusal_with_its_own_text_and_an_unsafe_argument() {
        let mut h = Harness::new();
        h.register("alice");
        let id = h.id("alice");
        let refusal = Refusal::new(numeric::ERR_CANNOTSENDTOCHAN, &[":#room x"])
            .with_text("Cannot send CTCP to channel (+C)");
        h.state.refuse(id, refusal);
        assert_eq!(
            h.take("alice"),
            [":irc.test 404 alice * :Cannot send CTCP to channel (+C)"]
        );
    }

    #[test]
    fn every_error_sent_with_its_default_text_has_one() {
        for refusal in [
            Refusal::no_such_nick("x"),
            Refusal::no_such_channel("#x"),
            Refusal::too_many_targets("x"),
            Refusal::no_nickname_given(),
            Refusal::user_not_in_channel("x", "#x"),
            Refusal::not_on_channel("#x"),
            Refusal::not_registered(),
            Refusal::need_more_params("X"),
            Refusal::already_registered(),
            Refusal::password_mismatch(),
            Refusal::not_an_operator(),
            Refusal::not_channel_operator("#x"),
            Refusal::no_oper_host(),
            Refusal::missing_privilege(Privilege::Kill),
        ] {
            assert!(!refusal.text.is_empty(), "{refusal:?}");
        }
    }

    #[test]
    fn a_privilege_is_refused_with_481_or_723() {
        let mut h = Harness::new();
        h.register("alice");
        let id = h.id("alice");
        let client = h.state.clients.get_mut(&id).unwrap();
        assert_eq!(
            check_privilege(client, Privilege::Kill),
            Err(Refusal::not_an_operator())
        );
        client.modes.oper = true;
        client.privileges = vec![Privilege::Wallops];
        assert_eq!(
            check_privilege(client, Privilege::Kill),
            Err(Refusal::missing_privilege(Privilege::Kill))
        );
        assert_eq!(check_privilege(client, Privilege::Wallops), Ok(()));
    }
}
