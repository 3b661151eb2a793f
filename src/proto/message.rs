//! Inbound messages: a nom parser into a borrowed [`MessageRef`], and its owned
//! form [`Message`] that travels from a connection to the core.

use std::collections::HashMap;

use nom::IResult;
use nom::Parser;
use nom::bytes::complete::{tag, take_till1, take_while, take_while1};
use nom::combinator::{not, recognize, rest, verify};
use nom::sequence::{preceded, terminated};

use super::validate::is_valid_tag_key;

/// One message tag, with its value already unescaped (`None` for a bare key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    pub key: String,
    pub value: Option<String>,
}

/// A parsed line that borrows from the input. Tag values are kept raw
/// (escaped); [`MessageRef::to_owned`] unescapes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageRef<'a> {
    /// Raw `key[=value]` pairs, values still escaped.
    pub tags: Vec<(&'a str, Option<&'a str>)>,
    pub source: Option<&'a str>,
    pub command: &'a str,
    /// Every parameter, the trailing one included, without its `:`.
    pub params: Vec<&'a str>,
}

/// A parsed line that owns its parts. `command` is ASCII-uppercased.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    pub tags: Vec<Tag>,
    pub source: Option<String>,
    pub command: String,
    pub params: Vec<String>,
    /// The line was not valid UTF-8 and was repaired with U+FFFD; the core
    /// refuses it when UTF8ONLY is on.
    pub invalid_utf8: bool,
}

/// Why a line could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty message")]
    Empty,
    #[error("no command")]
    NoCommand,
    #[error("malformed message")]
    Malformed,
}

/// Parses one line (without its line ending).
///
/// Atoms are separated by one or more spaces (RFC 1459, as the ircdocs
/// vectors expect); a tab is an ordinary character.
pub fn parse(line: &str) -> Result<MessageRef<'_>, ParseError> {
    let (input, _) = spaces(line).map_err(|_| ParseError::Malformed)?;
    if input.is_empty() {
        return Err(ParseError::Empty);
    }

    let (input, tags) = match input.strip_prefix('@') {
        Some(after_at) => {
            let (input, section) = terminated(tag_section, spaces)
                .parse(after_at)
                .map_err(|_| ParseError::Malformed)?;
            (input, split_tags(section)?)
        }
        None => (input, Vec::new()),
    };

    let (input, source) = match input.strip_prefix(':') {
        Some(after_colon) => {
            let (input, source) = terminated(non_space, spaces)
                .parse(after_colon)
                .map_err(|_| ParseError::Malformed)?;
            (input, Some(source))
        }
        None => (input, None),
    };

    if input.is_empty() {
        return Err(ParseError::NoCommand);
    }
    let (input, command) = command(input).map_err(|_| ParseError::Malformed)?;
    let params = params(input)?;

    Ok(MessageRef {
        tags,
        source,
        command,
        params,
    })
}

/// Zero or more spaces; a tab is not a separator.
fn spaces(input: &str) -> IResult<&str, &str> {
    take_while(|c| c == ' ')(input)
}

/// One atom: everything up to the next space, at least one character.
fn non_space(input: &str) -> IResult<&str, &str> {
    take_till1(|c| c == ' ')(input)
}

/// The tag section after the `@`; must be followed by a space, since a line
/// of tags alone has no command.
fn tag_section(input: &str) -> IResult<&str, &str> {
    terminated(non_space, tag(" ")).parse(input)
}

/// A verb: letters (`PRIVMSG`), a three-digit numeric, or any other run of
/// printable ASCII (`NONEXISTENT_COMMAND`), which the core answers with 421
/// instead of the line vanishing unanswered; then a space or the end.
fn command(input: &str) -> IResult<&str, &str> {
    let verb = verify(take_while1(|c: char| c.is_ascii_graphic()), |verb: &str| {
        !verb.starts_with(':')
    });
    let end = not(verify(rest, |r: &str| !r.is_empty() && !r.starts_with(' ')));
    recognize(terminated(verb, end)).parse(input)
}

/// The parameters after the command: middles until a `:` starts the trailing.
fn params(mut input: &str) -> Result<Vec<&str>, ParseError> {
    let mut params = Vec::new();
    loop {
        let (after_spaces, _) = spaces(input).map_err(|_| ParseError::Malformed)?;
        if after_spaces.is_empty() {
            return Ok(params);
        }
        let trailing: IResult<&str, &str> = preceded(tag(":"), rest).parse(after_spaces);
        if let Ok((_, trailing)) = trailing {
            params.push(trailing);
            return Ok(params);
        }
        let (remaining, middle) = non_space(after_spaces).map_err(|_| ParseError::Malformed)?;
        params.push(middle);
        input = remaining;
    }
}

