//! Which names are acceptable: nicks, channel names, user names, host names.

/// The longest host name DNS allows, without a final dot.
const MAX_HOSTNAME: usize = 253;
/// The longest label (part between dots) DNS allows.
const MAX_LABEL: usize = 63;

/// A nick: ASCII letters, digits and ``-[]\`^_{|}`` (the RFC 2812 grammar),
/// and `~` (which the rfc1459 casemapping pairs with `^`) after the first
/// character; not starting with a digit, `-` or `~`; at most `max_len` bytes.
///
/// Nicks are ASCII only, as in most servers (Ergo's default, Solanum,
/// InspIRCd): Unicode brings invisible characters (zero-width, BOM),
/// bidi overrides, no-break spaces and look-alike letters, which let one
/// user pass for another. The grammar also keeps out everything Modern IRC
/// forbids: space, `,*?!@`, `.`, a leading channel type (`#&`), membership
/// prefix (`@+`, and `~&%` used elsewhere), `$` or `:`.
pub fn is_valid_nick(nick: &str, max_len: usize) -> bool {
    let Some(&first) = nick.as_bytes().first() else {
        return false;
    };
    nick.len() <= max_len
        && !(first.is_ascii_digit() || matches!(first, b'-' | b'~'))
        && nick.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'[' | b']' | b'\\' | b'`' | b'^' | b'_' | b'{' | b'|' | b'}' | b'~'
                )
        })
}

/// The characters a channel name starts with (CHANTYPES).
pub const CHANTYPES: &str = "#&";

/// Whether a target names a channel rather than a nick: it starts with one
/// of [`CHANTYPES`]. Whether the name is acceptable is [`is_valid_channel`].
pub(crate) fn is_channel_name(target: &str) -> bool {
    target.starts_with(|c| CHANTYPES.contains(c))
}

/// A channel name: starts with `#` or `&`, at most `max_len` bytes, with no
/// space, comma or colon (RFC 2812 §1.3) and no character that is invisible
/// or moves the cursor: C0 and C1 controls (BEL, NUL, CR, LF, ESC among
/// them), DEL, and the invisible characters of `is_invisible`.
pub fn is_valid_channel(name: &str, max_len: usize) -> bool {
    (2..=max_len).contains(&name.len())
        && is_channel_name(name)
        && !name
            .chars()
            .any(|c| matches!(c, ' ' | ',' | ':') || c.is_control() || is_invisible(c))
}

/// Format characters (Unicode Cf: zero-width, joiners, bidi controls, BOM,
/// soft hyphen) and spaces other than U+0020 (Zs, and the line and paragraph
/// separators): characters a reader cannot see or that reorder the text.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00A0}'
            | '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{1680}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{2000}'..='\u{200F}'
            | '\u{2028}'..='\u{202F}'
            | '\u{205F}'..='\u{206F}'
            | '\u{3000}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// A tag key as message-tags writes it: an optional `+` (client-only), an
/// optional vendor (a host name) and `/`, then letters, digits and hyphens.
///
/// The vendor is checked for host-name characters only, not as a DNS name:
/// `draft/` is a vendor in use with no dot.
pub fn is_valid_tag_key(key: &str) -> bool {
    let key = key.strip_prefix('+').unwrap_or(key);
    let (vendor, name) = match key.rsplit_once('/') {
        Some((vendor, name)) => (Some(vendor), name),
        None => (None, key),
    };
    let is_name_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'-';
    !name.is_empty()
        && name.bytes().all(is_name_byte)
        && vendor.is_none_or(|vendor| {
            !vendor.is_empty() && vendor.bytes().all(|b| is_name_byte(b) || b == b'.')
        })
}

/// Whether a server name may hold `c`: the name is the source of every
/// server message, so no spaces or control characters, and none of
/// `!@*?`, which would make it read as a user's source or a mask.
pub fn may_name_a_server(c: char) -> bool {
    !(c.is_whitespace() || c.is_control() || "!@*?".contains(c))
}

/// A server name as another node may give it: what `[server] name`
/// accepts, in at most 255 bytes.
pub fn is_server_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 255 && name.chars().all(may_name_a_server)
}

/// A host name as the ircdocs validate-hostname vectors expect.
///
/// DNS labels of letters, digits and inner hyphens, with at least one dot so
/// a bare word such as `irc` is refused; a final dot is allowed.
pub fn is_valid_hostname(host: &str) -> bool {
    let name = host.strip_suffix('.').unwrap_or(host);
    host.contains('.')
        && !name.is_empty()
        && name.len() <= MAX_HOSTNAME
        && name.split('.').all(is_valid_label)
}

