use crate::accounts::MetadataChange;
use crate::config::Config;
use crate::core::caps::Caps;
use crate::core::testing::Harness;
use crate::core::{AdminRequest, Event, MetadataRequest};

/// Gives `nick` the capabilities, as CAP REQ would.
fn give(h: &mut Harness, nick: &str, caps: Caps) {
    let id = h.id(nick);
    h.state.clients.get_mut(&id).unwrap().caps.insert(caps);
}

fn harness(change: impl FnOnce(&mut Config)) -> Harness {
    let mut config = Config::default();
    config.server.name = "irc.test".into();
    change(&mut config);
    Harness::with_config(config)
}

/// The lines with their batch tags and references taken out, so a test
/// reads what was said.
fn unbatched(lines: Vec<String>) -> Vec<String> {
    lines
        .into_iter()
        .map(|line| match line.strip_prefix("@batch=") {
            Some(rest) => rest.split_once(' ').map_or(rest, |(_, l)| l).to_owned(),
            None => line,
        })
        .map(|line| {
            let words: Vec<&str> = line.split(' ').collect();
            match words.as_slice() {
                [server, "BATCH", reference, rest @ ..] => {
                    let sign = &reference[..1];
                    [*server, "BATCH", sign]
                        .into_iter()
                        .chain(rest.iter().copied())
                        .collect::<Vec<_>>()
                        .join(" ")
                }
                _ => line,
            }
        })
        .collect()
}

#[test]
fn a_value_set_is_read_back_in_a_metadata_batch() {
    let mut h = Harness::new();
    h.register("alice");
    give(&mut h, "alice", Caps::METADATA.union(Caps::BATCH));
    h.send("alice", "METADATA * SET display-name :Alice L");
    assert_eq!(
        h.take("alice"),
        [":irc.test 761 alice alice display-name * :Alice L"]
    );
    h.send("alice", "METADATA alice GET display-name avatar");
    assert_eq!(
        unbatched(h.take("alice")),
        [
            ":irc.test BATCH + metadata alice",
            ":irc.test 761 alice alice display-name * :Alice L",
            ":irc.test 766 alice alice avatar :Key not set",
            ":irc.test BATCH -",
        ]
    );
}

#[test]
fn without_batch_the_answer_comes_line_by_line() {
    let mut h = Harness::new();
    h.register("alice");
    h.send("alice", "METADATA * SET color :#c90076");
    h.take("alice");
    h.send("alice", "METADATA * LIST");
    assert_eq!(
        h.take("alice"),
        [":irc.test 761 alice alice color * :#c90076"]
    );
}

#[test]
fn setting_nothing_removes_the_key() {
    let mut h = Harness::new();
    h.register("alice");
    h.send("alice", "METADATA * SET avatar :https://example.com/a.png");
    h.send("alice", "METADATA * SET avatar");
    assert_eq!(
        h.take("alice")[1],
        ":irc.test 766 alice alice avatar :Key not set"
    );
    assert!(h.state.clients[&h.id("alice")].metadata.values.is_empty());
}

#[test]
fn a_value_over_max_value_bytes_is_refused() {
    let mut h = harness(|config| config.metadata.max_value_bytes = 10);
    h.register("alice");
    h.send("alice", "METADATA * SET display-name :01234567890");
    assert_eq!(
        h.take("alice"),
        [
            ":irc.test FAIL METADATA INVALID_VALUE display-name :Values are UTF-8 of at most max-value-bytes"
        ]
    );
    h.send("alice", "METADATA * SET display-name :0123456789");
    assert_eq!(h.take("alice").len(), 1);
}

#[test]
fn a_key_past_max_keys_is_refused_but_an_existing_one_changes() {
    let mut h = harness(|config| config.metadata.max_keys = 1);
    h.register("alice");
    h.send("alice", "METADATA * SET color :red");
    h.take("alice");
    h.send("alice", "METADATA * SET avatar :x");
    assert_eq!(
        h.take("alice"),
        [":irc.test FAIL METADATA LIMIT_REACHED alice :Metadata limit reached"]
    );
    h.send("alice", "METADATA * SET color :blue");
    assert_eq!(h.take("alice"), [":irc.test 761 alice alice color * :blue"]);
}

