//! MODE on a room: show its modes, list its b/e/I lists, and apply changes,
//! which every member then hears as one normalized MODE line.

use bytes::Bytes;

use super::unix_time;
use crate::core::{Channel, ClientId, ListEntry, State};
use crate::proto::mask::Mask;
use crate::proto::numeric::{self, Numeric};
use crate::proto::serialize::echo_param;
use crate::proto::serialize::{MAX_LINE, is_middle_safe};
use crate::proto::{Folded, Line, Message};

/// The longest b/e/I mask kept: a full `nick!user@host` fits comfortably.
const MAX_MASK_LENGTH: usize = 150;
/// The longest key: the common KEYLEN, and short enough to type.
const MAX_KEY_LENGTH: usize = 23;

/// The three list modes (type A in CHANMODES).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ListKind {
    Bans,
    Exceptions,
    InviteExceptions,
}

impl ListKind {
    fn from_letter(letter: char) -> Option<ListKind> {
        match letter {
            'b' => Some(ListKind::Bans),
            'e' => Some(ListKind::Exceptions),
            'I' => Some(ListKind::InviteExceptions),
            _ => None,
        }
    }

    fn letter(self) -> char {
        match self {
            ListKind::Bans => 'b',
            ListKind::Exceptions => 'e',
            ListKind::InviteExceptions => 'I',
        }
    }

    fn entries(self, channel: &Channel) -> &Vec<ListEntry> {
        match self {
            ListKind::Bans => &channel.bans,
            ListKind::Exceptions => &channel.ban_exceptions,
            ListKind::InviteExceptions => &channel.invite_exceptions,
        }
    }

    fn entries_mut(self, channel: &mut Channel) -> &mut Vec<ListEntry> {
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
    /// channel operators may read them. Anyone may read the ban list.
    fn ops_only(self) -> bool {
        self != ListKind::Bans
    }
}

/// One change asked for, its argument already taken from the message.
#[derive(Debug)]
enum Request<'a> {
    Flag {
        adding: bool,
        letter: char,
    },
    Key {
        adding: bool,
        key: &'a str,
    },
    Limit {
        value: Option<&'a str>,
    },
    Member {
        adding: bool,
        letter: char,
        nick: &'a str,
    },
    Edit {
        adding: bool,
        kind: ListKind,
        mask: &'a str,
    },
    Show(ListKind),
}

/// One change that took effect, as the broadcast shows it.
struct Applied {
    adding: bool,
    letter: char,
    arg: Option<String>,
}

pub fn mode(state: &mut State, id: ClientId, message: &Message) {
    let name = message.param(0);
    let folded = state.fold(name);
    let Some(channel) = state.channels.get(&folded) else {
        let shown = echo_param(name);
        state.reply(id, numeric::ERR_NOSUCHCHANNEL, &[shown], "No such channel");
        return;
    };
    let channel_name = channel.name.clone();
    let is_op = channel.members.get(&id).is_some_and(|m| m.op);
    let Some(modestring) = message.params.get(1) else {
        show_modes(state, id, &folded);
        return;
    };

    let (requests, unknown) = parse(
        modestring,
        &message.params[2..],
        state.config.limits.modes_per_command,
    );
    for letter in unknown {
        state.reply(
            id,
            numeric::ERR_UNKNOWNMODE,
            &[letter.encode_utf8(&mut [0; 4])],
            "is unknown mode char to me",
        );
    }
    let changes = requests
        .iter()
        .any(|request| !matches!(request, Request::Show(_)));
    if changes && !is_op {
        not_operator(state, id, &channel_name);
        return;
    }

    let mut applied = Vec::new();
    for request in requests {
        match request {
            Request::Show(kind) if kind.ops_only() && !is_op => {
                not_operator(state, id, &channel_name);
            }
            Request::Show(kind) => show_list(state, id, &folded, kind),
            change => applied.extend(apply(state, id, &folded, change)),
        }
    }
    broadcast(state, id, &folded, &applied);
}