/// One DNS label: 1 to 63 letters, digits and hyphens, no hyphen at either end.
fn is_valid_label(label: &str) -> bool {
    (1..=MAX_LABEL).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_nicks_are_valid() {
        for nick in [
            "alice", "Bob", "[away]", "x_y", "a-1", "{^|}", "tr\\oll", "`q", "x~y",
        ] {
            assert!(is_valid_nick(nick, 30), "{nick}");
        }
    }

    #[test]
    fn nicks_with_forbidden_characters_are_invalid() {
        for nick in [
            "", "a b", "a,b", "a*", "a?", "a!b", "a@b", "a.b", "a\0", "a\x01", "a\x7f", "a:b",
            "a$", "a/b", "a=b",
        ] {
            assert!(!is_valid_nick(nick, 30), "{nick:?}");
        }
    }

    #[test]
    fn nicks_with_forbidden_first_characters_are_invalid() {
        for nick in [
            "$a", ":a", "#a", "&a", "1a", "-a", "+voice", "@op", "%half", "~owner",
        ] {
            assert!(!is_valid_nick(nick, 30), "{nick}");
        }
    }

    #[test]
    fn nicks_are_ascii_so_invisible_and_look_alike_characters_are_refused() {
        for nick in [
            "\u{200b}",
            "ali\u{200b}ce",
            "\u{202e}ecila",
            "\u{0430}lice",
            "alice\u{00a0}",
            "\u{feff}",
            "né",
        ] {
            assert!(!is_valid_nick(nick, 30), "{nick:?}");
        }
    }

    #[test]
    fn nick_length_is_counted_in_bytes() {
        assert!(is_valid_nick("abc", 3));
        assert!(!is_valid_nick("abcd", 3));
    }

    #[test]
    fn channel_names_start_with_a_channel_type() {
        for name in ["#room", "&local", "#"] {
            assert!(is_channel_name(name), "{name}");
        }
        for target in ["alice", "", "@#room", "+#room", "!room", "room#"] {
            assert!(!is_channel_name(target), "{target}");
        }
    }

    #[test]
    fn channel_rules() {
        assert!(is_valid_channel("#rust", 50));
        assert!(is_valid_channel("&local", 50));
        assert!(is_valid_channel("#é", 50));
        assert!(is_valid_channel("#a-b_c.d[e]", 50));
        for name in [
            "", "#", "rust", "#a b", "#a,b", "#a\x07", "#a\0", "#a\r", "#a\n", "#a:b",
        ] {
            assert!(!is_valid_channel(name, 50), "{name:?}");
        }
        assert!(is_valid_channel("#abc", 4));
        assert!(!is_valid_channel("#abcd", 4));
    }

    #[test]
    fn channel_names_refuse_controls_and_invisible_characters() {
        for name in [
            "#ctl\x01\x1b[2J",
            "#del\x7f",
            "#c1\u{85}",
            "#\u{200b}",
            "#a\u{202e}b",
            "#\u{feff}x",
            "#nb\u{a0}sp",
            "#\u{2028}",
        ] {
            assert!(!is_valid_channel(name, 50), "{name:?}");
        }
    }

    #[test]
    fn tag_keys_follow_the_message_tags_grammar() {
        for key in [
            "a",
            "msgid",
            "+typing",
            "+draft/reply",
            "example.com/x-y",
            "+a.b-c/D9",
        ] {
            assert!(is_valid_tag_key(key), "{key}");
        }
        for key in [
            "",
            "+",
            "/",
            "+/a",
            "a/",
            "++a",
            "a_b",
            "a\rb",
            "+x\r@account",
            "k\x01",
            "\u{ff}",
            "a b",
            "v/w/x",
            "é",
        ] {
            assert!(!is_valid_tag_key(key), "{key:?}");
        }
    }

    #[test]
    fn hostname_rules() {
        assert!(is_valid_hostname("127.0.0.1"));
        assert!(!is_valid_hostname("."));
        assert!(!is_valid_hostname("a..b"));
        assert!(!is_valid_hostname(&format!("{}.com", "a".repeat(64))));
        assert!(is_valid_hostname(&format!("{}.com", "a".repeat(63))));
    }
}
