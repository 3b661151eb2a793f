//! METADATA GET, LIST, SYNC, SET and CLEAR: a user's or a room's keys.

use bytes::Bytes;

use super::{fail, fail_line};
use crate::accounts::MetadataChange;
use crate::config::is_valid_key;
use crate::core::metadata::{Target, Values, room_sync_or_later};
use crate::core::{ClientId, Refusal, State};

/// `METADATA <target> GET <key> [<key> ...]`: a batch with, per key in
/// order, its value (761), 766 when it is not set, or `INVALID_KEY`.
pub fn get(
    state: &mut State,
    id: ClientId,
    target: &Target,
    keys: &[String],
) -> Result<(), Refusal> {
    if keys.is_empty() {
        return Err(Refusal::need_more_params("METADATA"));
    }
    let Some(name) = readable(state, id, target) else {
        return Ok(());
    };
    let values = state.metadata_values(target);
    let lines: Vec<Bytes> = keys
        .iter()
        .map(|key| match values.and_then(|values| values.get(key)) {
            _ if !is_valid_key(key) => fail_line(state, "INVALID_KEY", &[key], "Invalid key"),
            Some(value) => state.key_value_line(id, &name, key, value),
            None => state.key_not_set_line(id, &name, key),
        })
        .collect();
    state.send_metadata_batch(id, &name, lines);
    Ok(())
}

/// `METADATA <target> LIST`: a batch of every key and its value.
pub fn list(state: &mut State, id: ClientId, target: &Target) -> Result<(), Refusal> {
    let Some(name) = readable(state, id, target) else {
        return Ok(());
    };
    let lines: Vec<Bytes> = state
        .metadata_values(target)
        .into_iter()
        .flatten()
        .map(|(key, value)| state.key_value_line(id, &name, key, value))
        .collect();
    state.send_metadata_batch(id, &name, lines);
    Ok(())
}

/// `METADATA <target> SYNC`: a batch of the keys the client subscribed
/// to, of a user, or of a room and each of its members.
pub fn sync(state: &mut State, id: ClientId, target: &Target) -> Result<(), Refusal> {
    let Some(name) = readable(state, id, target) else {
        return Ok(());
    };
    let lines = match target {
        Target::User(_) => Some((name, state.subscribed_lines(id, target))),
        Target::Room(folded) => room_sync_or_later(state, id, folded),
    };
    if let Some((name, lines)) = lines {
        state.send_metadata_batch(id, &name, lines);
    }
    Ok(())
}

/// The target's name when `id` may read it; otherwise `KEY_NO_PERMISSION`
/// with `*` for the key, and `None`.
fn readable(state: &mut State, id: ClientId, target: &Target) -> Option<String> {
    let name = state.metadata_name(target);
    if state.may_read_metadata(id, target) {
        return Some(name);
    }
    let text = "You may not read this target's metadata";
    fail(state, id, "KEY_NO_PERMISSION", &[&name, "*"], text);
    None
}

/// `METADATA <target> SET <key> [:<value>]`: sets the key, or removes it
/// without a value (or with an empty one), answering 761 or 766.
pub fn set(
    state: &mut State,
    id: ClientId,
    target: &Target,
    params: &[String],
    invalid_utf8: bool,
) -> Result<(), Refusal> {
    let Some(key) = params.first() else {
        return Err(Refusal::need_more_params("METADATA"));
    };
    let name = state.metadata_name(target);
    if !is_valid_key(key) {
        fail(state, id, "INVALID_KEY", &[key], "Invalid key");
        return Ok(());
    }
    if !state.may_change_metadata(id, target) || !state.config.metadata.allows(key) {
        let text = "You may not set this key here";
        fail(state, id, "KEY_NO_PERMISSION", &[&name, key], text);
        return Ok(());
    }
    match params.get(1).filter(|value| !value.is_empty()) {
        Some(value) => set_value(state, id, target, key, value, invalid_utf8),
        None => {
            unset(state, id, target, key);
            Ok(())
        }
    }
}

fn set_value(
    state: &mut State,
    id: ClientId,
    target: &Target,
    key: &str,
    value: &str,
    invalid_utf8: bool,
) -> Result<(), Refusal> {
    let name = state.metadata_name(target);
    if invalid_utf8 || value.len() > state.config.metadata.max_value_bytes {
        let text = "Values are UTF-8 of at most max-value-bytes";
        fail(state, id, "INVALID_VALUE", &[key], text);
        return Ok(());
    }
    let max_keys = state.config.metadata.max_keys;
    let Some(values) = state.metadata_values_mut(target) else {
        return Ok(());
    };
    if !values.contains_key(key) && values.len() >= max_keys {
        let text = "Metadata limit reached";
        fail(state, id, "LIMIT_REACHED", &[&name], text);
        return Ok(());
    }
    let changed = values.insert(key.to_owned(), value.to_owned()).as_deref() != Some(value);
    let line = state.key_value_line(id, &name, key, value);
    state.send(id, line);
    if changed {
        state.notify_metadata(id, target, key, Some(value));
        persist(state, target, set_key(key, Some(value)));
    }
    Ok(())
}

fn unset(state: &mut State, id: ClientId, target: &Target, key: &str) {
    let name = state.metadata_name(target);
    let removed = state
        .metadata_values_mut(target)
        .and_then(|values| values.remove(key))
        .is_some();
    let line = state.key_not_set_line(id, &name, key);
    state.send(id, line);
    if removed {
        state.notify_metadata(id, target, key, None);
        persist(state, target, set_key(key, None));
    }
}

/// Keeps a change: a user's with its account when it is logged in to one,
/// a room's with its registration when it is registered.
fn persist(state: &mut State, target: &Target, change: MetadataChange) {
    match target {
        Target::User(user) => state.store_metadata(*user, change),
        Target::Room(folded) => state.save_room(folded),
    }
}

fn set_key(key: &str, value: Option<&str>) -> MetadataChange {
    MetadataChange::Set {
        key: key.to_owned(),
        value: value.map(str::to_owned),
    }
}

/// `METADATA <target> CLEAR`: removes every key, answering a batch of
/// 766, one per key removed.
pub fn clear(state: &mut State, id: ClientId, target: &Target) -> Result<(), Refusal> {
    let name = state.metadata_name(target);
    if !state.may_change_metadata(id, target) {
        let text = "You may not clear this target's metadata";
        fail(state, id, "KEY_NO_PERMISSION", &[&name, "*"], text);
        return Ok(());
    }
    let cleared: Values = state
        .metadata_values_mut(target)
        .map(std::mem::take)
        .unwrap_or_default();
    let lines: Vec<Bytes> = cleared
        .keys()
        .map(|key| state.key_not_set_line(id, &name, key))
        .collect();
    state.send_metadata_batch(id, &name, lines);
    for key in cleared.keys() {
        state.notify_metadata(id, target, key, None);
    }
    if !cleared.is_empty() {
        persist(state, target, MetadataChange::Clear);
    }
    Ok(())
}
