//! ChanServ: registered rooms, answering `PRIVMSG ChanServ :<command>` and
//! its alias `CS <command>` with NOTICEs from `ChanServ!ChanServ@services.`,
//! as NickServ answers. Its nick is reserved. The rooms themselves, and
//! the status they owe their accounts, are `core/registered.rs`'s; what
//! needs the account store (does the account named in ACCESS ADD or
//! TRANSFER exist?) is asked of the worker, and [`answered`] finishes it.

use tracing::info;

use crate::accounts::AccessLevel;
use crate::accounts::rooms::MAX_ACCESS_ENTRIES;
use crate::core::registered::Registration;
use crate::core::{AccountJob, AccountOutcome, AccountPurpose, Refusal};
use crate::core::{ClientId, State};
use crate::history::millis;
use crate::proto::modes::MemberStatus;
use crate::proto::{Folded, Line, Message};

/// The service's nick, reserved for it.
pub const NICK: &str = "ChanServ";
/// Where its NOTICEs, and the modes it sets, come from.
pub const SOURCE: &str = "ChanServ!ChanServ@services.";

const HELP: &[&str] = &[
    "ChanServ keeps registered rooms: their founder, access list, topic, modes and lists outlive their last member and restarts.",
    "REGISTER <#room>: registers a room you are an operator of to your account.",
    "INFO <#room>: tells who founded a registered room, and when.",
    "ACCESS <#room> LIST|ADD <account> op|voice|DEL <account>: who gets op or voice on joining (the founder changes it).",
    "OP|DEOP|VOICE|DEVOICE <#room> [nick]: sets a status; yourself without a nick.",
    "TRANSFER <#room> <account>: gives the room to another account (the founder only).",
    "DROP <#room>: unregisters the room (its founder, or an IRC operator).",
    "You must be logged in to an account (NickServ IDENTIFY, or SASL) for all but INFO and HELP.",
];

/// A ChanServ command waiting for the worker to say whether an account
/// exists; kept on the client ([`crate::core::Client::chanserv`]). It
/// names the registration it was asked of, so that it is not applied to
/// the room once dropped, transferred or registered anew meanwhile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    room: Folded,
    founder: String,
    registered_ms: i64,
    action: Action,
}

/// What a [`Pending`] command does once the account is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    AccessAdd(AccessLevel),
    Transfer,
}

impl Pending {
    fn new((room, registration): (Folded, Registration), action: Action) -> Pending {
        Pending {
            room,
            founder: registration.founder,
            registered_ms: registration.registered_ms,
            action,
        }
    }

    /// Whether the room still has the registration the command was asked
    /// of, and the client is still logged in to its founder.
    fn still_holds(&self, state: &State, id: ClientId) -> bool {
        let casemapping = state.config.server.casemapping;
        let account = state.clients.get(&id).and_then(|c| c.account.as_deref());
        let registration = state
            .channels
            .get(&self.room)
            .and_then(|channel| channel.registration.as_ref());
        match (account, registration) {
            (Some(account), Some(registration)) => {
                registration.registered_ms == self.registered_ms
                    && casemapping.eq(&registration.founder, &self.founder)
                    && casemapping.eq(account, &self.founder)
            }
            _ => false,
        }
    }
}

/// Whether `target` names the service.
pub fn is_service(state: &State, target: &str) -> bool {
    super::service::is(state, target, NICK)
}

/// `CS <command> [<arguments>]`
pub fn cs(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    let text = message.params.join(" ");
    command(state, id, &text);
    Ok(())
}

/// One line sent to the service.
pub fn command(state: &mut State, id: ClientId, text: &str) {
    let Some((verb, arguments)) = super::service::words(state, id, text, say) else {
        return;
    };
    match (verb.as_str(), arguments.as_slice()) {
        ("HELP", _) | ("", _) => help(state, id),
        ("INFO", [room, ..]) => room_info(state, id, room),
        (_, []) => say(
            state,
            id,
            "Syntax: <command> <#room> ...; send HELP for the list.",
        ),
        ("REGISTER", [room, ..]) => register(state, id, room),
        ("ACCESS", [room, rest @ ..]) => access(state, id, room, rest),
        ("OP", [room, nick @ ..]) => status(state, id, room, nick, (MemberStatus::Op, true)),
        ("DEOP", [room, nick @ ..]) => status(state, id, room, nick, (MemberStatus::Op, false)),
        ("VOICE", [room, nick @ ..]) => status(state, id, room, nick, (MemberStatus::Voice, true)),
        ("DEVOICE", [room, nick @ ..]) => {
            status(state, id, room, nick, (MemberStatus::Voice, false));
        }
        ("TRANSFER", [room, account, ..]) => transfer(state, id, room, account),
        ("DROP", [room, ..]) => drop_room(state, id, room),
        _ => say(state, id, "Unknown command or missing argument; send HELP."),
    }
}

