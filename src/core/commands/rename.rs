//! RENAME (draft/channel-rename): a room's operators give it a new name.
//! Everything follows the room: members, modes, lists, invites, topic,
//! its ChanServ registration, its history (rings here, stored lines on
//! the history writer), playback marks and read markers. Members with
//! the capability see RENAME; others see themselves PART and JOIN again,
//! with the JOIN burst, as the spec's fallback says.

use super::join::{join_burst, join_event};
use crate::accounts::ReadMarkerRecord;
use crate::core::caps::Caps;
use crate::core::{AdminRequest, ClientId, Refusal, State};
use crate::history::RoomRename;
use crate::net::Gate;
use crate::proto::validate::is_valid_channel;
use crate::proto::{Folded, Line, Message, numeric};

/// `RENAME <channel> <new channel> [:<reason>]`
///
/// A room's operator renames it; only the case may change too.
pub fn rename(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    let (old, new, reason) = (message.param(0), message.param(1), message.param(2));
    let old_folded = state.fold(old);
    check_renamer(state, id, old, &old_folded)?;
    if !is_valid_channel(new, state.config.limits.channel_length) {
        return Err(Refusal::new(numeric::ERR_BADCHANMASK, &[new]));
    }
    let Some(channel) = state.channels.get(&old_folded) else {
        return Ok(());
    };
    let old = channel.name.clone();
    let new_folded = state.fold(new);
    let why_not = if channel.persistent {
        Some((
            "CANNOT_RENAME",
            "A room of the server's configuration cannot be renamed",
        ))
    } else if old.chars().next() != new.chars().next() {
        Some(("CANNOT_RENAME", "You cannot change a channel prefix type"))
    } else if state.history.as_ref().is_some_and(|h| h.is_shared()) {
        // The other nodes would keep the old name while the shared
        // history moved to the new one.
        Some((
            "CANNOT_RENAME",
            "Rooms cannot be renamed on a network of several servers yet",
        ))
    } else if new_folded != old_folded && state.channels.contains_key(&new_folded) {
        Some(("CHANNEL_NAME_IN_USE", "The channel name is already taken"))
    } else {
        None
    };
    if let Some((code, text)) = why_not {
        state.fail(id, "RENAME", code, &[&old, new], text);
        return Ok(());
    }
    let floor_ms = channel.history_floor;
    let Some(seq) = move_history(state, &old_folded, &new_folded, new, floor_ms) else {
        let text = "The room cannot be renamed right now; try again later";
        state.fail(id, "RENAME", "TEMPORARILY_UNAVAILABLE", &[&old, new], text);
        return Ok(());
    };
    move_room(state, &old_folded, &new_folded, new);
    announce(
        state,
        id,
        [&old, new, reason],
        new_folded != old_folded,
        seq,
    );
    Ok(())
}

/// 403 for a room `id` cannot see, 442 outside it, 482 without op.
fn check_renamer(state: &State, id: ClientId, name: &str, folded: &Folded) -> Result<(), Refusal> {
    let Some(channel) = state.visible_channel(id, folded) else {
        return Err(Refusal::no_such_channel(name));
    };
    match channel.members.get(&id) {
        None => Err(Refusal::not_on_channel(&channel.name)),
        Some(membership) if !membership.op => Err(Refusal::not_channel_operator(&channel.name)),
        Some(_) => Ok(()),
    }
}

/// Moves the room, and everything kept under its name, to `new`.
fn move_room(state: &mut State, old: &Folded, new: &Folded, display: &str) {
    let Some(mut channel) = state.channels.remove(old) else {
        return;
    };
    let old_name = std::mem::replace(&mut channel.name, display.to_owned());
    let registered = channel.registration.is_some();
    let people: Vec<ClientId> = channel
        .members
        .keys()
        .chain(channel.invited.keys())
        .copied()
        .collect();
    state.channels.insert(new.clone(), channel);
    for id in people {
        if let Some(client) = state.clients.get_mut(&id) {
            rename_in(&mut client.channels, old, new);
            rename_in(&mut client.invited_to, old, new);
        }
    }
    move_marks(state, old, new, display);
    super::batch::follow_rename(state, old, display);
    state.playback.rename(old, new, display);
    if registered {
        state.save_renamed_room(old_name, new);
    }
}