#[test]
fn keys_outside_allowed_keys_cannot_be_set() {
    let mut h = harness(|config| config.metadata.allowed_keys = vec!["avatar".into()]);
    h.register("alice");
    h.send("alice", "METADATA * SET color :red");
    assert_eq!(
        h.take("alice"),
        [":irc.test FAIL METADATA KEY_NO_PERMISSION alice color :You may not set this key here"]
    );
}

#[test]
fn bad_keys_targets_and_subcommands_fail() {
    let mut h = Harness::new();
    h.register("alice");
    h.send("alice", "METADATA * SET Display-Name :x");
    h.send("alice", "METADATA nobody LIST");
    h.send("alice", "METADATA * DESTROY");
    h.send("alice", "METADATA * GET");
    assert_eq!(
        h.take("alice"),
        [
            ":irc.test FAIL METADATA INVALID_KEY Display-Name :Invalid key",
            ":irc.test FAIL METADATA INVALID_TARGET nobody :Invalid metadata target",
            ":irc.test FAIL METADATA INVALID_SUBCOMMAND DESTROY :Invalid subcommand",
            ":irc.test 461 alice METADATA :Not enough parameters",
        ]
    );
}

#[test]
fn nobody_changes_another_users_keys() {
    let mut h = Harness::new();
    h.register("alice");
    h.register("bob");
    h.send("bob", "METADATA * SET color :green");
    h.take("bob");
    h.send("alice", "METADATA bob SET color :red");
    h.send("alice", "METADATA bob CLEAR");
    assert_eq!(
        h.take("alice"),
        [
            ":irc.test FAIL METADATA KEY_NO_PERMISSION bob color :You may not set this key here",
            ":irc.test FAIL METADATA KEY_NO_PERMISSION bob * :You may not clear this target's metadata",
        ]
    );
    assert_eq!(
        h.state.clients[&h.id("bob")].metadata.values["color"],
        "green"
    );
    assert!(h.take("bob").is_empty());
}

#[test]
fn room_operators_set_a_rooms_keys_and_members_read_them() {
    let mut h = Harness::new();
    h.register("alice");
    h.register("bob");
    h.room("#room", &[("alice", true), ("bob", false)]);
    h.send("bob", "METADATA #room SET display-name :Bob's");
    assert_eq!(
        h.take("bob"),
        [
            ":irc.test FAIL METADATA KEY_NO_PERMISSION #room display-name :You may not set this key here"
        ]
    );
    h.send("alice", "METADATA #room SET display-name :The Room");
    assert_eq!(
        h.take("alice"),
        [":irc.test 761 alice #room display-name * :The Room"]
    );
    h.send("bob", "METADATA #room LIST");
    assert_eq!(
        h.take("bob"),
        [":irc.test 761 bob #room display-name * :The Room"]
    );
}

#[test]
fn outsiders_read_neither_an_invite_only_rooms_keys_nor_a_secret_ones() {
    let mut h = Harness::new();
    h.register("alice");
    h.register("carol");
    h.room("#room", &[("alice", true)]);
    h.send("alice", "METADATA #room SET display-name :Hidden");
    h.send("alice", "MODE #room +i");
    h.take("alice");
    h.send("carol", "METADATA #room GET display-name");
    assert_eq!(
        h.take("carol"),
        [
            ":irc.test FAIL METADATA KEY_NO_PERMISSION #room * :You may not read this target's metadata"
        ]
    );
    h.send("alice", "MODE #room -i+s");
    h.send("carol", "METADATA #room LIST");
    assert_eq!(
        h.take("carol"),
        [":irc.test FAIL METADATA INVALID_TARGET #room :Invalid metadata target"]
    );
}