fn help(state: &mut State, id: ClientId) {
    for line in HELP {
        say(state, id, line);
    }
}

fn register(state: &mut State, id: ClientId, name: &str) {
    let Some(account) = logged_in(state, id) else {
        return;
    };
    let folded = state.fold(name);
    // A secret or private room an outsider names is answered as a missing one.
    let Some(channel) = state.visible_channel(id, &folded) else {
        say(state, id, &format!("{name} does not exist; join it first."));
        return;
    };
    if channel.registration.is_some() {
        say(
            state,
            id,
            &format!("{} is registered already.", channel.name),
        );
        return;
    }
    if !channel.members.get(&id).is_some_and(|member| member.op) {
        let text = format!(
            "You must be an operator of {} to register it.",
            channel.name
        );
        say(state, id, &text);
        return;
    }
    let max = state.config.accounts.max_rooms_per_account;
    if founded_by(state, &account) >= max {
        let text = format!("Your account has registered as many rooms as it may ({max}).");
        say(state, id, &text);
        return;
    }
    let registered_ms = millis(state.clock.now());
    let Some(channel) = state.channels.get_mut(&folded) else {
        return;
    };
    channel.registration = Some(Registration {
        founder: account.clone(),
        access: Vec::new(),
        registered_ms,
    });
    let name = channel.name.clone();
    info!(room = %name, %account, "room registered");
    state.save_room(&folded);
    say(
        state,
        id,
        &format!("{name} is now registered to {account}."),
    );
}

/// How many rooms `account` founded.
fn founded_by(state: &State, account: &str) -> usize {
    let casemapping = state.config.server.casemapping;
    state
        .channels
        .values()
        .filter_map(|channel| channel.registration.as_ref())
        .filter(|registration| casemapping.eq(&registration.founder, account))
        .count()
}

fn room_info(state: &mut State, id: ClientId, name: &str) {
    let folded = state.fold(name);
    let found = state
        .visible_channel(id, &folded)
        .and_then(|channel| Some((channel.name.clone(), channel.registration.clone()?)));
    let Some((name, registration)) = found else {
        say(state, id, &format!("{name} is not registered."));
        return;
    };
    let created = std::time::UNIX_EPOCH
        + std::time::Duration::from_millis(u64::try_from(registration.registered_ms).unwrap_or(0));
    let registered = crate::proto::tags::server_time(created);
    say(state, id, &format!("Room: {name}"));
    say(state, id, &format!("Founder: {}", registration.founder));
    say(state, id, &format!("Registered: {registered}"));
}

/// `ACCESS <#room> LIST|ADD|DEL ...`
fn access(state: &mut State, id: ClientId, name: &str, rest: &[&str]) {
    let verb = rest.first().map(|verb| verb.to_ascii_uppercase());
    match (verb.as_deref(), rest.get(1..).unwrap_or_default()) {
        (Some("LIST") | None, _) => access_list(state, id, name),
        (Some("ADD"), [account, level, ..]) => match AccessLevel::parse(level) {
            Some(level) => access_add(state, id, name, account, level),
            None => say(state, id, "The level is op or voice."),
        },
        (Some("DEL"), [account, ..]) => access_del(state, id, name, account),
        _ => say(
            state,
            id,
            "Syntax: ACCESS <#room> LIST | ADD <account> op|voice | DEL <account>",
        ),
    }
}

fn access_list(state: &mut State, id: ClientId, name: &str) {
    let Some((folded, _)) = with_level(state, id, name, AccessLevel::Op) else {
        return;
    };
    let Some(channel) = state.channels.get(&folded) else {
        return;
    };
    let room = channel.name.clone();
    let access = channel
        .registration
        .as_ref()
        .map(|registration| registration.access.clone())
        .unwrap_or_default();
    say(state, id, &format!("Access list of {room}:"));
    for (account, level) in access {
        say(state, id, &format!("{account} {}", level.as_str()));
    }
    say(state, id, "End of the access list.");
}

