//! Line framing over a byte stream, with byte limits checked before a line is
//! buffered whole: a line longer than the limit is skipped as it arrives.

use bytes::{Buf, BytesMut};

/// The most bytes of the tag section, `@` and the space included.
pub const MAX_TAGS: usize = 4096;
/// The most bytes of the rest of a line, CR LF included.
pub const MAX_BODY: usize = 512;

/// The most bytes of the rest of a line without its ending. Counted the same
/// whether the client ends lines with CR LF or a bare LF.
const MAX_BODY_CONTENT: usize = MAX_BODY - 2;

/// What one call to [`Framer::next_line`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete line, without its ending, not empty.
    Line(BytesMut),
    /// A line that passed the limits; its bytes were dropped.
    TooLong,
}

/// Splits a read buffer into lines. LF or CR LF ends a line; empty lines are skipped.
#[derive(Debug, Default)]
pub struct Framer {
    /// True while the rest of an overlong line is being skipped.
    discarding: bool,
    /// Bytes at the front of the buffer already known to hold no LF, so a
    /// line arriving a byte at a time is not rescanned from its start.
    scanned: usize,
}

impl Framer {
    /// Takes the next complete line out of `buf`, or `None` when more bytes
    /// are needed. Never leaves more than `MAX_TAGS + MAX_BODY` bytes of one
    /// unfinished line in `buf`.
    pub fn next_line(&mut self, buf: &mut BytesMut) -> Option<Frame> {
        loop {
            let start = self.scanned.min(buf.len());
            let Some(lf) = buf[start..]
                .iter()
                .position(|&b| b == b'\n')
                .map(|i| start + i)
            else {
                return self.no_line_yet(buf);
            };
            self.scanned = 0;

            if self.discarding {
                buf.advance(lf + 1);
                self.discarding = false;
                continue;
            }

            let mut line = buf.split_to(lf + 1);
            line.truncate(lf);
            if line.last() == Some(&b'\r') {
                line.truncate(lf - 1);
            }
            if line.is_empty() {
                continue;
            }
            if exceeds_limits(&line) {
                return Some(Frame::TooLong);
            }
            return Some(Frame::Line(line));
        }
    }

    /// `buf` holds no LF: keep waiting, or give up on a line that can no
    /// longer end within the limits.
    fn no_line_yet(&mut self, buf: &mut BytesMut) -> Option<Frame> {
        if self.discarding {
            buf.clear();
            self.scanned = 0;
            return None;
        }
        // A trailing CR may turn out to be the line ending, so it is not
        // counted yet; every other byte belongs to the line for sure.
        let content = buf.strip_suffix(b"\r").unwrap_or(buf);
        if exceeds_limits(content) {
            buf.clear();
            self.scanned = 0;
            self.discarding = true;
            return Some(Frame::TooLong);
        }
        self.scanned = buf.len();
        None
    }
}

/// The line one message of a message-based transport (WebSocket) carries:
/// it ends at its first CR or LF, whatever follows is dropped, and the same
/// limits as for a stream apply. `None` for an empty line.
pub fn frame_message(mut message: BytesMut) -> Option<Frame> {
    if let Some(end) = message.iter().position(|&b| b == b'\r' || b == b'\n') {
        message.truncate(end);
    }
    if message.is_empty() {
        return None;
    }
    if exceeds_limits(&message) {
        return Some(Frame::TooLong);
    }
    Some(Frame::Line(message))
}

