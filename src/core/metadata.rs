//! IRCv3 metadata (`draft/metadata-3`) as the core keeps it: a user's keys
//! on its `Client`, a room's on its `Channel`, each connection's
//! subscriptions, and who is told of a change. The `METADATA` command is
//! `commands/metadata/`.
//!
//! Who reads what: anyone reads a user's keys; a room's are read by its
//! members, by operators who see secret rooms, and by outsiders only when
//! the room is neither secret, private nor invite-only (outsiders of a
//! secret or private room are answered as if it did not exist). A user
//! changes its own keys; a room's operators change the room's.
//!
//! A logged-in user's keys are kept with its account: each change is
//! written by its own task (`metadata_writer.rs`), and a login reads
//! the stored keys back, under the keys the connection set already.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::caps::Caps;
use super::playback::{batch_end, batch_start};
use super::{Client, ClientId, MetadataRequest, State};
use crate::accounts::MetadataChange;
use crate::proto::tags::prepend_tag;
use crate::proto::validate::is_channel_name;
use crate::proto::{Folded, numeric};

/// Keys and their values, in key order (LIST answers in that order).
pub type Values = BTreeMap<String, String>;

/// Rooms larger than this are not synced, on JOIN or on SYNC: the client
/// is told to try later (774) instead of getting a line per member and
/// key at once, which would be unbounded.
pub const SYNC_MEMBERS: usize = 64;

/// The keys WHOIS shows (760), chosen as the spec asks: the ones a person
/// reads at a glance.
const WHOIS_KEYS: &[&str] = &["display-name", "pronouns"];

/// A connection's metadata: its keys and the keys it subscribed to.
#[derive(Debug, Default)]
pub struct ClientMetadata {
    pub values: Values,
    /// At most `[metadata] max_subs`.
    pub subs: BTreeSet<String>,
}

/// What a METADATA command is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    User(ClientId),
    Room(Folded),
}

/// Whether the configuration offers the capability.
pub fn offered(state: &State) -> bool {
    state.config.metadata.enabled
}

/// The capability's value: `before-connect` (SET works while registering)
/// and the limits.
pub fn cap_value(state: &State, _: &Client) -> Option<String> {
    let metadata = &state.config.metadata;
    Some(format!(
        "before-connect,max-subs={},max-keys={},max-value-bytes={}",
        metadata.max_subs, metadata.max_keys, metadata.max_value_bytes
    ))
}

impl State {
    /// What `name` names for `id`: `*` is itself; a room outsiders may not
    /// know of, or a nick nobody uses, is `None`.
    pub fn metadata_target(&self, id: ClientId, name: &str) -> Option<Target> {
        if name == "*" {
            return Some(Target::User(id));
        }
        if is_channel_name(name) {
            let folded = self.fold(name);
            return self
                .visible_channel(id, &folded)
                .map(|_| Target::Room(folded));
        }
        self.registered_client(&self.fold(name))
            .map(|client| Target::User(client.id))
    }

    /// The target as lines show it: the nick (`*` before NICK), or the
    /// room's name.
    pub fn metadata_name(&self, target: &Target) -> String {
        match target {
            Target::User(id) => self
                .clients
                .get(id)
                .map_or("*", |client| client.target())
                .to_owned(),
            Target::Room(folded) => self
                .channels
                .get(folded)
                .map_or_else(|| folded.as_str().to_owned(), |room| room.name.clone()),
        }
    }

    /// The target's keys.
    pub fn metadata_values(&self, target: &Target) -> Option<&Values> {
        match target {
            Target::User(id) => self.clients.get(id).map(|c| &c.metadata.values),
            Target::Room(folded) => self.channels.get(folded).map(|room| &room.metadata),
        }
    }

    /// The target's keys, to change.
    pub fn metadata_values_mut(&mut self, target: &Target) -> Option<&mut Values> {
        match target {
            Target::User(id) => self.clients.get_mut(id).map(|c| &mut c.metadata.values),
            Target::Room(folded) => self.channels.get_mut(folded).map(|room| &mut room.metadata),
        }
    }

    /// Whether `id` may read the target's keys.
    pub fn may_read_metadata(&self, id: ClientId, target: &Target) -> bool {
        let Target::Room(folded) = target else {
            return true;
        };
        self.channels.get(folded).is_some_and(|room| {
            room.members.contains_key(&id) || self.sees_secret(id) || !room.modes.invite_only
        })
    }

    /// Whether `id` may change the target's keys: its own, or a room's it
    /// is an operator of.
    pub fn may_change_metadata(&self, id: ClientId, target: &Target) -> bool {
        match target {
            Target::User(user) => *user == id,
            Target::Room(folded) => self
                .channels
                .get(folded)
                .and_then(|room| room.members.get(&id))
                .is_some_and(|membership| membership.op),
        }
    }

    /// `761 <client> <target> <key> * :<value>`.
    pub fn key_value_line(&self, id: ClientId, name: &str, key: &str, value: &str) -> Bytes {
        self.numeric_line(id, numeric::RPL_KEYVALUE)
            .arg(name)
            .arg(key)
            .arg("*")
            .trailing(value)
            .finish()
    }

