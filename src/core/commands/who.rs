//! WHO: the users in a room, or those matching a nick or a glob mask.

use super::whox::Fields;
use crate::core::Refusal;
use crate::core::caps::Caps;
use crate::core::isupport::BOT_MODE;
use crate::core::{Client, ClientId, State};
use crate::proto::mask::Mask;
use crate::proto::numeric;
use crate::proto::serialize::echo_param;
use crate::proto::validate::is_channel_name;
use crate::proto::{Folded, Message};

/// The most 352 lines one WHO returns; Modern IRC lets servers limit
/// replies, and an unbounded `WHO *` on a big server floods the asker.
pub const MAX_WHO_REPLIES: usize = 500;

/// One 352 line to send.
struct Row {
    sort_key: Folded,
    id: ClientId,
    channel: String,
    prefixes: String,
}

/// `WHO <mask> [%<fields>[,<token>]]`
///
/// WHO, and WHOX when the second parameter asks for fields.
pub fn who(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    let given = message.param(0);
    // `WHO`, `WHO 0` and `WHO *` all mean everyone visible.
    let mask = if given.is_empty() || given == "0" {
        "*"
    } else {
        given
    };
    // `WHO mask o%fields,token`: filter flags before the `%`, WHOX after it.
    let (filters, whox) = match message.param(1).split_once('%') {
        Some((filters, fields)) => (filters, Some(Fields::parse(fields))),
        None => (message.param(1), None),
    };
    let opers_only = filters.contains('o');
    let multi_prefix = state
        .clients
        .get(&id)
        .is_some_and(|client| client.has_cap(Caps::MULTI_PREFIX));
    let mut rows = if is_channel_name(mask) {
        channel_rows(state, id, mask, multi_prefix)
    } else {
        user_rows(state, id, mask)
    };
    rows.retain(|row| !opers_only || state.clients.get(&row.id).is_some_and(|c| c.modes.oper));
    rows.sort_by(|a, b| a.sort_key.cmp(&b.sort_key));
    rows.truncate(MAX_WHO_REPLIES);
    for row in rows {
        let Some(client) = state.clients.get(&row.id) else {
            continue;
        };
        let server = state.server_of(client).to_owned();
        let flags = flags(client, &row.prefixes);
        if let Some(fields) = &whox {
            let line = fields.reply(state, id, client, &row.channel, &flags);
            state.send(id, line);
            continue;
        }
        let (user, host, nick) = (
            client.user.clone(),
            client.host.clone(),
            client.nick.clone(),
        );
        let realname = format!("0 {}", client.realname);
        let line = state
            .numeric_line(id, numeric::RPL_WHOREPLY)
            .arg(&row.channel)
            .arg(&user)
            .arg(&host)
            .arg(&server)
            .arg(&nick)
            .arg(&flags)
            .trailing(&realname)
            .finish();
        state.send(id, line);
    }
    let shown = if given.is_empty() {
        "*"
    } else {
        echo_param(given)
    };
    state.reply(id, numeric::RPL_ENDOFWHO, &[shown], "End of WHO list");
    Ok(())
}

/// `H` or `G` (away), `*` for an operator, the bot flag, then the prefixes.
pub fn flags(client: &Client, prefixes: &str) -> String {
    let mut flags = String::from(if client.away.is_some() { "G" } else { "H" });
    if client.modes.oper {
        flags.push('*');
    }
    if client.modes.bot {
        flags.push(BOT_MODE);
    }
    flags.push_str(prefixes);
    flags
}

/// A room's members. A secret or private room shows them only to those who
/// may see it (`State::visible_channel`); invisible members are hidden from
/// outsiders, and an auditorium's (+u) members without a status from all
/// but its operators.
fn channel_rows(state: &State, id: ClientId, name: &str, multi_prefix: bool) -> Vec<Row> {
    let Some(channel) = state.visible_channel(id, &state.fold(name)) else {
        return Vec::new();
    };
    let asker_is_member = channel.members.contains_key(&id);
    let shows_everyone = state
        .clients
        .get(&id)
        .is_some_and(|asker| channel.shows_everyone_to(asker));
    channel
        .members
        .iter()
        .filter_map(|(member, membership)| {
            let client = state.clients.get(member)?;
            if client.modes.invisible && !asker_is_member {
                return None;
            }
            // An auditorium shows its members without a status only to
            // its operators (and each to itself).
            if !shows_everyone && !membership.has_prefix() && *member != id {
                return None;
            }
            Some(Row {
                sort_key: state.fold(&client.nick),
                id: *member,
                channel: channel.name.clone(),
                prefixes: membership.prefixes(multi_prefix),
            })
        })
        .collect()
}

