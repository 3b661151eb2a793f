//! CHATHISTORY (IRCv3 `draft/chathistory`): checks the request and who may
//! read the target here, then hands the query to the history reader thread.
//! The answer comes back later as an event ([`answered`]), so the core
//! never waits on the disk.

use chrono::DateTime;

use super::chathistory_reply::{Outcome, Request, fail};
use crate::config::HistoryVisibility;
use crate::core::{ClientId, Event, State};
use crate::history::{self, Bound, Query, QueryKind, StoreError, TargetsQuery};
use crate::proto::{Message, numeric};

pub use super::chathistory_reply::{Answer, answered};

pub fn chathistory(state: &mut State, id: ClientId, message: &Message) {
    if state.history.is_none() {
        let command = message.command.clone();
        state.reply(
            id,
            numeric::ERR_UNKNOWNCOMMAND,
            &[&command],
            "Unknown command",
        );
        return;
    }
    let sub = message.param(0).to_ascii_uppercase();
    let needed = match sub.as_str() {
        "LATEST" | "BEFORE" | "AFTER" | "AROUND" | "TARGETS" => 3,
        "BETWEEN" => 4,
        _ => {
            let shown = if sub.is_empty() {
                "*"
            } else {
                message.param(0)
            };
            fail(
                state,
                id,
                None,
                "UNKNOWN_COMMAND",
                &[shown],
                "Unknown command",
            );
            return;
        }
    };
    let params = &message.params[1..];
    if params.len() < needed {
        fail(
            state,
            id,
            None,
            "NEED_MORE_PARAMS",
            &[&sub],
            "Missing parameters",
        );
        return;
    }
    let max = state.config.history.chathistory_max;
    let Some(limit) = params[needed - 1].parse::<usize>().ok().filter(|n| *n > 0) else {
        let shown = [sub.as_str(), &params[needed - 1]];
        fail(state, id, None, "INVALID_PARAMS", &shown, "Invalid limit");
        return;
    };
    let limit = limit.min(max);
    // The references: after the target, or (TARGETS) two timestamps.
    let references = if sub == "TARGETS" {
        &params[..2]
    } else {
        &params[1..needed - 1]
    };
    let mut bounds = Vec::new();
    for param in references {
        let bound = match reference(param) {
            // LATEST takes `*` for "no reference".
            _ if sub == "LATEST" && param == "*" => continue,
            Some(Bound::MsgId(_)) if sub == "TARGETS" => None,
            other => other,
        };
        let Some(bound) = bound else {
            let shown = [sub.as_str(), param];
            fail(
                state,
                id,
                None,
                "INVALID_PARAMS",
                &shown,
                "Invalid message reference",
            );
            return;
        };
        bounds.push(bound);
    }
    if sub == "TARGETS" {
        targets(state, id, &bounds, limit);
        return;
    }
    let target = params[0].clone();
    let Some((key, not_before_ms)) = readable(state, id, &target) else {
        let context = [sub.as_str(), &target];
        fail(
            state,
            id,
            None,
            "INVALID_TARGET",
            &context,
            "Messages could not be retrieved",
        );
        return;
    };
    let mut bounds = bounds.into_iter();
    let kind = match sub.as_str() {
        "LATEST" => QueryKind::Latest {
            after: bounds.next(),
        },
        "BEFORE" => QueryKind::Before {
            bound: next(&mut bounds),
        },
        "AFTER" => QueryKind::After {
            bound: next(&mut bounds),
        },
        "AROUND" => QueryKind::Around {
            bound: next(&mut bounds),
        },
        _ => QueryKind::Between {
            start: next(&mut bounds),
            end: next(&mut bounds),
        },
    };
    let query = Query {
        target: key,
        kind,
        limit,
        not_before_ms,
    };
    ask(state, id, sub, target, |history, deliver| {
        history.query(query, move |result| deliver(Outcome::Lines(result)))
    });
}

fn next(bounds: &mut impl Iterator<Item = Bound>) -> Bound {
    bounds.next().unwrap_or(Bound::Time(0))
}

/// `timestamp=2024-05-01T12:00:00.000Z` or `msgid=…`.
fn reference(param: &str) -> Option<Bound> {
    let (kind, value) = param.split_once('=')?;
    match kind {
        "timestamp" => DateTime::parse_from_rfc3339(value)
            .ok()
            .map(|time| Bound::Time(time.timestamp_millis())),
        "msgid" if !value.is_empty() => Some(Bound::MsgId(value.to_owned())),
        _ => None,
    }
}

/// The store key of a target `id` may read, and the oldest time it may see:
/// a room it is in (from its join under `since_join`), or with private
/// messages kept, its own conversation with a nick.
fn readable(state: &State, id: ClientId, target: &str) -> Option<(String, Option<i64>)> {
    let client = state.clients.get(&id)?;
    if target.starts_with(['#', '&']) {
        let folded = state.fold(target);
        let room = state.channels.get(&folded)?;
        let joined = room.joined.get(&id).copied();
        room.members.get(&id)?;
        let floor = match state.config.history.visibility {
            HistoryVisibility::All => None,
            HistoryVisibility::SinceJoin => {
                Some(history::millis(joined.unwrap_or_else(|| state.clock.now())))
            }
        };
        return Some((folded.as_str().to_owned(), floor));
    }
    let valid = !target.is_empty() && !target.contains([' ', ',', '*', '?', '!', '@']);
    (state.config.history.private_messages && valid).then(|| {
        let key = history::private_conversation(&state.fold(&client.nick), &state.fold(target));
        (key, None)
    })
}

/// TARGETS: the rooms `id` is in, and its conversations when kept.
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
        .map(|room| room.as_str().to_owned())
        .collect();
    let nick = state
        .config
        .history
        .private_messages
        .then(|| state.fold(&client.nick).as_str().to_owned());
    let query = TargetsQuery {
        from_ms: a.min(b),
        to_ms: a.max(b),
        rooms,
        nick,
        limit,
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

/// Issues a query whose answer comes back to the core as an event; the
/// command's label goes with it. A refused query fails at once.
fn ask(
    state: &mut State,
    id: ClientId,
    sub: String,
    target: String,
    issue: impl FnOnce(&history::HistoryHandle, Deliver) -> Result<(), StoreError>,
) {
    let (Some(history), Some(inbox)) = (state.history.clone(), state.inbox.clone()) else {
        let context = super::chathistory_reply::context(&sub, &target);
        fail(
            state,
            id,
            None,
            "MESSAGE_ERROR",
            &context,
            "Messages could not be retrieved",
        );
        return;
    };
    let request = Request {
        id,
        label: state.label().map(str::to_owned),
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
        Ok(()) => state.defer_reply(),
        Err(_) => {
            let context = super::chathistory_reply::context(&sub, &target);
            fail(
                state,
                id,
                None,
                "MESSAGE_ERROR",
                &context,
                "Messages could not be retrieved",
            );
        }
    }
}
