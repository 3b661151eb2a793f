//! Outbound lines. [`Line`] owns the trailing-colon policy: human text always
//! goes through [`Line::trailing`], which always writes the `:`; structured
//! arguments go through [`Line::arg`]. A finished line is a `Bytes` that a
//! fan-out clones cheaply onto every member's send queue.

use bytes::{BufMut, Bytes, BytesMut};

use super::message::escape_tag_value;

/// The longest line we send, without tags, including CR LF.
pub const MAX_LINE: usize = 512;

/// A line under construction.
pub struct Line {
    buf: BytesMut,
    /// Set once a parameter with a `:` is written: nothing may follow it.
    closed: bool,
}

impl Line {
    /// Starts `:source COMMAND` (or `COMMAND` without a source).
    pub fn new(source: Option<&str>, command: &str) -> Line {
        // One allocation of the largest line we send: writes stop at
        // MAX_LINE bytes, so the buffer never grows.
        let mut line = Line {
            buf: BytesMut::with_capacity(MAX_LINE),
            closed: false,
        };
        if let Some(source) = source {
            line.put(b":");
            line.put_sanitized(source);
            line.put(b" ");
        }
        line.put_sanitized(command);
        line
    }

    /// Adds a middle parameter. Structured values (nicks, channels, modes)
    /// never need a `:`; an echo of bad client input might, so anything that
    /// cannot stand in a middle parameter is replaced: an empty value by `*`,
    /// a leading `:` and every space, CR, LF and NUL by `_`.
    pub fn arg(mut self, arg: &str) -> Line {
        debug_assert!(!self.closed, "a parameter after the trailing one");
        self.put(b" ");
        if arg.is_empty() {
            self.put(b"*");
            return self;
        }
        let mut rest = arg.as_bytes();
        if rest[0] == b':' {
            self.put(b"_");
            rest = &rest[1..];
        }
        while let Some(bad) = rest.iter().position(|&b| b == b' ' || is_forbidden(b)) {
            self.put(&rest[..bad]);
            self.put(b"_");
            rest = &rest[bad + 1..];
        }
        self.put(rest);
        self
    }

    /// Adds the final parameter with its `:`, whatever it holds.
    pub fn trailing(mut self, text: &str) -> Line {
        debug_assert!(!self.closed, "a parameter after the trailing one");
        self.put(b" :");
        self.put_sanitized(text);
        self.closed = true;
        self
    }

    /// Ends the line with CR LF, cut at [`MAX_LINE`] on a UTF-8 boundary.
    pub fn finish(mut self) -> Bytes {
        let max_content = MAX_LINE - 2;
        if self.buf.len() > max_content {
            let cut = char_boundary_at_or_before(&self.buf, max_content);
            self.buf.truncate(cut);
        }
        self.buf.put_slice(b"\r\n");
        self.buf.freeze()
    }

    /// Appends what still fits in [`MAX_LINE`] bytes; the rest would be cut
    /// by [`Line::finish`] anyway. A char split here is cut off there too.
    fn put(&mut self, bytes: &[u8]) {
        let room = MAX_LINE.saturating_sub(self.buf.len());
        self.buf.put_slice(&bytes[..bytes.len().min(room)]);
    }

    /// Appends `text` with CR, LF and NUL as spaces, copying clean runs whole.
    fn put_sanitized(&mut self, text: &str) {
        let mut rest = text.as_bytes();
        while let Some(bad) = rest.iter().position(|&b| is_forbidden(b)) {
            self.put(&rest[..bad]);
            self.put(b" ");
            rest = &rest[bad + 1..];
        }
        self.put(rest);
    }
}

/// Serializes tags, source, command and params the generic way: the last
/// parameter gets a `:` only when it needs one. Used for relaying and tests.
///
/// A tag whose value is empty is written as a bare key, which message-tags
/// treats as the same thing and which is shorter.
pub fn join(
    tags: &[(&str, Option<&str>)],
    source: Option<&str>,
    command: &str,
    params: &[&str],
) -> String {
    let mut out = String::new();
    for (i, (key, value)) in tags.iter().enumerate() {
        out.push(if i == 0 { '@' } else { ';' });
        out.push_str(key);
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            out.push('=');
            escape_tag_value(value, &mut out);
        }
    }
    if !tags.is_empty() {
        out.push(' ');
    }
    if let Some(source) = source {
        out.push(':');
        out.push_str(source);
        out.push(' ');
    }
    out.push_str(command);
    if let Some((last, middles)) = params.split_last() {
        for middle in middles {
            out.push(' ');
            out.push_str(middle);
        }
        out.push(' ');
        if needs_colon(last) {
            out.push(':');
        }
        out.push_str(last);
    }
    out
}

/// A client's own parameter made safe to echo as a middle argument: one that
/// would need a `:` (empty, leading `:`, a space) or holds CR, LF or NUL
/// becomes `*`, so an error reply can never end early or break its line.
pub fn echo_param(param: &str) -> &str {
    if is_middle_safe(param) { param } else { "*" }
}

/// Can `param` be sent as a middle parameter with more to follow?
pub fn is_middle_safe(param: &str) -> bool {
    !needs_colon(param) && !param.bytes().any(is_forbidden)
}

/// A parameter that would be misread without a leading `:`.
fn needs_colon(param: &str) -> bool {
    param.is_empty() || param.starts_with(':') || param.contains(' ')
}

/// Bytes that would end or corrupt a line on the receiving side.
fn is_forbidden(b: u8) -> bool {
    matches!(b, b'\r' | b'\n' | b'\0')
}

