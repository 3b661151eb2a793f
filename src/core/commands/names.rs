//! NAMES: who is in a room, and the member list JOIN sends to a newcomer.

use crate::core::Refusal;
use crate::core::caps::Caps;
use crate::core::{ClientId, Membership, State};
use crate::proto::numeric;
use crate::proto::serialize::MAX_LINE;
use crate::proto::{Folded, Message};

/// The most names a reply sorts by name; a longer one is in id order.
pub const MAX_SORTED_NAMES: usize = 1000;

/// `NAMES <channel>{,<channel>}`
///
/// `NAMES` without a parameter lists nothing: Modern IRC allows a lone 366.
/// Several rooms (`NAMES #a,#b`) get their 353s and one 366 naming them all
/// (RFC 2812 3.2.5).
pub fn names(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    let param = message.param(0);
    if param.is_empty() {
        end_of_names(state, id, "*");
        return Ok(());
    }
    let max = state.config.limits.max_targets;
    let asked: Vec<&str> = param
        .split(',')
        .filter(|name| !name.is_empty())
        .take(max)
        .collect();
    for name in &asked {
        let folded = state.fold(name);
        let visible = state.visible_channel(id, &folded).is_some();
        match (visible, asked.len()) {
            (true, 1) => send_names(state, id, &folded),
            (true, _) => {
                send_name_lines(state, id, &folded);
            }
            // Absent or hidden: the same lone 366, so a secret room stays unseen.
            (false, 1) => end_of_names(state, id, name),
            (false, _) => {}
        }
    }
    if asked.len() > 1 {
        end_of_names(state, id, &asked.join(","));
    }
    Ok(())
}

/// Sends 353 lines that each fit in 512 bytes, then 366.
/// The NAMES reply a JOIN brings, unless the client negotiated
/// no-implicit-names (it asks with NAMES when it wants them).
pub fn send_implicit_names(state: &mut State, id: ClientId, folded: &Folded) {
    if !state
        .clients
        .get(&id)
        .is_some_and(|client| client.has_cap(Caps::NO_IMPLICIT_NAMES))
    {
        send_names(state, id, folded);
    }
}

pub fn send_names(state: &mut State, id: ClientId, channel: &Folded) {
    if let Some(name) = send_name_lines(state, id, channel) {
        end_of_names(state, id, &name);
    }
}

/// Sends 353 lines that each fit in 512 bytes and returns the room's name.
/// A member sees everyone; an outsider does not see invisible (+i) users,
/// as Modern IRC says; in an auditorium (+u) only its operators see the
/// members without a status.
fn send_name_lines(state: &mut State, id: ClientId, channel: &Folded) -> Option<String> {
    let (Some(room), Some(client)) = (state.channels.get(channel), state.clients.get(&id)) else {
        return None;
    };
    let is_member = room.members.contains_key(&id);
    let all_prefixes = client.has_cap(Caps::MULTI_PREFIX);
    let userhost = client.has_cap(Caps::USERHOST_IN_NAMES);
    let symbol = if room.modes.secret {
        "@"
    } else if room.modes.private {
        "*"
    } else {
        "="
    };
    // An auditorium (+u) lists its members without a status only to its
    // operators; everyone else sees those with one, and itself.
    let shows_everyone = room.shows_everyone_to(client);
    // Names are borrowed, not formatted, and sorted as they are: a JOIN
    // to a big room sends this list, so it is built once per join.
    let mut entries: Vec<(&str, Membership, ClientId)> = room
        .members
        .iter()
        .filter_map(|(member, &membership)| {
            if !(shows_everyone || membership.has_prefix() || *member == id) {
                return None;
            }
            let member = state.clients.get(member)?;
            let shown = is_member || !member.modes.invisible;
            let name = match userhost {
                true => member.source.as_str(),
                false => member.nick.as_str(),
            };
            shown.then_some((name, membership, member.id))
        })
        .collect();
    // A stable order makes replies reproducible; a hash map has none.
    // Past `MAX_SORTED_NAMES` the order is the clients' ids (when they
    // connected): a JOIN to a big room sends the list, and comparing
    // thousands of names on each join cost more than the rest of it.
    if entries.len() <= MAX_SORTED_NAMES {
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    } else {
        entries.sort_unstable_by_key(|entry| entry.2);
    }
    let name = room.name.clone();
    // `:server 353 nick = #room :` and the final CR LF.
    let overhead = state.server_name().len() + client.target().len() + name.len() + 14;
    let budget = MAX_LINE.saturating_sub(overhead);
    let mut chunks: Vec<String> = Vec::new();
    let mut chunk = String::new();
    for (entry, membership, _) in entries {
        let prefixes = membership.prefixes(all_prefixes);
        let length = prefixes.len() + entry.len();
        if !chunk.is_empty() && chunk.len() + 1 + length > budget {
            chunks.push(std::mem::take(&mut chunk));
        }
        if !chunk.is_empty() {
            chunk.push(' ');
        }
        chunk.push_str(&prefixes);
        chunk.push_str(entry);
    }
    if !chunk.is_empty() {
        chunks.push(chunk);
    }
    for chunk in chunks {
        let line = state
            .numeric_line(id, numeric::RPL_NAMREPLY)
            .arg(symbol)
            .arg(&name)
            .trailing(&chunk)
            .finish();
        state.send(id, line);
    }
    Some(name)
}

fn end_of_names(state: &mut State, id: ClientId, name: &str) {
    state.reply(id, numeric::RPL_ENDOFNAMES, &[name], "End of /NAMES list");
}

#[cfg(test)]
mod tests {
    use crate::core::Membership;
    use crate::core::testing::Harness;
    use crate::proto::serialize::MAX_LINE;

