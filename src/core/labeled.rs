//! labeled-response: the replies to a labeled command go back under its
//! label: an ACK when there are none, the label on the one reply, or a
//! `labeled-response` batch around several. While the command runs, its
//! replies are captured here instead of being queued.

use crate::net::Gate;
use bytes::Bytes;

use super::{ClientId, State};
use crate::proto::Line;
use crate::proto::tags::{prepend_tag, write_tag};

/// Lines to one client collected while a labeled command runs.
#[derive(Debug)]
pub struct Capture {
    pub id: ClientId,
    pub lines: Vec<Bytes>,
    /// What the held lines wait for: the latest record of any.
    pub gate: Gate,
}

impl State {
    /// The label of the command being handled, when it has one.
    pub fn label(&self) -> Option<&str> {
        self.label.as_deref()
    }

    /// Holds every line to `id` until [`State::end_capture`]; `label` is
    /// what [`State::label`] tells the handler.
    pub fn start_labeled(&mut self, id: ClientId, label: &str) {
        self.label = Some(label.to_owned());
        self.start_capture(id);
    }

    /// Holds every line to `id` until [`State::end_capture`].
    pub fn start_capture(&mut self, id: ClientId) {
        self.sink.capture = Some(Capture {
            id,
            lines: Vec::new(),
            gate: Gate::NONE,
        });
    }

    /// Forgets a labeled command cut short (its handler panicked).
    pub fn reset_labeled(&mut self) {
        self.sink.capture = None;
        self.label = None;
    }

    /// Stops holding lines and returns them, with the history record they
    /// must wait for.
    pub fn end_capture(&mut self) -> (Vec<Bytes>, Gate) {
        self.label = None;
        self.sink
            .capture
            .take()
            .map_or((Vec::new(), Gate::NONE), |capture| {
                (capture.lines, capture.gate)
            })
    }
}

/// `gate` is the history record the replies wait for (an echoed message).
pub fn send(state: &mut State, id: ClientId, label: &str, lines: Vec<Bytes>, gate: Gate) {
    let mut label_tag = String::new();
    write_tag(&mut label_tag, "label", Some(label));
    let server = state.server_name().to_owned();
    match lines.len() {
        0 => {
            let ack = Line::new(Some(&server), "ACK").finish();
            state.send(id, prepend_tag(&ack, &label_tag));
        }
        1 => state.send_after(id, prepend_tag(&lines[0], &label_tag), gate),
        // A response that is one batch already (a CHATHISTORY answer) is
        // labeled on its start: "an existing type applicable to the entire
        // response".
        _ if is_one_batch(&lines) => {
            let mut lines = lines.into_iter();
            if let Some(start) = lines.next() {
                state.send_after(id, prepend_tag(&start, &label_tag), gate);
            }
            for line in lines {
                state.send_after(id, line, gate);
            }
        }
        _ => {
            let reference = state.next_batch_id();
            let start = Line::new(Some(&server), "BATCH")
                .arg(&format!("+{reference}"))
                .arg("labeled-response")
                .finish();
            state.send_after(id, prepend_tag(&start, &label_tag), gate);
            let batch_tag = format!("batch={reference}");
            for line in lines {
                // A line of a nested batch (playback in a labeled JOIN)
                // belongs to that batch, whose start line is tagged instead.
                let line = if line.starts_with(b"@batch=") {
                    line
                } else {
                    prepend_tag(&line, &batch_tag)
                };
                state.send_after(id, line, gate);
            }
            let end = Line::new(Some(&server), "BATCH")
                .arg(&format!("-{reference}"))
                .finish();
            state.send_after(id, end, gate);
        }
    }
}

/// Whether `lines` are one batch, whole: a `BATCH +ref` start that is in
/// no other batch (a multiline echo's start carries its msgid and time),
/// lines each in it or in a batch nested in it, and its `BATCH -ref` end.
fn is_one_batch(lines: &[Bytes]) -> bool {
    fn parse(line: &Bytes) -> Option<crate::proto::message::MessageRef<'_>> {
        let text = std::str::from_utf8(line).ok()?;
        crate::proto::message::parse(text.trim_end_matches(['\r', '\n'])).ok()
    }
    fn opened(message: &crate::proto::message::MessageRef<'_>) -> Option<String> {
        let reference = message.params.first()?.strip_prefix('+')?;
        (message.command == "BATCH" && !reference.is_empty()).then(|| reference.to_owned())
    }
    let (Some(first), Some(last)) = (lines.first(), lines.last()) else {
        return false;
    };
    let Some(reference) = parse(first)
        .filter(|start| start.tags.iter().all(|&(key, _)| key != "batch"))
        .and_then(|start| opened(&start))
    else {
        return false;
    };
    let ends = parse(last).is_some_and(|end| {
        end.command == "BATCH" && end.params.first() == Some(&format!("-{reference}").as_str())
    });
    let mut open = vec![reference];
    ends && lines[1..lines.len() - 1].iter().all(|line| {
        parse(line).is_some_and(|inner| {
            let inside = inner.tags.iter().any(|&(key, value)| {
                key == "batch" && value.is_some_and(|v| open.iter().any(|r| r == v))
            });
            if let Some(nested) = opened(&inner).filter(|_| inside) {
                open.push(nested);
            }
            inside
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &[&str]) -> Vec<Bytes> {
        text.iter()
            .map(|line| Bytes::from(format!("{line}\r\n")))
            .collect()
    }

    #[test]
    fn a_batch_with_tags_on_its_start_and_a_nested_batch_is_one_batch() {
        let multiline_echo = lines(&[
            "@msgid=m1 :a!u@h BATCH +r draft/multiline #room",
            "@batch=r :a!u@h PRIVMSG #room :one",
            ":a!u@h BATCH -r",
        ]);
        assert!(is_one_batch(&multiline_echo));
        let history = lines(&[
            ":s BATCH +h chathistory #room",
            "@batch=h;msgid=m1 :a!u@h BATCH +m draft/multiline #room",
            "@batch=m :a!u@h PRIVMSG #room :one",
            "@batch=h :a!u@h BATCH -m",
            ":s BATCH -h",
        ]);
        assert!(is_one_batch(&history));
    }

    #[test]
    fn lines_outside_the_batch_or_a_start_inside_another_are_not_one_batch() {
        let stray = lines(&[
            ":s BATCH +h chathistory #room",
            "@batch=x :a!u@h PRIVMSG #room :one",
            ":s BATCH -h",
        ]);
        assert!(!is_one_batch(&stray));
        let nested_start = lines(&["@batch=o :s BATCH +h chathistory #room", ":s BATCH -h"]);
        assert!(!is_one_batch(&nested_start));
    }
}