fn access_add(state: &mut State, id: ClientId, name: &str, account: &str, level: AccessLevel) {
    let Some(founded) = as_founder(state, id, name) else {
        return;
    };
    ask_account(
        state,
        id,
        account,
        Pending::new(founded, Action::AccessAdd(level)),
    );
}

fn access_del(state: &mut State, id: ClientId, name: &str, account: &str) {
    let Some((folded, _)) = as_founder(state, id, name) else {
        return;
    };
    let casemapping = state.config.server.casemapping;
    let Some(channel) = state.channels.get_mut(&folded) else {
        return;
    };
    let room = channel.name.clone();
    let Some(registration) = channel.registration.as_mut() else {
        return;
    };
    let before = registration.access.len();
    registration
        .access
        .retain(|(listed, _)| !casemapping.eq(listed, account));
    if registration.access.len() == before {
        say(
            state,
            id,
            &format!("{account} is not on the access list of {room}."),
        );
        return;
    }
    state.save_room(&folded);
    say(
        state,
        id,
        &format!("{account} is off the access list of {room}."),
    );
}

fn transfer(state: &mut State, id: ClientId, name: &str, account: &str) {
    let Some(founded) = as_founder(state, id, name) else {
        return;
    };
    ask_account(state, id, account, Pending::new(founded, Action::Transfer));
}

/// Asks the worker whether `account` exists, holding the client's later
/// lines; [`answered`] finishes `pending`.
fn ask_account(state: &mut State, id: ClientId, account: &str, pending: Pending) {
    let job = AccountJob::Info {
        account: account.to_owned(),
    };
    if !state.account_job(id, AccountPurpose::ChanServ, job) {
        say(
            state,
            id,
            "Accounts cannot be reached right now; try again later.",
        );
        return;
    }
    if let Some(client) = state.clients.get_mut(&id) {
        client.chanserv = Some(Box::new(pending));
    }
}

/// The worker's answer to ACCESS ADD or TRANSFER: the account as
/// registered, or none.
pub fn answered(state: &mut State, id: ClientId, outcome: AccountOutcome) {
    let Some(pending) = state.clients.get_mut(&id).and_then(|c| c.chanserv.take()) else {
        return;
    };
    if !pending.still_holds(state, id) {
        say(
            state,
            id,
            "The room's registration changed meanwhile; nothing was done.",
        );
        return;
    }
    let account = match outcome {
        AccountOutcome::About(Some(about)) => about.name,
        AccountOutcome::About(None) => {
            say(state, id, "No such account.");
            return;
        }
        _ => {
            say(
                state,
                id,
                "Accounts cannot be reached right now; try again later.",
            );
            return;
        }
    };
    let room = pending.room;
    match pending.action {
        Action::AccessAdd(level) => add_access(state, id, &room, account, level),
        Action::Transfer => give_room(state, id, &room, account),
    }
}

/// ACCESS ADD, once the account is known to exist: a new entry, or a new
/// level for an existing one. Members logged in to it get their status.
fn add_access(
    state: &mut State,
    id: ClientId,
    folded: &Folded,
    account: String,
    level: AccessLevel,
) {
    let casemapping = state.config.server.casemapping;
    let Some(channel) = state.channels.get_mut(folded) else {
        return;
    };
    let room = channel.name.clone();
    let Some(registration) = channel.registration.as_mut() else {
        say(state, id, &format!("{room} is not registered."));
        return;
    };
    let full = registration.access.len() >= MAX_ACCESS_ENTRIES;
    let listed = registration
        .access
        .iter_mut()
        .find(|(a, _)| casemapping.eq(a, &account));
    match listed {
        Some(entry) => entry.1 = level,
        None if full => {
            let text = format!("The access list of {room} is full ({MAX_ACCESS_ENTRIES}).");
            say(state, id, &text);
            return;
        }
        None => registration.access.push((account.clone(), level)),
    }
    state.save_room(folded);
    let text = format!("{account} now gets {} in {room}.", level.as_str());
    say(state, id, &text);
    grant_members(state, folded);
}

