//! REDACT (IRCv3 `draft/message-redaction`): deleting a stored message,
//! notice or tag message.
//!
//! Whether the client may is decided from the stored line (its sender and
//! where it was said), which the history reader finds off the core; the
//! client waits meanwhile ([`State::wait_off_core`]), so its later lines
//! are answered after this one. The sender may redact its line (any
//! connection of its account when it spoke logged in, else the same
//! `nick!user@host`), a room's ops any line of the room, and IRC operators
//! any line. The row is deleted from the store and the line leaves the
//! room's playback ring; the REDACT lines wait for that deletion to be
//! committed, as a stored line waits for its insert. Members without the
//! capability are told nothing: the spec forbids sending them REDACT, and
//! a NOTICE for every deleted line would be noise for what their client
//! cannot act on.

use crate::core::caps::Caps;
use crate::core::commands::chathistory::{Readable, readable};
use crate::core::{ClientId, Event, Refusal, State};
use crate::history::{self, HistoryTarget, Record, StoreError};
use crate::net::Gate;
use crate::proto::validate::is_channel_name;
use crate::proto::{Line, Message};

/// What a REDACT asked for, carried through the lookup.
#[derive(Debug)]
pub struct Request {
    pub id: ClientId,
    /// The target as the client wrote it.
    target: String,
    msgid: String,
    reason: Option<String>,
}

/// The reader's answer to a REDACT: the stored line, if any.
#[derive(Debug)]
pub struct Found {
    pub request: Request,
    record: Result<Option<Record>, StoreError>,
}

/// The commands a redaction may name.
const REDACTABLE: [&str; 3] = ["PRIVMSG", "NOTICE", "TAGMSG"];

/// `REDACT <target> <msgid> [<reason>]`
pub fn redact(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    let request = Request {
        id,
        target: message.param(0).to_owned(),
        msgid: message.param(1).to_owned(),
        reason: message.params.get(2).cloned(),
    };
    if redactable(state, id, &request.target).is_none() {
        invalid_target(state, &request);
        return Ok(());
    }
    let (Some(history), Some(inbox)) = (state.history.clone(), state.inbox.clone()) else {
        // Nothing is stored, so no line can be named.
        unknown_msgid(state, &request);
        return Ok(());
    };
    let (target, msgid) = (request.target.clone(), request.msgid.clone());
    // The reader is not the core, so it may wait for room in the inbox.
    let deliver = move |record| {
        let found = Found { request, record };
        let _ = inbox.blocking_send(Event::RedactFound(Box::new(found)));
    };
    match history.find(msgid.clone(), deliver) {
        Ok(()) => state.wait_off_core(id),
        Err(_) => unavailable(state, id, &target, &msgid),
    }
    Ok(())
}

/// The stored line has been looked up: the redaction is checked again
/// against the client as it is now, made, and told.
pub fn found(state: &mut State, found: Found) {
    let id = found.request.id;
    state.resume(id, |state| apply(state, found));
}

fn apply(state: &mut State, found: Found) {
    let Found { request, record } = found;
    let record = match record {
        Ok(record) => record,
        Err(error) => {
            tracing::warn!(%error, "looking up a line to redact failed");
            unavailable(state, request.id, &request.target, &request.msgid);
            return;
        }
    };
    let Some((key, also, floor)) = redactable(state, request.id, &request.target) else {
        invalid_target(state, &request);
        return;
    };
    // A line elsewhere, or from before the client may read, is unknown
    // here: the answer must not tell that it exists.
    let record = record.filter(|record| {
        (record.target == key || also.as_ref() == Some(&record.target))
            && record.time_ms >= floor.unwrap_or(i64::MIN)
            && REDACTABLE.contains(&record.command.as_str())
    });
    let Some(record) = record else {
        unknown_msgid(state, &request);
        return;
    };
    if !permitted(state, &request, &record) {
        return;
    }
    let queued = state
        .history
        .as_ref()
        .and_then(|history| history.redact(request.msgid.clone()));
    let Some(seq) = queued else {
        // The store will not delete it, so nobody is told it is gone.
        unavailable(state, request.id, &request.target, &request.msgid);
        return;
    };
    if let HistoryTarget::Room(room) = &record.target {
        state.playback.redact(room, &request.msgid);
    }
    tell(state, &request, &record, seq);
}

/// Where `id` may name a line: what it may read, and for an IRC operator
/// any existing room, member or not, with all of its history.
fn redactable(state: &State, id: ClientId, target: &str) -> Option<Readable> {
    let oper = state.clients.get(&id).is_some_and(|c| c.modes.oper);
    readable(state, id, target).or_else(|| {
        let folded = state.fold(target);
        let room = oper && is_channel_name(target) && state.channels.contains_key(&folded);
        room.then_some((HistoryTarget::Room(folded), None, None))
    })
}

