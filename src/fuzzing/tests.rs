//! Property tests in the normal suite: the fuzz targets' properties over
//! bounded random inputs, so a regression shows up in `cargo test` without
//! a fuzzer. Failures are not persisted to files; a failing case found here
//! becomes a named regression test next to the code it fixes.

use std::collections::BTreeMap;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use super::invariants::check_sent_line;
use super::script::{self, SLOTS, STEP_BYTES};
use super::wire::{framing_and_parsing, round_trip, same_message, serialize};
use crate::proto::message::parse;
use crate::proto::{Message, Tag};

/// Cases per property that drives the state machine.
const STATE_CASES: u32 = 64;
/// Random steps per state-machine case, after the registrations.
const MAX_STEPS: usize = 40;

fn bounded(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Steps that register every slot under distinct nicks, so random steps
/// start from a populated server instead of waiting for NICK and USER.
/// The first two slots take message-tags, so client-only tags are relayed.
fn registrations() -> Vec<u8> {
    let mut bytes = Vec::new();
    for slot in 0..SLOTS as u8 {
        // NICK and USER with nick index 2 * slot: ann, bob, c[, dee.
        bytes.extend_from_slice(&[slot, 0, 2 * slot, 0, 0, 0]);
        bytes.extend_from_slice(&[slot, 1, 2 * slot, 0, 0, 0]);
        if slot < 2 {
            bytes.extend_from_slice(&[slot, 11, 0, 0, 0, 0]);
        }
    }
    bytes
}

proptest! {
    #![proptest_config(bounded(STATE_CASES))]

    #[test]
    fn state_invariants_hold_after_every_step(
        rfc1459 in any::<bool>(),
        steps in vec(any::<[u8; STEP_BYTES]>(), 0..=MAX_STEPS),
    ) {
        let mut data = vec![u8::from(rfc1459)];
        data.extend(registrations());
        data.extend(steps.concat());
        let outcome = script::run(&data);
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
    }

    #[test]
    fn room_invariants_hold_after_random_mode_strings(
        lines in vec((0u8..3, "[-+beIiklmnopstvxC]{0,8}( [a-z0-9*!@:,~]{0,6}){0,4}"), 0..12),
    ) {
        let mut data = vec![0];
        for (sender, modes) in lines {
            data.push(sender);
            data.extend_from_slice(modes.as_bytes());
            data.push(b'\n');
        }
        let outcome = super::room_modes::run(&data);
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
    }
}

/// A line of `tags` bytes of tag section (0 for none) and `body` bytes after
/// it, ended by one of the endings a client may send (or none).
fn line(tags: usize, body: usize, ending: &str) -> Vec<u8> {
    let mut line = Vec::new();
    if tags > 0 {
        line.push(b'@');
        line.extend(std::iter::repeat_n(b't', tags.saturating_sub(2)));
        line.push(b' ');
    }
    line.extend_from_slice(b"PRIVMSG #r :");
    line.extend(std::iter::repeat_n(b'b', body));
    line.extend_from_slice(ending.as_bytes());
    line
}

fn message() -> impl Strategy<Value = Message> {
    // Keys on the message-tags grammar and values without control characters:
    // the parser drops any other tag, so those cannot round trip.
    let tags = prop::collection::btree_map(
        "\\+?([a-z0-9.-]{1,4}/)?[a-zA-Z0-9-]{1,6}",
        "[^\\p{Cc}]{0,8}",
        0..4,
    );
    let source = prop::option::of("[!-~]{1,12}");
    let command = prop_oneof!["[A-Z]{1,8}", "[0-9]{3}"];
    let middles = vec("[!-9;-~][!-~]{0,8}", 0..4);
    let last = prop::option::of("[ -~]{0,12}");
    (tags, source, command, middles, last).prop_map(|(tags, source, command, middles, last)| {
        Message {
            tags: tags
                .into_iter()
                .map(|(key, value): (String, String)| Tag {
                    key,
                    value: Some(value),
                })
                .collect(),
            source,
            command,
            params: middles.into_iter().chain(last).collect(),
            invalid_utf8: false,
        }
    })
}

proptest! {
    #![proptest_config(bounded(256))]

    #[test]
    fn framing_does_not_depend_on_how_bytes_arrive(
        lines in vec((0usize..4300, 0usize..600, select(vec!["\r\n", "\n", "\r", ""])), 0..6),
        chunk_sizes in vec(1usize..700, 1..5),
    ) {
        let data: Vec<u8> = lines
            .iter()
            .flat_map(|&(tags, body, ending)| line(tags, body, ending))
            .collect();
        let outcome = framing_and_parsing(&data, &chunk_sizes);
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
    }

    #[test]
    fn irc_like_lines_round_trip(
        line in "(@[a-z+=;\\\\:s ]{0,12} )?(:[a-z!@.:]{1,8} )?[A-Za-z0-9]{1,5}( [a-z:#,\\\\ ]{0,10}){0,4}",
    ) {
        let outcome = round_trip(&line);
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
    }

    #[test]
    fn any_text_round_trips_or_is_refused(line in ".{0,40}") {
        let outcome = round_trip(&line);
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
    }

    #[test]
    fn serialized_messages_parse_back_to_themselves(message in message()) {
        let text = serialize(&message);
        let parsed = parse(&text).map(|parsed| parsed.to_owned());
        prop_assert!(
            parsed.as_ref().is_ok_and(|parsed| same_message(&message, parsed)),
            "{message:?} serialized as {text:?} parsed as {parsed:?}"
        );
    }
}

#[test]
fn tag_maps_treat_an_empty_value_as_none() {
    let with_empty = parse("@a=;b X").expect("valid line").to_owned();
    let bare = parse("@a;b= X").expect("valid line").to_owned();
    assert!(same_message(&with_empty, &bare));
    let tags: BTreeMap<_, _> = with_empty.tags.iter().map(|t| (&t.key, &t.value)).collect();
    assert_eq!(tags.len(), 2);
}

#[test]
fn a_scripted_session_keeps_the_invariants() {
    let mut data = vec![0];
    data.extend(registrations());
    // ann joins #a (op), bob joins #A (same room), ann kicks bob, bob quits.
    data.extend_from_slice(&[0, 2, 0, 0, 0, 0]);
    data.extend_from_slice(&[1, 2, 0, 1, 0, 0]);
    data.extend_from_slice(&[0, 6, 2, 0, 0, 0]);
    data.extend_from_slice(&[1, 9, 0, 0, 0, 0]);
    script::run(&data).expect("invariants hold");
}

#[test]
fn hostile_client_tags_reach_no_one_raw() {
    let mut data = vec![0];
    data.extend(registrations());
    // ann and bob (both with message-tags) join #a; ann sends each tag set.
    data.extend_from_slice(&[0, 2, 0, 0, 0, 0]);
    data.extend_from_slice(&[1, 2, 0, 0, 0, 0]);
    for tags in 0..5u8 {
        data.extend_from_slice(&[0, 10, 0, 0, 0, tags << 1]);
    }
    script::run(&data).expect("invariants hold");
}

#[test]
fn sent_lines_with_control_characters_or_bad_keys_in_tags_are_caught() {
    for line in [
        &b"@+k\x01=v :a PRIVMSG #t :hi\r\n"[..],
        b"@+e=\x1b[2J :a PRIVMSG #t :hi\r\n",
        b"@+=2 :a PRIVMSG #t :hi\r\n",
        b"@a/b/c :a PRIVMSG #t :hi\r\n",
    ] {
        assert!(check_sent_line(line).is_err(), "{line:?}");
    }
    assert!(check_sent_line(b"@+draft/reply=1;msgid=x :a PRIVMSG #t :hi\r\n").is_ok());
}
