//! CAP: IRCv3 capability negotiation over the table in `core::caps`.

use super::registration::try_register;
use crate::core::Refusal;
use crate::core::caps::{self, Caps};
use crate::core::{ClientId, State};
use crate::proto::numeric;
use crate::proto::{Line, Message};

/// How many bytes of capability text go in one CAP line.
const CAP_LINE_BUDGET: usize = 400;

/// `CAP <subcommand> [:<capabilities>]`
///
/// Capability negotiation: LS, LIST, REQ and END.
pub fn cap(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    let subcommand = message.param(0).to_ascii_uppercase();
    match subcommand.as_str() {
        "LS" => list_supported(state, id, message.param(1)),
        "LIST" => list_enabled(state, id),
        "REQ" => request(state, id, message.param(1)),
        "END" => end(state, id),
        _ => {
            let shown = message.param(0).to_owned();
            state.refuse(id, Refusal::new(numeric::ERR_INVALIDCAPCMD, &[&shown]));
        }
    }
    Ok(())
}

fn list_supported(state: &mut State, id: ClientId, version: &str) {
    let version: u32 = version.parse().unwrap_or(0);
    let Some(client) = state.clients.get_mut(&id) else {
        return;
    };
    if !client.registered {
        client.cap_negotiating = true;
    }
    client.cap_version = client.cap_version.max(version);
    let with_values = client.cap_version >= 302;
    if with_values {
        // CAP LS 302 turns cap-notify on for good, as the spec says.
        client.caps.insert(Caps::CAP_NOTIFY);
    }
    let Some(client) = state.clients.get(&id) else {
        return;
    };
    let entries: Vec<String> = caps::offered_to(state, client)
        .map(|cap| match (with_values, (cap.value)(state, client)) {
            (true, Some(value)) => format!("{}={value}", cap.name),
            _ => cap.name.to_owned(),
        })
        .collect();
    send_cap_lines(state, id, "LS", &entries, with_values);
}

fn list_enabled(state: &mut State, id: ClientId) {
    let Some(client) = state.clients.get(&id) else {
        return;
    };
    let entries: Vec<String> = caps::names(client.caps)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let multiline = client.cap_version >= 302;
    send_cap_lines(state, id, "LIST", &entries, multiline);
}

/// Sends `CAP <nick> <sub> :<entries>`, split over several lines with the
/// `*` continuation marker when the client understands it.
fn send_cap_lines(
    state: &mut State,
    id: ClientId,
    subcommand: &str,
    entries: &[String],
    multiline: bool,
) {
    let mut chunks: Vec<String> = vec![String::new()];
    for entry in entries {
        let current = chunks.last().map(String::len).unwrap_or(0);
        if multiline && current > 0 && current + entry.len() + 1 > CAP_LINE_BUDGET {
            chunks.push(String::new());
        }
        if let Some(chunk) = chunks.last_mut() {
            if !chunk.is_empty() {
                chunk.push(' ');
            }
            chunk.push_str(entry);
        }
    }
    let target = state
        .clients
        .get(&id)
        .map(|c| c.target().to_owned())
        .unwrap_or_default();
    let last = chunks.len() - 1;
    for (i, chunk) in chunks.iter().enumerate() {
        let mut line = Line::new(Some(state.server_name()), "CAP")
            .arg(&target)
            .arg(subcommand);
        if i < last {
            line = line.arg("*");
        }
        let line = line.trailing(chunk).finish();
        state.send(id, line);
    }
}

/// REQ is all or nothing: one unknown capability NAKs the whole request.
fn request(state: &mut State, id: ClientId, requested: &str) {
    let offered: Caps = caps::offered(state)
        .filter(|cap| cap.requestable)
        .fold(Caps::NONE, |all, cap| all.union(cap.flag));
    let Some(client) = state.clients.get_mut(&id) else {
        return;
    };
    let mut changes: Vec<(Caps, bool)> = Vec::new();
    let mut known = !requested.trim().is_empty();
    for word in requested.split_ascii_whitespace() {
        let (enable, name) = match word.strip_prefix('-') {
            Some(name) => (false, name),
            None => (true, word),
        };
        match caps::find(name) {
            // A 302 client cannot turn cap-notify off.
            Some(cap) if !enable && cap.flag == Caps::CAP_NOTIFY && client.cap_version >= 302 => {
                known = false
            }
            Some(cap) if offered.contains(cap.flag) => changes.push((cap.flag, enable)),
            _ => known = false,
        }
    }
    if !client.registered {
        client.cap_negotiating = true;
    }
    let verdict = if known {
        for (flag, enable) in changes {
            if enable {
                client.caps.insert(flag);
            } else {
                client.caps.remove(flag);
            }
        }
        tracing::info!(client = id.0, nick = ?client.nick, caps = ?requested, "capabilities taken");
        "ACK"
    } else {
        "NAK"
    };
    let target = client.target().to_owned();
    let line = Line::new(Some(state.server_name()), "CAP")
        .arg(&target)
        .arg(verdict)
        .trailing(requested)
        .finish();
    state.send(id, line);
}

fn end(state: &mut State, id: ClientId) {
    let Some(client) = state.clients.get_mut(&id) else {
        return;
    };
    if client.registered {
        return;
    }
    client.cap_negotiating = false;
    try_register(state, id);
}