/// Why a client may redact a line.
enum Right {
    /// It sent the line: within `[history] redact_window`.
    Own,
    /// An op of the line's room, or an IRC operator: at any time.
    Moderator,
}

/// Whether the client may redact `record`; when not, it is told why.
fn permitted(state: &mut State, request: &Request, record: &Record) -> bool {
    let (id, target, msgid) = (request.id, request.target.as_str(), request.msgid.as_str());
    match right(state, id, record) {
        Some(Right::Moderator) => true,
        Some(Right::Own) => {
            let Some(window) = window_passed(state, record) else {
                return true;
            };
            let context = [target, msgid, &window.to_string()];
            let text = "You can no longer edit this message";
            state.fail(id, "REDACT", "REDACT_WINDOW_EXPIRED", &context, text);
            false
        }
        None => {
            let text = "You are not authorised to delete this message";
            state.fail(id, "REDACT", "REDACT_FORBIDDEN", &[target, msgid], text);
            false
        }
    }
}

/// The window (in seconds) in which a sender may redact its line, when
/// it has passed for `record`.
fn window_passed(state: &State, record: &Record) -> Option<u64> {
    let window = state.config.history.redact_window()?;
    let age_ms = history::millis(state.clock.now()).saturating_sub(record.time_ms);
    let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
    (age_ms > window_ms).then_some(window.as_secs())
}

/// The line's sender, or an op of the room it was said in or an IRC
/// operator.
fn right(state: &State, id: ClientId, record: &Record) -> Option<Right> {
    let client = state.clients.get(&id)?;
    let sender = match (&record.account, &client.account) {
        (Some(theirs), Some(mine)) => state.fold(theirs) == state.fold(mine),
        (Some(_), None) => false,
        (None, _) => record.sender == client.source,
    };
    let room_op = match &record.target {
        HistoryTarget::Room(room) => state
            .channels
            .get(room)
            .and_then(|channel| channel.members.get(&id))
            .is_some_and(|membership| membership.op),
        HistoryTarget::Private(_) => false,
    };
    if room_op || client.modes.oper {
        Some(Right::Moderator)
    } else {
        sender.then_some(Right::Own)
    }
}

/// Sends the REDACT to whoever heard the line and negotiated the
/// capability: the room's members, or both sides of a conversation.
fn tell(state: &mut State, request: &Request, record: &Record, seq: u64) {
    let shown = match &record.target {
        HistoryTarget::Room(room) => state.channels.get(room).map(|c| c.name.clone()),
        HistoryTarget::Private(_) => state
            .registered_client(&state.fold(&request.target))
            .map(|client| client.nick.clone()),
    };
    let shown = shown.unwrap_or_else(|| request.target.clone());
    let Some(source) = state.clients.get(&request.id).map(|c| c.source.clone()) else {
        return;
    };
    let line = Line::new(Some(&source), "REDACT")
        .arg(&shown)
        .arg(&request.msgid);
    let line = match &request.reason {
        Some(reason) => line.trailing(reason),
        None => line,
    };
    let msgid = state.next_msgid();
    let mut event = state
        .event_from(request.id, line.finish())
        .with_msgid(msgid);
    event.set_gate(Gate::store(seq));
    let wants = |caps: Caps| caps.contains(Caps::MESSAGE_REDACTION);
    let mut audience = vec![request.id];
    if let HistoryTarget::Room(room) = &record.target {
        state.send_to_members(room, &mut event, |member, _| wants(member.caps));
        // An IRC operator outside the room still hears its own redaction.
        let member = state
            .channels
            .get(room)
            .is_some_and(|channel| channel.members.contains_key(&request.id));
        audience.retain(|_| !member);
    } else {
        let other = state
            .registered_client(&state.fold(&shown))
            .map(|client| client.id);
        audience.extend(other.filter(|other| *other != request.id));
    }
    audience.retain(|id| state.clients.get(id).is_some_and(|c| wants(c.caps)));
    state.send_all(audience, &mut event);
}

fn invalid_target(state: &mut State, request: &Request) {
    let text = format!("You cannot delete messages from {}", request.target);
    state.fail(
        request.id,
        "REDACT",
        "INVALID_TARGET",
        &[&request.target],
        &text,
    );
}

fn unknown_msgid(state: &mut State, request: &Request) {
    let context = [request.target.as_str(), &request.msgid];
    let text = "This message does not exist or is too old";
    state.fail(request.id, "REDACT", "UNKNOWN_MSGID", &context, text);
}

/// The store could not be asked (its reader is busy or stopped).
fn unavailable(state: &mut State, id: ClientId, target: &str, msgid: &str) {
    let text = "Messages cannot be deleted right now; try again later";
    state.fail(
        id,
        "REDACT",
        "TEMPORARILY_UNAVAILABLE",
        &[target, msgid],
        text,
    );
}

