//! Which names are acceptable: nicks, channel names, user names, host names.

/// The longest host name DNS allows, without a final dot.
const MAX_HOSTNAME: usize = 253;
/// The longest label (part between dots) DNS allows.
const MAX_LABEL: usize = 63;

/// A nick as Modern IRC allows it: no space, comma, `*`, `?`, `!`, `@`, no
/// leading `#`, `&`, `:`, `$` or digit or `-`, at most `max_len` bytes.
///
/// `.` and control characters are refused too: a dot makes a nick look like a
/// server name, and control bytes garble other clients' screens.
pub fn is_valid_nick(nick: &str, max_len: usize) -> bool {
    let Some(first) = nick.chars().next() else {
        return false;
    };
    nick.len() <= max_len
        && !matches!(first, '$' | ':' | '#' | '&' | '-' | '0'..='9')
        && !nick
            .chars()
            .any(|c| matches!(c, ' ' | ',' | '*' | '?' | '!' | '@' | '.') || c.is_control())
}

/// A channel name: starts with `#` or `&`, no space, comma, BEL or NUL,
/// at most `max_len` bytes.
///
/// CR and LF are refused as well, though the framer already splits on LF.
pub fn is_valid_channel(name: &str, max_len: usize) -> bool {
    (2..=max_len).contains(&name.len())
        && matches!(name.as_bytes().first(), Some(b'#' | b'&'))
        && !name
            .bytes()
            .any(|b| matches!(b, b' ' | b',' | 0x07 | b'\0' | b'\r' | b'\n'))
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
        for nick in ["alice", "Bob", "[away]", "x_y", "a-1", "{^|}", "né"] {
            assert!(is_valid_nick(nick, 30), "{nick}");
        }
    }

    #[test]
    fn nicks_with_forbidden_characters_are_invalid() {
        for nick in [
            "", "a b", "a,b", "a*", "a?", "a!b", "a@b", "a.b", "a\0", "a\x01", "a\x7f",
        ] {
            assert!(!is_valid_nick(nick, 30), "{nick:?}");
        }
    }

    #[test]
    fn nicks_with_forbidden_first_characters_are_invalid() {
        for nick in ["$a", ":a", "#a", "&a", "1a", "-a"] {
            assert!(!is_valid_nick(nick, 30), "{nick}");
        }
    }

    #[test]
    fn nick_length_is_counted_in_bytes() {
        assert!(is_valid_nick("abc", 3));
        assert!(!is_valid_nick("abcd", 3));
        assert!(!is_valid_nick("éé", 3));
    }

    #[test]
    fn channel_rules() {
        assert!(is_valid_channel("#rust", 50));
        assert!(is_valid_channel("&local", 50));
        assert!(is_valid_channel("#é", 50));
        for name in [
            "", "#", "rust", "#a b", "#a,b", "#a\x07", "#a\0", "#a\r", "#a\n",
        ] {
            assert!(!is_valid_channel(name, 50), "{name:?}");
        }
        assert!(is_valid_channel("#abc", 4));
        assert!(!is_valid_channel("#abcd", 4));
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
