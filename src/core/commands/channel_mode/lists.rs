//! The b/e/I lists: where each is kept and how it is answered, adding and
//! removing masks (completed to `nick!user@host` first), and listing a list's entries.

use bytes::Bytes;

use super::{Applied, Setter};
use crate::core::Refusal;
use crate::core::clock::unix_time;
use crate::core::{Channel, ClientId, ListEntry, State, extban};
use crate::proto::mask::Mask;
use crate::proto::modes::ListKind;
use crate::proto::numeric::{self, Numeric};
use crate::proto::{Casemapping, Folded};

/// The longest b/e/I mask kept: a full `nick!user@host` fits comfortably.
const MAX_MASK_LENGTH: usize = 150;

impl ListKind {
    /// The room's list of this kind.
    pub(crate) fn entries(self, channel: &Channel) -> &Vec<ListEntry> {
        match self {
            ListKind::Bans => &channel.bans,
            ListKind::Exceptions => &channel.ban_exceptions,
            ListKind::InviteExceptions => &channel.invite_exceptions,
        }
    }

    pub(crate) fn entries_mut(self, channel: &mut Channel) -> &mut Vec<ListEntry> {
        match self {
            ListKind::Bans => &mut channel.bans,
            ListKind::Exceptions => &mut channel.ban_exceptions,
            ListKind::InviteExceptions => &mut channel.invite_exceptions,
        }
    }

    /// The entry numeric, the end numeric and the end text.
    fn replies(self) -> (Numeric, Numeric, &'static str) {
        match self {
            ListKind::Bans => (
                numeric::RPL_BANLIST,
                numeric::RPL_ENDOFBANLIST,
                "End of channel ban list",
            ),
            ListKind::Exceptions => (
                numeric::RPL_EXCEPTLIST,
                numeric::RPL_ENDOFEXCEPTLIST,
                "End of channel exception list",
            ),
            ListKind::InviteExceptions => (
                numeric::RPL_INVEXLIST,
                numeric::RPL_ENDOFINVEXLIST,
                "End of Channel Invite Exception List",
            ),
        }
    }

    /// Exceptions say who is let through; like Hybrid and Solanum, only
    /// channel operators may read them. Whoever may see the room reads its
    /// bans (a secret or private room is not there for outsiders at all).
    pub(super) fn ops_only(self) -> bool {
        self != ListKind::Bans
    }
}

/// Adds `mask` to (or removes it from) `kind`'s list, the one mode
/// `letter` names. `Ok(None)` when the list already had it (or lacked it),
/// or the mask cannot be kept.
///
/// Bans and exceptions may be extbans (`~m:mask`, `~a:account`, see
/// `core::extban`), invite exceptions account extbans; an unknown type is
/// refused with 696 rather than kept as a mask that could never match.
pub(super) fn edit(
    channel: &mut Channel,
    (letter, kind): (char, ListKind),
    adding: bool,
    raw: &str,
    casemapping: Casemapping,
    max_entries: usize,
    setter: Setter,
) -> Result<Option<Applied>, Refusal> {
    let Some((extban, mask)) = entry_of(&channel.name, (letter, kind), raw)? else {
        return Ok(None);
    };
    let text = extban::text(extban, &mask);
    let channel_name = channel.name.clone();
    let entries = kind.entries_mut(channel);
    let existing = entries
        .iter()
        .position(|entry| casemapping.eq(&entry.text(), &text));
    match (adding, existing) {
        (true, Some(_)) | (false, None) => Ok(None),
        (true, None) if entries.len() >= max_entries => Err(Refusal::new(
            numeric::ERR_BANLISTFULL,
            &[&channel_name, &letter.to_string()],
        )),
        (true, None) => {
            entries.push(ListEntry {
                mask: Mask::new(&mask, casemapping),
                extban,
                set_by: setter.source,
                set_at: setter.at,
            });
            Ok(Some(Applied {
                adding,
                letter,
                arg: Some(text),
            }))
        }
        (false, Some(index)) => {
            let removed = entries.remove(index);
            Ok(Some(Applied {
                adding,
                letter,
                arg: Some(removed.text()),
            }))
        }
    }
}

/// The extban type and the mask an entry of `kind` is kept as; `Ok(None)`
/// for a mask that cannot be kept. An account mask is kept as written.
pub(super) fn entry_of(
    channel_name: &str,
    (letter, kind): (char, ListKind),
    raw: &str,
) -> Result<Option<(Option<&'static extban::Extban>, String)>, Refusal> {
    let (extban, plain) = match extban::parse(raw) {
        extban::Parsed::Plain(plain) => (None, plain),
        // An invite exception lets in; it restricts nothing.
        extban::Parsed::Extended(extban, plain)
            if kind != ListKind::InviteExceptions || extban.restriction().is_none() =>
        {
            (Some(extban), plain)
        }
        _ => {
            let letter = letter.to_string();
            return Err(
                Refusal::new(numeric::ERR_INVALIDMODEPARAM, &[channel_name, &letter, raw])
                    .with_text("Unknown extban type"),
            );
        }
    };
    let mask = match extban.map(|extban| extban.kind) {
        Some(extban::Kind::Account) => keepable(plain).then(|| plain.to_owned()),
        _ => normalize_mask(plain),
    };
    Ok(mask.map(|mask| (extban, mask)))
}