#[cfg(test)]
mod tests {
    use crate::core::testing::HistoryHarness;

    const CAPS: &str = "CAP REQ :message-tags echo-message draft/message-redaction";

    /// alice (op) and bob in #room, both with the capability, and carol
    /// in it without.
    fn room() -> HistoryHarness {
        let mut t = HistoryHarness::new();
        for name in ["alice", "bob", "carol"] {
            t.h.register(name);
            if name != "carol" {
                t.h.send(name, CAPS);
            }
            t.h.send(name, "JOIN #room");
        }
        for name in ["alice", "bob", "carol"] {
            t.h.take(name);
        }
        t
    }

    /// `name` says `text` to `target` and gets the msgid of its echo.
    fn say(t: &mut HistoryHarness, name: &str, target: &str, text: &str) -> String {
        t.h.send(name, &format!("PRIVMSG {target} :{text}"));
        let echo = t.h.take(name).pop().expect("an echo");
        let (_, from_msgid) = echo.split_once("msgid=").expect("a msgid");
        let msgid = from_msgid
            .split([';', ' '])
            .next()
            .unwrap_or_default()
            .to_owned();
        for other in ["alice", "bob", "carol"] {
            t.h.take(other);
        }
        msgid
    }

    /// Drops the tags of each line.
    fn untagged(lines: Vec<String>) -> Vec<String> {
        lines
            .into_iter()
            .map(|line| match line.strip_prefix('@') {
                Some(tagged) => tagged
                    .split_once(' ')
                    .map_or(line.clone(), |(_, l)| l.into()),
                None => line,
            })
            .collect()
    }

    #[test]
    fn a_sender_redacts_its_line_for_members_with_the_capability() {
        let mut t = room();
        let msgid = say(&mut t, "bob", "#room", "oops");
        let redact = format!(":bob!~bob@127.0.0.1 REDACT #room {msgid} :typo");
        assert_eq!(
            untagged(t.query("bob", &format!("REDACT #room {msgid} :typo"))),
            std::slice::from_ref(&redact)
        );
        assert_eq!(untagged(t.h.take("alice")), [redact]);
        assert!(t.h.take("carol").is_empty(), "carol has no capability");
    }

    #[test]
    fn a_redacted_line_leaves_chathistory_and_playback() {
        let mut t = room();
        let kept = say(&mut t, "alice", "#room", "kept");
        let gone = say(&mut t, "alice", "#room", "gone");
        t.query("alice", &format!("REDACT #room {gone}"));
        let history = t.query("alice", "CHATHISTORY LATEST #room * 10");
        assert!(
            history.iter().any(|line| line.contains(&kept)),
            "{history:?}"
        );
        assert!(
            !history.iter().any(|line| line.contains(&gone)),
            "{history:?}"
        );
        t.h.register("dave");
        t.h.send("dave", "JOIN #room");
        let played = t.h.take("dave");
        assert!(
            played.iter().any(|line| line.ends_with(" kept")),
            "{played:?}"
        );
        assert!(
            !played.iter().any(|line| line.ends_with(" gone")),
            "{played:?}"
        );
    }

    #[test]
    fn a_member_may_not_redact_anothers_line_but_an_op_may() {
        let mut t = room();
        let msgid = say(&mut t, "alice", "#room", "mine");
        assert_eq!(
            t.query("bob", &format!("REDACT #room {msgid}")),
            [format!(
                ":irc.test FAIL REDACT REDACT_FORBIDDEN #room {msgid} :You are not authorised to delete this message"
            )]
        );
        assert!(t.h.take("alice").is_empty());
        let msgid = say(&mut t, "bob", "#room", "spam");
        let lines = untagged(t.query("alice", &format!("REDACT #room {msgid} spam")));
        assert_eq!(
            lines,
            [format!(
                ":alice!~alice@127.0.0.1 REDACT #room {msgid} :spam"
            )]
        );
    }

    #[test]
    fn an_unknown_line_or_a_line_elsewhere_is_unknown_and_an_outside_room_invalid() {
        let mut t = room();
        t.h.send("bob", "JOIN #other");
        let elsewhere = say(&mut t, "bob", "#other", "elsewhere");
        for msgid in ["nonexistent", elsewhere.as_str()] {
            assert_eq!(
                t.query("alice", &format!("REDACT #room {msgid}")),
                [format!(
                    ":irc.test FAIL REDACT UNKNOWN_MSGID #room {msgid} :This message does not exist or is too old"
                )]
            );
        }
        t.h.send("alice", "REDACT #other x");
        assert_eq!(
            t.h.take("alice"),
            [":irc.test FAIL REDACT INVALID_TARGET #other :You cannot delete messages from #other"]
        );
    }