#[test]
fn subscribers_sharing_a_room_are_told_of_a_change_and_nobody_else() {
    let mut h = Harness::new();
    for nick in ["alice", "bob", "carol", "dave"] {
        h.register(nick);
    }
    h.room(
        "#room",
        &[("alice", true), ("bob", false), ("carol", false)],
    );
    for nick in ["bob", "carol", "dave"] {
        give(&mut h, nick, Caps::METADATA);
        h.send(nick, "METADATA * SUB display-name");
        h.take(nick);
    }
    // carol subscribed but then asked to stop; dave shares no room.
    h.send("carol", "METADATA * UNSUB display-name");
    assert_eq!(h.take("carol"), [":irc.test 771 carol display-name"]);
    h.send("alice", "METADATA * SET display-name :Alice");
    h.send("alice", "METADATA * SET color :red");
    assert_eq!(
        h.take("bob"),
        [":irc.test 761 bob alice display-name * :Alice"]
    );
    assert!(h.take("carol").is_empty());
    assert!(h.take("dave").is_empty());
    h.send("alice", "METADATA * CLEAR");
    assert_eq!(
        h.take("bob"),
        [":irc.test 766 bob alice display-name :Key not set"]
    );
}

#[test]
fn subscriptions_stop_at_max_subs_naming_the_first_key_left_out() {
    let mut h = harness(|config| config.metadata.max_subs = 2);
    h.register("alice");
    h.send("alice", "METADATA * SUB avatar $bad color pronouns website");
    assert_eq!(
        h.take("alice"),
        [
            ":irc.test FAIL METADATA INVALID_KEY $bad :Invalid key",
            ":irc.test FAIL METADATA TOO_MANY_SUBS pronouns :Too many subscriptions",
            ":irc.test 770 alice avatar color",
        ]
    );
    h.send("alice", "METADATA * SUBS");
    assert_eq!(h.take("alice"), [":irc.test 772 alice avatar color"]);
}

#[test]
fn a_new_subscription_brings_the_current_values_of_rooms_and_room_mates() {
    let mut h = Harness::new();
    h.register("alice");
    h.register("bob");
    h.register("carol");
    h.room("#room", &[("alice", true), ("bob", false)]);
    h.send("alice", "METADATA #room SET avatar :room.png");
    h.send("alice", "METADATA * SET avatar :alice.png");
    h.send("carol", "METADATA * SET avatar :carol.png");
    h.send("bob", "METADATA * SUB avatar");
    assert_eq!(
        h.take("bob"),
        [
            ":irc.test 770 bob avatar",
            ":irc.test 761 bob #room avatar * :room.png",
            ":irc.test 761 bob alice avatar * :alice.png",
        ]
    );
    h.send("bob", "METADATA * SUB avatar");
    assert_eq!(h.take("bob"), [":irc.test 770 bob avatar"], "nothing new");
}

#[test]
fn a_joiner_gets_the_rooms_and_members_subscribed_keys() {
    let mut h = Harness::new();
    h.register("alice");
    h.register("bob");
    h.room("#room", &[("alice", true)]);
    h.send("alice", "METADATA #room SET avatar :room.png");
    h.send("alice", "METADATA * SET avatar :alice.png");
    h.send("alice", "METADATA * SET color :red");
    give(&mut h, "bob", Caps::METADATA);
    h.send("bob", "METADATA * SUB avatar");
    h.take("bob");
    h.send("bob", "JOIN #room");
    let keys: Vec<String> = h
        .take("bob")
        .into_iter()
        .filter(|line| line.contains(" 761 "))
        .collect();
    assert_eq!(
        keys,
        [
            ":irc.test 761 bob #room avatar * :room.png",
            ":irc.test 761 bob alice avatar * :alice.png",
        ]
    );
}

#[test]
fn whois_shows_the_display_name() {
    let mut h = Harness::new();
    h.register("alice");
    h.register("bob");
    h.send("alice", "METADATA * SET display-name :Alice L");
    h.send("alice", "METADATA * SET color :red");
    h.send("bob", "WHOIS alice");
    let shown: Vec<String> = h
        .take("bob")
        .into_iter()
        .filter(|line| line.contains(" 760 "))
        .collect();
    assert_eq!(shown, [":irc.test 760 bob alice display-name * :Alice L"]);
}

