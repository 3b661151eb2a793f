//! The command table. The checks every command shares (registration, the
//! parameter count, operator rights) live here once; handlers stay short.

use super::caps::Caps;
use super::commands::{
    authenticate, away, batch, cap, chanserv, chathistory, help, info, invite, ison, isupport,
    join, kick, kill, kline, list, map, markread, message, metadata, mode, monitor, names,
    nickserv, oper, part, ping, quit, redact, register, registration, rehash, rename, setname,
    stats, topic, userhost, wallops, who, whois, whowas,
};
use super::replies::check_privilege;
use super::{Client, ClientId, Refusal, State, labeled};
use crate::config::Privilege;
use crate::proto::Message;
use crate::proto::numeric;

/// A command handler: the state, the client, the message. A refusal it
/// returns is sent by dispatch; one that answers several targets sends
/// each target's refusal itself ([`State::refuse`]) and goes on.
pub type Handler = fn(&mut State, ClientId, &Message) -> Result<(), Refusal>;

/// When in a connection's life a command may be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Once registered; before that, 451 ERR_NOTREGISTERED.
    Registered,
    /// Before registration completes and after.
    Any,
    /// Only while registering; after that, 462 ERR_ALREADYREGISTRED.
    Registering,
}

/// One row of the table.
pub struct Command {
    pub name: &'static str,
    pub handler: Handler,
    /// Fewer parameters get 461 ERR_NEEDMOREPARAMS.
    pub min_params: usize,
    pub phase: Phase,
    /// The operator privilege the command needs: without user mode +o,
    /// 481 ERR_NOPRIVILEGES; an operator without it, 723 ERR_NOPRIVS.
    pub privilege: Option<Privilege>,
}

const fn row(
    name: &'static str,
    handler: Handler,
    min_params: usize,
    phase: Phase,
    privilege: Option<Privilege>,
) -> Command {
    Command {
        name,
        handler,
        min_params,
        phase,
        privilege,
    }
}

const fn command(name: &'static str, handler: Handler, min_params: usize) -> Command {
    row(name, handler, min_params, Phase::Registered, None)
}

const fn any_phase(name: &'static str, handler: Handler, min_params: usize) -> Command {
    row(name, handler, min_params, Phase::Any, None)
}

const fn registering(name: &'static str, handler: Handler, min_params: usize) -> Command {
    row(name, handler, min_params, Phase::Registering, None)
}

const fn oper(
    name: &'static str,
    handler: Handler,
    min_params: usize,
    privilege: Privilege,
) -> Command {
    row(
        name,
        handler,
        min_params,
        Phase::Registered,
        Some(privilege),
    )
}

