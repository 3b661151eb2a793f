//! WHOIS: who a user is, where, in which rooms, and how long idle.

use crate::core::Refusal;
use crate::core::caps::Caps;
use crate::core::clock::unix_time;
use crate::core::{ClientId, State};
use crate::proto::Message;
use crate::proto::mask::Mask;
use crate::proto::numeric;
use crate::proto::serialize::MAX_LINE;
use crate::proto::serialize::echo_param;

/// `WHOIS [<target>] <nick>`
pub fn whois(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    // `WHOIS nick` or `WHOIS <server|nick> nick`: the remote form is
    // answered here, as every user is local.
    let (server, nicks) = match message.params.as_slice() {
        [] => (None, ""),
        [nicks] => (None, nicks.as_str()),
        [server, nicks, ..] => (Some(server.as_str()), nicks.as_str()),
    };
    if nicks.is_empty() {
        return Err(Refusal::no_nickname_given());
    }
    if let Some(server) = server
        && !names_this_server_or_a_user(state, server)
    {
        let shown = echo_param(server);
        return Err(Refusal::new(numeric::ERR_NOSUCHSERVER, &[shown]));
    }
    // TARGMAX WHOIS:1: the first nick is answered, the rest dropped.
    let nick = nicks.split(',').next().unwrap_or_default();
    let end = echo_param(nicks);
    match state
        .registered_client(&state.fold(nick))
        .map(|client| client.id)
    {
        Some(target) => send_whois(state, id, target),
        None => {
            state.refuse(id, Refusal::no_such_nick(nick));
        }
    }
    state.reply(id, numeric::RPL_ENDOFWHOIS, &[end], "End of /WHOIS list");
    Ok(())
}

fn names_this_server_or_a_user(state: &State, target: &str) -> bool {
    let casemapping = state.config.server.casemapping;
    let ours = state.server_name();
    casemapping.eq(target, ours)
        || Mask::new(target, casemapping).matches(ours)
        || state.nicks.contains_key(&state.fold(target))
}

/// What WHOIS tells about one client, read before any line is sent.
struct About {
    nick: String,
    user: String,
    host: String,
    realname: String,
    /// The server the client is on: this one, or another node's.
    server: String,
    channels: Vec<String>,
    oper: bool,
    /// 378's text, for those who may see the address behind a cloak.
    real: Option<String>,
    bot: bool,
    account: Option<String>,
    /// Logged in to the account that owns the nick (307).
    owns_nick: bool,
    secure: bool,
    /// 276's fingerprint, for the client itself and operators.
    certificate: Option<String>,
    away: Option<String>,
    idle: u64,
    signon: u64,
}

/// 311, 319, 312, 313, 378, 335, 307, 330, 671, 276, 301, 317 about `target`.
fn send_whois(state: &mut State, id: ClientId, target: ClientId) {
    let Some(about) = about(state, id, target) else {
        return;
    };
    send_identity(state, id, &about);
    send_details(state, id, &about);
    // 760: the metadata keys WHOIS shows.
    for line in crate::core::metadata::whois_lines(state, id, target) {
        state.send(id, line);
    }
}

fn about(state: &State, id: ClientId, target: ClientId) -> Option<About> {
    let client = state.clients.get(&target)?;
    // Behind a cloak, the client itself and operators who may see hosts
    // learn the real address.
    let real = state
        .clients
        .get(&id)
        .filter(|asker| client.is_cloaked() && client.host_visible_to(asker))
        .map(|_| format!("is connecting from *@{} {}", client.real_host, client.ip));
    let sees_certificate =
        id == target || state.clients.get(&id).is_some_and(|asker| asker.modes.oper);
    Some(About {
        nick: client.nick.clone(),
        user: client.user.clone(),
        host: client.host.clone(),
        realname: client.realname.clone(),
        server: state.server_of(client).to_owned(),
        channels: visible_channels(state, id, target),
        oper: client.modes.oper,
        real,
        bot: client.modes.bot,
        account: client.account.clone(),
        owns_nick: state.owns_nick(target),
        secure: client.secure,
        certificate: client.certificate.clone().filter(|_| sees_certificate),
        away: client.away.clone(),
        idle: state
            .clock
            .now()
            .duration_since(client.last_active)
            .map_or(0, |d| d.as_secs()),
        signon: unix_time(client.connected_at),
    })
}

