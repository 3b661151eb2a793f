//! MONITOR: a list of nicks whose sign-on and sign-off the client is told
//! of (730/731). The inverted index lives in `core::monitor`.

use crate::core::Refusal;
use crate::core::{ClientId, State};
use crate::proto::numeric::{self, Numeric};
use crate::proto::serialize::{MAX_LINE, echo_param};
use crate::proto::validate::is_valid_nick;
use crate::proto::{Folded, Message};

/// `MONITOR <+|-> <target>{,<target>}` or `MONITOR <C|L|S>`
///
/// IRCv3 monitor: be told when nicks come online and leave.
pub fn monitor(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    let targets = message.param(1);
    match message.param(0) {
        "+" | "-" if targets.is_empty() => return Err(Refusal::need_more_params("MONITOR")),
        "+" => add(state, id, targets),
        "-" => {
            for target in targets.split(',') {
                let folded = state.fold(target);
                if let Some(client) = state.clients.get_mut(&id) {
                    client.monitoring.remove(&folded);
                }
                state.unwatch_index(id, &folded);
            }
        }
        "C" | "c" => state.unwatch_all(id),
        "L" | "l" => {
            let list = watched(state, id).into_iter().map(|(_, nick)| nick);
            send_lists(state, id, numeric::RPL_MONLIST, list.collect());
            state.reply(id, numeric::RPL_ENDOFMONLIST, &[], "End of MONITOR list");
        }
        "S" | "s" => {
            let targets = watched(state, id);
            status(state, id, targets);
        }
        other => {
            let text = format!("Unknown MONITOR modifier {}", echo_param(other));
            state.fail_or_notice(id, "MONITOR", "INVALID_PARAMS", &text);
        }
    }
    Ok(())
}

fn watched(state: &State, id: ClientId) -> Vec<(Folded, String)> {
    state.clients.get(&id).map_or_else(Vec::new, |client| {
        client
            .monitoring
            .iter()
            .map(|(folded, nick)| (folded.clone(), nick.clone()))
            .collect()
    })
}

/// Adds valid nicks not yet listed, up to the limit (then 734 with the rest),
/// and answers with the status of every target taken.
fn add(state: &mut State, id: ClientId, targets: &str) {
    let (limit, nick_length) = (
        state.config.limits.max_monitor,
        state.config.limits.nick_length,
    );
    let mut taken = Vec::new();
    let targets: Vec<&str> = targets.split(',').filter(|t| !t.is_empty()).collect();
    for (i, &target) in targets.iter().enumerate() {
        if !is_valid_nick(target, nick_length) {
            continue;
        }
        let folded = state.fold(target);
        let Some(client) = state.clients.get_mut(&id) else {
            return;
        };
        if !client.monitoring.contains_key(&folded) {
            if client.monitoring.len() >= limit {
                let rest = targets[i..].join(",");
                let limit = limit.to_string();
                state.refuse(id, Refusal::new(numeric::ERR_MONLISTFULL, &[&limit, &rest]));
                break;
            }
            client.monitoring.insert(folded.clone(), target.to_owned());
            state.monitors.entry(folded.clone()).or_default().insert(id);
        }
        taken.push((folded, target.to_owned()));
    }
    status(state, id, taken);
}

/// 730 with `nick!user@host` for the targets online, 731 for the rest.
fn status(state: &mut State, id: ClientId, targets: Vec<(Folded, String)>) {
    let (mut online, mut offline) = (Vec::new(), Vec::new());
    for (folded, nick) in targets {
        match state.registered_client(&folded) {
            Some(client) => online.push(client.source.clone()),
            None => offline.push(nick),
        }
    }
    send_lists(state, id, numeric::RPL_MONONLINE, online);
    send_lists(state, id, numeric::RPL_MONOFFLINE, offline);
}

/// `:server NNN nick :a,b,c` lines, each within 512 bytes.
fn send_lists(state: &mut State, id: ClientId, code: Numeric, items: Vec<String>) {
    let target_len = state.clients.get(&id).map_or(1, |c| c.target().len());
    // `:server NNN target :` and CR LF.
    let budget = MAX_LINE.saturating_sub(state.server_name().len() + target_len + 10);
    let mut chunk = String::new();
    for item in items {
        if !chunk.is_empty() && chunk.len() + 1 + item.len() > budget {
            state.reply(id, code, &[], &std::mem::take(&mut chunk));
        }
        if !chunk.is_empty() {
            chunk.push(',');
        }
        chunk.push_str(&item);
    }
    if !chunk.is_empty() {
        state.reply(id, code, &[], &chunk);
    }
}