/// An exact nick names one user, invisible or not (as Modern IRC says, and
/// WHOIS would show them anyway). Otherwise the mask is matched against
/// nick, user, host, real name and server, over visible users only.
fn user_rows(state: &State, id: ClientId, mask: &str) -> Vec<Row> {
    let row = |target: ClientId| {
        state.clients.get(&target).map(|client| Row {
            sort_key: state.fold(&client.nick),
            id: target,
            channel: "*".to_owned(),
            prefixes: String::new(),
        })
    };
    if !mask.contains(['*', '?'])
        && let Some(target) = state.registered_client(&state.fold(mask))
    {
        return row(target.id).into_iter().collect();
    }
    let pattern = Mask::new(mask, state.config.server.casemapping);
    let server = state.server_name();
    state
        .clients
        .values()
        .filter(|client| client.registered)
        .filter(|client| {
            !client.modes.invisible || client.id == id || shares_channel(state, id, client.id)
        })
        .filter(|client| {
            [
                client.nick.as_str(),
                &client.user,
                &client.host,
                &client.realname,
                server,
            ]
            .iter()
            .any(|field| pattern.matches(field))
        })
        .filter_map(|client| row(client.id))
        .collect()
}

/// Are `a` and `b` in a room together where `a` sees `b` (not a hidden
/// member of an auditorium)?
pub fn shares_channel(state: &State, a: ClientId, b: ClientId) -> bool {
    state.clients.get(&a).is_some_and(|client| {
        client.channels.iter().any(|name| {
            state
                .channels
                .get(name)
                .is_some_and(|channel| channel.members.contains_key(&b) && channel.shows(client, b))
        })
    })
}

#[cfg(test)]
mod tests {
    use crate::core::testing::Harness;

    fn people() -> Harness {
        let mut h = Harness::new();
        for nick in ["alice", "bob", "eve"] {
            h.register(nick);
        }
        h
    }

    #[test]
    fn a_room_lists_its_members_with_flags() {
        let mut h = people();
        h.room("#room", &[("alice", true), ("bob", false)]);
        h.send("bob", "AWAY :lunch");
        h.take("bob");
        h.send("eve", "WHO #room");
        assert_eq!(
            h.take("eve"),
            [
                ":irc.test 352 eve #room ~alice 127.0.0.1 irc.test alice H@ :0 alice Name",
                ":irc.test 352 eve #room ~bob 127.0.0.1 irc.test bob G :0 bob Name",
                ":irc.test 315 eve #room :End of WHO list",
            ]
        );
    }

    #[test]
    fn a_secret_room_shows_its_members_only_to_members() {
        let mut h = people();
        h.room("#hide", &[("alice", true), ("bob", false)]);
        h.send("alice", "MODE #hide +s");
        h.take("alice");
        h.take("bob");
        h.send("eve", "WHO #hide");
        assert_eq!(h.take("eve"), [":irc.test 315 eve #hide :End of WHO list"]);
        h.send("bob", "WHO #hide");
        let lines = h.take("bob");
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with(":irc.test 352 bob #hide ~alice "));
    }

    #[test]
    fn invisible_users_match_masks_only_for_roommates() {
        let mut h = people();
        h.send("bob", "MODE bob +i");
        h.take("bob");
        h.send("eve", "WHO *");
        let lines = h.take("eve");
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines.iter().all(|l| !l.contains(" bob ")));
        h.room("#room", &[("bob", false), ("eve", false)]);
        h.send("eve", "WHO b*");
        assert_eq!(
            h.take("eve"),
            [
                ":irc.test 352 eve * ~bob 127.0.0.1 irc.test bob H :0 bob Name",
                ":irc.test 315 eve b* :End of WHO list",
            ]
        );
    }

    #[test]
    fn an_exact_nick_names_one_user() {
        let mut h = people();
        h.send("bob", "MODE bob +i");
        h.send("eve", "WHO BOB");
        assert_eq!(
            h.take("eve"),
            [
                ":irc.test 352 eve * ~bob 127.0.0.1 irc.test bob H :0 bob Name",
                ":irc.test 315 eve BOB :End of WHO list",
            ]
        );
    }

    #[test]
    fn the_o_flag_keeps_operators_only() {
        let mut h = people();
        h.make_oper("alice");
        h.send("eve", "WHO * o");
        assert_eq!(
            h.take("eve"),
            [
                ":irc.test 352 eve * ~alice 127.0.0.1 irc.test alice H* :0 alice Name",
                ":irc.test 315 eve * :End of WHO list",
            ]
        );
    }

    #[test]
    fn no_mask_means_everyone_visible() {
        let mut h = people();
        h.send("eve", "WHO");
        let lines = h.take("eve");
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[3], ":irc.test 315 eve * :End of WHO list");
    }
}