#[test]
fn before_registration_only_ones_own_keys_and_the_welcome_repeats_them() {
    let mut h = Harness::new();
    h.connect("alice");
    h.send("alice", "CAP LS 302");
    h.send("alice", "CAP REQ :draft/metadata-3");
    h.take("alice");
    h.send("alice", "METADATA * SET display-name :Early");
    h.send("alice", "METADATA bob GET display-name");
    assert_eq!(
        h.take("alice"),
        [
            ":irc.test 761 * * display-name * :Early",
            ":irc.test FAIL METADATA KEY_NO_PERMISSION bob * :Only your own metadata before registration",
        ]
    );
    h.send("alice", "NICK alice");
    h.send("alice", "USER alice 0 * :Alice");
    h.send("alice", "CAP END");
    let welcome = h.take("alice");
    assert!(
        welcome.contains(&":irc.test 761 alice alice display-name * :Early".to_owned()),
        "{welcome:?}"
    );
}

#[test]
fn the_cap_value_carries_the_limits() {
    let mut h = Harness::new();
    h.connect("alice");
    h.send("alice", "CAP LS 302");
    let ls = h.take("alice").join(" ");
    assert!(
        ls.contains("draft/metadata-3=before-connect,max-subs=50,max-keys=20,max-value-bytes=300"),
        "{ls}"
    );
    let mut h = harness(|config| config.metadata.enabled = false);
    h.connect("alice");
    h.send("alice", "CAP LS 302");
    assert!(!h.take("alice").join(" ").contains("metadata"));
    h.register("bob");
    h.send("bob", "METADATA * LIST");
    assert_eq!(
        h.take("bob"),
        [":irc.test 421 bob METADATA :Unknown command"]
    );
}

#[test]
fn a_login_stores_the_connections_keys_then_reads_the_accounts_under_them() {
    let mut h = harness(|config| {
        config.history.enabled = true;
        config.accounts.enabled = true;
    });
    h.register("alice");
    let (queue, mut worker) = tokio::sync::mpsc::channel(16);
    h.state.admin.metadata = Some(queue);
    h.send("alice", "METADATA * SET color :red");
    let id = h.id("alice");
    h.state.log_in(id, "alice");
    let mut requests = Vec::new();
    while let Ok(request) = worker.try_recv() {
        requests.push(request);
    }
    assert!(matches!(
        &requests[..],
        [
            MetadataRequest::Change { account, change: MetadataChange::Set { key, value: Some(value) } },
            MetadataRequest::Load { account: loaded, .. },
        ] if account == "alice" && key == "color" && value == "red" && loaded == "alice"
    ));
    let values = vec![
        ("color".to_owned(), "blue".to_owned()),
        ("pronouns".to_owned(), "she/her".to_owned()),
    ];
    h.state.handle(Event::MetadataLoaded {
        id,
        account: "alice".into(),
        values,
    });
    let mine = &h.state.clients[&id].metadata.values;
    assert_eq!(mine["color"], "red", "the connection's own key wins");
    assert_eq!(mine["pronouns"], "she/her");
    h.send("alice", "METADATA * SET color");
    assert!(matches!(
        worker.try_recv(),
        Ok(MetadataRequest::Change {
            change: MetadataChange::Set { value: None, .. },
            ..
        })
    ));
}

#[test]
fn a_registered_rooms_keys_are_saved_with_it_and_come_back() {
    use crate::core::registered::{Registration, room_record};
    let mut h = Harness::new();
    let mut worker = h.attach_worker();
    h.register("alice");
    h.room("#room", &[("alice", true)]);
    h.send("alice", "METADATA #room SET avatar :unsaved.png");
    assert!(
        worker.try_recv().is_err(),
        "an unregistered room is not stored"
    );
    h.channel_mut("#room").registration = Some(Registration {
        founder: "alice".into(),
        access: Vec::new(),
        registered_ms: 1,
    });
    h.send("alice", "METADATA #room SET display-name :The Room");
    let Ok(AdminRequest::SaveRoom(record)) = worker.try_recv() else {
        panic!("the room was not saved");
    };
    let keys: Vec<&str> = record.metadata.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["avatar", "display-name"]);
    let mut fresh = Harness::new();
    fresh.state.load_registered_rooms(vec![record]);
    let restored = room_record(fresh.channel("#room")).unwrap();
    assert_eq!(restored.metadata[1].1, "The Room");
}

