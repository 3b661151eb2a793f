//! The answer to a CHATHISTORY request, when the history reader has it: a
//! `chathistory` batch of the stored lines (or a
//! `draft/chathistory-targets` batch). [`State::resume`] sends it under the
//! request's label and then runs what the client sent meanwhile.

use bytes::Bytes;

use crate::core::caps::Caps;
use crate::core::playback::{batch_end, batch_start, history_line, utc};
use crate::core::{ClientId, State};
use crate::history::{self, HistoryTarget, Record, StoreError, TargetActivity};
use crate::proto::serialize::echo_param;
use crate::proto::tags::{prepend_tag, server_time};
use crate::proto::{Folded, Line};

/// Who asked for what, carried through the query.
#[derive(Debug)]
pub struct Request {
    pub id: ClientId,
    /// The subcommand, uppercased.
    pub sub: String,
    /// The target as the client wrote it; empty for TARGETS.
    pub target: String,
}

/// What the reader found.
#[derive(Debug)]
pub enum Outcome {
    Lines(Result<Vec<Record>, StoreError>),
    Targets(Result<Vec<TargetActivity>, StoreError>),
}

/// A query's answer on its way back to the core.
#[derive(Debug)]
pub struct Answer {
    pub request: Request,
    pub outcome: Outcome,
}

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
    let (caps, nick) = (client.caps, state.fold(&client.nick));
    let server = state.server_name().to_owned();
    let batch = caps.contains(Caps::BATCH).then(|| state.next_batch_id());
    let (kind, lines) = match outcome {
        Outcome::Lines(Ok(records)) => {
            let today = utc(history::millis(state.clock.now())).date_naive();
            let cloak = state.cloak.as_ref();
            let lines: Vec<Bytes> = records
                .iter()
                .map(|record| history_line(record, caps, batch.as_deref(), today, cloak))
                .collect();
            ("chathistory", lines)
        }
        Outcome::Targets(Ok(targets)) => {
            let lines: Vec<Bytes> = targets
                .iter()
                .map(|target| {
                    let display = state.fold(&target.display);
                    let name = shown_target(target, &display, nick.as_str());
                    let line = Line::new(Some(&server), "CHATHISTORY")
                        .arg("TARGETS")
                        .arg(name)
                        .arg(&server_time(
                            std::time::UNIX_EPOCH + millis(target.latest_ms),
                        ))
                        .finish();
                    in_batch(line, batch.as_deref())
                })
                .collect();
            ("draft/chathistory-targets", lines)
        }
        Outcome::Lines(Err(error)) | Outcome::Targets(Err(error)) => {
            tracing::warn!(%error, "a CHATHISTORY query failed");
            message_error(state, request.id, &request.sub, &request.target);
            return;
        }
    };
    let mut all: Vec<Bytes> = Vec::with_capacity(lines.len() + 2);
    if let Some(batch) = &batch {
        let param = if kind == "chathistory" {
            request.target.as_str()
        } else {
            ""
        };
        let start = match param {
            "" => Line::new(Some(&server), "BATCH")
                .arg(&format!("+{batch}"))
                .arg(kind)
                .finish(),
            param => batch_start(&server, batch, kind, param),
        };
        all.push(start);
    }
    all.extend(lines);
    if let Some(batch) = &batch {
        all.push(batch_end(&server, batch));
    }
    for line in all {
        state.send(request.id, line);
    }
}

/// `FAIL CHATHISTORY <code> <context…> :text`.
pub fn fail(state: &mut State, id: ClientId, code: &str, context: &[&str], text: &str) {
    let mut line = Line::new(Some(state.server_name()), "FAIL")
        .arg("CHATHISTORY")
        .arg(code);
    for arg in context {
        line = line.arg(echo_param(arg));
    }
    state.send(id, line.trailing(text).finish());
}

/// `FAIL CHATHISTORY MESSAGE_ERROR`: the query could not be run, or failed.
pub fn message_error(state: &mut State, id: ClientId, sub: &str, target: &str) {
    let context = context(sub, target);
    let text = "Messages could not be retrieved";
    fail(state, id, "MESSAGE_ERROR", &context, text);
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
/// (folded when the latest line was addressed to the asker).
fn shown_target<'a>(target: &'a TargetActivity, display: &Folded, asker: &'a str) -> &'a str {
    let HistoryTarget::Private(a, b) = &target.target else {
        return &target.display;
    };
    let other = if a.as_str() == asker { b } else { a }.as_str();
    if display.as_str() == asker {
        other
    } else {
        &target.display
    }
}

fn millis(time_ms: i64) -> std::time::Duration {
    std::time::Duration::from_millis(u64::try_from(time_ms).unwrap_or(0))
}