    /// `766 <client> <target> <key> :Key not set`.
    pub fn key_not_set_line(&self, id: ClientId, name: &str, key: &str) -> Bytes {
        let text = numeric::RPL_KEYNOTSET.text().unwrap_or_default();
        self.numeric_line(id, numeric::RPL_KEYNOTSET)
            .arg(name)
            .arg(key)
            .trailing(text)
            .finish()
    }

    /// Sends `lines` to `id` in a `metadata` batch about `name` when it
    /// negotiated batch, else one by one. An empty batch is sent too: the
    /// spec's answer to a LIST of nothing.
    pub fn send_metadata_batch(&mut self, id: ClientId, name: &str, lines: Vec<Bytes>) {
        let batched = self
            .clients
            .get(&id)
            .is_some_and(|client| client.has_cap(Caps::BATCH));
        if !batched {
            for line in lines {
                self.send(id, line);
            }
            return;
        }
        let reference = self.next_batch_id();
        let server = self.server_name().to_owned();
        self.send(id, batch_start(&server, &reference, "metadata", name));
        let tag = format!("batch={reference}");
        for line in lines {
            self.send(id, prepend_tag(&line, &tag));
        }
        self.send(id, batch_end(&server, &reference));
    }

    /// Tells subscribers of `key` that the target's value changed (`None`:
    /// removed): a user's room-mates, a room's members, each with the
    /// capability, never `changer`.
    pub fn notify_metadata(
        &mut self,
        changer: ClientId,
        target: &Target,
        key: &str,
        value: Option<&str>,
    ) {
        let name = self.metadata_name(target);
        let audience = match target {
            Target::User(user) => self.peers(*user),
            Target::Room(folded) => self
                .channels
                .get(folded)
                .map(|room| room.members.keys().copied().collect())
                .unwrap_or_default(),
        };
        for id in audience {
            if id == changer || !self.subscribed(id, key) {
                continue;
            }
            let line = match value {
                Some(value) => self.key_value_line(id, &name, key, value),
                None => self.key_not_set_line(id, &name, key),
            };
            self.send(id, line);
        }
    }

    /// Whether `id` negotiated the capability and subscribed to `key`.
    fn subscribed(&self, id: ClientId, key: &str) -> bool {
        self.clients.get(&id).is_some_and(|client| {
            client.has_cap(Caps::METADATA) && client.metadata.subs.contains(key)
        })
    }

    /// 761 lines to `id` for the keys of `target` it subscribed to.
    pub fn subscribed_lines(&self, id: ClientId, target: &Target) -> Vec<Bytes> {
        let (Some(values), Some(client)) = (self.metadata_values(target), self.clients.get(&id))
        else {
            return Vec::new();
        };
        let name = self.metadata_name(target);
        values
            .iter()
            .filter(|(key, _)| client.metadata.subs.contains(*key))
            .map(|(key, value)| self.key_value_line(id, &name, key, value))
            .collect()
    }

    /// 761 lines to `id` for a room's subscribed keys and its members':
    /// those NAMES shows it, so an outsider learns of no invisible user.
    pub fn room_sync_lines(&self, id: ClientId, folded: &Folded) -> Vec<Bytes> {
        let room = Target::Room(folded.clone());
        let mut lines = self.subscribed_lines(id, &room);
        let Some(channel) = self.channels.get(folded) else {
            return lines;
        };
        let is_member = channel.members.contains_key(&id);
        for member in channel.members.keys() {
            let shown = is_member
                || self
                    .clients
                    .get(member)
                    .is_some_and(|client| !client.modes.invisible);
            if shown {
                lines.extend(self.subscribed_lines(id, &Target::User(*member)));
            }
        }
        lines
    }

    /// 761 lines to `id` for `keys` it just subscribed to: their values on
    /// its rooms and on everyone it shares one with, each once.
    pub fn current_values_lines(&self, id: ClientId, keys: &[&str]) -> Vec<Bytes> {
        let Some(client) = self.clients.get(&id) else {
            return Vec::new();
        };
        let rooms = client
            .channels
            .iter()
            .map(|folded| Target::Room(folded.clone()));
        let peers = self.peers(id).into_iter().map(Target::User);
        let mut lines = Vec::new();
        for target in rooms.chain(peers) {
            let Some(values) = self.metadata_values(&target) else {
                continue;
            };
            let name = self.metadata_name(&target);
            for key in keys {
                if let Some(value) = values.get(*key) {
                    lines.push(self.key_value_line(id, &name, key, value));
                }
            }
        }
        lines
    }

    /// Records a change of a logged-in user's keys with its account.
    pub fn store_metadata(&mut self, id: ClientId, change: MetadataChange) {
        let Some(account) = self.clients.get(&id).and_then(|c| c.account.clone()) else {
            return;
        };
        if self.accounts_enabled() {
            let request = MetadataRequest::Change { account, change };
            self.admin.request_metadata(request);
        }
    }
}