/// TRANSFER, once the account is known to exist and may found one more.
fn give_room(state: &mut State, id: ClientId, folded: &Folded, account: String) {
    let max = state.config.accounts.max_rooms_per_account;
    if founded_by(state, &account) >= max {
        let text = format!("{account} has registered as many rooms as it may ({max}).");
        say(state, id, &text);
        return;
    }
    let casemapping = state.config.server.casemapping;
    let Some(channel) = state.channels.get_mut(folded) else {
        return;
    };
    let room = channel.name.clone();
    let Some(registration) = channel.registration.as_mut() else {
        say(state, id, &format!("{room} is not registered."));
        return;
    };
    let from = std::mem::replace(&mut registration.founder, account.clone());
    registration
        .access
        .retain(|(listed, _)| !casemapping.eq(listed, &account));
    info!(%room, %from, to = %account, "room transferred");
    state.save_room(folded);
    say(state, id, &format!("{room} now belongs to {account}."));
    grant_members(state, folded);
}

/// Gives every member of `folded` the status its account is owed.
fn grant_members(state: &mut State, folded: &Folded) {
    let Some(channel) = state.channels.get(folded) else {
        return;
    };
    let mut members: Vec<ClientId> = channel.members.keys().copied().collect();
    members.sort_unstable();
    for member in members {
        state.grant_owed_status(member, folded);
    }
}

/// `OP|DEOP|VOICE|DEVOICE <#room> [nick]`: ops set any member's status;
/// an account owed voice may voice itself; anyone may give up its own.
fn status(
    state: &mut State,
    id: ClientId,
    name: &str,
    nick: &[&str],
    (status, on): (MemberStatus, bool),
) {
    let own = nick.is_empty()
        || nick
            .first()
            .is_some_and(|n| state.fold(n) == own_nick(state, id));
    let needed = match (own, on, status) {
        (true, false, _) => AccessLevel::Voice,
        (true, true, MemberStatus::Voice) => AccessLevel::Voice,
        _ => AccessLevel::Op,
    };
    let Some((folded, room)) = with_level(state, id, name, needed) else {
        return;
    };
    let target = match nick.first() {
        Some(nick) if !own => state.nicks.get(&state.fold(nick)).copied(),
        _ => Some(id),
    };
    let member = target.filter(|target| {
        state
            .channels
            .get(&folded)
            .is_some_and(|channel| channel.members.contains_key(target))
    });
    let Some(member) = member else {
        let who = nick.first().copied().unwrap_or("You");
        say(state, id, &format!("{who} is not in {room}."));
        return;
    };
    state.set_status(member, &folded, status, on);
}

fn drop_room(state: &mut State, id: ClientId, name: &str) {
    let Some(account) = logged_in(state, id) else {
        return;
    };
    let Some((folded, room, registration)) = registration_of(state, id, name) else {
        return;
    };
    let oper = state
        .clients
        .get(&id)
        .is_some_and(|client| client.modes.oper);
    let founder = state
        .config
        .server
        .casemapping
        .eq(&registration.founder, &account);
    if !founder && !oper {
        say(
            state,
            id,
            &format!("Only the founder of {room} may do that."),
        );
        return;
    }
    let Some(channel) = state.channels.get_mut(&folded) else {
        return;
    };
    channel.registration = None;
    let emptied = channel.members.is_empty() && !channel.persistent;
    state
        .admin
        .request(crate::core::AdminRequest::DropRoom { name: room.clone() });
    if emptied {
        state.destroy_room(&folded);
    }
    info!(%room, by = %account, founder = %registration.founder, "room dropped");
    if !founder {
        let nick = state
            .clients
            .get(&id)
            .map(|c| c.nick.clone())
            .unwrap_or_default();
        let text = format!(
            "ChanServ: {nick} ({account}) dropped {room}, founded by {}",
            registration.founder
        );
        state.notice_operators(&text);
    }
    say(state, id, &format!("{room} is no longer registered."));
}

/// The client's account; tells it to log in first when it has none.
fn logged_in(state: &mut State, id: ClientId) -> Option<String> {
    let account = state.clients.get(&id)?.account.clone();
    if account.is_none() {
        say(state, id, "You must be logged in to an account to do that.");
    }
    account
}

/// The registered room `name`, as `id` may see it: its folded name, its
/// name and its registration; tells the client when there is none.
fn registration_of(
    state: &mut State,
    id: ClientId,
    name: &str,
) -> Option<(Folded, String, Registration)> {
    let folded = state.fold(name);
    let found = state
        .visible_channel(id, &folded)
        .and_then(|channel| Some((channel.name.clone(), channel.registration.clone()?)));
    match found {
        Some((room, registration)) => Some((folded, room, registration)),
        None => {
            say(state, id, &format!("{name} is not registered."));
            None
        }
    }
}

