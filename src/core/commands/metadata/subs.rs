//! METADATA SUB, UNSUB and SUBS: the keys a connection is told about.

use super::fail;
use crate::config::is_valid_key;
use crate::core::{ClientId, Refusal, State};
use crate::proto::numeric::{self, Numeric};

/// Keys per 770/771/772 line: 15 keys of 64 bytes, a nick and the server
/// name fit in 512 bytes.
const KEYS_PER_LINE: usize = 15;

/// `METADATA * SUB <key> [<key> ...]`: subscribes to each valid key in
/// order (`INVALID_KEY` for the others) until `max_subs`, where
/// `TOO_MANY_SUBS` names the first key left out; then 770 with the keys
/// subscribed to (already or now), and, once registered, a batch of the
/// new keys' current values on the client's rooms and room-mates.
pub fn sub(state: &mut State, id: ClientId, keys: &[String]) -> Result<(), Refusal> {
    if keys.is_empty() {
        return Err(Refusal::need_more_params("METADATA"));
    }
    let max = state.config.metadata.max_subs;
    let mut accepted = Vec::new();
    let mut added = Vec::new();
    for key in keys {
        if !is_valid_key(key) {
            fail(state, id, "INVALID_KEY", &[key], "Invalid key");
            continue;
        }
        let Some(client) = state.clients.get_mut(&id) else {
            return Ok(());
        };
        let subs = &mut client.metadata.subs;
        if !subs.contains(key) && subs.len() >= max {
            fail(state, id, "TOO_MANY_SUBS", &[key], "Too many subscriptions");
            break;
        }
        if subs.insert(key.clone()) {
            added.push(key.as_str());
        }
        accepted.push(key.as_str());
    }
    send_keys(state, id, numeric::RPL_METADATASUBOK, &accepted);
    send_current_values(state, id, &added);
    Ok(())
}

/// The spec's SHOULD after SUB: what the new keys hold now, in one batch
/// (none when nothing is set, or before registration, when the client
/// shares no room yet).
fn send_current_values(state: &mut State, id: ClientId, added: &[&str]) {
    let lines = state.current_values_lines(id, added);
    if !lines.is_empty() {
        state.send_metadata_batch(id, "*", lines);
    }
}

/// `METADATA * UNSUB <key> [<key> ...]`: 771 with the valid keys, now not
/// subscribed to; `INVALID_KEY` for the others.
pub fn unsub(state: &mut State, id: ClientId, keys: &[String]) -> Result<(), Refusal> {
    if keys.is_empty() {
        return Err(Refusal::need_more_params("METADATA"));
    }
    let mut removed = Vec::new();
    for key in keys {
        if !is_valid_key(key) {
            fail(state, id, "INVALID_KEY", &[key], "Invalid key");
            continue;
        }
        if let Some(client) = state.clients.get_mut(&id) {
            client.metadata.subs.remove(key);
        }
        removed.push(key.as_str());
    }
    send_keys(state, id, numeric::RPL_METADATAUNSUBOK, &removed);
    Ok(())
}

/// `METADATA * SUBS`: 772 with the keys subscribed to; nothing for none.
pub fn subs(state: &mut State, id: ClientId) -> Result<(), Refusal> {
    let Some(client) = state.clients.get(&id) else {
        return Ok(());
    };
    let keys: Vec<String> = client.metadata.subs.iter().cloned().collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    send_keys(state, id, numeric::RPL_METADATASUBS, &keys);
    Ok(())
}

/// `<numeric> <client> <key> <key> ...`, a few keys a line, each key a
/// parameter of its own.
fn send_keys(state: &mut State, id: ClientId, numeric: Numeric, keys: &[&str]) {
    for chunk in keys.chunks(KEYS_PER_LINE) {
        let line = chunk
            .iter()
            .fold(state.numeric_line(id, numeric), |line, key| line.arg(key))
            .finish();
        state.send(id, line);
    }
}
