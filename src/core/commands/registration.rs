//! PASS, NICK and USER, in any order, and the welcome burst that ends
//! registration.

use chrono::{DateTime, Utc};

use super::info::{self, VERSION};
use crate::core::bans::{self, BanKind};
use crate::core::{AccountOutcome, AccountPurpose, Refusal};
use crate::core::{ClientId, State, history_access, isupport};
use crate::proto::validate::is_valid_nick;
use crate::proto::{Folded, Line, Message};
use crate::proto::{modes, numeric};

/// `PASS <password>`
///
/// PASS while registering; afterwards dispatch answers 462, as for USER.
/// Without a server password, `PASS <account>:<password>` logs in to an
/// account, as on Ergo, for clients without SASL; registration waits for
/// the check.
pub fn pass(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    let expected = state.config.server.password.clone();
    let given = message.param(0);
    if let (None, Some((account, password))) = (&expected, given.split_once(':'))
        && state.accounts_enabled()
        && !account.is_empty()
    {
        if !state.check_login(id, AccountPurpose::Pass, account, password) {
            pass_answered(state, id, AccountOutcome::Invalid);
        }
        return Ok(());
    }
    let Some(client) = state.clients.get_mut(&id) else {
        return Ok(());
    };
    client.password_ok = expected.is_none_or(|expected| expected == given);
    Ok(())
}

/// The worker's answer to `PASS <account>:<password>`: 900, or a notice
/// saying why not; registration goes on either way.
pub fn pass_answered(state: &mut State, id: ClientId, outcome: AccountOutcome) {
    let text = match outcome {
        AccountOutcome::Valid(account) => return state.log_in(id, &account),
        AccountOutcome::Suspended => "PASS: that account is suspended; you are not logged in",
        AccountOutcome::Unavailable => {
            "PASS: accounts cannot be reached right now; you are not logged in"
        }
        _ => "PASS: invalid account credentials; you are not logged in",
    };
    state.server_notice(id, text);
}

/// `NICK <nickname>`
pub fn nick(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    let wanted = message.param(0);
    if wanted.is_empty() {
        return Err(Refusal::no_nickname_given());
    }
    if !is_valid_nick(wanted, state.config.limits.nick_length)
        || super::nickserv::is_service(state, wanted)
        || super::chanserv::is_service(state, wanted)
    {
        return Err(Refusal::new(numeric::ERR_ERRONEOUSNICKNAME, &[wanted]));
    }
    let folded = state.fold(wanted);
    match state.nicks.get(&folded) {
        Some(owner) if *owner != id => {
            return Err(Refusal::new(numeric::ERR_NICKNAMEINUSE, &[wanted]));
        }
        _ => {}
    }
    let Some(client) = state.clients.get(&id) else {
        return Ok(());
    };
    if client.nick == wanted {
        return Ok(());
    }
    if state.nick_refused_after_grace(id, wanted) {
        let refusal = Refusal::new(numeric::ERR_NICKNAMEINUSE, &[wanted]);
        return Err(refusal.with_text("Nickname is reserved by a different account"));
    }
    // Masks ignore case: a change of case alone lifts no ban.
    let case_only = state.fold(&client.nick) == state.fold(wanted);
    if let Some(room) = room_silencing(state, id).filter(|_| !case_only) {
        return Err(Refusal::new(numeric::ERR_BANNICKCHANGE, &[wanted, &room]));
    }
    // In a network the nick is first claimed network-wide; the client's
    // next lines wait for the answer.
    if state.network.is_some() && !case_only {
        if state.network_is_down() {
            let refusal = Refusal::new(numeric::ERR_UNAVAILRESOURCE, &[wanted]);
            return Err(refusal.with_text("The network cannot be reached; try again soon"));
        }
        state.claim_nick(id, wanted, &folded, None);
        return Ok(());
    }
    take_nick(state, id, wanted);
    Ok(())
}

