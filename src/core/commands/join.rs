//! JOIN: enter rooms, creating a room on first use; `JOIN 0` leaves them all.

use super::names::send_implicit_names;
use super::part::part_one;
use super::topic::send_topic;
use crate::accounts::AccessLevel;
use crate::core::Refusal;
use crate::core::broadcast::Broadcast;
use crate::core::caps::Caps;
use crate::core::channel::audience_of;
use crate::core::{Channel, ChannelModes, Client, ClientId, Membership, State};
use crate::core::{history_access, playback};
use crate::proto::numeric;
use crate::proto::validate::is_valid_channel;
use crate::proto::{Folded, Line, Message};

/// `JOIN <channel>{,<channel>} [<key>{,<key>}]`
///
/// Each room is answered on its own: a refusal for one does not stop the others.
pub fn join(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    let names = message.param(0);
    if names.is_empty() {
        return Err(Refusal::need_more_params("JOIN"));
    }
    if names == "0" {
        leave_all(state, id);
        return Ok(());
    }
    let mut keys = message.param(1).split(',');
    let max = state.config.limits.max_targets;
    let mut names = names.split(',').enumerate();
    while let Some((i, name)) = names.next() {
        if i == max {
            state.refuse(id, Refusal::too_many_targets(name));
            break;
        }
        if join_one(state, id, name, keys.next().unwrap_or("")) {
            // The rest of the list waits behind the room being created.
            let mut names: Vec<&str> = names.map(|(_, name)| name).collect();
            let room_left = max.saturating_sub(i + 1);
            if let Some(&over) = names.get(room_left) {
                state.refuse(id, Refusal::too_many_targets(over));
                names.truncate(room_left);
            }
            if !names.is_empty() {
                let rest = Message {
                    command: "JOIN".to_owned(),
                    params: vec![names.join(","), keys.collect::<Vec<_>>().join(",")],
                    ..Default::default()
                };
                state.network_join_rest(id, rest);
            }
            break;
        }
    }
    Ok(())
}

/// Joins one room; true when the join waits for the room's creation
/// network-wide.
fn join_one(state: &mut State, id: ClientId, name: &str, key: &str) -> bool {
    match admit(state, id, name, key) {
        Err(refusal) => state.refuse(id, refusal),
        Ok(None) => {}
        Ok(Some(folded)) => match state.network_create_room(id, name, key, &folded) {
            Err(refusal) => state.refuse(id, refusal),
            Ok(true) => return true,
            Ok(false) => join_admitted(state, id, name, &folded, None),
        },
    }
    false
}

/// Joins one room once the network answered its creation: with ops when
/// `won`, else as anyone joins a room that exists (its modes and lists,
/// read from the network, checked first).
pub(crate) fn join_created(state: &mut State, id: ClientId, name: &str, key: &str, won: bool) {
    match admit(state, id, name, key) {
        Err(refusal) => state.refuse(id, refusal),
        Ok(None) => {}
        Ok(Some(folded)) => join_admitted(state, id, name, &folded, Some(won)),
    }
}

/// Makes `id` a member and tells everyone; `op` overrides whether it gets
/// ops as the room's creator.
fn join_admitted(state: &mut State, id: ClientId, name: &str, folded: &Folded, op: Option<bool>) {
    enter(state, id, name, folded, op);
    state.network_join(id, folded);
    announce(state, id, folded);
    state.grant_owed_status(id, folded);
    join_burst(state, id, folded, true);
}

/// What a client is sent after its own JOIN: the topic, its read marker,
/// the names, the room's recent lines when `playback`, and the metadata
/// it subscribed to. The RENAME fallback's JOIN is followed by the same.
pub fn join_burst(state: &mut State, id: ClientId, folded: &Folded, playback: bool) {
    send_topic(state, id, folded, false);
    state.read_marker_on_join(id, folded);
    send_implicit_names(state, id, folded);
    if playback {
        playback::on_join(state, id, folded);
    }
    crate::core::metadata::on_join(state, id, folded);
}

