//! CHATHISTORY (IRCv3 `draft/chathistory`): checks the request and who may
//! read the target here, then hands the query to the history reader thread.
//! The answer comes back later as an event ([`answered`]), so the core
//! never waits on the disk; meanwhile the client waits like any command
//! answered off the core ([`State::wait_off_core`]), so its later commands
//! are answered after this one.
//!
//! - `parse.rs`: the subcommand, limit and message references, or the FAIL
//!   that refuses them.
//! - here: who may read which target, and issuing the query.
//! - `reply.rs`: the answer, as a batch under the request's label.

#[cfg(test)]
mod account_tests;
mod parse;
mod reply;

use crate::core::caps::Caps;
use crate::core::history_access::{conversation_floor, conversation_with, party, room_floor};
use crate::core::history_answer::{Answer, Outcome, Request};
use crate::core::{ClientId, Event, Refusal, State};
use crate::history::{self, Bound, HistoryTarget, Query, QueryKind, StoreError, TargetsQuery};
use crate::proto::validate::is_channel_name;
use crate::proto::{Message, numeric};
use parse::parse;
use reply::message_error;

pub use reply::answered;

/// `CHATHISTORY LATEST <target> <* | timestamp | msgid> <limit>`
/// `CHATHISTORY BEFORE <target> <timestamp | msgid> <limit>`
/// `CHATHISTORY AFTER <target> <timestamp | msgid> <limit>`
/// `CHATHISTORY AROUND <target> <timestamp | msgid> <limit>`
/// `CHATHISTORY BETWEEN <target> <timestamp | msgid> <timestamp | msgid> <limit>`
/// `CHATHISTORY TARGETS <timestamp> <timestamp> <limit>`
///
/// CHATHISTORY, as if unknown while history is off.
pub fn chathistory(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    if state.history.is_none() {
        let refusal = Refusal::new(numeric::ERR_UNKNOWNCOMMAND, &[&message.command]);
        return Err(refusal);
    }
    let (sub, params, limit, bounds) = match parse(state, message) {
        Ok(parsed) => parsed,
        Err((code, context, text)) => {
            let context: Vec<&str> = context.iter().map(String::as_str).collect();
            state.fail(id, "CHATHISTORY", code, &context, text);
            return Ok(());
        }
    };
    if sub == "TARGETS" {
        targets(state, id, &bounds, limit);
        return Ok(());
    }
    let target = params[0].clone();
    let Some((key, also, not_before_ms)) = readable(state, id, &target) else {
        let context = [sub.as_str(), &target];
        state.fail(
            id,
            "CHATHISTORY",
            "INVALID_TARGET",
            &context,
            reply::NOT_RETRIEVED,
        );
        return Ok(());
    };
    let mut bounds = bounds.into_iter();
    let mut next = || bounds.next().unwrap_or(Bound::Time(0));
    let kind = match sub.as_str() {
        "LATEST" => QueryKind::Latest {
            after: Some(next()).filter(|_| params[1] != "*"),
        },
        "BEFORE" => QueryKind::Before { bound: next() },
        "AFTER" => QueryKind::After { bound: next() },
        "AROUND" => QueryKind::Around { bound: next() },
        _ => QueryKind::Between {
            start: next(),
            end: next(),
        },
    };
    let events = state
        .clients
        .get(&id)
        .is_some_and(|client| client.caps.contains(Caps::EVENT_PLAYBACK));
    let query = Query {
        target: key,
        also,
        kind,
        limit,
        not_before_ms,
        events,
    };
    ask(state, id, sub, target, |history, deliver| {
        history.query(query, move |result| deliver(Outcome::Lines(result)))
    });
    Ok(())
}

/// A target, its second key if any, and the oldest time it may see there.
pub(crate) type Readable = (HistoryTarget, Option<HistoryTarget>, Option<i64>);

/// A target `id` may read ([`crate::core::history_access`]): a room it is
/// in, or with private messages kept, its own conversation with a nick.
pub(crate) fn readable(state: &State, id: ClientId, target: &str) -> Option<Readable> {
    if is_channel_name(target) {
        let folded = state.fold(target);
        let floor = room_floor(state, id, &folded)?;
        return Some((HistoryTarget::Room(folded), None, Some(floor)));
    }
    let valid = !target.is_empty() && !target.contains([' ', ',', '*', '?', '!', '@']);
    if !valid {
        return None;
    }
    let floor = conversation_floor(state, id)?;
    let (conversation, also) = conversation_with(state, id, target)?;
    Some((conversation, also, Some(floor)))
}