/// The largest index `<= max` that does not split a UTF-8 sequence.
fn char_boundary_at_or_before(bytes: &[u8], max: usize) -> usize {
    let mut cut = max.min(bytes.len());
    // Continuation bytes are 0b10xx_xxxx; a cut before one splits a char.
    while cut > 0 && cut < bytes.len() && bytes[cut] & 0xC0 == 0x80 {
        cut -= 1;
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_privmsg() {
        let line = Line::new(Some("irc.example"), "PRIVMSG")
            .arg("#room")
            .trailing("hi there")
            .finish();
        assert_eq!(&line[..], b":irc.example PRIVMSG #room :hi there\r\n");
    }

    #[test]
    fn line_without_source() {
        assert_eq!(
            &Line::new(None, "PING").arg("x").finish()[..],
            b"PING x\r\n"
        );
    }

    #[test]
    fn trailing_always_has_its_colon() {
        let line = Line::new(None, "QUIT").trailing("bye").finish();
        assert_eq!(&line[..], b"QUIT :bye\r\n");
        let line = Line::new(None, "QUIT").trailing("").finish();
        assert_eq!(&line[..], b"QUIT :\r\n");
    }

    #[test]
    fn plain_arg_has_no_colon() {
        let line = Line::new(Some("s"), "MODE")
            .arg("#c")
            .arg("+o")
            .arg("nick")
            .finish();
        assert_eq!(&line[..], b":s MODE #c +o nick\r\n");
    }

    #[test]
    fn arg_never_breaks_the_parameter_list() {
        assert_eq!(
            &Line::new(None, "X").arg("").arg("y").finish()[..],
            b"X * y\r\n"
        );
        assert_eq!(&Line::new(None, "X").arg(":a").finish()[..], b"X _a\r\n");
        assert_eq!(
            &Line::new(None, "X").arg("a b").trailing("t").finish()[..],
            b"X a_b :t\r\n"
        );
    }

    #[test]
    fn cr_lf_nul_become_spaces() {
        let line = Line::new(None, "X").arg("a\r\nb").finish();
        assert_eq!(&line[..], b"X a__b\r\n");
        let line = Line::new(Some("s"), "PRIVMSG")
            .arg("#c")
            .trailing("x\0y\nQUIT")
            .finish();
        assert_eq!(&line[..], b":s PRIVMSG #c :x y QUIT\r\n");
    }

    #[test]
    fn long_line_is_cut_to_512_bytes() {
        let text = "a".repeat(1000);
        let line = Line::new(Some("s"), "PRIVMSG")
            .arg("#c")
            .trailing(&text)
            .finish();
        assert_eq!(line.len(), MAX_LINE);
        assert!(line.ends_with(b"a\r\n"));
    }

    #[test]
    fn cut_respects_utf8_boundaries() {
        // "é" is two bytes; with an odd prefix the limit falls inside one.
        for prefix in ["", "x"] {
            let text = format!("{prefix}{}", "é".repeat(400));
            let line = Line::new(None, "PRIVMSG")
                .arg("#c")
                .trailing(&text)
                .finish();
            assert!(line.len() <= MAX_LINE);
            assert!(line.ends_with(b"\r\n"));
            assert!(std::str::from_utf8(&line).is_ok());
        }
    }

    #[test]
    fn exactly_512_is_kept_whole() {
        let head = "PRIVMSG #c :";
        let text = "b".repeat(MAX_LINE - 2 - head.len());
        let line = Line::new(None, "PRIVMSG")
            .arg("#c")
            .trailing(&text)
            .finish();
        assert_eq!(line.len(), MAX_LINE);
        assert!(line.ends_with(b"b\r\n"));
    }

    #[test]
    fn huge_text_is_cut_to_the_limit() {
        let text = "é".repeat(100_000);
        let line = Line::new(Some("s"), "PRIVMSG")
            .arg("#c")
            .trailing(&text)
            .finish();
        assert!(line.len() <= MAX_LINE);
        assert!(std::str::from_utf8(&line).is_ok());
    }

    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "after the trailing one")]
    fn arg_after_the_trailing_one_is_a_bug() {
        let _ = Line::new(None, "X").trailing("a b").arg("c");
    }

    #[test]
    fn echo_param_replaces_what_cannot_be_a_middle_argument() {
        assert_eq!(echo_param("#room"), "#room");
        for bad in ["", ":x", "a b", "a\rb", "a\0"] {
            assert_eq!(echo_param(bad), "*", "{bad:?}");
        }
    }

    #[test]
    fn join_puts_colon_on_last_param_only_when_needed() {
        assert_eq!(join(&[], None, "foo", &["bar", "baz"]), "foo bar baz");
        assert_eq!(join(&[], Some("s"), "foo", &["a b"]), ":s foo :a b");
        assert_eq!(join(&[], None, "foo", &[""]), "foo :");
        assert_eq!(join(&[], None, "foo", &[":x"]), "foo ::x");
        assert_eq!(join(&[], None, "AWAY", &[]), "AWAY");
    }

    #[test]
    fn middle_safe_params() {
        assert!(is_middle_safe("nick"));
        for param in ["", ":x", "a b", "a\rb"] {
            assert!(!is_middle_safe(param), "{param:?}");
        }
    }

    #[test]
    fn join_escapes_tags() {
        let tags = [("a", Some("b c;d")), ("e", None), ("f", Some(""))];
        assert_eq!(join(&tags, None, "X", &[]), "@a=b\\sc\\:d;e;f X");
    }
}
