//! The rules of an auditorium (`+u`), checked across the commands that
//! follow them: who sees which JOIN, PART, QUIT, NICK and KICK, what NAMES
//! and WHO list, and what event playback returns.

use crate::config::Privilege;
use crate::core::testing::{Harness, HistoryHarness};

/// alice (op) made #hall an auditorium; bob and carol joined it after.
fn hall(h: &mut Harness) {
    for nick in ["alice", "bob", "carol"] {
        h.register(nick);
    }
    h.send("alice", "JOIN #hall");
    h.send("alice", "MODE #hall +u");
    h.send("bob", "JOIN #hall");
    h.send("carol", "JOIN #hall");
    for nick in ["alice", "bob", "carol"] {
        h.take(nick);
    }
}

fn hall_harness() -> Harness {
    let mut h = Harness::new();
    hall(&mut h);
    h
}

/// The lines of `lines` that carry `command` (e.g. ` JOIN `).
fn with(lines: &[String], command: &str) -> Vec<String> {
    lines
        .iter()
        .filter(|line| line.contains(command))
        .cloned()
        .collect()
}

/// The names of a 353 reply, in order.
fn names_of(lines: &[String]) -> Vec<String> {
    with(lines, " 353 ")
        .iter()
        .filter_map(|line| line.rsplit_once(" :"))
        .flat_map(|(_, names)| names.split(' ').map(str::to_owned))
        .collect()
}

/// The nicks of a WHO reply, in order.
fn who_nicks(lines: &[String]) -> Vec<String> {
    with(lines, " 352 ")
        .iter()
        .filter_map(|line| line.split(' ').nth(7).map(str::to_owned))
        .collect()
}

#[test]
fn setting_u_needs_a_channel_operator_and_shows_in_324() {
    let mut h = hall_harness();
    h.send("bob", "MODE #hall -u");
    assert!(h.take("bob")[0].contains(" 482 "));
    h.send("bob", "MODE #hall");
    assert!(h.take("bob")[0].contains(" 324 bob #hall +"));
    assert!(h.channel("#hall").modes.auditorium);
    h.send("alice", "MODE #hall -u");
    assert_eq!(h.take("carol"), [":alice!~alice@127.0.0.1 MODE #hall -u"]);
}

#[test]
fn a_hidden_join_reaches_only_the_ops_and_the_joiner() {
    let mut h = hall_harness();
    h.register("dave");
    h.send("dave", "JOIN #hall");
    let joined = ":dave!~dave@127.0.0.1 JOIN #hall";
    assert_eq!(with(&h.take("dave"), " JOIN "), [joined]);
    assert_eq!(h.take("alice"), [joined]);
    assert!(h.take("bob").is_empty());
    assert!(h.take("carol").is_empty());
}

#[test]
fn names_lists_the_prefixed_and_oneself_and_everyone_to_ops() {
    let mut h = hall_harness();
    h.send("bob", "NAMES #hall");
    assert_eq!(names_of(&h.take("bob")), ["@alice", "bob"]);
    h.send("alice", "NAMES #hall");
    assert_eq!(names_of(&h.take("alice")), ["@alice", "bob", "carol"]);
    h.register("dave");
    h.send("dave", "JOIN #hall");
    assert_eq!(names_of(&h.take("dave")), ["@alice", "dave"]);
}

#[test]
fn an_operator_who_sees_secret_rooms_sees_everyone() {
    let mut h = hall_harness();
    h.register("oscar");
    h.make_oper("oscar");
    let id = h.id("oscar");
    if let Some(client) = h.state.clients.get_mut(&id) {
        client.privileges = vec![Privilege::SeeSecret];
    }
    h.send("oscar", "NAMES #hall");
    assert_eq!(names_of(&h.take("oscar")), ["@alice", "bob", "carol"]);
    h.send("oscar", "JOIN #hall");
    assert_eq!(
        names_of(&h.take("oscar")),
        ["@alice", "bob", "carol", "oscar"]
    );
    h.send("carol", "PART #hall");
    assert_eq!(
        with(&h.take("oscar"), " PART "),
        [":carol!~carol@127.0.0.1 PART #hall"]
    );
}

#[test]
fn who_lists_the_same_members_as_names() {
    let mut h = hall_harness();
    h.send("bob", "WHO #hall");
    assert_eq!(who_nicks(&h.take("bob")), ["alice", "bob"]);
    h.send("alice", "WHO #hall");
    assert_eq!(who_nicks(&h.take("alice")), ["alice", "bob", "carol"]);
}

