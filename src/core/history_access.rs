//! Who may read which stored lines: the one rule that playback on join,
//! CHATHISTORY and CHATHISTORY TARGETS all follow.
//!
//! - A room's lines are read by its members only, and never from before
//!   the room's current incarnation: a room that empties disappears, and
//!   one created later under the same name (or after a restart) is a new
//!   room that has said nothing yet. A standing `[[room]]` never
//!   disappears: it is one incarnation for ever.
//! - Within that, a room's history is shared by default: a joiner reads
//!   what was said before it came (playback shows the last lines, and
//!   CHATHISTORY at least as much). A room can be made join-time-only, for
//!   every room with `[history] visibility = "since_join"` or for one
//!   standing room with its `history = "since_join"`: a member then reads
//!   only what was said since it joined, and is played nothing back.
//! - A private conversation is between two parties: each side is the
//!   account its speaker was logged in to, or the nick of one that was
//!   not. An account's side is read from any connection logged in to the
//!   account, whenever it was said, and by nobody else: a client that
//!   merely holds the nick reads none of it. A nick's side is read by
//!   whoever holds the nick, from the moment it took it: whoever had the
//!   nick before held the earlier lines, not the reader. A logged-in
//!   client reads only its account's side, so what it said under its nick
//!   before logging in stays with the nick.
//!
//! A floor is the oldest time (milliseconds, inclusive) a reader may see.
//! Times are stored to the millisecond, so a line from the very
//! millisecond of a join cannot be ordered against it: a join-time floor
//! starts one millisecond later, as the line may have come before. A room
//! or nick that starts in the very millisecond another one ended likewise
//! starts one later ([`starting_floor`]), so the earlier one's last lines
//! stay out.

use super::{Client, ClientId, State};
use crate::config::HistoryVisibility;
use crate::history::{self, HistoryTarget, Party};
use crate::proto::Folded;

/// The oldest time `id` may read in `room`, or `None` if it may not read
/// the room at all (it is not a member, or the room does not exist).
pub fn room_floor(state: &State, id: ClientId, room: &Folded) -> Option<i64> {
    let channel = state.channels.get(room)?;
    channel.members.get(&id)?;
    let incarnation = channel.history_floor;
    let visibility = channel.history.unwrap_or(state.config.history.visibility);
    Some(match visibility {
        HistoryVisibility::Shared => incarnation,
        HistoryVisibility::SinceJoin => {
            let joined = channel
                .joined
                .get(&id)
                .copied()
                .unwrap_or_else(|| state.clock.now());
            incarnation.max(after(joined))
        }
    })
}

/// The oldest time `id` may read its private conversations from, or `None`
/// when they are not kept: an account's from the start, a nick's from
/// when the reader took it.
pub fn conversation_floor(state: &State, id: ClientId) -> Option<i64> {
    if !state.config.history.private_messages {
        return None;
    }
    let client = state.clients.get(&id)?;
    Some(match client.account {
        Some(_) => i64::MIN,
        None => client.nick_floor,
    })
}

/// The side `client` speaks and reads private conversations as: its
/// account when logged in, else its nick. A user of another node is keyed
/// by its account only where the accounts are the network's: otherwise
/// its account is its node's own, and this node's namesake would read it.
pub fn party(state: &State, client: &Client) -> Party {
    match &client.account {
        Some(account) if client.remote.is_none() || state.accounts_shared() => {
            Party::Account(state.fold(account))
        }
        _ => Party::Nick(state.fold(&client.nick)),
    }
}

/// The keys of `id`'s conversation with `nick`: with the nick held, the
/// holder's side ([`party`]); with nobody holding it, its account's side
/// and its nick's, read together, as either may have spoken there.
pub fn conversation_with(
    state: &State,
    id: ClientId,
    nick: &str,
) -> Option<(HistoryTarget, Option<HistoryTarget>)> {
    let own = party(state, state.clients.get(&id)?);
    let folded = state.fold(nick);
    if let Some(holder) = state.registered_client(&folded) {
        return Some((HistoryTarget::private(own, party(state, holder)), None));
    }
    let by_nick = HistoryTarget::private(own.clone(), Party::Nick(folded.clone()));
    let by_account = HistoryTarget::private(own, Party::Account(folded));
    Some((by_nick, Some(by_account)))
}

