//! draft/multiline: one message made of several lines. Its lines as the
//! sender composed them, how they are kept in one history record, and the
//! lines every form of it is sent as: a `draft/multiline` batch, or the
//! non-blank lines one by one for clients without the capability.

use bytes::Bytes;

use crate::proto::Line;
use crate::proto::tags::with_tags;

/// The batch type, and the capability's name.
pub const BATCH_TYPE: &str = "draft/multiline";
/// The tag joining a line to the one before it with no line break.
pub const CONCAT_TAG: &str = "draft/multiline-concat";

/// One line of a multiline message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchLine {
    pub text: String,
    /// Joined to the previous line directly rather than after a line break.
    pub concat: bool,
}

/// Between two lines in a stored record: a line break, or the join of a
/// `draft/multiline-concat` line. A one-line record is stored with CR and
/// LF as spaces, and a multiline one is marked (`Record::prepare`), so
/// only its lines come back, exactly as they were sent.
const BREAK: char = '\n';
const CONCAT: char = '\r';

/// The lines as one history record's text.
pub fn encode(lines: &[BatchLine]) -> String {
    let mut text = String::new();
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            text.push(if line.concat { CONCAT } else { BREAK });
        }
        text.push_str(&line.text);
    }
    text
}

/// The lines of a stored record, or None for a record of one line.
pub fn decode(text: &str) -> Option<Vec<BatchLine>> {
    if !text.contains([BREAK, CONCAT]) {
        return None;
    }
    let mut lines = Vec::new();
    let mut concat = false;
    let mut rest = text;
    loop {
        let end = rest.find([BREAK, CONCAT]).unwrap_or(rest.len());
        lines.push(BatchLine {
            text: rest[..end].to_owned(),
            concat,
        });
        let Some(separator) = rest[end..].chars().next() else {
            return Some(lines);
        };
        concat = separator == CONCAT;
        rest = &rest[end + 1..];
    }
}

/// The bodies (untagged lines) a multiline message is sent as; the tags
/// each recipient's form adds are the event's (see `broadcast.rs`).
#[derive(Debug)]
pub struct Bodies {
    /// `:source BATCH +ref draft/multiline target`.
    pub start: Bytes,
    /// Each line inside the batch, tagged with it (and concat where sent).
    pub batched: Vec<Bytes>,
    /// `:source BATCH -ref`.
    pub end: Bytes,
    /// The non-blank lines, untagged, for clients without the capability.
    pub fallback: Vec<Bytes>,
}

impl Bodies {
    pub fn new(
        source: &str,
        command: &str,
        target: &str,
        reference: &str,
        lines: &[BatchLine],
    ) -> Bodies {
        let body = |text: &str| {
            Line::new(Some(source), command)
                .arg(target)
                .trailing(text)
                .finish()
        };
        let batched = lines
            .iter()
            .map(|line| with_tags(&inner_tags(reference, line.concat), &body(&line.text)))
            .collect();
        Bodies {
            start: Line::new(Some(source), "BATCH")
                .arg(&format!("+{reference}"))
                .arg(BATCH_TYPE)
                .arg(target)
                .finish(),
            batched,
            end: Line::new(Some(source), "BATCH")
                .arg(&format!("-{reference}"))
                .finish(),
            fallback: shown_alone(lines).map(body).collect(),
        }
    }
}

/// The tags of a line inside batch `reference`.
pub fn inner_tags(reference: &str, concat: bool) -> String {
    if concat {
        format!("batch={reference};{CONCAT_TAG}")
    } else {
        format!("batch={reference}")
    }
}

/// The texts a client without the capability is sent: each line as the
/// sender composed it, but never a blank one, as the draft requires.
pub fn shown_alone(lines: &[BatchLine]) -> impl Iterator<Item = &str> {
    lines
        .iter()
        .map(|line| line.text.as_str())
        .filter(|text| !text.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str, concat: bool) -> BatchLine {
        BatchLine {
            text: text.to_owned(),
            concat,
        }
    }

    #[test]
    fn a_record_keeps_breaks_joins_and_blank_lines() {
        let lines = vec![
            line("hello", false),
            line("", false),
            line("how is ", false),
            line("everyone?", true),
        ];
        let text = encode(&lines);
        assert_eq!(text, "hello\n\nhow is \reveryone?");
        assert_eq!(decode(&text), Some(lines));
    }

    #[test]
    fn a_one_line_record_is_not_multiline() {
        assert_eq!(decode("just text"), None);
    }

    #[test]
    fn bodies_tag_the_batch_and_drop_blank_lines_from_the_fallback() {
        let lines = [line("a", false), line("", false), line("b", true)];
        let bodies = Bodies::new("n!u@h", "PRIVMSG", "#r", "b7", &lines);
        assert_eq!(
            &bodies.start[..],
            b":n!u@h BATCH +b7 draft/multiline #r\r\n"
        );
        assert_eq!(
            &bodies.batched[2][..],
            b"@batch=b7;draft/multiline-concat :n!u@h PRIVMSG #r :b\r\n"
        );
        assert_eq!(&bodies.end[..], b":n!u@h BATCH -b7\r\n");
        assert_eq!(bodies.fallback.len(), 2);
    }
}