    #[test]
    fn an_irc_operator_redacts_in_a_room_it_is_not_in() {
        let mut t = room();
        let msgid = say(&mut t, "bob", "#room", "spam");
        t.h.register("oscar");
        t.h.send("oscar", CAPS);
        t.h.take("oscar");
        t.h.send("oscar", "REDACT #room x");
        assert_eq!(
            t.h.take("oscar"),
            [":irc.test FAIL REDACT INVALID_TARGET #room :You cannot delete messages from #room"]
        );
        t.h.make_oper("oscar");
        t.h.take("oscar");
        let redact = format!(":oscar!~oscar@127.0.0.1 REDACT #room {msgid}");
        assert_eq!(
            untagged(t.query("oscar", &format!("REDACT #room {msgid}"))),
            std::slice::from_ref(&redact)
        );
        assert_eq!(untagged(t.h.take("bob")), [redact]);
    }

    #[test]
    fn a_lookup_the_reader_refuses_fails_at_once_and_holds_nothing() {
        let mut t = HistoryHarness::new();
        // A stopped reader refuses every lookup, as a full queue does.
        t.stop_writer();
        let h = &mut t.h;
        h.register("alice");
        h.send("alice", "JOIN #room");
        h.take("alice");
        h.send("alice", "REDACT #room m1");
        h.send("alice", "PING x");
        assert_eq!(
            h.take("alice"),
            [
                ":irc.test FAIL REDACT TEMPORARILY_UNAVAILABLE #room m1 :Messages cannot be deleted right now; try again later",
                ":irc.test PONG irc.test :x",
            ]
        );
    }

    #[test]
    fn a_redaction_the_writer_refuses_fails_and_the_line_stays() {
        use crate::history::{CommitPause, Hooks};
        let pause = CommitPause::default();
        let hooks = Hooks {
            commit_pause: Some(pause.clone()),
            ..Hooks::default()
        };
        let mut t = HistoryHarness::with_hooks(hooks);
        for name in ["alice", "bob", "carol"] {
            t.h.register(name);
            t.h.send(name, CAPS);
            t.h.send(name, "JOIN #room");
            t.h.take(name);
        }
        let msgid = say(&mut t, "alice", "#room", "kept");
        t.settle();
        // A stalled disk: commits held and the writer's queue full.
        pause.pause();
        let history = t.h.state.history.clone().expect("a history");
        t.h.send("bob", "PRIVMSG #room :held");
        pause.wait_until_holding();
        while history.redact("filler".into()).is_some() {}
        t.h.send("alice", &format!("REDACT #room {msgid}"));
        t.answer();
        // Released before any assertion, so a failure cannot hang the drop.
        pause.resume();
        let fail = format!(
            ":irc.test FAIL REDACT TEMPORARILY_UNAVAILABLE #room {msgid} :Messages cannot be deleted right now; try again later"
        );
        let alice = t.h.take("alice");
        assert!(alice.contains(&fail), "{alice:?}");
        for name in ["alice", "bob"] {
            let told = t.h.take(name).into_iter().chain(alice.clone());
            assert!(
                !told.into_iter().any(|l| l.contains(" REDACT #room")),
                "{name}"
            );
        }
        t.h.register("dave");
        t.h.send("dave", "JOIN #room");
        let played = t.h.take("dave");
        assert!(
            played.iter().any(|line| line.ends_with(" kept")),
            "{played:?}"
        );
    }

    #[test]
    fn a_sender_is_bound_by_the_window_and_an_op_is_not() {
        let mut t = room();
        std::sync::Arc::make_mut(&mut t.h.state.config)
            .history
            .redact_window_text = "1m".into();
        let msgid = say(&mut t, "bob", "#room", "old news");
        t.h.advance(61);
        assert_eq!(
            t.query("bob", &format!("REDACT #room {msgid}")),
            [format!(
                ":irc.test FAIL REDACT REDACT_WINDOW_EXPIRED #room {msgid} 60 :You can no longer edit this message"
            )]
        );
        let lines = untagged(t.query("alice", &format!("REDACT #room {msgid}")));
        assert_eq!(
            lines,
            [format!(":alice!~alice@127.0.0.1 REDACT #room {msgid}")]
        );
    }

    #[test]
    fn a_private_message_is_redacted_for_both_sides() {
        let mut t = room();
        let msgid = say(&mut t, "alice", "bob", "psst");
        let redact = format!(":alice!~alice@127.0.0.1 REDACT bob {msgid}");
        assert_eq!(
            untagged(t.query("alice", &format!("REDACT bob {msgid}"))),
            std::slice::from_ref(&redact)
        );
        assert_eq!(untagged(t.h.take("bob")), [redact]);
        let history = t.query("bob", "CHATHISTORY LATEST alice * 10");
        assert!(
            !history.iter().any(|line| line.contains("psst")),
            "{history:?}"
        );
    }
}