/// The room `id` may enter under `name`; `None` when there is nothing to
/// do (already a member, or the client is gone).
fn admit(state: &State, id: ClientId, name: &str, key: &str) -> Result<Option<Folded>, Refusal> {
    let limits = &state.config.limits;
    // Modern IRC's 476 says "not a valid name" (403 is for a valid one that
    // does not exist); 479 is not in Modern, so every bad name gets 476.
    if !is_valid_channel(name, limits.channel_length) {
        return Err(Refusal::new(numeric::ERR_BADCHANMASK, &[name]));
    }
    let folded = state.fold(name);
    let Some(client) = state.clients.get(&id) else {
        return Ok(None);
    };
    if client.channels.contains(&folded) {
        return Ok(None);
    }
    if client.channels.len() >= limits.channels_per_client {
        return Err(Refusal::new(numeric::ERR_TOOMANYCHANNELS, &[name]));
    }
    if let Some(channel) = state.channels.get(&folded) {
        let entrant = Entrant {
            client,
            key,
            invited: channel.has_open_invite(id, state.clock.now()),
            // A standing [[room]] has no creator to invite anyone: the
            // operators who are to run it walk past +i.
            runs_room: channel.persistent && client.modes.oper,
            owed_op: client
                .account
                .as_deref()
                .is_some_and(|account| state.room_level(channel, account) == Some(AccessLevel::Op)),
        };
        if let Some(refusal) = refusal(channel, &entrant, limits.max_channel_members) {
            return Err(refusal);
        }
    }
    Ok(Some(folded))
}

/// Makes `id` a member of `folded`, creating the room (with the default
/// modes, its creator opped, unless `op` says otherwise) on first use.
fn enter(state: &mut State, id: ClientId, name: &str, folded: &Folded, op: Option<bool>) {
    let creating = op.unwrap_or(!state.channels.contains_key(folded));
    let now = state.clock.now();
    let default_modes = ChannelModes::from_flags(&state.config.channels.default_modes);
    let history_floor = history_access::starting_floor(now, state.room_ended_ms);
    let oper = state
        .clients
        .get(&id)
        .is_some_and(|client| client.modes.oper);
    let channel = state
        .channels
        .entry(folded.clone())
        .or_insert_with(|| new_room(name, now, default_modes, history_floor));
    channel.invited.remove(&id);
    // A standing [[room]] has no creator: operators get ops in it.
    let membership = Membership {
        op: creating || (channel.persistent && oper),
        voice: false,
    };
    state.add_member(id, folded, membership);
}

/// A room created here: with `modes`, its history starting at `floor`.
pub(crate) fn new_room(
    name: &str,
    now: std::time::SystemTime,
    modes: ChannelModes,
    floor: i64,
) -> Channel {
    let mut channel = Channel::new(name, now);
    channel.modes = modes;
    channel.history_floor = floor;
    channel
}

/// Tells the room, the newcomer included, that `id` joined; away-notify
/// members also learn that it is away. In an auditorium (+u) a newcomer
/// without a status is announced to the room's operators and itself only.
pub(crate) fn announce(state: &mut State, id: ClientId, folded: &Folded) {
    let (Some(client), Some(channel)) = (state.clients.get(&id), state.channels.get(folded)) else {
        return;
    };
    let source = client.source.clone();
    let away = client.away.clone();
    let hidden = channel.hides(id);
    let Some(mut event) = join_event(state, id, &channel.name) else {
        return;
    };
    // A hidden member's events are not stored: playback could not tell
    // who may see them.
    if !hidden {
        state.record_event(folded, &event);
    }
    state.send_to_members(folded, &mut event, audience_of(hidden, id));
    if let Some(away) = away {
        let line = Line::new(Some(&source), "AWAY").trailing(&away).finish();
        let mut event = state.event_from(id, line);
        let sees = audience_of(hidden, id);
        state.send_to_members(folded, &mut event, |member, membership| {
            member.id != id && member.caps.contains(Caps::AWAY_NOTIFY) && sees(member, membership)
        });
    }
}

/// `id`'s JOIN of the room `name`, in both forms: extended-join adds the
/// account (`*` when logged out) and the real name.
pub fn join_event(state: &State, id: ClientId, name: &str) -> Option<Broadcast> {
    let client = state.clients.get(&id)?;
    let line = Line::new(Some(&client.source), "JOIN").arg(name).finish();
    let extended = Line::new(Some(&client.source), "JOIN")
        .arg(name)
        .arg(client.account.as_deref().unwrap_or("*"))
        .trailing(&client.realname)
        .finish();
    Some(
        state
            .event_from(id, line)
            .with_alternative(Caps::EXTENDED_JOIN, extended),
    )
}

/// Who asks to enter, and with what.
struct Entrant<'a> {
    client: &'a Client,
    key: &'a str,
    /// Holds an open invite.
    invited: bool,
    /// An IRC operator joining a standing room.
    runs_room: bool,
    /// Logged in to the founder or an op-level account of a registered
    /// room: let past its bans, +i, +k and +l, as Ergo lets its founder,
    /// or one who locked the room could never get back into it.
    owed_op: bool,
}