/// 311, the 319s and 312: who, in which rooms, on which server.
fn send_identity(state: &mut State, id: ClientId, about: &About) {
    let nick = &about.nick;
    let line = state
        .numeric_line(id, numeric::RPL_WHOISUSER)
        .arg(nick)
        .arg(&about.user)
        .arg(&about.host)
        .arg("*")
        .trailing(&about.realname)
        .finish();
    state.send(id, line);
    let server = about.server.clone();
    let description = state.config.server.description.clone();
    let asker = state.clients.get(&id).map_or("*", |c| c.target());
    // `:server 319 asker nick :` around the list, and CR LF.
    let overhead = server.len() + asker.len() + nick.len() + 12;
    for chunk in chunks(&about.channels, MAX_LINE.saturating_sub(overhead)) {
        state.reply(id, numeric::RPL_WHOISCHANNELS, &[nick], &chunk);
    }
    state.reply(id, numeric::RPL_WHOISSERVER, &[nick, &server], &description);
}

/// 313, 378, 335, 307, 330, 671, 276 and 301 where they apply, then 317.
fn send_details(state: &mut State, id: ClientId, about: &About) {
    let nick = &about.nick;
    if about.oper {
        state.reply(
            id,
            numeric::RPL_WHOISOPERATOR,
            &[nick],
            "is an IRC operator",
        );
    }
    if let Some(real) = &about.real {
        state.reply(id, numeric::RPL_WHOISHOST, &[nick], real);
    }
    if about.bot {
        let text = format!("is a Bot on {}", state.config.server.network);
        state.reply(id, numeric::RPL_WHOISBOT, &[nick], &text);
    }
    if about.owns_nick {
        let text = "has identified for this nick";
        state.reply(id, numeric::RPL_WHOISREGNICK, &[nick], text);
    }
    if let Some(account) = &about.account {
        state.reply(
            id,
            numeric::RPL_WHOISACCOUNT,
            &[nick, account],
            "is logged in as",
        );
    }
    send_transport(state, id, about);
    if let Some(away) = &about.away {
        state.reply(id, numeric::RPL_AWAY, &[nick], away);
    }
    state.reply(
        id,
        numeric::RPL_WHOISIDLE,
        &[nick, &about.idle.to_string(), &about.signon.to_string()],
        "seconds idle, signon time",
    );
}

/// 671 for a TLS connection, and 276 with its client certificate's
/// fingerprint where the asker may see it.
fn send_transport(state: &mut State, id: ClientId, about: &About) {
    let nick = &about.nick;
    if about.secure {
        let text = "is using a secure connection";
        state.reply(id, numeric::RPL_WHOISSECURE, &[nick], text);
    }
    if let Some(fingerprint) = &about.certificate {
        let text = format!("has client certificate fingerprint {fingerprint}");
        state.reply(id, numeric::RPL_WHOISCERTFP, &[nick], &text);
    }
}

/// `target`'s rooms as `asker` may see them, with prefixes, sorted. A
/// secret or private room shows only to its members; an invisible user's
/// rooms show only where the asker is too. Operators allowed to see secret
/// rooms see them all.
fn visible_channels(state: &State, asker: ClientId, target: ClientId) -> Vec<String> {
    let Some(client) = state.clients.get(&target) else {
        return Vec::new();
    };
    let multi_prefix = state
        .clients
        .get(&asker)
        .is_some_and(|c| c.has_cap(Caps::MULTI_PREFIX));
    let sees_secret = state.sees_secret(asker);
    let mut names: Vec<(String, String)> = client
        .channels
        .iter()
        .filter_map(|folded| {
            let channel = state.channels.get(folded)?;
            let membership = channel.members.get(&target)?;
            let asker_is_member = channel.members.contains_key(&asker);
            let hidden = channel.is_hidden() || client.modes.invisible;
            if hidden && !asker_is_member && !sees_secret {
                return None;
            }
            let shown = format!("{}{}", membership.prefixes(multi_prefix), channel.name);
            Some((folded.as_str().to_owned(), shown))
        })
        .collect();
    names.sort();
    names.into_iter().map(|(_, shown)| shown).collect()
}