fn rename_in(rooms: &mut std::collections::HashSet<Folded>, old: &Folded, new: &Folded) {
    if rooms.remove(old) {
        rooms.insert(new.clone());
    }
}

/// Playback's seen marks and read markers follow the room.
fn move_marks(state: &mut State, old: &Folded, new: &Folded, display: &str) {
    let old_name = old.as_str().to_owned();
    state.account_seen.rename(old, new);
    for client in state.clients.values_mut() {
        client.playback_seen.rename(old, new);
        client.read_markers.rename(old, new, display);
    }
    for (account, read_ms) in state.read_markers.rename(old, new, display) {
        let marker = ReadMarkerRecord {
            account: account.as_str().to_owned(),
            target: display.to_owned(),
            read_ms,
            renamed_from: Some(old_name.clone()),
        };
        state.admin.request(AdminRequest::SaveReadMarker(marker));
    }
}

/// Queues the move of the room's stored lines, after the lines queued
/// before: the sequence number lines about the rename wait for (0 without
/// a store), or None when the writer cannot take the job.
fn move_history(
    state: &State,
    old: &Folded,
    new: &Folded,
    display: &str,
    floor_ms: i64,
) -> Option<u64> {
    let Some(history) = &state.history else {
        return Some(0);
    };
    history.rename_room(RoomRename {
        old: old.clone(),
        new: new.clone(),
        display: display.to_owned(),
        floor_ms,
    })
}

/// RENAME to members with the capability; to the others, unless only the
/// case changed, PART of the old name and JOIN of the new with its burst.
/// Every line waits for history record `seq`, the move of the stored lines.
fn announce(
    state: &mut State,
    id: ClientId,
    [old, new, reason]: [&str; 3],
    fallback: bool,
    seq: u64,
) {
    let Some(source) = state.clients.get(&id).map(|client| client.source.clone()) else {
        return;
    };
    let folded = state.fold(new);
    let Some(channel) = state.channels.get(&folded) else {
        return;
    };
    let (capable, mut others): (Vec<ClientId>, Vec<ClientId>) =
        channel.members.keys().copied().partition(|member| {
            state
                .clients
                .get(member)
                .is_some_and(|client| client.has_cap(Caps::CHANNEL_RENAME))
        });
    let line = Line::new(Some(&source), "RENAME")
        .arg(old)
        .arg(new)
        .trailing(reason)
        .finish();
    let mut event = state.event_from(id, line);
    event.set_gate(Gate::store(seq));
    state.send_all(capable, &mut event);
    if fallback {
        others.sort_unstable();
        for member in others {
            part_and_join(state, member, old, &folded, reason, seq);
        }
    }
}

/// The fallback for one member: it sees itself leave and enter again.
fn part_and_join(
    state: &mut State,
    id: ClientId,
    old: &str,
    folded: &Folded,
    reason: &str,
    seq: u64,
) {
    let Some(client) = state.clients.get(&id) else {
        return;
    };
    let Some(new) = state
        .channels
        .get(folded)
        .map(|channel| channel.name.clone())
    else {
        return;
    };
    let part = Line::new(Some(&client.source), "PART").arg(old);
    let part = if reason.is_empty() {
        part
    } else {
        part.trailing(reason)
    }
    .finish();
    let mut part = state.event_from(id, part);
    part.set_gate(Gate::store(seq));
    state.send_all([id], &mut part);
    if let Some(mut join) = join_event(state, id, &new) {
        join.set_gate(Gate::store(seq));
        state.send_all([id], &mut join);
    }
    join_burst(state, id, folded, false);
}

#[cfg(test)]
mod tests {
    use crate::core::testing::Harness;