#[test]
fn a_hidden_part_quit_nick_and_kick_reach_only_ops_and_themself() {
    let mut h = hall_harness();
    h.send("carol", "NICK caroline");
    let nick = ":carol!~carol@127.0.0.1 NICK caroline";
    assert_eq!(h.take("alice"), [nick]);
    assert_eq!(h.take("carol"), [nick]);
    assert!(h.take("bob").is_empty());
    // The harness still names the connection carol.
    h.send("carol", "PART #hall :bye");
    let part = ":caroline!~carol@127.0.0.1 PART #hall :bye";
    assert_eq!(h.take("alice"), [part]);
    assert_eq!(h.take("carol"), [part]);
    assert!(h.take("bob").is_empty());
    h.send("alice", "KICK #hall bob :out");
    let kick = ":alice!~alice@127.0.0.1 KICK #hall bob :out";
    assert_eq!(h.take("alice"), [kick]);
    assert_eq!(h.take("bob"), [kick]);
    h.send("carol", "JOIN #hall");
    h.take("alice");
    h.send("carol", "QUIT :gone");
    assert_eq!(
        h.take("alice"),
        [":caroline!~carol@127.0.0.1 QUIT :Quit: gone"]
    );
}

#[test]
fn away_and_setname_of_a_hidden_member_reach_only_ops() {
    let mut h = hall_harness();
    for nick in ["alice", "bob"] {
        h.send(nick, "CAP REQ :away-notify setname");
        h.take(nick);
    }
    h.send("carol", "AWAY :lunch");
    assert_eq!(h.take("alice"), [":carol!~carol@127.0.0.1 AWAY :lunch"]);
    assert!(h.take("bob").is_empty());
}

#[test]
fn messages_still_reach_everyone() {
    let mut h = hall_harness();
    h.send("carol", "PRIVMSG #hall :hello");
    let said = ":carol!~carol@127.0.0.1 PRIVMSG #hall :hello";
    assert_eq!(h.take("alice"), [said]);
    assert_eq!(h.take("bob"), [said]);
}

#[test]
fn a_voiced_member_is_seen_by_all_and_the_count_stays_real() {
    let mut h = hall_harness();
    h.send("alice", "MODE #hall +v carol");
    let voiced = ":alice!~alice@127.0.0.1 MODE #hall +v carol";
    // As in InspIRCd, the MODE is all: no JOIN is made up for carol.
    assert_eq!(h.take("bob"), [voiced]);
    h.send("bob", "NAMES #hall");
    assert_eq!(names_of(&h.take("bob")), ["@alice", "bob", "+carol"]);
    h.send("carol", "PART #hall");
    assert_eq!(h.take("bob"), [":carol!~carol@127.0.0.1 PART #hall"]);
    h.send("bob", "LIST #hall");
    let list = with(&h.take("bob"), " 322 ");
    assert!(list[0].contains(" #hall 2 "), "{list:?}");
}

#[test]
fn whois_shows_the_room_as_inspircd_does() {
    let mut h = hall_harness();
    h.send("bob", "WHOIS carol");
    let channels = with(&h.take("bob"), " 319 ");
    assert!(channels[0].ends_with(":#hall"), "{channels:?}");
}

/// The commands of a CHATHISTORY answer's event lines.
fn events(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|line| line.split_once(" :").map(|(_, rest)| rest))
        .filter_map(|rest| rest.split_once(' '))
        .filter(|(_, rest)| !rest.starts_with("BATCH"))
        .map(|(source, rest)| format!("{} {rest}", source.split('!').next().unwrap_or("")))
        .collect()
}

#[test]
fn the_events_of_hidden_members_are_not_stored() {
    let mut t = HistoryHarness::new();
    hall(&mut t.h);
    t.h.send(
        "bob",
        "CAP REQ :batch server-time draft/chathistory draft/event-playback",
    );
    t.h.send("carol", "NICK caroline");
    t.h.send("carol", "PART #hall");
    t.h.send("alice", "MODE #hall +v bob");
    t.h.send("bob", "PRIVMSG #hall :hi");
    let lines = t.query("bob", "CHATHISTORY LATEST #hall * 50");
    assert_eq!(
        events(&lines),
        [
            "alice JOIN #hall",
            "alice MODE #hall +u",
            "alice MODE #hall +v bob",
            "bob PRIVMSG #hall :hi",
        ],
        "{lines:?}"
    );
}