/// Gives `id` the nick `wanted`, which it may take: a registered client
/// announces it, one registering may now finish.
pub(crate) fn take_nick(state: &mut State, id: ClientId, wanted: &str) {
    let folded = state.fold(wanted);
    state.remember_nick(id);
    let Some(old) = rename(state, id, wanted, folded) else {
        return;
    };
    if old.registered {
        announce_nick(state, id, wanted, &old);
        if old.renamed {
            state.check_reserved_nick(id);
        }
    } else {
        try_register(state, id);
    }
}

/// Renames a registered client the server's way (to a guest nick): no
/// ban keeps it, and the nick is known to be free and valid.
pub fn force_nick(state: &mut State, id: ClientId, nick: &str) {
    state.remember_nick(id);
    let folded = state.fold(nick);
    if let Some(old) = rename(state, id, nick, folded) {
        announce_nick(state, id, nick, &old);
    }
}

/// Who a client was before [`rename`].
struct OldNick {
    nick: String,
    source: String,
    registered: bool,
    /// A new nick, not a change of case only.
    renamed: bool,
}

/// Gives `id` the nick `wanted` (folded: `folded`), in its record and in
/// the nick index.
fn rename(state: &mut State, id: ClientId, wanted: &str, folded: Folded) -> Option<OldNick> {
    let client = state.clients.get_mut(&id)?;
    let old_folded = state.config.server.casemapping.fold(&client.nick);
    let old = OldNick {
        nick: std::mem::take(&mut client.nick),
        source: client.source.clone(),
        registered: client.registered,
        renamed: old_folded != folded,
    };
    client.nick = wanted.to_owned();
    client.update_source();
    if state.nicks.get(&old_folded) == Some(&id) {
        state.nicks.remove(&old_folded);
    }
    // Only a user's own node gives up its claims while it is connected.
    let local = state.clients.get(&id).is_some_and(|c| c.remote.is_none());
    if old.renamed && !old.nick.is_empty() && local {
        state.release_nick(id, &old_folded);
    }
    if old.renamed {
        // Private history read under the new nick starts now.
        let floor = history_access::starting_floor(state.clock.now(), state.nick_ended_ms);
        if let Some(client) = state.clients.get_mut(&id) {
            client.nick_floor = floor;
        }
    }
    state.nicks.insert(folded, id);
    Some(old)
}

/// The NICK line to the client and everyone who shares a room with it.
fn announce_nick(state: &mut State, id: ClientId, wanted: &str, old: &OldNick) {
    let line = Line::new(Some(&old.source), "NICK").arg(wanted).finish();
    let mut event = state.event_from(id, line);
    state.record_event_in_rooms(id, &event);
    let mut audience = state.peers(id);
    audience.insert(id);
    state.send_all(audience, &mut event);
    state.network_nick(id, wanted);
    // A change of case only is the same nick to MONITOR.
    if old.renamed {
        state.monitor_offline(&old.nick);
        state.monitor_online(id);
    }
}

/// A room where a ban keeps `id` quiet, which a new nick could lift: as in
/// Solanum, a banned member keeps its nick until the ban goes.
fn room_silencing(state: &State, id: ClientId) -> Option<String> {
    let client = state.clients.get(&id)?;
    client
        .channels
        .iter()
        .filter_map(|folded| state.channels.get(folded))
        .filter(|channel| {
            channel
                .members
                .get(&id)
                .is_some_and(|membership| channel.silences(*membership, client))
        })
        .map(|channel| channel.name.clone())
        .min()
}

/// `USER <username> 0 * <realname>`
pub fn user(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    let max = state.config.limits.user_length.max(2);
    let max_realname = state.config.limits.realname_length;
    let Some(client) = state.clients.get_mut(&id) else {
        return Ok(());
    };
    if message.param(0).is_empty() || message.param(3).is_empty() {
        return Err(Refusal::need_more_params("USER"));
    }
    let mut user: String = message
        .param(0)
        .chars()
        .filter(|c| is_user_char(*c))
        .take(max - 1)
        .collect();
    if user.is_empty() {
        // Nothing of it can stand in `nick!user@host` (an emoji, a name in
        // another script): a placeholder lets the client in all the same.
        user = FALLBACK_USER.chars().take(max - 1).collect();
    }
    client.user = format!("~{user}");
    client.realname = truncate(message.param(3), max_realname).to_owned();
    try_register(state, id);
    Ok(())
}