/// TARGETS: the rooms `id` is in, and when kept its conversations: its
/// account's, from any connection, or without one its nick's.
fn targets(state: &mut State, id: ClientId, bounds: &[Bound], limit: usize) {
    let times: Vec<i64> = bounds
        .iter()
        .filter_map(|b| match b {
            Bound::Time(t) => Some(*t),
            Bound::MsgId(_) => None,
        })
        .collect();
    let (Some(&a), Some(&b)) = (times.first(), times.get(1)) else {
        return;
    };
    let Some(client) = state.clients.get(&id) else {
        return;
    };
    let rooms = client
        .channels
        .iter()
        .filter_map(|room| Some((room.clone(), room_floor(state, id, room)?)))
        .collect();
    let party = conversation_floor(state, id).map(|floor| (party(state, client), floor));
    let query = TargetsQuery {
        from_ms: a.min(b),
        to_ms: a.max(b),
        rooms,
        party,
        limit,
        events: client.caps.contains(Caps::EVENT_PLAYBACK),
    };
    ask(
        state,
        id,
        "TARGETS".to_owned(),
        String::new(),
        |history, deliver| history.targets(query, move |result| deliver(Outcome::Targets(result))),
    );
}

type Deliver = Box<dyn FnOnce(Outcome) + Send>;

/// Issues a query whose answer comes back to the core as an event, and
/// holds the client's later lines until then. A refused query (the reader
/// is busy) fails at once.
fn ask(
    state: &mut State,
    id: ClientId,
    sub: String,
    target: String,
    issue: impl FnOnce(&history::HistoryHandle, Deliver) -> Result<(), StoreError>,
) {
    let (Some(history), Some(inbox)) = (state.history.clone(), state.inbox.clone()) else {
        message_error(state, id, &sub, &target);
        return;
    };
    let request = Request {
        id,
        sub: sub.clone(),
        target: target.clone(),
    };
    // The reader thread is not the core, so it may wait for room in the
    // inbox; once the core has stopped the send fails and is dropped.
    let deliver: Deliver = Box::new(move |outcome| {
        let answer = Answer { request, outcome };
        let _ = inbox.blocking_send(Event::HistoryAnswered(Box::new(answer)));
    });
    match issue(&history, deliver) {
        Ok(()) => state.wait_off_core(id),
        Err(_) => message_error(state, id, &sub, &target),
    }
}

#[cfg(test)]
mod tests {
    use crate::core::testing::HistoryHarness;
    use crate::history::Hooks;

    #[test]
    fn a_query_the_reader_refuses_fails_at_once_and_holds_nothing() {
        let mut t = HistoryHarness::new();
        // A stopped reader refuses every query, as a full queue does.
        t.stop_writer();
        let h = &mut t.h;
        h.register("alice");
        h.send("alice", "JOIN #room");
        h.take("alice");
        h.send("alice", "CHATHISTORY LATEST #room * 10");
        h.send("alice", "PING x");
        assert_eq!(
            h.take("alice"),
            [
                ":irc.test FAIL CHATHISTORY MESSAGE_ERROR LATEST #room :Messages could not be retrieved",
                ":irc.test PONG irc.test :x",
            ]
        );
    }

    #[test]
    fn a_query_that_panics_fails_and_the_reader_answers_the_next() {
        let mut t = HistoryHarness::with_hooks(Hooks {
            panic_queries: true,
            ..Hooks::default()
        });
        t.h.register("alice");
        t.h.send("alice", "JOIN #room");
        t.h.take("alice");
        for round in ["x", "y"] {
            t.h.send("alice", "CHATHISTORY LATEST #room * 10");
            t.h.send("alice", &format!("PING {round}"));
            assert_eq!(t.h.take("alice"), Vec::<String>::new(), "held");
            t.answer();
            assert_eq!(
                t.h.take("alice"),
                [
                    ":irc.test FAIL CHATHISTORY MESSAGE_ERROR LATEST #room :Messages could not be retrieved".to_owned(),
                    format!(":irc.test PONG irc.test :{round}"),
                ]
            );
        }
    }
}
