//! Questions about the server: MOTD, LUSERS, VERSION, TIME, ADMIN, INFO,
//! LINKS.

use chrono::{DateTime, Utc};

use crate::core::Refusal;
use crate::core::isupport::send_isupport;
use crate::core::{ClientId, State};
use crate::proto::Message;
use crate::proto::numeric;

/// The server's name and version, as 002, 004, 351 and INFO give it.
pub const VERSION: &str = concat!("rookery-", env!("CARGO_PKG_VERSION"));

/// Shown when the admin configured no message of the day.
const DEFAULT_MOTD: &[&str] = &[
    "Welcome to rookery.",
    "Type /list to see the rooms, /join #room to enter or create one,",
    "and /msg nick text to talk to someone privately.",
    // irssi refuses a bare /list unless LUSERS reported 1 to 1000 rooms at
    // connect (cmd_list in its irc-commands.c), and RFC 2812 sends no 254
    // while there are none.
    "(irssi wants /list -yes if there were no rooms when you connected.)",
];

/// Answers 402 when the optional server parameter names another server.
fn names_another_server(state: &mut State, id: ClientId, message: &Message) -> bool {
    let Some(target) = message.params.first() else {
        return false;
    };
    let server = state.server_name();
    let ours = state.config.server.casemapping.eq(target, server)
        || crate::proto::mask::Mask::new(target, state.config.server.casemapping).matches(server);
    if !ours {
        let target = target.clone();
        state.refuse(id, Refusal::new(numeric::ERR_NOSUCHSERVER, &[&target]));
    }
    !ours
}

/// `MOTD [<target>]`
pub fn motd(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    if !names_another_server(state, id, message) {
        send_motd(state, id);
    }
    Ok(())
}

pub fn send_motd(state: &mut State, id: ClientId) {
    let server = &state.config.server;
    let lines: Vec<String> = if server.motd.is_none() && server.motd_file.is_none() {
        DEFAULT_MOTD.iter().map(|line| (*line).to_owned()).collect()
    } else {
        state.config.motd_lines()
    };
    if lines.is_empty() {
        state.refuse(id, Refusal::new(numeric::ERR_NOMOTD, &[]));
        return;
    }
    let name = state.server_name().to_owned();
    state.reply(
        id,
        numeric::RPL_MOTDSTART,
        &[],
        &format!("- {name} Message of the day - "),
    );
    for line in lines {
        state.reply(id, numeric::RPL_MOTD, &[], &format!("- {line}"));
    }
    state.reply(id, numeric::RPL_ENDOFMOTD, &[], "End of /MOTD command.");
}

/// `LUSERS`
pub fn lusers(state: &mut State, id: ClientId, _: &Message) -> Result<(), Refusal> {
    send_lusers(state, id);
    Ok(())
}

pub fn send_lusers(state: &mut State, id: ClientId) {
    let users = state.registered_count();
    let invisible = state
        .clients
        .values()
        .filter(|c| c.registered && c.modes.invisible)
        .count();
    let opers = state
        .clients
        .values()
        .filter(|c| c.registered && c.modes.oper)
        .count();
    let unknown = state.clients.len() - users;
    let channels = state.channels.len();
    let max = state.max_clients_seen.max(users);
    let visible = users - invisible;
    state.reply(
        id,
        numeric::RPL_LUSERCLIENT,
        &[],
        &format!(
            "There are {visible} users and {invisible} invisible on {} servers",
            1 + state.network_servers().len()
        ),
    );
    if opers > 0 {
        state.reply(
            id,
            numeric::RPL_LUSEROP,
            &[&opers.to_string()],
            "operator(s) online",
        );
    }
    if unknown > 0 {
        state.reply(
            id,
            numeric::RPL_LUSERUNKNOWN,
            &[&unknown.to_string()],
            "unknown connection(s)",
        );
    }
    // RFC 2812 3.4.2: 252 to 254 only when non-zero (irssi reads a 0 here
    // as "too many rooms to list" and refuses /list).
    if channels > 0 {
        state.reply(
            id,
            numeric::RPL_LUSERCHANNELS,
            &[&channels.to_string()],
            "channels formed",
        );
    }
    let local_users = state
        .clients
        .values()
        .filter(|c| c.registered && c.remote.is_none())
        .count();
    let servers = state.network_servers().len();
    state.reply(
        id,
        numeric::RPL_LUSERME,
        &[],
        &format!("I have {local_users} clients and {servers} servers"),
    );
    let (users, max) = (users.to_string(), max.to_string());
    let local_count = local_users.to_string();
    let local = format!("Current local users {local_count}, max {max}");
    state.reply(id, numeric::RPL_LOCALUSERS, &[&local_count, &max], &local);
    let global = format!("Current global users {users}, max {max}");
    state.reply(id, numeric::RPL_GLOBALUSERS, &[&users, &max], &global);
}