/// Splits a mode string into requests, taking arguments in order. Modes
/// with an argument beyond `budget` (MODES in 005) are ignored, and so is a
/// mode missing its argument, as Modern IRC says. Unknown letters are
/// returned once each.
fn parse<'a>(modestring: &str, args: &'a [String], budget: usize) -> (Vec<Request<'a>>, Vec<char>) {
    let mut args = Arguments {
        rest: args.iter().map(String::as_str).peekable(),
        used: 0,
        budget,
    };
    let mut requests = Vec::new();
    let mut unknown: Vec<char> = Vec::new();
    let mut adding = true;
    for letter in modestring.chars() {
        match letter {
            '+' | '-' => adding = letter == '+',
            'i' | 'm' | 'n' | 'p' | 's' | 't' => requests.push(Request::Flag { adding, letter }),
            'b' | 'e' | 'I' => {
                let Some(kind) = ListKind::from_letter(letter) else {
                    continue;
                };
                if args.rest.peek().is_none() {
                    if !requests
                        .iter()
                        .any(|r| matches!(r, Request::Show(k) if *k == kind))
                    {
                        requests.push(Request::Show(kind));
                    }
                } else if let Some(mask) = args.take() {
                    requests.push(Request::Edit { adding, kind, mask });
                }
            }
            // Type B: `-k` takes an argument too, but works without one.
            'k' => match args.take() {
                Some(key) => requests.push(Request::Key { adding, key }),
                None if !adding && args.count() => requests.push(Request::Key { adding, key: "" }),
                None => {}
            },
            // Type C: an argument only when set.
            'l' if adding => {
                if let Some(value) = args.take() {
                    requests.push(Request::Limit { value: Some(value) });
                }
            }
            'l' => {
                if args.count() {
                    requests.push(Request::Limit { value: None });
                }
            }
            'o' | 'v' => {
                if let Some(nick) = args.take() {
                    requests.push(Request::Member {
                        adding,
                        letter,
                        nick,
                    });
                }
            }
            other => {
                if !unknown.contains(&other) && is_middle_safe(other.encode_utf8(&mut [0; 4])) {
                    unknown.push(other);
                }
            }
        }
    }
    (requests, unknown)
}

/// The mode arguments and how many variable modes were used so far.
struct Arguments<'a, I: Iterator<Item = &'a str>> {
    rest: std::iter::Peekable<I>,
    used: usize,
    budget: usize,
}

impl<'a, I: Iterator<Item = &'a str>> Arguments<'a, I> {
    /// The next argument, if the budget allows another variable mode.
    fn take(&mut self) -> Option<&'a str> {
        if self.used >= self.budget {
            return None;
        }
        let arg = self.rest.next()?;
        self.used += 1;
        Some(arg)
    }

    /// Counts a variable mode without an argument (`-l`); false when the
    /// budget is spent.
    fn count(&mut self) -> bool {
        if self.used >= self.budget {
            return false;
        }
        self.used += 1;
        true
    }
}