/// After JOIN: the room's and its members' subscribed keys to a joiner
/// with the capability, in a batch, or 774 for a large room.
pub fn on_join(state: &mut State, id: ClientId, folded: &Folded) {
    let Some(client) = state.clients.get(&id) else {
        return;
    };
    if !client.has_cap(Caps::METADATA) || client.metadata.subs.is_empty() {
        return;
    }
    let Some((name, lines)) = room_sync_or_later(state, id, folded) else {
        return;
    };
    if !lines.is_empty() {
        state.send_metadata_batch(id, &name, lines);
    }
}

/// The room's name and its sync lines for `id`; for a room too large to
/// sync at once, 774 is sent instead and None returned.
pub fn room_sync_or_later(
    state: &mut State,
    id: ClientId,
    folded: &Folded,
) -> Option<(String, Vec<Bytes>)> {
    let room = state.channels.get(folded)?;
    let name = room.name.clone();
    if room.members.len() > SYNC_MEMBERS {
        let line = state
            .numeric_line(id, numeric::RPL_METADATASYNCLATER)
            .arg(&name)
            .arg("0")
            .finish();
        state.send(id, line);
        return None;
    }
    Some((name, state.room_sync_lines(id, folded)))
}

/// In the welcome: a client with the capability gets its own keys (set
/// before registering, or stored with its account) in a `metadata` batch,
/// empty when it has none.
pub fn on_welcome(state: &mut State, id: ClientId) {
    let Some(client) = state.clients.get(&id) else {
        return;
    };
    if !client.has_cap(Caps::METADATA) {
        return;
    }
    let nick = client.nick.clone();
    let lines = own_lines(state, id, client.metadata.values.iter());
    state.send_metadata_batch(id, &nick, lines);
}

fn own_lines<'a>(
    state: &State,
    id: ClientId,
    values: impl Iterator<Item = (&'a String, &'a String)>,
) -> Vec<Bytes> {
    let nick = state.clients.get(&id).map_or("*", |client| client.target());
    values
        .map(|(key, value)| state.key_value_line(id, nick, key, value))
        .collect()
}

/// WHOIS: `760 <asker> <nick> <key> * :<value>` for the keys shown there.
pub fn whois_lines(state: &State, asker: ClientId, target: ClientId) -> Vec<Bytes> {
    let Some(client) = state.clients.get(&target) else {
        return Vec::new();
    };
    WHOIS_KEYS
        .iter()
        .filter_map(|key| client.metadata.values.get(*key).map(|value| (key, value)))
        .map(|(key, value)| {
            state
                .numeric_line(asker, numeric::RPL_WHOISKEYVALUE)
                .arg(&client.nick)
                .arg(key)
                .arg("*")
                .trailing(value)
                .finish()
        })
        .collect()
}

/// After a login to `account`: the keys the connection set so far are
/// stored with the account, then the account's stored keys are read back
/// (the writer does both in that order).
pub fn on_login(state: &mut State, id: ClientId, account: &str) {
    if !state.accounts_enabled() || !state.config.metadata.enabled {
        return;
    }
    let Some(client) = state.clients.get(&id) else {
        return;
    };
    let changes: Vec<MetadataChange> = client
        .metadata
        .values
        .iter()
        .map(|(key, value)| MetadataChange::Set {
            key: key.clone(),
            value: Some(value.clone()),
        })
        .collect();
    for change in changes {
        state.store_metadata(id, change);
    }
    let account = account.to_owned();
    let request = MetadataRequest::Load { id, account };
    state.admin.request_metadata(request);
}

/// The account's stored keys, read for `id`: each key the connection has
/// not set gets the stored value (within `max_keys`), and the client and
/// subscribers are told as of a SET. Dropped when the client left or is
/// now in another account.
pub fn loaded(state: &mut State, id: ClientId, account: &str, values: Vec<(String, String)>) {
    let casemapping = state.config.server.casemapping;
    let max_keys = state.config.metadata.max_keys;
    let Some(client) = state.clients.get_mut(&id) else {
        return;
    };
    if !client
        .account
        .as_deref()
        .is_some_and(|current| casemapping.eq(current, account))
    {
        return;
    }
    let mut added = Vec::new();
    for (key, value) in values {
        let mine = &mut client.metadata.values;
        if mine.len() >= max_keys || mine.contains_key(&key) {
            continue;
        }
        mine.insert(key.clone(), value.clone());
        added.push((key, value));
    }
    let tell_self = client.registered && client.has_cap(Caps::METADATA);
    if added.is_empty() {
        return;
    }
    let target = Target::User(id);
    for (key, value) in &added {
        state.notify_metadata(id, &target, key, Some(value));
    }
    if tell_self {
        let name = state.metadata_name(&target);
        let lines = own_lines(state, id, added.iter().map(|(k, v)| (k, v)));
        state.send_metadata_batch(id, &name, lines);
    }
}
