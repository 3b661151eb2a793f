//! MODE on a room: show its modes, list its b/e/I lists, and apply changes,
//! which every member then hears as one normalized MODE line.
//!
//! - `parse.rs`: the mode string and arguments → requests, within MODES.
//! - `apply.rs`: requests → changes to the room, broadcast as one line.
//! - `lists.rs`: the b/e/I lists and mask completion.
//! - here: the types the three share, the handler, which shows or
//!   changes, and the 324/329 view.

mod apply;
mod lists;
mod parse;

use std::time::SystemTime;

use apply::{apply, broadcast};
use lists::show_list;
use parse::parse;

use crate::core::Refusal;
use crate::core::clock::unix_time;
use crate::core::{ClientId, State};
use crate::network::rooms::ModeChange;
use crate::proto::modes::{self, ChannelFlag, ChannelModeKind, ListKind, MemberStatus};
use crate::proto::numeric;
use crate::proto::{Folded, Message};

/// One change asked for, its argument already taken from the message.
#[derive(Debug)]
enum Request<'a> {
    Flag {
        adding: bool,
        letter: char,
        flag: ChannelFlag,
    },
    Key {
        adding: bool,
        letter: char,
        key: &'a str,
    },
    Limit {
        letter: char,
        value: Option<&'a str>,
    },
    Member {
        adding: bool,
        letter: char,
        status: MemberStatus,
        nick: &'a str,
    },
    Edit {
        adding: bool,
        letter: char,
        kind: ListKind,
        mask: &'a str,
    },
    Show(ListKind),
}

/// Who set an entry and when, kept with it for 367/348/346.
struct Setter {
    source: String,
    at: SystemTime,
}

/// One change that took effect, as the broadcast shows it.
struct Applied {
    adding: bool,
    letter: char,
    arg: Option<String>,
}

/// MODE on a room: its modes without a mode string, else the changes and
/// list views the mode string asks for.
pub fn mode(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    let name = message.param(0);
    let folded = state.fold(name);
    let Some(channel) = state.visible_channel(id, &folded) else {
        return Err(Refusal::no_such_channel(name));
    };
    let channel_name = channel.name.clone();
    let is_op = channel.members.get(&id).is_some_and(|m| m.op);
    let Some(modestring) = message.params.get(1) else {
        show_modes(state, id, &folded);
        return Ok(());
    };

    let (requests, unknown) = parse(
        modestring,
        &message.params[2..],
        state.config.limits.modes_per_command,
    );
    for letter in unknown {
        let letter = letter.to_string();
        state.refuse(id, Refusal::new(numeric::ERR_UNKNOWNMODE, &[&letter]));
    }
    let changes = requests
        .iter()
        .any(|request| !matches!(request, Request::Show(_)));
    if changes && !is_op {
        return Err(Refusal::not_channel_operator(&channel_name));
    }

    let mut applied = Vec::new();
    for request in requests {
        match request {
            Request::Show(kind) if kind.ops_only() && !is_op => {
                state.refuse(id, Refusal::not_channel_operator(&channel_name));
            }
            Request::Show(kind) => show_list(state, id, &folded, kind),
            change => applied.extend(apply(state, id, &folded, change)),
        }
    }
    broadcast(state, id, &folded, &applied);
    // Statuses belong to the members present, not to the stored room: they
    // travel with the membership, the rest through the room's state.
    let (statuses, kept): (Vec<Applied>, Vec<Applied>) = applied.into_iter().partition(|change| {
        matches!(
            modes::channel_mode(change.letter),
            Some(ChannelModeKind::Prefix { .. })
        )
    });
    if !statuses.is_empty() && state.network.is_some() {
        let mut params = vec![channel_name.clone()];
        params.extend(apply::changes(&statuses));
        state.network_command(id, "MODE", params);
    }
    if !kept.is_empty() {
        state.save_room(&folded);
        state.network_room_modes(id, &folded, kept.into_iter().map(Applied::into_change));
    }
    Ok(())
}

impl Applied {
    /// The change as the room states' bucket keeps it.
    fn into_change(self) -> ModeChange {
        ModeChange {
            adding: self.adding,
            letter: self.letter,
            arg: self.arg,
        }
    }
}