#[test]
fn a_full_metadata_queue_drops_a_change_without_waiting() {
    let mut h = harness(|config| {
        config.history.enabled = true;
        config.accounts.enabled = true;
    });
    h.register("alice");
    let (queue, mut writer) = tokio::sync::mpsc::channel(1);
    h.state.admin.metadata = Some(queue);
    let id = h.id("alice");
    h.state.clients.get_mut(&id).unwrap().account = Some("alice".into());
    h.send("alice", "METADATA * SET color :red");
    h.send("alice", "METADATA * SET color :blue");
    assert_eq!(h.take("alice").len(), 2, "both answered at once");
    assert!(writer.try_recv().is_ok());
    assert!(writer.try_recv().is_err(), "the second was dropped");
}

#[test]
fn odd_metadata_lines_are_answered_and_every_line_sent_is_well_formed() {
    let mut h = Harness::new();
    h.register("alice");
    h.register("bob");
    give(&mut h, "alice", Caps::METADATA.union(Caps::BATCH));
    h.room("#room", &[("alice", true), ("bob", false)]);
    let long = "v".repeat(600);
    let lines = [
        "METADATA",
        "METADATA *",
        "METADATA * SET",
        "METADATA * SET :",
        "METADATA * SET a b c d e f",
        "METADATA * SUB",
        "METADATA * UNSUB :",
        "METADATA #room SET x :\u{1}\u{7f}",
        "METADATA * SET key :with\u{0}nul",
        "METADATA :* SYNC",
        "METADATA # LIST",
        "METADATA bob GET : :: :::",
        "METADATA * set display-name :lowercase subcommand",
    ];
    for line in lines
        .iter()
        .map(|l| l.to_string())
        .chain([format!("METADATA * SET k :{long}")])
    {
        h.send_fuzzed("alice", &line);
        h.send_fuzzed("bob", &line);
    }
    h.check().unwrap();
    assert_eq!(
        h.state.clients[&h.id("alice")]
            .metadata
            .values
            .get("display-name")
            .map(String::as_str),
        Some("lowercase subcommand")
    );
}

#[test]
fn an_outsiders_sync_shows_no_invisible_member() {
    let mut h = Harness::new();
    h.register("alice");
    h.register("hidden");
    h.register("bob");
    h.room("#room", &[("alice", true), ("hidden", false)]);
    h.send("alice", "METADATA * SET avatar :alice.png");
    h.send("hidden", "METADATA * SET avatar :hidden.png");
    h.send("hidden", "MODE hidden +i");
    give(&mut h, "bob", Caps::METADATA);
    h.send("bob", "METADATA * SUB avatar");
    h.take("bob");
    h.send("bob", "METADATA #room SYNC");
    let keys: Vec<String> = h
        .take("bob")
        .into_iter()
        .filter(|line| line.contains(" 761 "))
        .collect();
    assert_eq!(keys, [":irc.test 761 bob alice avatar * :alice.png"]);
}

#[test]
fn sync_of_a_large_room_is_put_off_with_774() {
    let mut h = Harness::new();
    h.register("bob");
    let members: Vec<String> = (0..=crate::core::metadata::SYNC_MEMBERS)
        .map(|n| format!("m{n}"))
        .collect();
    for member in &members {
        h.register(member);
        h.send(member, "METADATA * SET avatar :a.png");
        h.send(member, "JOIN #big");
    }
    give(&mut h, "bob", Caps::METADATA);
    h.send("bob", "METADATA * SUB avatar");
    h.take("bob");
    h.send("bob", "METADATA #big SYNC");
    assert_eq!(h.take("bob"), [":irc.test 774 bob #big 0"]);
}