/// Applies one change; answers errors itself. `None` when nothing changed.
fn apply(state: &mut State, id: ClientId, folded: &Folded, request: Request) -> Option<Applied> {
    let casemapping = state.config.server.casemapping;
    let max_entries = state.config.limits.max_list_entries;
    let now = state.clock.now();
    let set_by = state
        .clients
        .get(&id)
        .map(|c| c.source.clone())
        .unwrap_or_default();
    let target = match &request {
        Request::Member { nick, .. } => match state.nicks.get(&state.fold(nick)) {
            Some(target) => Some(*target),
            None => {
                let shown = echo_param(nick);
                state.reply(
                    id,
                    numeric::ERR_NOSUCHNICK,
                    &[shown],
                    "No such nick/channel",
                );
                return None;
            }
        },
        _ => None,
    };
    let target_nick = target
        .and_then(|target| state.clients.get(&target))
        .map(|client| client.nick.clone())
        .unwrap_or_default();
    let channel = state.channels.get_mut(folded)?;
    let channel_name = channel.name.clone();
    let mut error: Option<(Numeric, Vec<String>, &str)> = None;
    let applied = match request {
        Request::Flag { adding, letter } => {
            let flag = match letter {
                'i' => &mut channel.modes.invite_only,
                'm' => &mut channel.modes.moderated,
                'n' => &mut channel.modes.no_external,
                'p' => &mut channel.modes.private,
                's' => &mut channel.modes.secret,
                _ => &mut channel.modes.topic_ops_only,
            };
            changed(flag, adding).then_some(Applied {
                adding,
                letter,
                arg: None,
            })
        }
        Request::Key { adding: true, key } => {
            if !is_valid_key(key) {
                let shown = echo_param(key);
                error = Some((
                    numeric::ERR_INVALIDMODEPARAM,
                    vec![channel_name.clone(), "k".into(), shown.into()],
                    "Invalid key",
                ));
                None
            } else if channel.modes.key.as_deref() == Some(key) {
                None
            } else {
                channel.modes.key = Some(key.to_owned());
                Some(Applied {
                    adding: true,
                    letter: 'k',
                    arg: Some(key.to_owned()),
                })
            }
        }
        Request::Key { adding: false, .. } => channel.modes.key.take().map(|_| Applied {
            adding: false,
            letter: 'k',
            arg: Some("*".to_owned()),
        }),
        Request::Limit { value: Some(value) } => match value.parse::<usize>() {
            Ok(limit) if limit > 0 => (channel.modes.limit != Some(limit)).then(|| {
                channel.modes.limit = Some(limit);
                Applied {
                    adding: true,
                    letter: 'l',
                    arg: Some(limit.to_string()),
                }
            }),
            _ => {
                let shown = echo_param(value);
                error = Some((
                    numeric::ERR_INVALIDMODEPARAM,
                    vec![channel_name.clone(), "l".into(), shown.into()],
                    "Invalid limit",
                ));
                None
            }
        },
        Request::Limit { value: None } => channel.modes.limit.take().map(|_| Applied {
            adding: false,
            letter: 'l',
            arg: None,
        }),
        Request::Member {
            adding,
            letter,
            nick,
        } => {
            let member = target.and_then(|target| channel.members.get_mut(&target));
            match member {
                None => {
                    let shown = echo_param(nick);
                    error = Some((
                        numeric::ERR_USERNOTINCHANNEL,
                        vec![shown.into(), channel_name.clone()],
                        "They aren't on that channel",
                    ));
                    None
                }
                Some(member) => {
                    let flag = if letter == 'o' {
                        &mut member.op
                    } else {
                        &mut member.voice
                    };
                    changed(flag, adding).then_some(Applied {
                        adding,
                        letter,
                        arg: Some(target_nick),
                    })
                }
            }
        }
        Request::Edit { adding, kind, mask } => {
            let mask = normalize_mask(mask)?;
            let entries = kind.entries_mut(channel);
            let existing = entries
                .iter()
                .position(|entry| casemapping.eq(entry.mask.as_str(), &mask));
            match (adding, existing) {
                (true, Some(_)) | (false, None) => None,
                (true, None) if entries.len() >= max_entries => {
                    let letter = kind.letter().to_string();
                    error = Some((
                        numeric::ERR_BANLISTFULL,
                        vec![channel_name.clone(), letter],
                        "Channel list is full",
                    ));
                    None
                }
                (true, None) => {
                    entries.push(ListEntry {
                        mask: Mask::new(&mask, casemapping),
                        set_by,
                        set_at: now,
                    });
                    Some(Applied {
                        adding,
                        letter: kind.letter(),
                        arg: Some(mask),
                    })
                }
                (false, Some(index)) => {
                    let removed = entries.remove(index);
                    Some(Applied {
                        adding,
                        letter: kind.letter(),
                        arg: Some(removed.mask.as_str().to_owned()),
                    })
                }
            }
        }
        Request::Show(_) => None,
    };
    if let Some((code, args, text)) = error {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        state.reply(id, code, &args, text);
    }
    applied
}

/// Sets `flag` to `value`; true when that changed it.
fn changed(flag: &mut bool, value: bool) -> bool {
    let was = *flag;
    *flag = value;
    was != value
}

/// A key must be one word that JOIN can carry: no spaces or commas, no
/// leading `:`, and not too long.
fn is_valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_KEY_LENGTH
        && !key.starts_with(':')
        && !key
            .bytes()
            .any(|b| b == b',' || b.is_ascii_whitespace() || b.is_ascii_control())
}