/// Every command the server knows, sorted by name for binary search.
static COMMANDS: &[Command] = &[
    command("ADMIN", info::admin, 0),
    any_phase("AUTHENTICATE", authenticate::authenticate, 1),
    // Before registration only with draft/pre-away; the handler says so.
    any_phase("AWAY", away::away, 0),
    command("BATCH", batch::batch, 1),
    any_phase("CAP", cap::cap, 1),
    // Missing parameters get the spec's FAIL, not 461.
    command("CHATHISTORY", chathistory::chathistory, 0),
    command("CS", chanserv::cs, 0),
    oper("DLINE", kline::dline, 1, Privilege::Kline),
    command("HELP", help::help, 0),
    command("HELPOP", help::help, 0),
    command("INFO", info::info, 0),
    // No parameter lists the caller's invites; one alone is 461 there.
    command("INVITE", invite::invite, 0),
    command("ISON", ison::ison, 1),
    // Before registration only with draft/extended-isupport.
    any_phase("ISUPPORT", isupport::isupport, 0),
    command("JOIN", join::join, 1),
    command("KICK", kick::kick, 2),
    oper("KILL", kill::kill, 1, Privilege::Kill),
    oper("KLINE", kline::kline, 1, Privilege::Kline),
    command("LINKS", info::links, 0),
    command("LIST", list::list, 0),
    command("LUSERS", info::lusers, 0),
    command("MAP", map::map, 0),
    // Missing parameters get the spec's FAIL, not 461.
    command("MARKREAD", markread::markread, 0),
    // Before registration only for the client's own keys (before-connect).
    any_phase("METADATA", metadata::metadata, 2),
    command("MODE", mode::mode, 1),
    command("MONITOR", monitor::monitor, 1),
    command("MOTD", info::motd, 0),
    command("NAMES", names::names, 0),
    any_phase("NICK", registration::nick, 0),
    // PRIVMSG answers 411/412 itself; NOTICE must never get an error.
    command("NOTICE", message::notice, 0),
    command("NS", nickserv::ns, 0),
    command("OPER", oper::oper, 2),
    command("PART", part::part, 1),
    registering("PASS", registration::pass, 1),
    any_phase("PING", ping::ping, 1),
    any_phase("PONG", ping::pong, 0),
    command("PRIVMSG", message::privmsg, 0),
    any_phase("QUIT", quit::quit, 0),
    command("REDACT", redact::redact, 2),
    // Before registration only with `before-connect`; the handler says so.
    any_phase("REGISTER", register::register, 3),
    oper("REHASH", rehash::rehash, 0, Privilege::Rehash),
    command("RENAME", rename::rename, 2),
    command("SETNAME", setname::setname, 1),
    command("STATS", stats::stats, 0),
    command("TAGMSG", message::tagmsg, 1),
    command("TIME", info::time, 0),
    command("TOPIC", topic::topic, 1),
    oper("UNDLINE", kline::undline, 1, Privilege::Kline),
    oper("UNKLINE", kline::unkline, 1, Privilege::Kline),
    registering("USER", registration::user, 4),
    command("USERHOST", userhost::userhost, 1),
    any_phase("VERIFY", register::verify, 2),
    command("VERSION", info::version, 0),
    oper("WALLOPS", wallops::wallops, 1, Privilege::Wallops),
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
        .filter(|label| !label.is_empty() && label.len() <= MAX_LABEL)
        .map(str::to_owned)
        .or_else(|| batch::closing_label(state, id, message));
    let Some(label) = label else {
        run(state, id, message);
        return;
    };
    state.start_labeled(id, &label);
    run(state, id, message);
    let (lines, gate) = state.end_capture();
    if state.is_waiting(id) {
        if lines.is_empty() {
            // The answer comes later, under the label (`hold.rs`).
            return;
        }
        // A JOIN list answered its first rooms before one that waits for
        // its creation network-wide: what came is the labeled answer, and
        // the rest is answered without the label, one response per label.
        state.unlabel_waiting(id);
        labeled::send(state, id, &label, lines, gate);
        return;
    }
    if lines.is_empty() && batch::answers_later(state, id, message) {
        // A multiline batch is answered once, when it closes.
        return;
    }
    labeled::send(state, id, &label, lines, gate);
}

/// Runs the generic checks, then the handler, and sends the refusal
/// either returns.
fn run(state: &mut State, id: ClientId, message: &Message) {
    let Some(client) = state.clients.get(&id) else {
        return;
    };
    if message.invalid_utf8 && state.config.server.utf8_only {
        // UTF8ONLY: refuse rather than relay repaired text; `*` when the
        // command itself is what could not be read.
        let command = if message.command.bytes().all(|b| b.is_ascii_alphanumeric()) {
            message.command.as_str()
        } else {
            "*"
        };
        state.fail(
            id,
            command,
            "INVALID_UTF8",
            &[],
            "Message rejected, your IRC software MUST use UTF-8 encoding on this network",
        );
        return;
    }
    if let Some(reference) = batch::batch_reference(message).filter(|_| client.registered) {
        batch::line(state, id, message, reference);
        return;
    }
    let outcome = match admit(client, message) {
        Ok(command) => (command.handler)(state, id, message),
        Err(refusal) => Err(refusal),
    };
    if let Err(refusal) = outcome {
        state.refuse(id, refusal);
    }
}