/// The registered room `name`, when the client's account is owed at
/// least `needed` there (ops are owed everything voice is).
fn with_level(
    state: &mut State,
    id: ClientId,
    name: &str,
    needed: AccessLevel,
) -> Option<(Folded, String)> {
    let account = logged_in(state, id)?;
    let (folded, room, _) = registration_of(state, id, name)?;
    let level = state
        .channels
        .get(&folded)
        .and_then(|channel| state.room_level(channel, &account));
    let enough = match needed {
        AccessLevel::Op => level == Some(AccessLevel::Op),
        AccessLevel::Voice => level.is_some(),
    };
    if !enough {
        say(
            state,
            id,
            &format!("You have no access to do that in {room}."),
        );
        return None;
    }
    Some((folded, room))
}

/// The registered room `name` and its registration, when the client's
/// account founded it.
fn as_founder(state: &mut State, id: ClientId, name: &str) -> Option<(Folded, Registration)> {
    let account = logged_in(state, id)?;
    let (folded, room, registration) = registration_of(state, id, name)?;
    if !state
        .config
        .server
        .casemapping
        .eq(&registration.founder, &account)
    {
        say(
            state,
            id,
            &format!("Only the founder of {room} may do that."),
        );
        return None;
    }
    Some((folded, registration))
}

fn own_nick(state: &State, id: ClientId) -> Folded {
    let nick = state
        .clients
        .get(&id)
        .map(|c| c.nick.as_str())
        .unwrap_or_default();
    state.fold(nick)
}