/// A b/e/I entry read from another node's value of the room `name`:
/// the extban and the mask it is kept as, checked as one set by MODE is;
/// `None` for one MODE would not keep.
pub(crate) fn list_entry(
    name: &str,
    (letter, kind): (char, ListKind),
    raw: &str,
) -> Option<(Option<&'static crate::core::extban::Extban>, String)> {
    lists::entry_of(name, (letter, kind), raw).ok().flatten()
}

/// Whether a key read from another node's value is one MODE would set.
pub(crate) fn is_valid_key(key: &str) -> bool {
    apply::is_valid_key(key)
}

/// 324 and 329. Members see the key and the limit; others see only that
/// they are set, as IRCnet, Solanum and Hybrid show them: the key would let
/// them in, and the limit is the room's business.
fn show_modes(state: &mut State, id: ClientId, folded: &Folded) {
    let Some(channel) = state.channels.get(folded) else {
        return;
    };
    let is_member = channel.members.contains_key(&id);
    let set = &channel.modes;
    let mut letters = String::from("+");
    let mut args = Vec::new();
    for (letter, flag) in modes::channel_flags() {
        if set.flag(flag) {
            letters.push(letter);
        }
    }
    for mode in modes::CHANNEL_MODES {
        let value = match mode.kind {
            ChannelModeKind::Key => set.key.clone(),
            ChannelModeKind::Limit => set.limit.map(|limit| limit.to_string()),
            _ => continue,
        };
        if let Some(value) = value {
            letters.push(mode.letter);
            if is_member {
                args.push(value);
            }
        }
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

#[cfg(test)]
mod tests {
    use crate::core::testing::{Harness, START};
    use crate::proto::modes::{CHANNEL_MODES, ChannelModeKind};

    /// alice's source, as members see it.
    pub(super) const ALICE: &str = ":alice!~alice@127.0.0.1";

    /// alice (op) and bob share #room; eve is outside.
    pub(super) fn room() -> Harness {
        let mut h = Harness::new();
        for nick in ["alice", "bob", "eve"] {
            h.register(nick);
        }
        h.room("#room", &[("alice", true), ("bob", false)]);
        h
    }

    /// The mode field of 324 for `nick`.
    fn shown(h: &mut Harness, nick: &str) -> String {
        h.send(nick, "MODE #room");
        let lines = h.take(nick);
        lines[0].split(' ').nth(4).unwrap_or_default().to_owned()
    }

    /// alice sets `change`; every member hears exactly `heard`.
    fn set(h: &mut Harness, change: &str, heard: &str) {
        h.send("alice", &format!("MODE #room {change}"));
        let expected = [format!("{ALICE} MODE #room {heard}")];
        assert_eq!(h.take("alice"), expected, "{change}");
        assert_eq!(h.take("bob"), expected, "{change}");
    }

    /// Each row of the mode table is advertised, parsed, applied to the
    /// room and shown back: a letter known to one and not the others fails.
    #[test]
    fn every_channel_mode_round_trips() {
        let mut h = room();
        let (myinfo, isupport) = h.welcome("carol");
        let token = |name: &str| {
            isupport
                .iter()
                .find_map(|token| token.strip_prefix(name))
                .unwrap_or_default()
                .to_owned()
        };
        let chanmodes: Vec<String> = token("CHANMODES=").split(',').map(str::to_owned).collect();
        let prefix = token("PREFIX=");
        let bob = h.id("bob");
        for mode in CHANNEL_MODES {
            let letter = mode.letter;
            assert!(myinfo[3].contains(letter), "{letter} in 004 {myinfo:?}");
            let class = |index: usize| chanmodes[index].contains(letter);
            match mode.kind {
                ChannelModeKind::Flag(flag) => {
                    assert!(class(3), "{letter} in CHANMODES D");
                    h.send("alice", &format!("MODE #room -{letter}"));
                    h.take("alice");
                    h.take("bob");
                    set(&mut h, &format!("+{letter}"), &format!("+{letter}"));
                    assert!(h.channel("#room").modes.flag(flag), "{letter}");
                    assert!(shown(&mut h, "bob").contains(letter), "{letter} in 324");
                    set(&mut h, &format!("-{letter}"), &format!("-{letter}"));
                    assert!(!h.channel("#room").modes.flag(flag), "{letter}");
                    assert!(!shown(&mut h, "bob").contains(letter), "{letter} in 324");
                }
                ChannelModeKind::Key => {
                    assert!(class(1), "{letter} in CHANMODES B");
                    set(
                        &mut h,
                        &format!("+{letter} sesame"),
                        &format!("+{letter} sesame"),
                    );
                    assert_eq!(h.channel("#room").modes.key.as_deref(), Some("sesame"));
                    assert!(shown(&mut h, "bob").contains(letter), "{letter} in 324");
                    set(&mut h, &format!("-{letter}"), &format!("-{letter} *"));
                    assert_eq!(h.channel("#room").modes.key, None);
                }
                ChannelModeKind::Limit => {
                    assert!(class(2), "{letter} in CHANMODES C");
                    set(&mut h, &format!("+{letter} 5"), &format!("+{letter} 5"));
                    assert_eq!(h.channel("#room").modes.limit, Some(5));
                    assert!(shown(&mut h, "bob").contains(letter), "{letter} in 324");
                    set(&mut h, &format!("-{letter}"), &format!("-{letter}"));
                    assert_eq!(h.channel("#room").modes.limit, None);
                }
                ChannelModeKind::List(_) => {
                    assert!(class(0), "{letter} in CHANMODES A");
                    set(
                        &mut h,
                        &format!("+{letter} troll"),
                        &format!("+{letter} troll!*@*"),
                    );
                    h.send("alice", &format!("MODE #room {letter}"));
                    let listed = h.take("alice");
                    assert_eq!(listed.len(), 2, "{letter}: {listed:?}");
                    assert!(listed[0].contains(" troll!*@* "), "{letter}: {listed:?}");
                    set(
                        &mut h,
                        &format!("-{letter} troll"),
                        &format!("-{letter} troll!*@*"),
                    );
                }
                ChannelModeKind::Prefix { status, symbol } => {
                    assert!(
                        !chanmodes.concat().contains(letter),
                        "{letter} in CHANMODES"
                    );
                    assert!(
                        prefix.contains(letter) && prefix.contains(symbol),
                        "{prefix}"
                    );
                    set(&mut h, &format!("+{letter} bob"), &format!("+{letter} bob"));
                    let mut member = h.channel("#room").members[&bob];
                    assert!(*member.status_mut(status), "{letter}");
                    assert_eq!(member.prefixes(true), symbol.to_string());
                    set(&mut h, &format!("-{letter} bob"), &format!("-{letter} bob"));
                    let mut member = h.channel("#room").members[&bob];
                    assert!(!*member.status_mut(status), "{letter}");
                }
            }
        }
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
    fn modes_show_the_key_and_limit_only_to_members() {
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
        assert_eq!(h.take("eve")[0], ":irc.test 324 eve #room +ntkl");
    }

    #[test]
    fn a_hidden_room_answers_outsiders_as_a_missing_one() {
        for hiding in ["+s", "+p"] {
            let mut h = room();
            h.send("alice", &format!("MODE #room {hiding}b troll"));
            h.take("alice");
            for query in [
                "MODE #room",
                "MODE #room b",
                "MODE #room +b",
                "MODE #room e",
                "MODE #room +m",
            ] {
                h.send("eve", query);
                assert_eq!(
                    h.take("eve"),
                    [":irc.test 403 eve #room :No such channel"],
                    "{query} on a {hiding} room"
                );
                h.send("eve", &query.replace("#room", "#nowhere"));
                assert_eq!(
                    h.take("eve"),
                    [":irc.test 403 eve #nowhere :No such channel"]
                );
            }
            assert!(!h.channel("#room").modes.moderated);
            h.take("bob");
            h.send("bob", "MODE #room b");
            assert_eq!(h.take("bob").len(), 2, "members still read the bans");
        }
    }

    #[test]
    fn outsiders_read_the_bans_of_a_visible_room() {
        let mut h = room();
        h.send("alice", "MODE #room +b troll");
        h.send("eve", "MODE #room b");
        assert_eq!(h.take("eve").len(), 2);
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
}
