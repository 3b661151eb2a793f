//! The consistency rules of the state machine, checked between events.

use crate::core::State;
use crate::proto::message::parse;
use crate::proto::serialize::MAX_LINE;
use crate::proto::validate::is_valid_tag_key;

/// Checks the cross-references that handlers must keep in step:
///
/// - every member of a room has the room in its `channels` and a join
///   time, and the reverse;
/// - no room is empty, and each is filed under its folded name;
/// - the nick index and the clients' nicks (casefolded) match one to one;
/// - a registered client has a nick and a user name, and only registered
///   clients are members;
/// - invites and list modes name connected clients and stay within limits.
pub fn invariants(state: &State) -> Result<(), String> {
    let max_entries = state.config.limits.max_list_entries;
    for (folded, channel) in &state.channels {
        if channel.members.is_empty() {
            return Err(format!("room {folded:?} is empty"));
        }
        if state.fold(&channel.name) != *folded {
            return Err(format!("room {:?} filed under {folded:?}", channel.name));
        }
        let timed = |member| channel.joined.contains_key(member);
        if channel.joined.len() != channel.members.len() || !channel.members.keys().all(timed) {
            return Err(format!("room {folded:?}'s join times are not its members'"));
        }
        for member in channel.members.keys() {
            let Some(client) = state.clients.get(member) else {
                return Err(format!("room {folded:?} has departed member {member:?}"));
            };
            if !client.channels.contains(folded) {
                return Err(format!(
                    "{:?} is in room {folded:?} but its list lacks it",
                    client.nick
                ));
            }
            if !client.registered {
                return Err(format!("unregistered {member:?} is in room {folded:?}"));
            }
        }
        if let Some(invited) = channel
            .invited
            .keys()
            .find(|id| !state.clients.contains_key(id))
        {
            return Err(format!("room {folded:?} invites departed {invited:?}"));
        }
        for (letter, list) in [
            ('b', &channel.bans),
            ('e', &channel.ban_exceptions),
            ('I', &channel.invite_exceptions),
        ] {
            if list.len() > max_entries {
                return Err(format!("room {folded:?} has {} +{letter}", list.len()));
            }
        }
    }

    for (id, client) in &state.clients {
        if client.id != *id {
            return Err(format!("client {:?} filed under {id:?}", client.id));
        }
        for folded in &client.channels {
            let in_room = state
                .channels
                .get(folded)
                .is_some_and(|channel| channel.members.contains_key(id));
            if !in_room {
                return Err(format!(
                    "{:?} lists room {folded:?} but is not a member",
                    client.nick
                ));
            }
        }
        if client.registered && (client.nick.is_empty() || client.user.is_empty()) {
            return Err(format!("{id:?} is registered without a nick or user"));
        }
        if !client.nick.is_empty() && state.nicks.get(&state.fold(&client.nick)) != Some(id) {
            return Err(format!("nick {:?} of {id:?} is not indexed", client.nick));
        }
    }
    // With every client's nick indexed under its own id, an index of the same
    // size has no other entries: the two match one to one.
    let named = state
        .clients
        .values()
        .filter(|c| !c.nick.is_empty())
        .count();
    if named != state.nicks.len() {
        let stale: Vec<_> = state
            .nicks
            .iter()
            .filter(|(folded, id)| {
                state
                    .clients
                    .get(id)
                    .is_none_or(|client| state.fold(&client.nick) != **folded)
            })
            .collect();
        return Err(format!("stale nick index entries: {stale:?}"));
    }
    Ok(())
}

/// Checks one line the server queued for a client: CR LF at the end and
/// nowhere else, no NUL, at most [`MAX_LINE`] bytes after the tags, valid
/// UTF-8, tags with grammatical keys and no control character, and
/// parsable by our own parser.
pub fn check_sent_line(line: &[u8]) -> Result<(), String> {
    let shown = String::from_utf8_lossy(line);
    let Some(content) = line.strip_suffix(b"\r\n") else {
        return Err(format!("no CR LF at the end: {shown:?}"));
    };
    if content.iter().any(|&b| matches!(b, b'\r' | b'\n' | b'\0')) {
        return Err(format!("CR, LF or NUL inside: {shown:?}"));
    }
    let body = match content.strip_prefix(b"@") {
        Some(tagged) => match tagged.iter().position(|&b| b == b' ') {
            Some(space) => &tagged[space + 1..],
            None => return Err(format!("tags without a body: {shown:?}")),
        },
        None => content,
    };
    if body.len() + 2 > MAX_LINE {
        return Err(format!(
            "{} bytes after the tags: {shown:?}",
            body.len() + 2
        ));
    }
    let text = std::str::from_utf8(content).map_err(|_| format!("not UTF-8: {shown:?}"))?;
    if let Some(tagged) = text.strip_prefix('@') {
        let section = tagged.split(' ').next().unwrap_or_default();
        if section.contains(char::is_control) {
            return Err(format!("control character in the tags: {shown:?}"));
        }
        for item in section.split(';') {
            let key = item.split('=').next().unwrap_or_default();
            if !is_valid_tag_key(key) {
                return Err(format!("tag key {key:?} off the grammar: {shown:?}"));
            }
        }
    }
    parse(text).map_err(|error| format!("{error}: {shown:?}"))?;
    Ok(())
}
