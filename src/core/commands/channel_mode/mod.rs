//! MODE on a room: show its modes, list its b/e/I lists, and apply changes,
//! which every member then hears as one normalized MODE line.
//!
//! - `parse.rs`: the mode string and arguments → requests, within MODES.
//! - `apply.rs`: requests → changes to the room, broadcast as one line.
//! - `lists.rs`: the b/e/I lists and mask completion.
//! - here: the handler, which shows or changes, and the 324/329 view.

mod apply;
mod lists;
mod parse;

use apply::{apply, broadcast};
use lists::show_list;
use parse::{Request, parse};

use super::unix_time;
use crate::core::commands::refusals;
use crate::core::{ClientId, State};
use crate::proto::numeric;
use crate::proto::{Folded, Message};

/// MODE on a room: its modes without a mode string, else the changes and
/// list views the mode string asks for.
pub fn mode(state: &mut State, id: ClientId, message: &Message) {
    let name = message.param(0);
    let folded = state.fold(name);
    let Some(channel) = state.channels.get(&folded) else {
        refusals::no_such_channel(state, id, name);
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
        refusals::not_channel_operator(state, id, &channel_name);
        return;
    }

    let mut applied = Vec::new();
    for request in requests {
        match request {
            Request::Show(kind) if kind.ops_only() && !is_op => {
                refusals::not_channel_operator(state, id, &channel_name);
            }
            Request::Show(kind) => show_list(state, id, &folded, kind),
            change => applied.extend(apply(state, id, &folded, change)),
        }
    }
    broadcast(state, id, &folded, &applied);
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
        (modes.no_ctcp, 'C'),
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

#[cfg(test)]
mod tests {
    use crate::core::testing::{Harness, START};

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
    fn unknown_channel_is_403() {
        let mut h = room();
        h.send("alice", "MODE #nowhere +i");
        assert_eq!(
            h.take("alice"),
            [":irc.test 403 alice #nowhere :No such channel"]
        );
    }
}