/// The floor of a history that starts `now` (a room's incarnation, a
/// client's nick): `now`, unless one of the same kind ended at `ended_ms`
/// in this very millisecond, whose last lines may share it.
pub fn starting_floor(now: std::time::SystemTime, ended_ms: i64) -> i64 {
    let now = history::millis(now);
    if now <= ended_ms {
        ended_ms.saturating_add(1)
    } else {
        now
    }
}

/// The first millisecond surely after `time`.
fn after(time: std::time::SystemTime) -> i64 {
    history::millis(time).saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::{Harness, START};

    const START_MS: i64 = START as i64 * 1000;

    #[test]
    fn a_room_re_created_in_the_millisecond_it_ended_reads_nothing_of_it() {
        let mut h = Harness::new();
        h.register("alice");
        h.register("mallory");
        h.send("alice", "JOIN #r");
        let room = h.state.fold("#r");
        let alice = h.id("alice");
        assert_eq!(room_floor(&h.state, alice, &room), Some(START_MS));
        // Lines of this room are stored at START_MS; it ends in that
        // millisecond and is created again in it.
        h.send("alice", "PART #r");
        h.send("mallory", "JOIN #r");
        let mallory = h.id("mallory");
        assert_eq!(room_floor(&h.state, mallory, &room), Some(START_MS + 1));
        assert_eq!(room_floor(&h.state, alice, &room), None, "not a member");
        // Later rooms start when they are created.
        h.send("mallory", "PART #r");
        h.advance(5);
        h.send("mallory", "JOIN #r");
        assert_eq!(room_floor(&h.state, mallory, &room), Some(START_MS + 5000));
    }

    #[test]
    fn a_nick_taken_in_the_millisecond_it_was_given_up_reads_nothing_of_it() {
        let mut config = crate::config::Config::default();
        config.server.name = "irc.test".into();
        config.history.private_messages = true;
        let mut h = Harness::with_config(config);
        h.register("bob");
        assert_eq!(conversation_floor(&h.state, h.id("bob")), Some(START_MS));
        h.send("bob", "QUIT :bye");
        h.register("mallory");
        h.send("mallory", "NICK bob");
        let mallory = h.id("mallory");
        assert_eq!(conversation_floor(&h.state, mallory), Some(START_MS + 1));
        // A later nick starts when taken (one millisecond on: the nick
        // given up for it ended in that same millisecond).
        h.advance(2);
        h.send("mallory", "NICK carol");
        let floor = START_MS + 2000 + 1;
        assert_eq!(conversation_floor(&h.state, mallory), Some(floor));
        // A change of case is the same nick: the floor stays.
        h.advance(2);
        h.send("mallory", "NICK Carol");
        assert_eq!(conversation_floor(&h.state, mallory), Some(floor));
    }

    #[test]
    fn a_standing_room_is_one_incarnation_and_since_join_floors_at_the_join() {
        let mut config = crate::config::Config::default();
        config.server.name = "irc.test".into();
        config.room = vec![crate::config::Room {
            name: "#lobby".into(),
            topic: String::new(),
            modes: None,
            history: Some(HistoryVisibility::SinceJoin),
        }];
        let mut h = Harness::with_config(config);
        h.register("alice");
        h.advance(3);
        h.send("alice", "JOIN #lobby");
        let room = h.state.fold("#lobby");
        let alice = h.id("alice");
        assert_eq!(
            room_floor(&h.state, alice, &room),
            Some(START_MS + 3000 + 1)
        );
        h.state.channels.get_mut(&room).unwrap().history = None;
        assert_eq!(room_floor(&h.state, alice, &room), Some(i64::MIN));
    }
}