    /// alice (op, with the cap) and bob (without) in #old.
    fn room() -> Harness {
        let mut h = Harness::new();
        h.register("alice");
        h.register("bob");
        h.send("alice", "CAP REQ draft/channel-rename");
        h.send("alice", "JOIN #old");
        h.send("alice", "TOPIC #old :kept");
        h.send("bob", "JOIN #old");
        h.take("alice");
        h.take("bob");
        h
    }

    #[test]
    fn members_with_the_cap_see_rename_and_others_part_and_join() {
        let mut h = room();
        h.send("alice", "RENAME #old #new :tidier");
        assert_eq!(
            h.take("alice"),
            [":alice!~alice@127.0.0.1 RENAME #old #new :tidier"]
        );
        let bob = h.take("bob");
        assert_eq!(
            bob[..3],
            [
                ":bob!~bob@127.0.0.1 PART #old :tidier",
                ":bob!~bob@127.0.0.1 JOIN #new",
                ":irc.test 332 bob #new :kept",
            ]
        );
        assert_eq!(
            bob[bob.len() - 1],
            ":irc.test 366 bob #new :End of /NAMES list"
        );
        assert!(h.state.channels.contains_key(&h.state.fold("#new")));
        assert!(!h.state.channels.contains_key(&h.state.fold("#old")));
        let bob_id = h.id("bob");
        assert!(
            h.state.clients[&bob_id]
                .channels
                .contains(&h.state.fold("#new"))
        );
        assert!(!h.channel("#new").members[&bob_id].op);
        h.send("bob", "PRIVMSG #new :still here");
        assert_eq!(
            h.take("alice"),
            [":bob!~bob@127.0.0.1 PRIVMSG #new :still here"]
        );
    }

    #[test]
    fn the_fallback_join_carries_the_read_marker_and_metadata() {
        let mut h = room();
        h.send("bob", "CAP REQ :draft/read-marker draft/metadata-3");
        h.send("bob", "MARKREAD #old timestamp=2020-01-01T00:00:00.000Z");
        h.send("alice", "METADATA * SET avatar :alice.png");
        h.send("bob", "METADATA * SUB avatar");
        h.take("bob");
        h.send("alice", "RENAME #old #new");
        let bob = h.take("bob");
        let marker = ":irc.test MARKREAD #new timestamp=2020-01-01T00:00:00.000Z";
        let at = |wanted: &str| bob.iter().position(|line| line.ends_with(wanted));
        let marker_at = at(marker).expect("a MARKREAD");
        let end_at = at("366 bob #new :End of /NAMES list").expect("a 366");
        assert!(marker_at < end_at, "{bob:?}");
        assert!(
            bob.iter()
                .any(|line| line.ends_with("761 bob alice avatar * :alice.png")),
            "{bob:?}"
        );
    }

    #[test]
    fn a_change_of_case_only_spares_the_others_the_fallback() {
        let mut h = room();
        h.send("alice", "RENAME #old #OLD");
        assert_eq!(
            h.take("alice"),
            [":alice!~alice@127.0.0.1 RENAME #old #OLD :"]
        );
        assert!(h.take("bob").is_empty());
        assert_eq!(h.channel("#old").name, "#OLD");
    }

    #[test]
    fn refusals_name_the_reason() {
        let mut h = room();
        h.send("alice", "JOIN #taken");
        h.take("alice");
        h.send("bob", "RENAME #old #mine");
        h.send("bob", "RENAME #nowhere #mine");
        assert_eq!(
            h.take("bob"),
            [
                ":irc.test 482 bob #old :You're not channel operator",
                ":irc.test 403 bob #nowhere :No such channel",
            ]
        );
        h.send("alice", "RENAME #old #taken");
        h.send("alice", "RENAME #old &local");
        h.send("alice", "RENAME #old bad");
        assert_eq!(
            h.take("alice"),
            [
                ":irc.test FAIL RENAME CHANNEL_NAME_IN_USE #old #taken :The channel name is already taken",
                ":irc.test FAIL RENAME CANNOT_RENAME #old &local :You cannot change a channel prefix type",
                ":irc.test 476 alice bad :Bad Channel Mask",
            ]
        );
    }