    #[test]
    fn a_list_past_the_sorted_limit_comes_in_the_order_clients_connected() {
        let mut h = Harness::new();
        let count = super::MAX_SORTED_NAMES + 1;
        // Connected in reverse name order, so the two orders differ.
        let nicks: Vec<String> = (0..count).rev().map(|n| format!("n{n:05}")).collect();
        for nick in &nicks {
            h.register(nick);
        }
        let members: Vec<(&str, bool)> = nicks.iter().map(|nick| (nick.as_str(), false)).collect();
        h.room("#big", &members);
        h.take(&nicks[0]);
        h.send(&nicks[0], "NAMES #big");
        let listed: Vec<String> = h
            .take(&nicks[0])
            .iter()
            .filter(|line| line.contains(" 353 "))
            .filter_map(|line| line.rsplit_once(" :"))
            .flat_map(|(_, names)| names.split(' ').map(str::to_owned))
            .collect();
        assert_eq!(listed, nicks);
    }

    #[test]
    fn multi_prefix_shows_every_prefix() {
        let mut harness = Harness::new();
        harness.register("alice");
        harness.send("alice", "JOIN #room");
        harness.take("alice");
        let both = Membership {
            op: true,
            voice: true,
        };
        let alice = harness.id("alice");
        harness.channel_mut("#room").members.insert(alice, both);
        harness.send("alice", "NAMES #room");
        assert!(harness.take("alice")[0].ends_with(" = #room :@alice"));
        harness
            .state
            .clients
            .get_mut(&alice)
            .unwrap()
            .caps
            .insert(crate::core::caps::Caps::MULTI_PREFIX);
        harness.send("alice", "NAMES #room");
        assert!(harness.take("alice")[0].ends_with(" = #room :@+alice"));
    }

    #[test]
    fn outsiders_see_no_invisible_users_and_nothing_of_private_rooms() {
        let mut harness = Harness::new();
        harness.register("alice");
        harness.register("bob");
        harness.register("eve");
        harness.send("alice", "JOIN #room");
        harness.send("bob", "JOIN #room");
        harness.send("bob", "MODE bob +i");
        harness.take("eve");
        harness.send("eve", "NAMES #room");
        assert_eq!(
            harness.take("eve"),
            vec![
                ":irc.test 353 eve = #room :@alice",
                ":irc.test 366 eve #room :End of /NAMES list"
            ]
        );
        harness.channel_mut("#room").modes.private = true;
        harness.send("eve", "NAMES #room");
        assert_eq!(
            harness.take("eve"),
            vec![":irc.test 366 eve #room :End of /NAMES list"]
        );
        harness.take("alice");
        harness.send("alice", "NAMES #room");
        assert_eq!(
            harness.take("alice")[0],
            ":irc.test 353 alice * #room :@alice bob"
        );
    }

    #[test]
    fn a_big_room_is_split_into_lines_under_512_bytes() {
        let mut harness = Harness::new();
        let members: Vec<String> = (0..120)
            .map(|i| format!("member_with_a_long_nick_{i:03}"))
            .collect();
        for member in &members {
            harness.register(member);
        }
        for member in &members {
            harness.send(member, "JOIN #big");
        }
        let last = &members[members.len() - 1];
        harness.take(last);
        harness.send(last, "NAMES #big");
        let lines = harness.take(last);
        let (replies, end) = lines.split_at(lines.len() - 1);
        assert!(replies.len() > 1);
        assert!(end[0].contains(" 366 "));
        let mut seen = 0;
        for line in replies {
            assert!(line.len() + 2 <= MAX_LINE, "{} bytes", line.len() + 2);
            let (_, names) = line.split_once(" :").unwrap();
            seen += names.split(' ').count();
        }
        assert_eq!(seen, members.len());
    }

    #[test]
    fn several_rooms_get_their_353s_and_one_366_naming_them_all() {
        let mut harness = Harness::new();
        harness.register("alice");
        harness.register("eve");
        harness.send("alice", "JOIN #one");
        harness.send("alice", "JOIN #two");
        harness.send("alice", "JOIN #hush");
        harness.channel_mut("#hush").modes.secret = true;
        harness.take("alice");
        harness.send("alice", "NAMES #one,#two");
        assert_eq!(
            harness.take("alice"),
            vec![
                ":irc.test 353 alice = #one :@alice",
                ":irc.test 353 alice = #two :@alice",
                ":irc.test 366 alice #one,#two :End of /NAMES list"
            ]
        );
        harness.send("eve", "NAMES #hush,#missing,#one");
        assert_eq!(
            harness.take("eve"),
            vec![
                ":irc.test 353 eve = #one :@alice",
                ":irc.test 366 eve #hush,#missing,#one :End of /NAMES list"
            ]
        );
    }

    #[test]
    fn names_without_a_room_answers_a_lone_366() {
        let mut harness = Harness::new();
        harness.register("alice");
        harness.send("alice", "NAMES");
        assert_eq!(
            harness.take("alice"),
            vec![":irc.test 366 alice * :End of /NAMES list"]
        );
    }

    #[test]
    fn no_implicit_names_drops_the_join_burst_names_but_not_names() {
        let mut harness = Harness::new();
        harness.register("alice");
        harness.send("alice", "CAP REQ no-implicit-names");
        harness.take("alice");
        harness.send("alice", "JOIN #room");
        assert_eq!(
            harness.take("alice"),
            [":alice!~alice@127.0.0.1 JOIN #room"]
        );
        harness.send("alice", "NAMES #room");
        assert_eq!(
            harness.take("alice"),
            [
                ":irc.test 353 alice = #room :@alice",
                ":irc.test 366 alice #room :End of /NAMES list"
            ]
        );
    }
}