/// Joins `items` with spaces into strings of at most `budget` bytes.
fn chunks(items: &[String], budget: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    for item in items {
        if !current.is_empty() && current.len() + 1 + item.len() > budget {
            out.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(item);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::core::testing::{Harness, START};

    fn people() -> Harness {
        let mut h = Harness::new();
        for nick in ["alice", "bob", "eve"] {
            h.register(nick);
        }
        h
    }

    #[test]
    fn whois_tells_user_rooms_server_and_idle_time() {
        let mut h = people();
        h.room("#room", &[("alice", true)]);
        h.advance(42);
        h.send("eve", "WHOIS Alice");
        assert_eq!(
            h.take("eve"),
            [
                ":irc.test 311 eve alice ~alice 127.0.0.1 * :alice Name".to_owned(),
                ":irc.test 319 eve alice :@#room".to_owned(),
                ":irc.test 312 eve alice irc.test :rookery IRC server".to_owned(),
                format!(":irc.test 317 eve alice 42 {START} :seconds idle, signon time"),
                ":irc.test 318 eve Alice :End of /WHOIS list".to_owned(),
            ]
        );
    }

    #[test]
    fn an_unknown_nick_gets_401_then_318() {
        let mut h = people();
        h.send("eve", "WHOIS nobody");
        assert_eq!(
            h.take("eve"),
            [
                ":irc.test 401 eve nobody :No such nick/channel",
                ":irc.test 318 eve nobody :End of /WHOIS list",
            ]
        );
    }

    #[test]
    fn away_and_operator_status_are_shown() {
        let mut h = people();
        h.send("bob", "AWAY :gone fishing");
        h.make_oper("bob");
        h.send("eve", "WHOIS bob bob");
        let lines = h.take("eve");
        assert_eq!(lines[2], ":irc.test 313 eve bob :is an IRC operator");
        assert_eq!(lines[3], ":irc.test 301 eve bob :gone fishing");
    }

    /// What irctest's testWhoisNumerics[oper] checks: an operator asking
    /// gets only the numerics Modern IRC lists for WHOIS, 318 last.
    #[test]
    fn an_operator_asking_gets_only_modern_whois_numerics() {
        let mut h = people();
        h.room("#chan1", &[("bob", true)]);
        h.room("#chan2", &[("bob", true)]);
        h.make_oper("alice");
        h.make_oper("bob");
        h.send("alice", "WHOIS bob");
        let lines = h.take("alice");
        let numerics: Vec<&str> = lines.iter().map(|l| l.split(' ').nth(1).unwrap()).collect();
        assert_eq!(numerics.last(), Some(&"318"));
        let allowed = [
            "301", "307", "311", "312", "313", "317", "318", "319", "330", "338", "378", "379",
            "671",
        ];
        assert!(numerics.iter().all(|n| allowed.contains(n)), "{lines:?}");
        assert!(lines.contains(&":irc.test 313 alice bob :is an IRC operator".to_owned()));
        assert!(lines.contains(&":irc.test 319 alice bob :@#chan1 @#chan2".to_owned()));
    }

    #[test]
    fn secret_rooms_show_only_to_their_members() {
        let mut h = people();
        h.room("#hide", &[("alice", true), ("bob", false)]);
        h.room("#open", &[("alice", false)]);
        h.send("alice", "MODE #hide +s");
        h.take("bob");
        h.send("eve", "WHOIS alice");
        assert_eq!(h.take("eve")[1], ":irc.test 319 eve alice :#open");
        h.send("bob", "WHOIS alice");
        assert_eq!(h.take("bob")[1], ":irc.test 319 bob alice :@#hide #open");
    }

    #[test]
    fn no_rooms_means_no_319() {
        let mut h = people();
        h.send("eve", "WHOIS bob");
        let lines = h.take("eve");
        assert!(lines.iter().all(|l| !l.contains(" 319 ")));
    }

    #[test]
    fn many_rooms_are_split_under_512_bytes() {
        let mut h = people();
        for i in 0..60 {
            h.room(
                &format!("#a-rather-long-room-name-{i:02}"),
                &[("bob", false)],
            );
        }
        h.send("eve", "WHOIS bob");
        let lines: Vec<String> = h
            .take("eve")
            .into_iter()
            .filter(|l| l.contains(" 319 "))
            .collect();
        assert!(lines.len() > 1);
        let total: usize = lines.iter().map(|l| l.split(' ').count() - 4).sum();
        assert_eq!(total, 60);
        assert!(lines.iter().all(|l| l.len() + 2 <= 512));
    }

    #[test]
    fn a_server_that_is_not_ours_is_402() {
        let mut h = people();
        h.send("eve", "WHOIS other.server bob");
        assert_eq!(
            h.take("eve"),
            [":irc.test 402 eve other.server :No such server"]
        );
        h.send("eve", "WHOIS");
        assert_eq!(h.take("eve"), [":irc.test 431 eve :No nickname given"]);
    }
}