    #[test]
    fn a_standing_room_of_the_configuration_is_not_renamed() {
        let mut h = room();
        h.channel_mut("#old").persistent = true;
        h.send("alice", "RENAME #old #new");
        assert_eq!(
            h.take("alice"),
            [
                ":irc.test FAIL RENAME CANNOT_RENAME #old #new :A room of the server's configuration cannot be renamed"
            ]
        );
    }

    #[test]
    fn invites_and_read_markers_follow_the_room() {
        let mut h = room();
        h.register("carol");
        h.send("alice", "MODE #old +i");
        h.send("alice", "INVITE carol #old");
        h.send("bob", "MARKREAD #old timestamp=2020-01-01T00:00:00.000Z");
        h.send("alice", "RENAME #old #new");
        h.take("bob");
        h.send("bob", "MARKREAD #new");
        assert_eq!(
            h.take("bob"),
            [":irc.test MARKREAD #new timestamp=2020-01-01T00:00:00.000Z"]
        );
        h.send("carol", "JOIN #new");
        assert_eq!(
            h.take("carol").last().map(String::as_str),
            Some(":irc.test 366 carol #new :End of /NAMES list")
        );
    }

    #[test]
    fn rename_lines_wait_for_the_history_move() {
        let mut t = crate::core::testing::HistoryHarness::new();
        t.h.register("alice");
        t.h.register("bob");
        t.h.send("alice", "CAP REQ draft/channel-rename");
        t.h.send("alice", "JOIN #old");
        t.h.send("bob", "JOIN #old");
        t.settle();
        t.h.take("alice");
        t.h.take("bob");
        t.h.send("alice", "RENAME #old #new");
        let moved = t.h.state.history.as_ref().expect("a store").last_queued();
        assert!(moved > 0);
        let moved = crate::net::Gate::store(moved);
        assert_eq!(t.h.queued_gates("alice"), [moved]);
        let bob = t.h.queued_gates("bob");
        assert_eq!(bob[..2], [moved, moved], "the PART and the JOIN wait");
    }

    #[test]
    fn a_stopped_history_writer_keeps_the_old_name() {
        let mut t = crate::core::testing::HistoryHarness::new();
        t.h.register("alice");
        t.h.send("alice", "JOIN #old");
        t.h.take("alice");
        t.stop_writer();
        t.h.send("alice", "RENAME #old #new");
        assert_eq!(
            t.h.take("alice"),
            [
                ":irc.test FAIL RENAME TEMPORARILY_UNAVAILABLE #old #new :The room cannot be renamed right now; try again later"
            ]
        );
        assert!(t.h.state.channels.contains_key(&t.h.state.fold("#old")));
        assert!(!t.h.state.channels.contains_key(&t.h.state.fold("#new")));
    }

    #[test]
    fn history_follows_the_room_in_playback_and_chathistory() {
        let mut t = crate::core::testing::HistoryHarness::new();
        t.h.register("alice");
        t.h.send("alice", "JOIN #old");
        t.h.send("alice", "PRIVMSG #old :said before");
        t.h.send("alice", "RENAME #old #new");
        t.h.send("alice", "PRIVMSG #new :said after");
        t.settle();
        t.h.register("bob");
        t.h.send("bob", "JOIN #new");
        let played: Vec<String> =
            t.h.take("bob")
                .into_iter()
                .filter(|l| l.contains(" PRIVMSG "))
                .collect();
        assert_eq!(played.len(), 2, "{played:?}");
        assert!(
            played[0].contains(" PRIVMSG #new :") && played[0].contains("said before"),
            "{played:?}"
        );
        let stored = t.query("bob", "CHATHISTORY LATEST #new * 10");
        let stored: Vec<&String> = stored.iter().filter(|l| l.contains("said")).collect();
        assert_eq!(stored.len(), 2, "{stored:?}");
        assert!(
            stored[0].contains("PRIVMSG #new :") && stored[0].ends_with("said before"),
            "{stored:?}"
        );
    }
}
