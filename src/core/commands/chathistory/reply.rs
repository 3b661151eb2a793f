//! The answer to a CHATHISTORY request, when the history reader has it: a
//! `chathistory` batch of the stored lines (or a
//! `draft/chathistory-targets` batch). [`State::resume`] sends it under the
//! request's label and then runs what the client sent meanwhile.

use bytes::Bytes;

use crate::core::caps::Caps;
use crate::core::history_access::party;
use crate::core::history_answer::{Answer, Outcome};
use crate::core::playback::{Keep, batch_end, batch_start, history_lines, utc, within_budget};
use crate::core::{ClientId, State};
use crate::history::{self, HistoryTarget, Party, TargetActivity};
use crate::proto::tags::{prepend_tag, server_time};
use crate::proto::{Folded, Line};

/// Sends the answer to the client that asked, if it is still here, and
/// lets its later lines run.
pub fn answered(state: &mut State, answer: Answer) {
    let id = answer.request.id;
    state.resume(id, |state| send_answer(state, answer));
}

fn send_answer(state: &mut State, answer: Answer) {
    let Answer { request, outcome } = answer;
    let Some(client) = state.clients.get(&request.id) else {
        return;
    };
    let (caps, asker) = (client.caps, party(state, client));
    let server = state.server_name().to_owned();
    let batch = caps.contains(Caps::BATCH).then(|| state.next_batch_id());
    let (kind, lines) = match outcome {
        Outcome::Lines(Ok(records)) => {
            let today = utc(history::millis(state.clock.now())).date_naive();
            let cloak = state.cloak.as_ref();
            let keep = match request.sub.as_str() {
                "BEFORE" | "LATEST" => Keep::Newest,
                _ => Keep::Oldest,
            };
            // Past the budget the batch ends early; the client pages on.
            let budget = state.config.limits.history_reply_budget();
            let lines: Vec<Bytes> = within_budget(records.iter(), budget, keep, |record| {
                history_lines(record, caps, batch.as_deref(), today, cloak)
            })
            .concat();
            ("chathistory", lines)
        }
        Outcome::Targets(Ok(targets)) => {
            let lines = target_lines(state, &targets, &asker, batch.as_deref());
            ("draft/chathistory-targets", lines)
        }
        Outcome::Lines(Err(error)) | Outcome::Targets(Err(error)) => {
            tracing::warn!(%error, "a CHATHISTORY query failed");
            message_error(state, request.id, &request.sub, &request.target);
            return;
        }
    };
    let Some(batch) = &batch else {
        for line in lines {
            state.send(request.id, line);
        }
        return;
    };
    let start = if kind == "chathistory" && !request.target.is_empty() {
        batch_start(&server, batch, kind, &request.target)
    } else {
        Line::new(Some(&server), "BATCH")
            .arg(&format!("+{batch}"))
            .arg(kind)
            .finish()
    };
    state.send(request.id, start);
    for line in lines {
        state.send(request.id, line);
    }
    state.send(request.id, batch_end(&server, batch));
}

/// `CHATHISTORY TARGETS <target> <time>` for each conversation, in the
/// batch when there is one.
fn target_lines(
    state: &State,
    targets: &[TargetActivity],
    asker: &Party,
    batch: Option<&str>,
) -> Vec<Bytes> {
    let server = state.server_name();
    targets
        .iter()
        .map(|target| {
            let display = state.fold(&target.display);
            let name = shown_target(target, &display, asker);
            let time = server_time(std::time::UNIX_EPOCH + millis(target.latest_ms));
            let line = Line::new(Some(server), "CHATHISTORY")
                .arg("TARGETS")
                .arg(name)
                .arg(&time)
                .finish();
            in_batch(line, batch)
        })
        .collect()
}

/// The text of a FAIL for a target the asker may not read, or a query
/// that failed: the same words, so a refusal says nothing about the room.
pub(super) const NOT_RETRIEVED: &str = "Messages could not be retrieved";

/// `FAIL CHATHISTORY MESSAGE_ERROR`: the query could not be run, or failed.
pub fn message_error(state: &mut State, id: ClientId, sub: &str, target: &str) {
    let context = context(sub, target);
    state.fail(id, "CHATHISTORY", "MESSAGE_ERROR", &context, NOT_RETRIEVED);
}

/// The FAIL context: the subcommand, and the target when there is one.
fn context<'a>(sub: &'a str, target: &'a str) -> Vec<&'a str> {
    if target.is_empty() {
        vec![sub]
    } else {
        vec![sub, target]
    }
}

fn in_batch(line: Bytes, batch: Option<&str>) -> Bytes {
    match batch {
        Some(batch) => prepend_tag(&line, &format!("batch={batch}")),
        None => line,
    }
}

/// A room as displayed; a private conversation as the other party's nick
/// or account name, as displayed when the latest line was addressed to it,
/// else folded.
fn shown_target<'a>(target: &'a TargetActivity, display: &Folded, asker: &Party) -> &'a str {
    let HistoryTarget::Private(conversation) = &target.target else {
        return &target.display;
    };
    let (a, b) = conversation.parties();
    let other = if a == asker { b } else { a }.name();
    if display == other {
        &target.display
    } else {
        other.as_str()
    }
}

fn millis(time_ms: i64) -> std::time::Duration {
    std::time::Duration::from_millis(u64::try_from(time_ms).unwrap_or(0))
}