/// Does this line content (no line ending) break the limits? For a prefix of
/// a line, a `true` also holds for the whole line: both measures only grow.
fn exceeds_limits(content: &[u8]) -> bool {
    if content.len() <= MAX_BODY_CONTENT {
        return false;
    }
    if content.first() != Some(&b'@') {
        return true;
    }
    let tags_len = content
        .iter()
        .position(|&b| b == b' ')
        .map_or(content.len(), |space| space + 1);
    tags_len > MAX_TAGS || content.len() - tags_len > MAX_BODY_CONTENT
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(framer: &mut Framer, buf: &mut BytesMut) -> Vec<Frame> {
        std::iter::from_fn(|| framer.next_line(buf)).collect()
    }

    fn line(text: &str) -> Frame {
        Frame::Line(BytesMut::from(text))
    }

    #[test]
    fn a_message_is_one_line_cut_at_its_first_line_ending() {
        let framed = |text: &str| frame_message(BytesMut::from(text));
        assert_eq!(framed("PING a"), Some(line("PING a")));
        assert_eq!(framed("PING a\r\n"), Some(line("PING a")));
        assert_eq!(framed("PING a\nQUIT"), Some(line("PING a")));
        assert_eq!(framed("\r\nPING a"), None);
        assert_eq!(framed(""), None);
        let long = format!("PRIVMSG #a :{}", "x".repeat(MAX_BODY));
        assert_eq!(framed(&long), Some(Frame::TooLong));
    }

    #[test]
    fn crlf_and_lf_both_end_lines() {
        let mut framer = Framer::default();
        let mut buf = BytesMut::from("NICK a\r\nUSER b\nPING c");
        assert_eq!(
            lines(&mut framer, &mut buf),
            vec![line("NICK a"), line("USER b")]
        );
        assert_eq!(&buf[..], b"PING c");
        buf.extend_from_slice(b"\r\n");
        assert_eq!(lines(&mut framer, &mut buf), vec![line("PING c")]);
        assert!(buf.is_empty());
    }

    #[test]
    fn crlf_split_across_reads() {
        let mut framer = Framer::default();
        let mut buf = BytesMut::from("PING x\r");
        assert_eq!(framer.next_line(&mut buf), None);
        buf.extend_from_slice(b"\n");
        assert_eq!(framer.next_line(&mut buf), Some(line("PING x")));
    }

    #[test]
    fn only_the_cr_before_lf_is_stripped() {
        let mut framer = Framer::default();
        let mut buf = BytesMut::from("A\rB\r\r\n");
        assert_eq!(lines(&mut framer, &mut buf), vec![line("A\rB\r")]);
    }

    #[test]
    fn ten_thousand_empty_lines_produce_nothing() {
        let mut framer = Framer::default();
        let mut buf = BytesMut::from("\r\n\n".repeat(5_000).as_str());
        assert_eq!(framer.next_line(&mut buf), None);
        assert!(buf.is_empty());
    }

    #[test]
    fn nul_bytes_stay_in_the_line() {
        let mut framer = Framer::default();
        let mut buf = BytesMut::from("A\0B\n");
        assert_eq!(framer.next_line(&mut buf), Some(line("A\0B")));
    }

    #[test]
    fn megabyte_without_newline_is_one_too_long_with_bounded_buffer() {
        let mut framer = Framer::default();
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for _ in 0..(1 << 20) / 1000 {
            buf.extend_from_slice(&[b'x'; 1000]);
            frames.extend(lines(&mut framer, &mut buf));
            assert!(buf.len() <= MAX_TAGS + MAX_BODY);
        }
        assert_eq!(frames, vec![Frame::TooLong]);
        buf.extend_from_slice(b"xxx\r\nPING ok\r\n");
        assert_eq!(lines(&mut framer, &mut buf), vec![line("PING ok")]);
    }

    #[test]
    fn overlong_line_fed_byte_by_byte_is_reported_once() {
        let mut framer = Framer::default();
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for _ in 0..5_000 {
            buf.extend_from_slice(b"@");
            frames.extend(lines(&mut framer, &mut buf));
            assert!(buf.len() <= MAX_TAGS + MAX_BODY);
        }
        buf.extend_from_slice(b"\nPING ok\n");
        frames.extend(lines(&mut framer, &mut buf));
        assert_eq!(frames, vec![Frame::TooLong, line("PING ok")]);
    }

    #[test]
    fn complete_overlong_line_is_too_long() {
        let mut framer = Framer::default();
        let mut buf =
            BytesMut::from(format!("PRIVMSG #c :{}\nPING ok\n", "a".repeat(600)).as_str());
        assert_eq!(
            lines(&mut framer, &mut buf),
            vec![Frame::TooLong, line("PING ok")]
        );
    }

    #[test]
    fn body_limit_is_510_bytes_of_content() {
        let ok = "a".repeat(MAX_BODY - 2);
        let long = "a".repeat(MAX_BODY - 1);
        for ending in ["\r\n", "\n"] {
            let mut framer = Framer::default();
            let mut buf = BytesMut::from(format!("{ok}{ending}{long}{ending}").as_str());
            assert_eq!(
                lines(&mut framer, &mut buf),
                vec![line(&ok), Frame::TooLong]
            );
        }
    }

    #[test]
    fn body_of_510_bytes_waiting_for_its_lf_is_kept() {
        let mut framer = Framer::default();
        let mut buf = BytesMut::from(format!("{}\r", "a".repeat(MAX_BODY - 2)).as_str());
        assert_eq!(framer.next_line(&mut buf), None);
        buf.extend_from_slice(b"\n");
        assert!(
            matches!(framer.next_line(&mut buf), Some(Frame::Line(l)) if l.len() == MAX_BODY - 2)
        );
    }

    #[test]
    fn tags_have_their_own_limit() {
        let tags = format!("@{} ", "t".repeat(MAX_TAGS - 2));
        let body = "b".repeat(MAX_BODY - 2);
        let mut framer = Framer::default();
        let mut buf = BytesMut::from(format!("{tags}{body}\r\n").as_str());
        assert!(
            matches!(framer.next_line(&mut buf), Some(Frame::Line(l)) if l.len() == MAX_TAGS + MAX_BODY - 2)
        );

        let tags = format!("@{} ", "t".repeat(MAX_TAGS - 1));
        let mut buf = BytesMut::from(format!("{tags}X\r\n").as_str());
        assert_eq!(framer.next_line(&mut buf), Some(Frame::TooLong));

        let tags = format!("@{} ", "t".repeat(10));
        let mut buf = BytesMut::from(format!("{tags}{body}b\r\n").as_str());
        assert_eq!(framer.next_line(&mut buf), Some(Frame::TooLong));
    }

    #[test]
    fn overlong_tags_are_caught_before_the_line_ends() {
        let mut framer = Framer::default();
        let mut buf = BytesMut::from(format!("@{}", "t".repeat(MAX_TAGS)).as_str());
        assert_eq!(framer.next_line(&mut buf), Some(Frame::TooLong));
        assert!(buf.is_empty());
        buf.extend_from_slice(b" FOO\r\nPING ok\r\n");
        assert_eq!(lines(&mut framer, &mut buf), vec![line("PING ok")]);
    }
}