/// Splits `k=v;k2` into pairs. Empty items (`a;;b`, a trailing `;`) are
/// skipped; an item without a key is malformed.
///
/// A tag whose key breaks the message-tags grammar, or whose value holds a
/// control character (NUL, CR and LF are outside the grammar; the others
/// would reach other clients' terminals raw), is dropped: the rest of the
/// line still counts, but such a tag is never seen by the core or relayed.
fn split_tags(section: &str) -> Result<Vec<(&str, Option<&str>)>, ParseError> {
    let mut tags = Vec::new();
    for item in section.split(';').filter(|item| !item.is_empty()) {
        let (key, value) = match item.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (item, None),
        };
        if key.is_empty() {
            return Err(ParseError::Malformed);
        }
        if is_valid_tag_key(key) && !value.is_some_and(|value| value.contains(char::is_control)) {
            tags.push((key, value));
        }
    }
    Ok(tags)
}

/// Above this many tags, duplicate detection uses a map instead of a scan.
const LINEAR_DEDUP_LIMIT: usize = 16;

impl MessageRef<'_> {
    /// Copies the message out of the input buffer, unescaping tag values and
    /// uppercasing the command.
    ///
    /// A key given twice keeps only its last value, as message-tags asks.
    pub fn to_owned(&self) -> Message {
        let mut tags: Vec<Tag> = Vec::with_capacity(self.tags.len());
        let mut index: HashMap<&str, usize> = HashMap::new();
        let use_index = self.tags.len() > LINEAR_DEDUP_LIMIT;
        for &(key, raw) in &self.tags {
            let value = raw.map(unescape_tag_value);
            let existing = if use_index {
                index.get(key).copied()
            } else {
                tags.iter().position(|tag| tag.key == key)
            };
            match existing {
                Some(i) => tags[i].value = value,
                None => {
                    if use_index {
                        index.insert(key, tags.len());
                    }
                    tags.push(Tag {
                        key: key.to_owned(),
                        value,
                    });
                }
            }
        }
        Message {
            tags,
            source: self.source.map(str::to_owned),
            command: self.command.to_ascii_uppercase(),
            params: self.params.iter().map(|p| (*p).to_owned()).collect(),
            invalid_utf8: false,
        }
    }
}

impl Message {
    /// Parameter `i`, or `""` when absent.
    pub fn param(&self, i: usize) -> &str {
        self.params.get(i).map(String::as_str).unwrap_or("")
    }
}

/// Unescapes a tag value as the message-tags spec says.
///
/// A backslash before any other character is dropped, and so is a trailing
/// lone backslash, so every input has exactly one meaning.
pub fn unescape_tag_value(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(':') => out.push(';'),
            Some('s') => out.push(' '),
            Some('\\') => out.push('\\'),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Escapes a tag value for the wire.
///
/// Appends to `out` so a serializer can build a whole tag section in one
/// buffer. CR and LF have escapes; any other control character (NUL, ESC,
/// DEL, C1) has none and becomes U+FFFD, so no raw control byte is sent.
pub fn escape_tag_value(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            ';' => out.push_str("\\:"),
            ' ' => out.push_str("\\s"),
            '\\' => out.push_str("\\\\"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            other if other.is_control() => out.push(char::REPLACEMENT_CHARACTER),
            other => out.push(other),
        }
    }
}