/// The user name of a client whose own has no character a user name keeps.
const FALLBACK_USER: &str = "user";

/// Characters a user name keeps; anything that could confuse `nick!user@host`
/// parsing is dropped.
fn is_user_char(c: char) -> bool {
    c.is_ascii_graphic() && !matches!(c, '!' | '@' | '*' | '?' | ':' | ',')
}

/// The longest prefix of at most `max` bytes that ends on a char boundary.
pub fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Completes registration once NICK, USER, PASS and CAP allow it.
pub fn try_register(state: &mut State, id: ClientId) {
    let needs_password = state.config.server.password.is_some();
    let Some(client) = state.clients.get_mut(&id) else {
        return;
    };
    if client.registered
        || client.nick.is_empty()
        || client.user.is_empty()
        || client.cap_negotiating
    {
        return;
    }
    if needs_password && !client.password_ok {
        state.refuse(id, Refusal::password_mismatch());
        state.disconnect(id, "Bad password");
        return;
    }
    if let Some(reason) = bans::kline_for(state, id) {
        bans::refuse_banned(state, id, BanKind::K, &reason);
        return;
    }
    super::authenticate::abort_on_registration(state, id);
    let Some(client) = state.clients.get_mut(&id) else {
        return;
    };
    client.registered = true;
    state.metrics.client_registered();
    client.update_source();
    client.outbox.set_registered();
    tracing::info!(
        client = id.0,
        nick = ?client.nick,
        user = ?client.user,
        realname = ?client.realname,
        ip = %client.ip,
        "client registered"
    );
    let registered = state.registered_count();
    state.max_clients_seen = state.max_clients_seen.max(registered);
    welcome(state, id);
    state.announce_registered_mode(id);
    // A login during registration (SASL) makes an operator by account now.
    super::oper::grant_for_account(state, id);
    state.monitor_online(id);
    state.check_reserved_nick(id);
    state.read_markers_on_login(id);
    state.network_user_up(id);
}

/// 001 to 005, 396 for a cloaked host, the client's metadata, then LUSERS
/// and the MOTD.
fn welcome(state: &mut State, id: ClientId) {
    let Some(client) = state.clients.get(&id) else {
        return;
    };
    let source = client.source.clone();
    let network = state.config.server.network.clone();
    let server = state.server_name().to_owned();
    let created: DateTime<Utc> = state.created.into();
    state.reply(
        id,
        numeric::RPL_WELCOME,
        &[],
        &format!("Welcome to the {network} IRC Network {source}"),
    );
    state.reply(
        id,
        numeric::RPL_YOURHOST,
        &[],
        &format!("Your host is {server}, running version {VERSION}"),
    );
    let created = created.format("%a %b %d %Y at %H:%M:%S UTC");
    state.reply(
        id,
        numeric::RPL_CREATED,
        &[],
        &format!("This server was created {created}"),
    );
    let (channel_modes, with_argument) = modes::channel_modes_for_004();
    let line = state
        .numeric_line(id, numeric::RPL_MYINFO)
        .arg(&server)
        .arg(VERSION)
        .arg(&modes::user_modes_for_004())
        .arg(&channel_modes)
        .arg(&with_argument)
        .finish();
    state.send(id, line);
    isupport::send_isupport(state, id);
    send_visible_host(state, id);
    // Before the MOTD, which clients take as the burst's end.
    crate::core::metadata::on_welcome(state, id);
    info::send_lusers(state, id);
    info::send_motd(state, id);
}

/// `396 <nick> <host> :is now your visible host`: with cloaking on, the
/// user learns the cloak others see (it sees its own address everywhere
/// else), as on other servers. Sent inside the welcome burst, before the
/// MOTD that clients wait for.
fn send_visible_host(state: &mut State, id: ClientId) {
    let Some(client) = state.clients.get(&id) else {
        return;
    };
    if !client.is_cloaked() {
        return;
    }
    let host = client.host.clone();
    let line = state
        .numeric_line(id, numeric::RPL_HOSTHIDDEN)
        .arg(&host)
        .trailing("is now your visible host")
        .finish();
    state.send(id, line);
}