/// The checks every command shares, in this order: a known command, the
/// connection's phase, the parameter count, the operator privilege, and
/// last PASS or USER once registered (462).
fn admit(client: &Client, message: &Message) -> Result<&'static Command, Refusal> {
    let registered = client.registered;
    let Some(command) = find(&message.command) else {
        return Err(if registered {
            Refusal::new(numeric::ERR_UNKNOWNCOMMAND, &[&message.command])
        } else {
            Refusal::not_registered()
        });
    };
    if !registered && command.phase == Phase::Registered {
        return Err(Refusal::not_registered());
    }
    if message.params.len() < command.min_params {
        return Err(Refusal::need_more_params(command.name));
    }
    if let Some(privilege) = command.privilege {
        check_privilege(client, privilege)?;
    }
    if registered && command.phase == Phase::Registering {
        return Err(Refusal::already_registered());
    }
    Ok(command)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::core::Event;
    use crate::core::testing::Harness;
    use crate::net::ConnectionEvent;

    /// alice and bob in #room, alice sending a line that was not UTF-8.
    fn send_repaired(utf8_only: bool) -> Harness {
        let mut config = Config::default();
        config.server.name = "irc.test".into();
        config.server.utf8_only = utf8_only;
        let mut h = Harness::with_config(config);
        h.register("alice");
        h.register("bob");
        h.room("#room", &[("alice", true), ("bob", false)]);
        let mut message = crate::proto::message::parse("PRIVMSG #room :caf\u{FFFD}")
            .expect("parses")
            .to_owned();
        message.invalid_utf8 = true;
        let id = h.id("alice");
        h.state
            .handle(Event::from(ConnectionEvent::Message { id, message }));
        h
    }

    #[test]
    fn utf8only_refuses_a_line_that_was_not_utf8() {
        let mut h = send_repaired(true);
        assert_eq!(
            h.take("alice"),
            [
                ":irc.test FAIL PRIVMSG INVALID_UTF8 :Message rejected, your IRC software MUST use UTF-8 encoding on this network"
            ]
        );
        assert!(h.take("bob").is_empty());
    }

    #[test]
    fn without_utf8only_a_repaired_line_is_relayed() {
        let mut h = send_repaired(false);
        assert_eq!(
            h.take("bob"),
            [":alice!~alice@127.0.0.1 PRIVMSG #room :caf\u{FFFD}"]
        );
    }

    /// A command cannot exist without help, nor help without a command.
    #[test]
    fn every_command_has_help_and_every_help_a_command() {
        for command in COMMANDS {
            assert!(
                super::help::text(command.name).is_some(),
                "{} has no help text in commands/help.rs",
                command.name
            );
        }
        for subject in super::help::subjects() {
            assert!(
                find(subject).is_some(),
                "help for unknown command {subject}"
            );
        }
    }

    /// A clock whose first reading panics, standing in for a handler bug.
    struct BrokenOnce(std::sync::atomic::AtomicBool);

    impl crate::core::Clock for BrokenOnce {
        fn now(&self) -> std::time::SystemTime {
            if !self.0.swap(true, std::sync::atomic::Ordering::Relaxed) {
                panic!("a handler bug, on purpose");
            }
            std::time::SystemTime::UNIX_EPOCH
        }
    }

    #[test]
    fn a_panic_in_a_labeled_command_leaves_no_label_or_capture_behind() {
        let mut h = Harness::new();
        h.register("alice");
        h.register("bob");
        for nick in ["alice", "bob"] {
            h.send(nick, "CAP REQ :labeled-response batch");
            h.take(nick);
        }
        // TIME reads the clock inside its handler, while the label is held.
        h.state.clock = Box::new(BrokenOnce(std::sync::atomic::AtomicBool::new(false)));
        let message = crate::proto::message::parse("@label=stale TIME")
            .expect("parses")
            .to_owned();
        let id = h.id("alice");
        crate::core::handle_guarded(
            &mut h.state,
            Event::from(ConnectionEvent::Message { id, message }),
        );
        assert!(!h.state.clients.contains_key(&id), "the culprit is dropped");
        assert!(h.take("alice").is_empty(), "nothing labeled stale went out");
        assert_eq!(h.state.label(), None);
        assert!(h.state.sink.capture.is_none());
        h.send("bob", "PING x");
        assert_eq!(h.take("bob"), [":irc.test PONG irc.test :x"]);
    }

    #[test]
    fn the_table_answers_481_to_a_user_and_723_to_an_operator_without_the_privilege() {
        let mut h = Harness::new();
        h.register("alice");
        h.register("bob");
        h.send("alice", "KILL bob :go");
        assert_eq!(
            h.take("alice"),
            [":irc.test 481 alice :Permission Denied- You're not an IRC operator"]
        );
        let id = h.id("alice");
        let alice = h.state.clients.get_mut(&id).expect("alice is here");
        alice.modes.oper = true;
        alice.privileges = vec![Privilege::Wallops];
        h.send("alice", "KILL bob :go");
        assert_eq!(
            h.take("alice"),
            [":irc.test 723 alice kill :Insufficient oper privileges."]
        );
        assert!(h.state.clients.contains_key(&h.id("bob")));
        // The parameter count is checked first, as before.
        h.send("alice", "KLINE");
        assert_eq!(
            h.take("alice"),
            [":irc.test 461 alice KLINE :Not enough parameters"]
        );
    }

    #[test]
    fn a_refusal_a_handler_returns_is_sent_under_its_label() {
        let mut h = Harness::new();
        h.register("alice");
        h.send("alice", "CAP REQ :labeled-response batch");
        h.take("alice");
        h.send("alice", "@label=k1 TOPIC #nowhere");
        assert_eq!(
            h.take("alice"),
            ["@label=k1 :irc.test 403 alice #nowhere :No such channel"]
        );
    }

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
