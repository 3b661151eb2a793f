//! Scenarios that cross handlers: fan-out counts, peers, membership on
//! both sides.

use super::Membership;
use super::testing::Harness;

#[test]
fn a_message_to_a_room_of_100_reaches_each_member_exactly_once() {
    let mut harness = Harness::new();
    let members: Vec<String> = (0..100).map(|i| format!("user{i}")).collect();
    for member in &members {
        harness.register(member);
    }
    for member in &members {
        harness.send(member, "JOIN #big");
    }
    for member in &members {
        harness.take(member);
    }
    harness.send(&members[0], "PRIVMSG #big :hello all");
    assert!(
        harness.take(&members[0]).is_empty(),
        "no echo to the sender"
    );
    for member in &members[1..] {
        assert_eq!(
            harness.take(member),
            vec![":user0!~user0@127.0.0.1 PRIVMSG #big :hello all"]
        );
    }
}

#[test]
fn nick_and_quit_reach_a_peer_in_two_shared_rooms_once() {
    let mut harness = Harness::new();
    harness.register("alice");
    harness.register("bob");
    for room in ["#one", "#two"] {
        harness.send("alice", &format!("JOIN {room}"));
        harness.send("bob", &format!("JOIN {room}"));
    }
    harness.take("alice");
    harness.take("bob");
    harness.send("alice", "NICK alicia");
    assert_eq!(
        harness.take("bob"),
        vec![":alice!~alice@127.0.0.1 NICK alicia"]
    );
    assert_eq!(
        harness.take("alice"),
        vec![":alice!~alice@127.0.0.1 NICK alicia"]
    );
    harness.send("alice", "QUIT :bye");
    assert_eq!(
        harness.take("bob"),
        vec![":alicia!~alice@127.0.0.1 QUIT :Quit: bye"]
    );
}

#[test]
fn the_last_member_leaving_removes_the_room_on_both_sides() {
    let mut harness = Harness::new();
    harness.register("alice");
    harness.register("bob");
    harness.send("alice", "JOIN #a,#b");
    harness.send("bob", "JOIN #a");
    harness.send("alice", "PART #a");
    harness.send("bob", "KICK #a bob");
    assert!(
        harness
            .state
            .channels
            .contains_key(&harness.state.fold("#a"))
    );
    harness.send("bob", "PART #a");
    assert!(
        !harness
            .state
            .channels
            .contains_key(&harness.state.fold("#a"))
    );
    harness.send("alice", "JOIN 0");
    assert!(harness.state.channels.is_empty());
    for client in harness.state.clients.values() {
        assert!(client.channels.is_empty(), "{} still in rooms", client.nick);
    }
}

#[test]
fn the_last_member_quitting_removes_the_room_like_a_part() {
    let mut harness = Harness::new();
    harness.register("alice");
    harness.register("bob");
    harness.send("alice", "JOIN #a,#b");
    harness.send("bob", "JOIN #b");
    harness.send("alice", "QUIT");
    let names: Vec<&str> = harness.state.channels.keys().map(|n| n.as_str()).collect();
    assert_eq!(names, ["#b"]);
    let room = &harness.state.channels[&harness.state.fold("#b")];
    assert_eq!(room.members.len(), 1);
}

#[test]
fn a_disconnect_forgets_invites_to_rooms_never_joined() {
    let mut harness = Harness::new();
    harness.register("alice");
    harness.register("bob");
    harness.send("alice", "JOIN #a");
    harness.send("alice", "MODE #a +i");
    harness.send("alice", "INVITE bob #a");
    let room = harness.state.fold("#a");
    let bob = harness.id("bob");
    assert!(harness.state.channels[&room].invited.contains_key(&bob));
    harness.send("bob", "QUIT");
    assert!(harness.state.channels[&room].invited.is_empty());
}

#[test]
fn crafted_parameters_never_break_a_reply() {
    let mut harness = Harness::new();
    harness.register("alice");
    harness.send("alice", "JOIN :#a b,,:x");
    harness.send("alice", "PART :#a b");
    harness.send("alice", "PRIVMSG :#no such,:colon :hi");
    harness.send("alice", "KICK :#a b :c d");
    harness.send("alice", "TOPIC :#a b");
    harness.send("alice", "NAMES :#a b");
    harness.send("alice", "INVITE :a b :#c d");
    for line in harness.take("alice") {
        let params = line.split(" :").count();
        assert!(params <= 2, "more than one trailing part in {line:?}");
    }
}

#[test]
fn add_member_and_remove_member_keep_both_sides_in_step() {
    let mut harness = Harness::new();
    harness.register("alice");
    harness.register("bob");
    harness.room("#room", &[("bob", true)]);
    harness.advance(5);
    let alice = harness.id("alice");
    let folded = harness.state.fold("#room");
    let voiced = Membership {
        op: false,
        voice: true,
    };
    harness.state.add_member(alice, &folded, voiced);
    let room = harness.channel("#room");
    assert_eq!(room.members.get(&alice), Some(&voiced));
    assert_eq!(room.joined.get(&alice), Some(&harness.state.clock.now()));
    assert!(harness.state.clients[&alice].channels.contains(&folded));
    harness.check().unwrap();

    harness.state.remove_member(alice, &folded);
    let room = harness.channel("#room");
    assert!(!room.members.contains_key(&alice) && !room.joined.contains_key(&alice));
    assert!(!harness.state.clients[&alice].channels.contains(&folded));
    harness.check().unwrap();
}

#[test]
fn add_member_to_a_room_that_is_gone_changes_nothing() {
    let mut harness = Harness::new();
    let alice = harness.register("alice");
    let folded = harness.state.fold("#gone");
    harness
        .state
        .add_member(alice, &folded, Membership::default());
    assert!(harness.state.clients[&alice].channels.is_empty());
    harness.check().unwrap();
}