/// Splits `nick!user@host` into its parts (each part absent when missing).
///
/// The host starts at the first `@` and the user at the first `!` before it,
/// since neither may appear in a nick.
pub fn split_userhost(source: &str) -> (&str, Option<&str>, Option<&str>) {
    let (nick_user, host) = match source.split_once('@') {
        Some((nick_user, host)) => (nick_user, Some(host)),
        None => (source, None),
    };
    match nick_user.split_once('!') {
        Some((nick, user)) => (nick, Some(user), host),
        None => (nick_user, None, host),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tags_source_command_and_trailing() {
        let msg = parse("@a=b\\sc;d :nick!u@h PRIVMSG #room :hi there").expect("valid line");
        assert_eq!(msg.tags, vec![("a", Some("b\\sc")), ("d", None)]);
        assert_eq!(msg.source, Some("nick!u@h"));
        assert_eq!(msg.command, "PRIVMSG");
        assert_eq!(msg.params, vec!["#room", "hi there"]);
    }

    #[test]
    fn to_owned_unescapes_uppercases_and_keeps_last_duplicate() {
        let msg = parse("@a=1;b=x\\:y;a=2 privmsg x")
            .expect("valid line")
            .to_owned();
        assert_eq!(msg.command, "PRIVMSG");
        assert_eq!(
            msg.tags,
            vec![
                Tag {
                    key: "a".into(),
                    value: Some("2".into())
                },
                Tag {
                    key: "b".into(),
                    value: Some("x;y".into())
                },
            ]
        );
    }

    #[test]
    fn many_duplicate_tags_are_collapsed() {
        let line = format!("{}FOO", "@".to_owned() + &"k=v;".repeat(100) + "k=last ");
        let msg = parse(&line).expect("valid line").to_owned();
        assert_eq!(
            msg.tags,
            vec![Tag {
                key: "k".into(),
                value: Some("last".into())
            }]
        );
    }

    #[test]
    fn any_printable_verb_is_a_command_for_the_core_to_answer() {
        assert_eq!(parse(":s 001 me :hi").map(|m| m.command), Ok("001"));
        assert_eq!(parse("0001 x").map(|m| m.command), Ok("0001"));
        assert_eq!(parse("PRIV-MSG x").map(|m| m.command), Ok("PRIV-MSG"));
        assert_eq!(
            parse("@label=a NONEXISTENT_COMMAND").map(|m| m.command),
            Ok("NONEXISTENT_COMMAND")
        );
        assert_eq!(parse("PRIVMSG\tx y"), Err(ParseError::Malformed));
        assert_eq!(parse(":src :FOO"), Err(ParseError::Malformed));
    }

    #[test]
    fn broken_lines_are_errors() {
        assert_eq!(parse(""), Err(ParseError::Empty));
        assert_eq!(parse("   "), Err(ParseError::Empty));
        assert_eq!(parse("@"), Err(ParseError::Malformed));
        assert_eq!(parse("@ FOO"), Err(ParseError::Malformed));
        assert_eq!(parse("@a=b"), Err(ParseError::Malformed));
        assert_eq!(parse("@=v FOO"), Err(ParseError::Malformed));
        assert_eq!(parse(":"), Err(ParseError::Malformed));
        assert_eq!(parse(": FOO"), Err(ParseError::Malformed));
        assert_eq!(parse(":src"), Err(ParseError::NoCommand));
        assert_eq!(parse(":src   "), Err(ParseError::NoCommand));
        assert_eq!(parse("@a :src "), Err(ParseError::NoCommand));
        assert_eq!(parse(":x :y"), Err(ParseError::Malformed));
        assert_eq!(parse("ß x"), Err(ParseError::Malformed));
    }

    #[test]
    fn empty_tag_items_are_skipped() {
        let msg = parse("@;a;;b=; FOO").expect("valid line");
        assert_eq!(msg.tags, vec![("a", None), ("b", Some(""))]);
    }

    #[test]
    fn tags_outside_the_grammar_are_dropped_and_the_line_kept() {
        let msg =
            parse("@+x\r@account=admin;+y;+=2;+k\x01\x1b[31m=v;+\u{fffd}=1;ok=1 PRIVMSG #t :hi")
                .expect("valid line");
        assert_eq!(msg.tags, vec![("+y", None), ("ok", Some("1"))]);
        assert_eq!(msg.params, vec!["#t", "hi"]);
    }

    #[test]
    fn tag_values_with_control_characters_are_dropped() {
        let msg =
            parse("@+nul=a\0b;+cr=a\rb;+esc=\x1b[2J;+fine=a\\rb TAGMSG #t").expect("valid line");
        assert_eq!(msg.tags, vec![("+fine", Some("a\\rb"))]);
    }

    #[test]
    fn escaping_never_writes_a_control_character() {
        let mut out = String::new();
        escape_tag_value("a\0b\rc\nd\x1be\x7ff\u{85}g", &mut out);
        assert_eq!(out, "a\u{fffd}b\\rc\\nd\u{fffd}e\u{fffd}f\u{fffd}g");
    }

    #[test]
    fn lone_colon_is_an_empty_trailing() {
        assert_eq!(parse("FOO :").map(|m| m.params), Ok(vec![""]));
        assert_eq!(parse("FOO x  :").map(|m| m.params), Ok(vec!["x", ""]));
    }

    #[test]
    fn never_panics_on_odd_input() {
        let pieces = [
            "@", ":", " ", ";", "=", "\\", "é", "日本", "\0", "\t", "A", "1", "!", "@h",
        ];
        // Every string of up to four pieces.
        let mut inputs = vec![String::new()];
        let mut layer = inputs.clone();
        for _ in 0..4 {
            layer = layer
                .iter()
                .flat_map(|prefix| pieces.iter().map(move |piece| format!("{prefix}{piece}")))
                .collect();
            inputs.extend(layer.iter().cloned());
        }
        for input in &inputs {
            if let Ok(msg) = parse(input) {
                let _ = msg.to_owned();
            }
        }
    }

    #[test]
    fn unescape_follows_message_tags() {
        assert_eq!(unescape_tag_value("a\\:b\\sc\\\\d\\r\\n"), "a;b c\\d\r\n");
        assert_eq!(unescape_tag_value("x\\1"), "x1");
        assert_eq!(unescape_tag_value("x\\"), "x");
        assert_eq!(unescape_tag_value("\\\\n"), "\\n");
    }

    #[test]
    fn escape_reverses_unescape() {
        let value = "a;b c\\d\r\né";
        let mut escaped = String::new();
        escape_tag_value(value, &mut escaped);
        assert_eq!(escaped, "a\\:b\\sc\\\\d\\r\\né");
        assert_eq!(unescape_tag_value(&escaped), value);
    }

    #[test]
    fn userhost_parts() {
        assert_eq!(split_userhost("n!u@h"), ("n", Some("u"), Some("h")));
        assert_eq!(split_userhost("n@h"), ("n", None, Some("h")));
        assert_eq!(split_userhost("n!u"), ("n", Some("u"), None));
        assert_eq!(split_userhost("n"), ("n", None, None));
    }
}