/// Whether a mask may be kept at all: not empty, not too long, no
/// character that would split it from its neighbours on the wire.
fn keepable(raw: &str) -> bool {
    !(raw.is_empty()
        || raw.len() > MAX_MASK_LENGTH
        || raw.starts_with(':')
        || raw
            .bytes()
            .any(|b| b == b' ' || b == b',' || b.is_ascii_control()))
}

/// Completes a mask to `nick!user@host`, filling what is missing with `*`:
/// `nick` → `nick!*@*`, `nick!user` → `nick!user@*`, `user@host` →
/// `*!user@host`, and a bare word with a dot (a host; nicks have no dots)
/// → `*!*@host`. `None` for a mask that cannot be kept.
fn normalize_mask(raw: &str) -> Option<String> {
    if !keepable(raw) {
        return None;
    }
    let or_any = |part: &str| {
        if part.is_empty() {
            "*".to_owned()
        } else {
            part.to_owned()
        }
    };
    let (nick_user, host) = match raw.split_once('@') {
        Some((nick_user, host)) => (nick_user, Some(host)),
        None => (raw, None),
    };
    let (nick, user) = match nick_user.split_once('!') {
        Some((nick, user)) => (nick, Some(user)),
        None => (nick_user, None),
    };
    let mask = match (user, host) {
        (None, None) if nick.contains(['.', ':']) => format!("*!*@{nick}"),
        (None, None) => format!("{nick}!*@*"),
        (None, Some(host)) => format!("*!{}@{}", or_any(nick), or_any(host)),
        (Some(user), host) => format!(
            "{}!{}@{}",
            or_any(nick),
            or_any(user),
            or_any(host.unwrap_or(""))
        ),
    };
    Some(mask)
}

/// 367/348/346 per entry with who set it and when, then the end numeric.
pub(super) fn show_list(state: &mut State, id: ClientId, folded: &Folded, kind: ListKind) {
    let Some(channel) = state.channels.get(folded) else {
        return;
    };
    let (entry_numeric, end_numeric, end_text) = kind.replies();
    let name = channel.name.clone();
    let lines: Vec<Bytes> = kind
        .entries(channel)
        .iter()
        .map(|entry| {
            state
                .numeric_line(id, entry_numeric)
                .arg(&name)
                .arg(&entry.text())
                .arg(&entry.set_by)
                .arg(&unix_time(entry.set_at).to_string())
                .finish()
        })
        .collect();
    for line in lines {
        state.send(id, line);
    }
    state.reply(id, end_numeric, &[&name], end_text);
}

#[cfg(test)]
mod tests {
    use super::super::tests::{ALICE, room};
    use super::*;
    use crate::core::testing::{Harness, START};

    #[test]
    fn a_ban_is_added_listed_and_removed() {
        let mut h = room();
        h.send("alice", "MODE #room +b troll");
        assert_eq!(h.take("bob"), [format!("{ALICE} MODE #room +b troll!*@*")]);
        h.take("alice");
        h.send("bob", "MODE #room +b");
        let when = START.to_string();
        assert_eq!(
            h.take("bob"),
            [
                format!(":irc.test 367 bob #room troll!*@* alice!~alice@127.0.0.1 {when}"),
                ":irc.test 368 bob #room :End of channel ban list".to_owned(),
            ]
        );
        h.send("alice", "MODE #room -b TROLL!*@*");
        assert_eq!(
            h.take("alice"),
            [format!("{ALICE} MODE #room -b troll!*@*")]
        );
        h.send("alice", "MODE #room b");
        assert_eq!(
            h.take("alice"),
            [":irc.test 368 alice #room :End of channel ban list"]
        );
    }

    #[test]
    fn exception_lists_are_for_operators() {
        let mut h = room();
        h.send("bob", "MODE #room e");
        assert_eq!(
            h.take("bob"),
            [":irc.test 482 bob #room :You're not channel operator"]
        );
        h.send("alice", "MODE #room eI");
        assert_eq!(
            h.take("alice"),
            [
                ":irc.test 349 alice #room :End of channel exception list",
                ":irc.test 347 alice #room :End of Channel Invite Exception List",
            ]
        );
    }

    #[test]
    fn a_full_list_refuses_more() {
        let mut config = crate::config::Config::default();
        config.server.name = "irc.test".into();
        config.limits.max_list_entries = 1;
        let mut h = Harness::with_config(config);
        h.register("alice");
        h.room("#room", &[("alice", true)]);
        h.send("alice", "MODE #room +bb a b");
        assert_eq!(
            h.take("alice"),
            [
                ":irc.test 478 alice #room b :Channel list is full".to_owned(),
                format!("{ALICE} MODE #room +b a!*@*"),
            ]
        );
    }

    #[test]
    fn masks_are_completed() {
        for (raw, mask) in [
            ("nick", "nick!*@*"),
            ("nick!user", "nick!user@*"),
            ("user@host", "*!user@host"),
            ("host.example", "*!*@host.example"),
            ("n!u@h", "n!u@h"),
            ("!u@", "*!u@*"),
            ("*", "*!*@*"),
        ] {
            assert_eq!(normalize_mask(raw).as_deref(), Some(mask), "{raw}");
        }
        for bad in ["", ":x", "a b", "a,b"] {
            assert_eq!(normalize_mask(bad), None, "{bad:?}");
        }
    }
}