/// `VERSION [<target>]`
///
/// RPL_VERSION, then the 005 lines again.
pub fn version(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    if names_another_server(state, id, message) {
        return Ok(());
    }
    let server = state.server_name().to_owned();
    state.reply(
        id,
        numeric::RPL_VERSION,
        &[VERSION, &server],
        "https://github.com/rookery-irc/rookery",
    );
    send_isupport(state, id);
    Ok(())
}

/// `TIME [<server>]`
pub fn time(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    if names_another_server(state, id, message) {
        return Ok(());
    }
    let now: DateTime<Utc> = state.clock.now().into();
    let server = state.server_name().to_owned();
    let human = now.format("%A %B %d %Y -- %H:%M:%S +00:00").to_string();
    state.reply(
        id,
        numeric::RPL_TIME,
        &[&server, &now.timestamp().to_string()],
        &human,
    );
    Ok(())
}

/// `ADMIN [<target>]`
pub fn admin(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    if names_another_server(state, id, message) {
        return Ok(());
    }
    let server = state.config.server.clone();
    state.reply(
        id,
        numeric::RPL_ADMINME,
        &[&server.name],
        "Administrative info",
    );
    state.reply(id, numeric::RPL_ADMINLOC1, &[], &server.description);
    state.reply(
        id,
        numeric::RPL_ADMINLOC2,
        &[],
        &format!("Network: {}", server.network),
    );
    state.reply(
        id,
        numeric::RPL_ADMINEMAIL,
        &[],
        "No administrative e-mail address is configured",
    );
    Ok(())
}

/// `INFO`
pub fn info(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    if names_another_server(state, id, message) {
        return Ok(());
    }
    let created: DateTime<Utc> = state.created.into();
    let lines = [
        format!("{VERSION}, an IRC server written in Rust."),
        "Rooms, private messages, room history on disk, IRCv3.".to_owned(),
        format!("Running since {}", created.format("%Y-%m-%d %H:%M:%S UTC")),
    ];
    for line in lines {
        state.reply(id, numeric::RPL_INFO, &[], &line);
    }
    state.reply(id, numeric::RPL_ENDOFINFO, &[], "End of INFO list");
    Ok(())
}

/// `LINKS [[server] mask]`: a single server lists itself (364) when `mask`
/// matches its name, then 365. HexChat's server menu sends it.
pub fn links(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    if message.params.len() >= 2 && names_another_server(state, id, message) {
        return Ok(());
    }
    let mask = message.params.last().filter(|mask| !mask.is_empty());
    let server = state.config.server.clone();
    let casemapping = server.casemapping;
    let listed = mask.is_none_or(|mask| {
        casemapping.eq(mask, &server.name)
            || crate::proto::mask::Mask::new(mask, casemapping).matches(&server.name)
    });
    if listed {
        state.reply(
            id,
            numeric::RPL_LINKS,
            &[&server.name, &server.name],
            &format!("0 {}", server.description),
        );
    }
    // The other nodes of the network, one hop away through NATS.
    for other in state.network_servers() {
        let shown = mask.is_none_or(|mask| {
            casemapping.eq(mask, &other)
                || crate::proto::mask::Mask::new(mask, casemapping).matches(&other)
        });
        if shown {
            let hop = format!("1 {}", server.description);
            state.reply(id, numeric::RPL_LINKS, &[&other, &server.name], &hop);
        }
    }
    let shown = mask.map_or("*", String::as_str).to_owned();
    state.reply(id, numeric::RPL_ENDOFLINKS, &[&shown], "End of /LINKS list");
    Ok(())
}