/// A NOTICE from the service to `id`.
fn say(state: &mut State, id: ClientId, text: &str) {
    let Some(client) = state.clients.get(&id) else {
        return;
    };
    let line = Line::new(Some(SOURCE), "NOTICE")
        .arg(client.target())
        .trailing(text)
        .finish();
    state.send(id, line);
}

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc::UnboundedReceiver;

    use crate::accounts::{AccessLevel, RoomRecord};
    use crate::config::Config;
    use crate::core::login::tests::answer;
    use crate::core::testing::Harness;
    use crate::core::{AccountAbout, AccountJob, AccountOutcome, AdminRequest};

    const SAID: &str = ":ChanServ!ChanServ@services. NOTICE";

    fn log_in(h: &mut Harness, nick: &str, account: &str) {
        let id = h.id(nick);
        h.state.log_in(id, account);
        h.take(nick);
    }

    /// What the client was told by ChanServ, without the prefix.
    fn told(h: &mut Harness, nick: &str) -> Vec<String> {
        let prefix = format!("{SAID} {nick} :");
        h.take(nick)
            .into_iter()
            .map(|line| {
                line.strip_prefix(&prefix)
                    .map_or(line.clone(), str::to_owned)
            })
            .collect()
    }

    fn saved(requests: &mut UnboundedReceiver<AdminRequest>) -> RoomRecord {
        loop {
            match requests.try_recv() {
                Ok(AdminRequest::SaveRoom(record)) => return record,
                Ok(_) => continue,
                Err(_) => panic!("no room was saved"),
            }
        }
    }

    /// alice (op, logged in as alice) registered #room; bob is in it too.
    fn registered(config: Config) -> (Harness, UnboundedReceiver<AdminRequest>) {
        let mut h = Harness::with_config(config);
        let mut requests = h.attach_worker();
        h.register("alice");
        h.register("bob");
        h.send("alice", "JOIN #room");
        h.send("bob", "JOIN #room");
        log_in(&mut h, "alice", "alice");
        h.take("alice");
        h.take("bob");
        h.send("alice", "CS REGISTER #room");
        assert_eq!(told(&mut h, "alice"), ["#room is now registered to alice."]);
        saved(&mut requests);
        (h, requests)
    }

    fn about(name: &str) -> AccountOutcome {
        AccountOutcome::About(Some(AccountAbout {
            name: name.into(),
            created_ms: 0,
            suspended: false,
            nicks: vec![name.into()],
        }))
    }

    #[test]
    fn register_needs_a_logged_in_op_of_the_room() {
        let mut h = Harness::new();
        let mut requests = h.attach_worker();
        h.register("alice");
        h.register("bob");
        h.send("alice", "JOIN #room");
        h.send("bob", "JOIN #room");
        h.take("alice");
        h.send("alice", "PRIVMSG ChanServ :REGISTER #room");
        assert_eq!(
            told(&mut h, "alice"),
            ["You must be logged in to an account to do that."]
        );
        log_in(&mut h, "bob", "bob");
        h.take("bob");
        h.send("bob", "CS REGISTER #room");
        assert_eq!(
            told(&mut h, "bob"),
            ["You must be an operator of #room to register it."]
        );
        assert!(requests.try_recv().is_err(), "nothing to store");
        log_in(&mut h, "alice", "Alice");
        h.send("alice", "CS REGISTER #ROOM");
        assert_eq!(told(&mut h, "alice"), ["#room is now registered to Alice."]);
        let record = saved(&mut requests);
        assert_eq!(
            (record.name.as_str(), record.founder.as_str()),
            ("#room", "Alice")
        );
        h.send("alice", "CS REGISTER #room");
        assert_eq!(told(&mut h, "alice"), ["#room is registered already."]);
    }

    #[test]
    fn an_account_registers_at_most_max_rooms_per_account() {
        let mut config = Config::default();
        config.accounts.max_rooms_per_account = 1;
        let (mut h, mut requests) = registered(config);
        h.send("alice", "JOIN #second");
        h.take("alice");
        h.send("alice", "CS REGISTER #second");
        assert_eq!(
            told(&mut h, "alice"),
            ["Your account has registered as many rooms as it may (1)."]
        );
        assert!(requests.try_recv().is_err());
    }

    #[test]
    fn an_access_add_answered_after_the_room_changed_hands_is_not_applied() {
        let (mut h, mut requests) = registered(Config::default());
        h.register("oper");
        h.make_oper("oper");
        log_in(&mut h, "oper", "oper");
        log_in(&mut h, "bob", "bob");
        h.send("alice", "MODE #room +o bob");
        h.take("bob");
        h.send("alice", "CS ACCESS #room ADD mallory op");
        h.send("oper", "CS DROP #room");
        h.send("bob", "CS REGISTER #room");
        assert_eq!(told(&mut h, "bob"), ["#room is now registered to bob."]);
        answer(&mut h, &mut requests, about("mallory"));
        let said = told(&mut h, "alice");
        assert_eq!(
            said.last().unwrap(),
            "The room's registration changed meanwhile; nothing was done."
        );
        let registration = h.channel("#room").registration.clone().unwrap();
        assert_eq!(registration.founder, "bob");
        assert!(registration.access.is_empty(), "{registration:?}");
    }

    #[test]
    fn the_founder_walks_past_the_locks_of_an_emptied_room_and_others_do_not() {
        let (mut h, _requests) = registered(Config::default());
        h.send("alice", "MODE #room +iklb key 1 *!*@*");
        h.send("alice", "QUIT");
        h.send("bob", "PART #room");
        h.register("alice");
        h.take("bob");
        h.send("bob", "JOIN #room key");
        assert!(h.take("bob")[0].contains(" 474 bob #room "));
        h.send("alice", "JOIN #room");
        assert!(
            h.take("alice")[0].contains(" 474 alice #room "),
            "not yet logged in"
        );
        log_in(&mut h, "alice", "alice");
        h.send("alice", "JOIN #room");
        let lines = h.take("alice");
        assert_eq!(lines[1], ":ChanServ!ChanServ@services. MODE #room +o alice");
    }

    #[test]
    fn transfer_to_an_account_at_its_room_limit_is_refused() {
        let mut config = Config::default();
        config.accounts.max_rooms_per_account = 1;
        let (mut h, mut requests) = registered(config);
        log_in(&mut h, "bob", "bob");
        h.send("bob", "JOIN #bobs");
        h.send("bob", "CS REGISTER #bobs");
        assert_eq!(
            told(&mut h, "bob").last().unwrap(),
            "#bobs is now registered to bob."
        );
        saved(&mut requests);
        h.send("alice", "CS TRANSFER #room bob");
        answer(&mut h, &mut requests, about("bob"));
        assert_eq!(
            told(&mut h, "alice"),
            ["bob has registered as many rooms as it may (1)."]
        );
        let registration = h.channel("#room").registration.clone().unwrap();
        assert_eq!(registration.founder, "alice");
        assert!(requests.try_recv().is_err(), "nothing to store");
    }

    #[test]
    fn a_founder_who_left_is_opped_on_return_and_a_nick_thief_is_not() {
        let (mut h, _requests) = registered(Config::default());
        h.send("alice", "QUIT");
        h.send("bob", "PART #room");
        assert!(
            h.state.channels.contains_key(&h.state.fold("#room")),
            "kept empty"
        );
        // Someone else takes the nick while alice is away: no account.
        h.register("alice");
        h.send("alice", "JOIN #room");
        let lines = h.take("alice");
        assert!(lines.iter().all(|l| !l.contains(" MODE ")), "{lines:?}");
        let alice = h.id("alice");
        assert!(!h.channel("#room").members[&alice].op);
        // The real alice logs in: ChanServ gives the founder her op.
        log_in(&mut h, "alice", "ALICE");
        assert!(h.channel("#room").members[&alice].op);
        h.send("alice", "PART #room");
        h.take("alice");
        h.send("alice", "JOIN #room");
        let lines = h.take("alice");
        assert_eq!(lines[1], ":ChanServ!ChanServ@services. MODE #room +o alice");
        assert!(
            lines.iter().any(|l| l.ends_with(":@alice")),
            "NAMES shows it: {lines:?}"
        );
    }

    #[test]
    fn access_add_checks_the_account_then_gives_its_status() {
        let (mut h, mut requests) = registered(Config::default());
        log_in(&mut h, "bob", "bob");
        h.send("alice", "CS ACCESS #room ADD nobody op");
        let job = answer(&mut h, &mut requests, AccountOutcome::About(None));
        assert!(matches!(job, AccountJob::Info { account } if account == "nobody"));
        assert_eq!(told(&mut h, "alice"), ["No such account."]);
        h.send("bob", "CS ACCESS #room ADD bob op");
        assert_eq!(
            told(&mut h, "bob"),
            ["Only the founder of #room may do that."]
        );
        h.send("alice", "CS ACCESS #room ADD BOB voice");
        answer(&mut h, &mut requests, about("bob"));
        assert_eq!(told(&mut h, "alice")[0], "bob now gets voice in #room.");
        assert_eq!(
            h.take("bob"),
            [":ChanServ!ChanServ@services. MODE #room +v bob"]
        );
        assert_eq!(
            saved(&mut requests).access,
            [("bob".to_owned(), AccessLevel::Voice)]
        );
        h.send("alice", "CS ACCESS #room LIST");
        assert_eq!(
            told(&mut h, "alice"),
            [
                "Access list of #room:",
                "bob voice",
                "End of the access list."
            ]
        );
        h.send("bob", "CS ACCESS #room LIST");
        assert_eq!(
            told(&mut h, "bob"),
            ["You have no access to do that in #room."]
        );
        h.send("alice", "CS ACCESS #room DEL Bob");
        assert_eq!(
            told(&mut h, "alice"),
            ["Bob is off the access list of #room."]
        );
        assert!(saved(&mut requests).access.is_empty());
    }

    #[test]
    fn op_and_voice_follow_the_access_level() {
        let (mut h, mut requests) = registered(Config::default());
        log_in(&mut h, "bob", "bob");
        h.send("alice", "CS ACCESS #room ADD bob voice");
        answer(&mut h, &mut requests, about("bob"));
        h.take("bob");
        h.send("bob", "CS DEVOICE #room");
        h.send("bob", "CS OP #room");
        h.send("bob", "CS VOICE #room");
        h.take("alice");
        assert_eq!(
            told(&mut h, "bob"),
            [
                ":ChanServ!ChanServ@services. MODE #room -v bob",
                "You have no access to do that in #room.",
                ":ChanServ!ChanServ@services. MODE #room +v bob",
            ]
        );
        h.send("alice", "CS DEOP #room alice");
        h.send("alice", "CS OP #room bob");
        h.send("alice", "CS OP #room nobody");
        assert_eq!(
            told(&mut h, "alice"),
            [
                ":ChanServ!ChanServ@services. MODE #room -o alice",
                ":ChanServ!ChanServ@services. MODE #room +o bob",
                "nobody is not in #room.",
            ]
        );
    }

    #[test]
    fn transfer_gives_the_room_away_and_drop_is_the_founders_or_an_operators() {
        let (mut h, mut requests) = registered(Config::default());
        h.register("oper");
        h.make_oper("oper");
        log_in(&mut h, "oper", "oper");
        h.send("alice", "CS TRANSFER #room bob");
        answer(&mut h, &mut requests, about("bob"));
        assert_eq!(told(&mut h, "alice"), ["#room now belongs to bob."]);
        assert_eq!(saved(&mut requests).founder, "bob");
        h.send("alice", "CS DROP #room");
        assert_eq!(
            told(&mut h, "alice"),
            ["Only the founder of #room may do that."]
        );
        h.send("alice", "CS INFO #room");
        assert_eq!(told(&mut h, "alice")[..2], ["Room: #room", "Founder: bob"]);
        h.send("oper", "CS DROP #room");
        let lines = h.take("oper");
        assert!(
            lines
                .iter()
                .any(|l| l.contains("oper (oper) dropped #room, founded by bob")),
            "{lines:?}"
        );
        assert!(
            lines
                .last()
                .unwrap()
                .ends_with(":#room is no longer registered.")
        );
        assert!(matches!(
            requests.try_recv(),
            Ok(AdminRequest::DropRoom { name }) if name == "#room"
        ));
        h.send("alice", "CS INFO #room");
        assert_eq!(told(&mut h, "alice"), ["#room is not registered."]);
    }

    #[test]
    fn topic_modes_and_lists_are_saved_and_restored() {
        let (mut h, mut requests) = registered(Config::default());
        h.send("alice", "TOPIC #room :kept");
        saved(&mut requests);
        h.send("alice", "MODE #room +v bob");
        assert!(requests.try_recv().is_err(), "a status is not stored");
        h.send("alice", "MODE #room +Rk-t+b key ~a:mallory");
        let record = saved(&mut requests);
        assert_eq!(record.topic.as_ref().map(|t| t.text.as_str()), Some("kept"));
        assert_eq!(
            (record.modes.as_str(), record.key.as_deref()),
            ("Rn", Some("key"))
        );
        assert_eq!(record.lists[0].mask, "~a:mallory");
        let mut restarted = Harness::new();
        restarted.state.load_registered_rooms(vec![record.clone()]);
        let channel = restarted.channel("#room");
        assert!(channel.members.is_empty());
        assert!(channel.modes.registered_only && channel.modes.key.is_some());
        assert_eq!(channel.bans[0].text(), "~a:mallory");
        assert_eq!(channel.history_floor, record.history_floor_ms);
        assert_eq!(crate::core::registered::room_record(channel), Some(record));
    }

    #[test]
    fn an_outsider_learns_nothing_of_a_secret_room() {
        let mut h = Harness::new();
        h.register("alice");
        h.register("mallory");
        h.send("alice", "JOIN #hidden");
        h.send("alice", "MODE #hidden +s");
        log_in(&mut h, "mallory", "mallory");
        h.send("mallory", "CS REGISTER #hidden");
        assert_eq!(
            told(&mut h, "mallory"),
            ["#hidden does not exist; join it first."]
        );
        log_in(&mut h, "alice", "alice");
        h.send("alice", "CS REGISTER #hidden");
        assert_eq!(
            told(&mut h, "alice"),
            ["#hidden is now registered to alice."]
        );
        for command in [
            "CS INFO #hidden",
            "CS ACCESS #hidden LIST",
            "CS OP #hidden mallory",
            "CS TRANSFER #hidden mallory",
            "CS DROP #hidden",
        ] {
            h.send("mallory", command);
            let said = told(&mut h, "mallory");
            assert_eq!(said, ["#hidden is not registered."], "{command}");
        }
    }

    #[test]
    fn the_service_nick_is_reserved_and_bad_input_is_answered() {
        let mut h = Harness::new();
        h.register("alice");
        h.send("alice", "NICK chanserv");
        assert_eq!(
            h.take("alice"),
            [":irc.test 432 alice chanserv :Erroneous nickname"]
        );
        for line in [
            "CS OP",
            "CS ACCESS #room ADD bob admin",
            "CS FROB #room",
            "CS DROP #none",
        ] {
            h.send("alice", line);
            let said = h.take("alice");
            assert_eq!(said.len(), 1, "{line}: {said:?}");
            assert!(said[0].starts_with(SAID), "{line}");
        }
        h.send("alice", "CS HELP");
        assert!(h.take("alice").len() > 5);
    }
}
