//! labeled-response: the replies to a labeled command go back under its
//! label: an ACK when there are none, the label on the one reply, or a
//! `labeled-response` batch around several.

use bytes::Bytes;

use super::{ClientId, State};
use crate::proto::Line;
use crate::proto::tags::{prepend_tag, write_tag};

/// `seq` is the history record the replies wait for (an echoed message).
pub fn send(state: &mut State, id: ClientId, label: &str, lines: Vec<Bytes>, seq: u64) {
    let mut label_tag = String::new();
    write_tag(&mut label_tag, "label", Some(label));
    let server = state.server_name().to_owned();
    match lines.len() {
        0 => {
            let ack = Line::new(Some(&server), "ACK").finish();
            state.send(id, prepend_tag(&ack, &label_tag));
        }
        1 => state.send_after(id, prepend_tag(&lines[0], &label_tag), seq),
        _ => {
            let reference = state.next_batch_id();
            let start = Line::new(Some(&server), "BATCH")
                .arg(&format!("+{reference}"))
                .arg("labeled-response")
                .finish();
            state.send_after(id, prepend_tag(&start, &label_tag), seq);
            let batch_tag = format!("batch={reference}");
            for line in lines {
                // A line of a nested batch (playback in a labeled JOIN)
                // belongs to that batch, whose start line is tagged instead.
                let line = if line.starts_with(b"@batch=") {
                    line
                } else {
                    prepend_tag(&line, &batch_tag)
                };
                state.send_after(id, line, seq);
            }
            let end = Line::new(Some(&server), "BATCH")
                .arg(&format!("-{reference}"))
                .finish();
            state.send_after(id, end, seq);
        }
    }
}
