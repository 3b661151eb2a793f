//! The command table. The checks every command shares (registration, the
//! parameter count, operator rights) live here once; handlers stay short.

use super::caps::Caps;
use super::commands::{
    away, cap, connection, info, invite, ison, join, kick, kill, kline, list, message, names, oper,
    part, registration, rehash, stats, topic, user_mode, userhost, wallops, who, whois, whowas,
};
use super::{ClientId, State, labeled};
use crate::proto::Message;
use crate::proto::numeric;

/// A command handler: the state, the client, the message.
pub type Handler = fn(&mut State, ClientId, &Message);

/// One row of the table.
pub struct Command {
    pub name: &'static str,
    pub handler: Handler,
    /// Fewer parameters get 461 ERR_NEEDMOREPARAMS.
    pub min_params: usize,
    /// Usable before registration completes.
    pub before_registration: bool,
    /// Needs user mode +o.
    pub oper_only: bool,
}

const fn command(name: &'static str, handler: Handler, min_params: usize) -> Command {
    Command {
        name,
        handler,
        min_params,
        before_registration: false,
        oper_only: false,
    }
}

const fn early(name: &'static str, handler: Handler, min_params: usize) -> Command {
    Command {
        name,
        handler,
        min_params,
        before_registration: true,
        oper_only: false,
    }
}

const fn oper_only(name: &'static str, handler: Handler, min_params: usize) -> Command {
    Command {
        name,
        handler,
        min_params,
        before_registration: false,
        oper_only: true,
    }
}

/// Every command the server knows, sorted by name for binary search.
static COMMANDS: &[Command] = &[
    command("ADMIN", info::admin, 0),
    command("AWAY", away::away, 0),
    early("CAP", cap::cap, 1),
    oper_only("DLINE", kline::dline, 1),
    command("INFO", info::info, 0),
    command("INVITE", invite::invite, 2),
    command("ISON", ison::ison, 1),
    command("JOIN", join::join, 1),
    command("KICK", kick::kick, 2),
    oper_only("KILL", kill::kill, 1),
    oper_only("KLINE", kline::kline, 1),
    command("LIST", list::list, 0),
    command("LUSERS", info::lusers, 0),
    command("MODE", user_mode::mode, 1),
    command("MOTD", info::motd, 0),
    command("NAMES", names::names, 0),
    early("NICK", registration::nick, 0),
    // PRIVMSG answers 411/412 itself; NOTICE must never get an error.
    command("NOTICE", message::notice, 0),
    command("OPER", oper::oper, 2),
    command("PART", part::part, 1),
    early("PASS", registration::pass, 1),
    early("PING", connection::ping, 1),
    early("PONG", connection::pong, 0),
    command("PRIVMSG", message::privmsg, 0),
    early("QUIT", connection::quit, 0),
    oper_only("REHASH", rehash::rehash, 0),
    command("STATS", stats::stats, 0),
    command("TAGMSG", message::tagmsg, 1),
    command("TIME", info::time, 0),
    command("TOPIC", topic::topic, 1),
    oper_only("UNDLINE", kline::undline, 1),
    oper_only("UNKLINE", kline::unkline, 1),
    early("USER", registration::user, 4),
    command("USERHOST", userhost::userhost, 1),
    command("VERSION", info::version, 0),
    oper_only("WALLOPS", wallops::wallops, 1),
    command("WHO", who::who, 0),
    command("WHOIS", whois::whois, 0),
    command("WHOWAS", whowas::whowas, 1),
];

/// Looks a command up by its uppercased name.
pub fn find(name: &str) -> Option<&'static Command> {
    COMMANDS
        .binary_search_by(|command| command.name.cmp(name))
        .ok()
        .map(|i| &COMMANDS[i])
}

/// The longest label echoed back; longer ones are ignored.
const MAX_LABEL: usize = 64;

/// Runs a command; a labeled one (labeled-response) has its replies
/// collected and sent back under its label.
pub fn dispatch(state: &mut State, id: ClientId, message: &Message) {
    let label = state
        .clients
        .get(&id)
        .filter(|client| client.caps.contains(Caps::LABELED_RESPONSE))
        .and_then(|_| message.tags.iter().find(|tag| tag.key == "label"))
        .and_then(|tag| tag.value.as_deref())
        .filter(|label| !label.is_empty() && label.len() <= MAX_LABEL);
    let Some(label) = label else {
        run(state, id, message);
        return;
    };
    state.start_capture(id);
    run(state, id, message);
    let lines = state.end_capture();
    labeled::send(state, id, label, lines);
}

/// Runs the generic checks, then the handler.
fn run(state: &mut State, id: ClientId, message: &Message) {
    let Some(client) = state.clients.get(&id) else {
        return;
    };
    let registered = client.registered;
    let oper = client.modes.oper;
    let Some(command) = find(&message.command) else {
        if registered {
            state.reply(
                id,
                numeric::ERR_UNKNOWNCOMMAND,
                &[&message.command],
                "Unknown command",
            );
        } else {
            state.reply(
                id,
                numeric::ERR_NOTREGISTERED,
                &[],
                "You have not registered",
            );
        }
        return;
    };
    if !registered && !command.before_registration {
        state.reply(
            id,
            numeric::ERR_NOTREGISTERED,
            &[],
            "You have not registered",
        );
        return;
    }
    if message.params.len() < command.min_params {
        state.reply(
            id,
            numeric::ERR_NEEDMOREPARAMS,
            &[command.name],
            "Not enough parameters",
        );
        return;
    }
    if command.oper_only && !oper {
        state.reply(
            id,
            numeric::ERR_NOPRIVILEGES,
            &[],
            "Permission Denied- You're not an IRC operator",
        );
        return;
    }
    (command.handler)(state, id, message);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_unique() {
        for pair in COMMANDS.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} must come before {}",
                pair[0].name,
                pair[1].name
            );
        }
    }
}