/// Why `entrant` may not enter: the room's own rules (none for one it is
/// owed op in), then the server's own cap on a room's size, which holds
/// for everyone.
fn refusal(channel: &Channel, entrant: &Entrant, max_members: usize) -> Option<Refusal> {
    let at_server_cap = max_members != 0 && channel.members.len() >= max_members;
    let numeric = if entrant.owed_op {
        None
    } else {
        room_refusal(channel, entrant)
    };
    let numeric = numeric.or(at_server_cap.then_some(numeric::ERR_CHANNELISFULL))?;
    Some(Refusal::new(numeric, &[&channel.name]))
}

/// Why the room's modes and lists keep `entrant` out, checked in the
/// order bans, logged-in only (+R), invite-only, key, limit. An invite
/// lets its holder past +i and, as Modern IRC says, past +l.
fn room_refusal(channel: &Channel, entrant: &Entrant) -> Option<numeric::Numeric> {
    let modes = &channel.modes;
    let members = channel.members.len();
    let numeric = if channel.is_banned(entrant.client) {
        numeric::ERR_BANNEDFROMCHAN
    } else if modes.registered_only && entrant.client.account.is_none() && !entrant.invited {
        numeric::ERR_NEEDREGGEDNICK
    } else if modes.invite_only
        && !entrant.invited
        && !entrant.runs_room
        && !channel.is_invite_excepted(entrant.client)
    {
        numeric::ERR_INVITEONLYCHAN
    } else if modes
        .key
        .as_deref()
        .is_some_and(|wanted| wanted != entrant.key)
    {
        numeric::ERR_BADCHANNELKEY
    } else if modes.limit.is_some_and(|limit| members >= limit) && !entrant.invited {
        numeric::ERR_CHANNELISFULL
    } else {
        return None;
    };
    Some(numeric)
}