/// Completes a mask to `nick!user@host`, filling what is missing with `*`:
/// `nick` → `nick!*@*`, `nick!user` → `nick!user@*`, `user@host` →
/// `*!user@host`, and a bare word with a dot (a host; nicks have no dots)
/// → `*!*@host`. `None` for a mask that cannot be kept.
fn normalize_mask(raw: &str) -> Option<String> {
    if raw.is_empty()
        || raw.len() > MAX_MASK_LENGTH
        || raw.starts_with(':')
        || raw
            .bytes()
            .any(|b| b == b' ' || b == b',' || b.is_ascii_control())
    {
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

fn not_operator(state: &mut State, id: ClientId, channel: &str) {
    state.reply(
        id,
        numeric::ERR_CHANOPRIVSNEEDED,
        &[channel],
        "You're not channel operator",
    );
}

/// 324 and 329. Members see the key; others see `*` in its place, so the
/// arguments still line up with the letters.
fn show_modes(state: &mut State, id: ClientId, folded: &Folded) {
    let Some(channel) = state.channels.get(folded) else {
        return;
    };
    let is_member = channel.members.contains_key(&id);
    let modes = &channel.modes;
    let mut letters = String::from("+");
    let mut args = Vec::new();
    for (set, letter) in [
        (modes.invite_only, 'i'),
        (modes.moderated, 'm'),
        (modes.no_external, 'n'),
        (modes.private, 'p'),
        (modes.secret, 's'),
        (modes.topic_ops_only, 't'),
    ] {
        if set {
            letters.push(letter);
        }
    }
    if let Some(key) = &modes.key {
        letters.push('k');
        args.push(if is_member {
            key.clone()
        } else {
            "*".to_owned()
        });
    }
    if let Some(limit) = modes.limit {
        letters.push('l');
        args.push(limit.to_string());
    }
    let name = channel.name.clone();
    let created = unix_time(channel.created);
    let mut line = state
        .numeric_line(id, numeric::RPL_CHANNELMODEIS)
        .arg(&name)
        .arg(&letters);
    for arg in &args {
        line = line.arg(arg);
    }
    let line = line.finish();
    state.send(id, line);
    let line = state
        .numeric_line(id, numeric::RPL_CREATIONTIME)
        .arg(&name)
        .arg(&created.to_string())
        .finish();
    state.send(id, line);
}

/// 367/348/346 per entry with who set it and when, then the end numeric.
fn show_list(state: &mut State, id: ClientId, folded: &Folded, kind: ListKind) {
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
                .arg(entry.mask.as_str())
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

/// Sends the applied changes to every member, sender included: one MODE
/// line, or a few if the arguments would not fit in one.
fn broadcast(state: &mut State, id: ClientId, folded: &Folded, applied: &[Applied]) {
    if applied.is_empty() {
        return;
    }
    let Some(source) = state.clients.get(&id).map(|c| c.source.clone()) else {
        return;
    };
    let Some(channel) = state.channels.get(folded) else {
        return;
    };
    let members: Vec<ClientId> = channel.members.keys().copied().collect();
    // `:source MODE #room ` and CR LF, plus room for the mode letters.
    let fixed = source.len() + channel.name.len() + 10 + applied.len() * 2;
    let mut groups: Vec<&[Applied]> = Vec::new();
    let mut start = 0;
    let mut used = fixed;
    for (i, change) in applied.iter().enumerate() {
        let cost = change.arg.as_ref().map_or(0, |arg| arg.len() + 1);
        if used + cost > MAX_LINE && i > start {
            groups.push(&applied[start..i]);
            start = i;
            used = fixed;
        }
        used += cost;
    }
    groups.push(&applied[start..]);
    let name = channel.name.clone();
    for group in groups {
        let line = mode_line(&source, &name, group);
        let mut event = state.broadcast(line);
        state.send_all(members.iter().copied(), &mut event);
    }
}

/// `:source MODE #room +lk-i 5 key`: signs only where they change.
fn mode_line(source: &str, channel: &str, changes: &[Applied]) -> Bytes {
    let mut letters = String::new();
    let mut sign = None;
    for change in changes {
        if sign != Some(change.adding) {
            letters.push(if change.adding { '+' } else { '-' });
            sign = Some(change.adding);
        }
        letters.push(change.letter);
    }
    let mut line = Line::new(Some(source), "MODE").arg(channel).arg(&letters);
    for arg in changes.iter().filter_map(|change| change.arg.as_deref()) {
        line = line.arg(arg);
    }
    line.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::{Harness, START};

    const ALICE: &str = ":alice!~alice@127.0.0.1";

    /// alice (op) and bob share #room; eve is outside.
    fn room() -> Harness {
        let mut h = Harness::new();
        for nick in ["alice", "bob", "eve"] {
            h.register(nick);
        }
        h.room("#room", &[("alice", true), ("bob", false)]);
        h
    }

    #[test]
    fn mixed_changes_are_broadcast_once_normalized() {
        let mut h = room();
        h.send("alice", "MODE #room +i");
        h.take("alice");
        h.take("bob");
        h.send("alice", "MODE #room +lk-i 5 key");
        let expected = vec![format!("{ALICE} MODE #room +lk-i 5 key")];
        assert_eq!(h.take("alice"), expected);
        assert_eq!(h.take("bob"), expected);
        assert!(h.take("eve").is_empty());
        let modes = &h.channel("#room").modes;
        assert_eq!((modes.limit, modes.key.as_deref()), (Some(5), Some("key")));
        assert!(!modes.invite_only);
    }

    #[test]
    fn changes_that_change_nothing_are_not_sent() {
        let mut h = room();
        h.send("alice", "MODE #room +nt-mk");
        assert!(h.take("alice").is_empty());
        assert!(h.take("bob").is_empty());
    }

    #[test]
    fn op_and_voice_take_nicks_in_order() {
        let mut h = room();
        // Applied in order, as written: the voice is given, then taken.
        h.send("alice", "MODE #room +ov-v BOB bob bob");
        assert_eq!(
            h.take("bob"),
            [format!("{ALICE} MODE #room +ov-v bob bob bob")]
        );
        h.send("alice", "MODE #room -v+o bob bob");
        assert!(h.take("bob").is_empty());
        h.send("alice", "MODE #room +v-o bob bob");
        assert_eq!(h.take("bob"), [format!("{ALICE} MODE #room +v-o bob bob")]);
        let member = h.channel("#room").members[&h.id("bob")];
        assert!(member.voice && !member.op);
    }

    #[test]
    fn op_of_unknown_or_absent_nick_is_refused() {
        let mut h = room();
        h.send("alice", "MODE #room +o nobody");
        h.send("alice", "MODE #room +o eve");
        assert_eq!(
            h.take("alice"),
            [
                ":irc.test 401 alice nobody :No such nick/channel",
                ":irc.test 441 alice eve #room :They aren't on that channel",
            ]
        );
    }

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
    fn unknown_letters_get_472_once_each() {
        let mut h = room();
        h.send("alice", "MODE #room +xyxn");
        assert_eq!(
            h.take("alice"),
            [
                ":irc.test 472 alice x :is unknown mode char to me",
                ":irc.test 472 alice y :is unknown mode char to me",
            ]
        );
    }

    #[test]
    fn non_operators_cannot_change_modes() {
        let mut h = room();
        h.send("bob", "MODE #room +m");
        assert_eq!(
            h.take("bob"),
            [":irc.test 482 bob #room :You're not channel operator"]
        );
        h.send("eve", "MODE #room -t");
        assert_eq!(
            h.take("eve"),
            [":irc.test 482 eve #room :You're not channel operator"]
        );
        assert!(!h.channel("#room").modes.moderated);
        assert!(h.take("alice").is_empty());
    }

    #[test]
    fn modes_show_the_key_only_to_members() {
        let mut h = room();
        h.send("alice", "MODE #room +kl sesame 10");
        h.take("alice");
        h.take("bob");
        let created = START.to_string();
        h.send("bob", "MODE #room");
        assert_eq!(
            h.take("bob")[..2],
            [
                ":irc.test 324 bob #room +ntkl sesame 10".to_owned(),
                format!(":irc.test 329 bob #room {created}"),
            ]
        );
        h.send("eve", "MODE #ROOM");
        assert_eq!(h.take("eve")[0], ":irc.test 324 eve #room +ntkl * 10");
    }

    #[test]
    fn key_removal_works_with_or_without_an_argument() {
        let mut h = room();
        h.send("alice", "MODE #room +k one");
        h.send("alice", "MODE #room -k wrong");
        h.send("alice", "MODE #room +k two");
        h.send("alice", "MODE #room -k");
        assert_eq!(
            h.take("bob"),
            [
                format!("{ALICE} MODE #room +k one"),
                format!("{ALICE} MODE #room -k *"),
                format!("{ALICE} MODE #room +k two"),
                format!("{ALICE} MODE #room -k *"),
            ]
        );
    }

    #[test]
    fn missing_arguments_and_bad_values_are_ignored() {
        let mut h = room();
        h.send("alice", "MODE #room +kol");
        assert!(h.take("alice").is_empty());
        h.send("alice", "MODE #room +l -3");
        h.send("alice", "MODE #room +k :a b");
        assert_eq!(
            h.take("alice"),
            [
                ":irc.test 696 alice #room l -3 :Invalid limit",
                ":irc.test 696 alice #room k * :Invalid key",
            ]
        );
    }

    #[test]
    fn at_most_modes_per_command_arguments_are_used() {
        let mut h = room();
        h.send("alice", "MODE #room +bbbbbbbm a b c d e f g");
        let line = h.take("alice").remove(0);
        assert_eq!(
            line,
            format!("{ALICE} MODE #room +bbbbbbm a!*@* b!*@* c!*@* d!*@* e!*@* f!*@*")
        );
    }

    #[test]
    fn unknown_channel_is_403() {
        let mut h = room();
        h.send("alice", "MODE #nowhere +i");
        assert_eq!(
            h.take("alice"),
            [":irc.test 403 alice #nowhere :No such channel"]
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