/// `JOIN 0`: a PART of every room, as Modern IRC says.
fn leave_all(state: &mut State, id: ClientId) {
    let Some(client) = state.clients.get(&id) else {
        return;
    };
    let mut rooms: Vec<Folded> = client.channels.iter().cloned().collect();
    rooms.sort_unstable();
    for folded in rooms {
        let Some(name) = state.channels.get(&folded).map(|c| c.name.clone()) else {
            continue;
        };
        part_one(state, id, &name, None);
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::core::testing::Harness;

    /// alice owns #room; bob is registered and outside.
    fn room_and_stranger(config: Config) -> Harness {
        let mut harness = Harness::with_config(config);
        harness.register("alice");
        harness.register("bob");
        harness.send("alice", "JOIN #room");
        harness
    }

    #[test]
    fn a_room_at_its_limit_refuses_with_471() {
        let mut harness = room_and_stranger(Config::default());
        harness.channel_mut("#room").modes.limit = Some(1);
        harness.send("bob", "JOIN #room");
        assert_eq!(
            harness.take("bob"),
            vec![":localhost 471 bob #room :Cannot join channel (+l)"]
        );
        harness.channel_mut("#room").modes.limit = Some(2);
        harness.send("bob", "JOIN #room");
        assert_eq!(harness.take("bob")[0], ":bob!~bob@127.0.0.1 JOIN #room");
    }

    #[test]
    fn max_channel_members_refuses_like_a_limit() {
        let mut config = Config::default();
        config.limits.max_channel_members = 1;
        let mut harness = room_and_stranger(config);
        harness.send("bob", "JOIN #room");
        assert_eq!(
            harness.take("bob"),
            vec![":localhost 471 bob #room :Cannot join channel (+l)"]
        );
    }

    #[test]
    fn a_wrong_or_missing_key_gets_475_and_keys_pair_with_rooms() {
        let mut harness = room_and_stranger(Config::default());
        harness.channel_mut("#room").modes.key = Some("sesame".to_owned());
        harness.send("bob", "JOIN #room");
        harness.send("bob", "JOIN #room wrong");
        let refused = ":localhost 475 bob #room :Cannot join channel (+k)";
        assert_eq!(harness.take("bob"), vec![refused, refused]);
        harness.send("bob", "JOIN #other,#room none,sesame");
        let joins: Vec<String> = harness
            .take("bob")
            .into_iter()
            .filter(|line| line.contains(" JOIN "))
            .collect();
        assert_eq!(
            joins,
            vec![
                ":bob!~bob@127.0.0.1 JOIN #other",
                ":bob!~bob@127.0.0.1 JOIN #room"
            ]
        );
    }

    #[test]
    fn a_ban_refuses_with_474_unless_an_exception_matches() {
        let mut harness = room_and_stranger(Config::default());
        let ban = harness.list_entry("bob!*@*");
        harness.channel_mut("#room").bans.push(ban);
        harness.send("bob", "JOIN #room");
        assert_eq!(
            harness.take("bob"),
            vec![":localhost 474 bob #room :Cannot join channel (+b)"]
        );
        let exception = harness.list_entry("*!~bob@127.0.0.1");
        harness.channel_mut("#room").ban_exceptions.push(exception);
        harness.send("bob", "JOIN #room");
        assert_eq!(harness.take("bob")[0], ":bob!~bob@127.0.0.1 JOIN #room");
    }

    #[test]
    fn invite_only_admits_an_invite_exception_match() {
        let mut harness = room_and_stranger(Config::default());
        harness.channel_mut("#room").modes.invite_only = true;
        harness.send("bob", "JOIN #room");
        assert_eq!(
            harness.take("bob"),
            vec![":localhost 473 bob #room :Cannot join channel (+i)"]
        );
        let exception = harness.list_entry("bob!*@*");
        harness
            .channel_mut("#room")
            .invite_exceptions
            .push(exception);
        harness.send("bob", "JOIN #room");
        assert_eq!(harness.take("bob")[0], ":bob!~bob@127.0.0.1 JOIN #room");
    }

    /// Logs `nick` in to `account`, dropping the 900 it is told.
    fn log_in(harness: &mut Harness, nick: &str, account: &str) {
        let id = harness.id(nick);
        harness.state.log_in(id, account);
        harness.take(nick);
    }

    fn joined(harness: &mut Harness, nick: &str) -> bool {
        harness.send(nick, "JOIN #room");
        let lines = harness.take(nick);
        let joined = lines[0].ends_with(" JOIN #room");
        harness.send(nick, "PART #room");
        harness.take(nick);
        joined
    }

    #[test]
    fn an_account_ban_matches_the_account_not_the_nick() {
        let mut harness = room_and_stranger(Config::default());
        harness.take("alice");
        harness.send("alice", "MODE #room +b ~a:bob");
        assert_eq!(
            harness.take("alice"),
            [":alice!~alice@127.0.0.1 MODE #room +b ~a:bob"]
        );
        assert!(joined(&mut harness, "bob"), "logged out, bob is no account");
        log_in(&mut harness, "bob", "Bob");
        harness.send("bob", "JOIN #room");
        assert_eq!(
            harness.take("bob"),
            [":localhost 474 bob #room :Cannot join channel (+b)"]
        );
        harness.send("alice", "MODE #room +e ~a:B*");
        harness.take("alice");
        assert!(joined(&mut harness, "bob"), "an account exception lets in");
    }

    #[test]
    fn an_account_invite_exception_opens_invite_only_to_its_account() {
        let mut harness = room_and_stranger(Config::default());
        harness.send("alice", "MODE #room +i");
        harness.send("alice", "MODE #room +I ~m:bob");
        harness.send("alice", "MODE #room +I ~a:bob");
        let told = harness.take("alice");
        assert_eq!(
            told[told.len() - 2..],
            [
                ":localhost 696 alice #room I ~m:bob :Unknown extban type",
                ":alice!~alice@127.0.0.1 MODE #room +I ~a:bob",
            ]
        );
        assert!(!joined(&mut harness, "bob"));
        log_in(&mut harness, "bob", "bob");
        assert!(joined(&mut harness, "bob"));
    }

    #[test]
    fn registered_only_refuses_the_logged_out_with_477() {
        let mut harness = room_and_stranger(Config::default());
        harness.send("alice", "MODE #room +R");
        harness.send("bob", "JOIN #room");
        assert_eq!(
            harness.take("bob"),
            [
                ":localhost 477 bob #room :Cannot join channel (+R) - you must be logged in to an account"
            ]
        );
        log_in(&mut harness, "bob", "bob");
        assert!(joined(&mut harness, "bob"));
    }

    #[test]
    fn the_ban_is_checked_before_invite_only_key_and_limit() {
        let mut harness = room_and_stranger(Config::default());
        let ban = harness.list_entry("*!*@*");
        let room = harness.channel_mut("#room");
        room.bans.push(ban);
        room.modes.invite_only = true;
        room.modes.key = Some("k".to_owned());
        room.modes.limit = Some(1);
        harness.send("bob", "JOIN #room");
        assert!(harness.take("bob")[0].contains(" 474 "));
    }

    #[test]
    fn a_new_room_gets_the_configured_default_modes() {
        let mut config = Config::default();
        config.channels.default_modes = "+imps".to_owned();
        let mut harness = room_and_stranger(config);
        let modes = harness.channel_mut("#room").modes.clone();
        assert!(modes.invite_only && modes.moderated && modes.private && modes.secret);
        assert!(!modes.no_external && !modes.topic_ops_only);
    }
}
