//! Rooms' state network-wide (`network/rooms.rs` does the JetStream
//! side): a room this node does not know is created in the bucket before
//! its first joiner enters, so one node's joiner gets ops; a MODE or
//! TOPIC that took effect here is written there; and what the bucket's
//! watch says is applied here, each member told only what changed.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::warn;

use crate::core::commands::channel_mode;
use crate::core::commands::join::{self, new_room};
use crate::core::commands::registration::truncate;
use crate::core::{Channel, ChannelModes, ClientId, ListEntry, Refusal, State, Topic};
use crate::history::{HistoryTarget, NewRecord};
use crate::network::rooms::{
    self, Change, Created, EntryState, ModeChange, RoomState, Seen, TopicState,
};
use crate::proto::mask::Mask;
use crate::proto::modes::{self, ListKind};
use crate::proto::{Folded, Line, Message, numeric};

/// The most rooms whose values a node keeps: far above the rooms of a
/// network of this size; past it, new rooms' values are not kept (and
/// their creation is refused, as when the bucket cannot be reached).
pub const MAX_KNOWN_ROOMS: usize = 100_000;

/// The most deletions of rooms' values a node remembers; past it, it
/// starts afresh (a creation's read of a value deleted just after is the
/// race they guard against, a matter of milliseconds).
const MAX_DELETIONS: usize = 10_000;

/// How many times a join retries a creation the bucket answered with a
/// value that was gone when read.
const CREATE_ATTEMPTS: u8 = 3;

/// A room's value as this node last saw it in the bucket.
#[derive(Debug)]
pub struct Known {
    pub revision: u64,
    /// When this node first heard of that revision, on its own clock: a
    /// value's age, whatever the NATS servers' clocks say.
    pub since: SystemTime,
    /// `None` when it was not one this node reads.
    pub state: Option<Box<RoomState>>,
}

/// A local join waiting for its room's creation.
#[derive(Debug)]
pub struct PendingJoin {
    name: String,
    key: String,
    /// The value asked to be created.
    state: RoomState,
    /// The rooms after it in the same JOIN.
    rest: Option<Message>,
    /// Whether it takes over a value left by a room that is gone (which
    /// `state` then is): the room opens from it, and the joiner is checked
    /// against it, then gets ops.
    taking_over: bool,
    attempts: u8,
    /// When the creation was first asked for: the joiner waits a node
    /// timeout at most.
    asked: SystemTime,
    /// Answered 437 for taking too long; the bucket's late answer is
    /// still awaited, to remove a value won for no one.
    expired: bool,
}

/// The rooms' side of [`super::Network`].
#[derive(Debug, Default)]
pub struct Rooms {
    /// Every room's value, as the watch (or this node's writes) last told.
    pub known: HashMap<Folded, Known>,
    /// Local joins waiting for a creation, one per client.
    joining: HashMap<ClientId, PendingJoin>,
    /// Rooms with changes of this node's on their way to the bucket: how
    /// many, and since when. Meanwhile other nodes' values are kept, not
    /// shown (the write lands on top of them, or is applied again on top
    /// of them, and the members would see a change undone and redone).
    writing: HashMap<Folded, (u32, SystemTime)>,
    /// The revision of each room's deletion the watch saw, until a later
    /// value: a value read before it, but heard of after, is not taken
    /// for the room's latest.
    deleted: HashMap<Folded, u64>,
}

impl Rooms {
    /// Whether `revision` of `folded` is newer than both its known value
    /// and its last deletion seen.
    fn is_newer(&self, folded: &Folded, revision: u64) -> bool {
        let known = self.known.get(folded).map_or(0, |known| known.revision);
        let deleted = self.deleted.get(folded).copied().unwrap_or(0);
        known.max(deleted) < revision
    }

    /// Notes `folded`'s deletion at `revision`.
    fn note_deleted(&mut self, folded: &Folded, revision: u64) {
        self.known.remove(folded);
        if self.deleted.len() >= MAX_DELETIONS && !self.deleted.contains_key(folded) {
            self.deleted.clear();
        }
        self.deleted.insert(folded.clone(), revision);
    }
}

/// Seconds since the epoch, as values keep times.
fn seconds(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| {
        i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
    })
}

/// A value's time (seconds) as a time here.
fn time_of(seconds: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds.max(0).unsigned_abs())
}

/// A `nick!user@host` from a value, if it could be a source: one word of
/// printable characters.
fn clean_source(source: &str) -> Option<&str> {
    let fits = !source.is_empty()
        && source.len() <= 300
        && !source.starts_with(':')
        && source.chars().all(|c| !c.is_control() && c != ' ');
    fits.then_some(source)
}

/// A room's value: what this node holds of it.
pub fn value_of(channel: &Channel) -> RoomState {
    let entries = |list: &[ListEntry]| {
        list.iter()
            .map(|entry| EntryState {
                mask: entry.text(),
                by: entry.set_by.clone(),
                at: seconds(entry.set_at),
            })
            .collect()
    };
    RoomState {
        version: rooms::VERSION,
        name: channel.name.clone(),
        created: seconds(channel.created),
        flags: modes::channel_flags()
            .filter(|(_, flag)| channel.modes.flag(*flag))
            .map(|(letter, _)| letter)
            .collect(),
        key: channel.modes.key.clone(),
        limit: channel
            .modes
            .limit
            .and_then(|limit| u64::try_from(limit).ok()),
        topic: channel.topic.as_ref().map(|topic| TopicState {
            text: topic.text.clone(),
            by: topic.set_by.clone(),
            at: seconds(topic.set_at),
        }),
        bans: entries(&channel.bans),
        exceptions: entries(&channel.ban_exceptions),
        invite_exceptions: entries(&channel.invite_exceptions),
        by: None,
        base: 0,
    }
}

/// What a value sets, checked as the same changes from MODE and TOPIC
/// are: a room's modes, lists and topic.
struct Target {
    modes: ChannelModes,
    lists: [(char, ListKind, Vec<ListEntry>); 3],
    topic: Option<Topic>,
    created: SystemTime,
}

impl State {
    /// JOIN's hook: whether the local `id`'s join of `folded`, a room this
    /// node does not know, waits for its creation in the bucket. Refused
    /// with 437 while the bucket cannot be reached: ERR_UNAVAILRESOURCE is
    /// the numeric for a channel that cannot be joined for now (RFC 2812),
    /// as NICK gets it for a nick.
    pub(crate) fn network_create_room(
        &mut self,
        id: ClientId,
        name: &str,
        key: &str,
        folded: &Folded,
    ) -> Result<bool, Refusal> {
        if self.network.is_none() || !self.is_local(id) || self.channels.contains_key(folded) {
            return Ok(false);
        }
        let full = self
            .network
            .as_ref()
            .is_some_and(|network| network.rooms.known.len() >= MAX_KNOWN_ROOMS);
        // A creation of this client's that took too long is still out:
        // its answer must not be taken for this one's.
        let answer_out = self
            .network
            .as_ref()
            .is_some_and(|network| network.rooms.joining.contains_key(&id));
        if self.network_is_down() || full || answer_out {
            return Err(Refusal::new(numeric::ERR_UNAVAILRESOURCE, &[name]));
        }
        let now = self.clock.now();
        let modes = ChannelModes::from_flags(&self.config.channels.default_modes);
        let state = value_of(&new_room(name, now, modes, 0));
        let Some(network) = &mut self.network else {
            return Ok(false);
        };
        network
            .link
            .create_room(id.0, folded.as_str(), state.clone(), None);
        let pending = PendingJoin {
            name: name.to_owned(),
            key: key.to_owned(),
            state,
            rest: None,
            taking_over: false,
            attempts: 1,
            asked: now,
            expired: false,
        };
        network.rooms.joining.insert(id, pending);
        self.wait_off_core(id);
        Ok(true)
    }

    /// The rooms after a waiting one in the same JOIN, joined once it is.
    pub(crate) fn network_join_rest(&mut self, id: ClientId, rest: Message) {
        if let Some(pending) = self
            .network
            .as_mut()
            .and_then(|network| network.rooms.joining.get_mut(&id))
        {
            pending.rest = Some(rest);
        }
    }

    /// The bucket's answer to the creation of a room a local user joins.
    pub(super) fn network_room_created(&mut self, id: ClientId, outcome: Created) {
        let Some(network) = &mut self.network else {
            return;
        };
        let Some(mut pending) = network.rooms.joining.remove(&id) else {
            return;
        };
        let folded = self.fold(&pending.name);
        if pending.expired || !self.clients.contains_key(&id) {
            // The joiner left, or was answered 437, while its room was
            // being created: a value won for it is removed.
            if let (Created::Won { revision }, Some(network)) = (&outcome, &self.network) {
                network.link.remove_room(folded.as_str(), Some(*revision));
            }
            return;
        }
        let won = match outcome {
            Created::Won { revision } => {
                let state = Some(Box::new(pending.state.clone()));
                self.network_known(&folded, revision, state);
                true
            }
            Created::Exists { revision, state } => {
                // Read before a deletion this node has seen since: created
                // again, as if it had read the deletion.
                let stale = revision != 0 && self.network_room_deleted_since(&folded, revision);
                let left = !stale && self.network_left_behind(&folded, state.is_some(), revision);
                // Every retry, whatever its reason, counts against the
                // creation's attempts.
                let retry = (left || stale || revision == 0) && pending.attempts < CREATE_ATTEMPTS;
                if retry {
                    let over = (revision != 0 && !stale).then_some(revision);
                    pending.attempts += 1;
                    // A left value keeps its modes, key, lists and topic.
                    pending.taking_over = left && state.is_some();
                    if let Some(left) = state.filter(|_| left) {
                        pending.state = *left;
                    }
                    if let Some(network) = &mut self.network {
                        let value = pending.state.clone();
                        network.link.create_room(id.0, folded.as_str(), value, over);
                        network.rooms.joining.insert(id, pending);
                    }
                    return;
                }
                let Some(state) = state.filter(|_| !stale) else {
                    self.resume_refused(id, &pending.name);
                    return;
                };
                self.network_room_seen(Seen {
                    key: rooms::key(folded.as_str()),
                    revision,
                    state: Some(state),
                    deleted: false,
                });
                false
            }
            Created::Failed(reason) => {
                warn!(%reason, "a room could not be created in the bucket");
                self.resume_refused(id, &pending.name);
                return;
            }
        };
        if !won || pending.taking_over {
            self.network_room_open(&folded, &pending.name);
        }
        let PendingJoin {
            name, key, rest, ..
        } = pending;
        self.resume(id, move |state| {
            join::join_created(state, id, &name, &key, won);
            state.network_room_unused(&folded);
            if let Some(rest) = rest {
                if let Err(refusal) = join::join(state, id, &rest) {
                    state.refuse(id, refusal);
                }
                state.unlabel_waiting(id);
            }
        });
    }

    /// Answers with 437 the joins whose creation took longer than a node
    /// timeout (JetStream stalled while the link and lease looked well):
    /// no client waits without end. Their late answers are still taken,
    /// to remove a value won for no one.
    pub(in crate::core) fn network_expire_joins(&mut self) {
        let now = self.clock.now();
        let Some(network) = &mut self.network else {
            return;
        };
        let timeout = network.timeout;
        let mut overdue = Vec::new();
        for (id, pending) in &mut network.rooms.joining {
            let waited = now.duration_since(pending.asked).unwrap_or_default();
            if !pending.expired && waited > timeout {
                pending.expired = true;
                overdue.push((*id, pending.name.clone()));
            }
        }
        for (id, name) in overdue {
            warn!(room = %name, "a room's creation took longer than a node timeout; the join is refused");
            self.resume_refused(id, &name);
        }
    }

    /// Answers a waiting join with 437.
    fn resume_refused(&mut self, id: ClientId, name: &str) {
        let refusal = Refusal::new(numeric::ERR_UNAVAILRESOURCE, &[name]);
        self.resume(id, move |state| state.refuse(id, refusal));
    }

    /// Whether the value a creation found was left by a room that is gone:
    /// this node has listened long enough to know every member, knows none
    /// of this room, and nothing wrote the value for a node timeout (so it
    /// is no creation made elsewhere an instant ago: the revision read was
    /// known here for that long, on this node's clock). A value this node
    /// cannot read is replaced too.
    fn network_left_behind(&self, folded: &Folded, readable: bool, revision: u64) -> bool {
        let Some(network) = &self.network else {
            return false;
        };
        if self.channels.contains_key(folded) {
            return false;
        }
        if !readable {
            return true;
        }
        let now = self.clock.now();
        let quiet = network
            .rooms
            .known
            .get(folded)
            .filter(|known| known.revision == revision)
            .and_then(|known| now.duration_since(known.since).ok())
            .is_some_and(|age| age > network.timeout);
        !self.network_is_new() && quiet
    }

    /// Opens the room `folded` here from its known value, without members.
    fn network_room_open(&mut self, folded: &Folded, name: &str) {
        if self.channels.contains_key(folded) {
            return;
        }
        let now = self.clock.now();
        let floor = crate::core::history_access::starting_floor(now, self.room_ended_ms);
        let modes = ChannelModes::from_flags(&self.config.channels.default_modes);
        let channel = new_room(name, now, modes, floor);
        self.channels.insert(folded.clone(), channel);
        self.network_room_restore(folded);
    }

    /// A room opened for a joiner who did not get in is dropped here again
    /// (its value stays: the room lives on other nodes).
    fn network_room_unused(&mut self, folded: &Folded) {
        let unused = self.channels.get(folded).is_some_and(|channel| {
            channel.members.is_empty() && !channel.persistent && channel.registration.is_none()
        });
        if unused {
            self.destroy_room(folded);
        }
    }

    /// A room just created here (a member of another node entered it):
    /// its modes, lists, topic and creation time from its known value.
    pub(super) fn network_room_restore(&mut self, folded: &Folded) {
        let state = self
            .network
            .as_ref()
            .and_then(|network| network.rooms.known.get(folded))
            .and_then(|known| known.state.clone());
        if let Some(state) = state {
            self.apply_room_state(folded, &state);
        }
    }

    /// Whether `folded`'s value at `revision` was deleted since, as far
    /// as the watch told.
    fn network_room_deleted_since(&self, folded: &Folded, revision: u64) -> bool {
        self.network.as_ref().is_some_and(|network| {
            network
                .rooms
                .deleted
                .get(folded)
                .is_some_and(|&at| revision < at)
        })
    }

    /// Notes `folded`'s value at `revision`.
    fn network_known(&mut self, folded: &Folded, revision: u64, state: Option<Box<RoomState>>) {
        let since = self.clock.now();
        let Some(network) = &mut self.network else {
            return;
        };
        let known = &mut network.rooms.known;
        if known.len() >= MAX_KNOWN_ROOMS && !known.contains_key(folded) {
            warn!(room = %folded.as_str(), "too many rooms in the bucket; this one's value is not kept");
            return;
        }
        let value = Known {
            revision,
            since,
            state,
        };
        known.insert(folded.clone(), value);
        let rooms = &mut network.rooms;
        if rooms.deleted.get(folded).is_some_and(|&at| at < revision) {
            rooms.deleted.remove(folded);
        }
    }

    /// A MODE of the local `id` changed `folded`'s own modes: the bucket
    /// gets the room's new state.
    pub(crate) fn network_room_modes(
        &mut self,
        id: ClientId,
        folded: &Folded,
        changes: impl Iterator<Item = ModeChange>,
    ) {
        let Some(by) = self.network_changer(id) else {
            return;
        };
        let at = seconds(self.clock.now());
        let changes = changes.collect();
        self.network_room_write(folded, Change::Modes { changes, by, at });
    }

    /// A TOPIC of the local `id` changed `folded`'s topic.
    pub(crate) fn network_room_topic(&mut self, id: ClientId, folded: &Folded) {
        let Some(by) = self.network_changer(id) else {
            return;
        };
        let Some(channel) = self.channels.get(folded) else {
            return;
        };
        let topic = value_of(channel).topic;
        self.network_room_write(folded, Change::Topic { topic, by });
    }

    /// The source of a local user changing a room, when this node is in a
    /// network.
    fn network_changer(&self, id: ClientId) -> Option<String> {
        self.network.as_ref()?;
        let client = self.clients.get(&id).filter(|c| c.remote.is_none())?;
        Some(client.source.clone())
    }

    /// Writes `folded`'s state after `change` at the revision last seen.
    fn network_room_write(&mut self, folded: &Folded, change: Change) {
        if self.network.is_none() || !self.channels.contains_key(folded) {
            return;
        }
        self.network_room_writing(folded);
        let (Some(network), Some(channel)) = (&self.network, self.channels.get(folded)) else {
            return;
        };
        // The change on top of the value it was made at: this node's view
        // may lack other nodes' values kept while its own writes are on
        // their way, which the write must not undo.
        let known = network.rooms.known.get(folded);
        let revision = known.map(|known| known.revision);
        let mut state = known
            .and_then(|known| known.state.as_deref().cloned())
            .unwrap_or_else(|| value_of(channel));
        state.apply(&change);
        network
            .link
            .change_room(folded.as_str(), state, revision, change);
    }

    /// Counts a write of this node's to `folded` on its way.
    fn network_room_writing(&mut self, folded: &Folded) {
        let now = self.clock.now();
        let Some(network) = &mut self.network else {
            return;
        };
        let timeout = network.timeout;
        let writing = network
            .rooms
            .writing
            .entry(folded.clone())
            .or_insert((0, now));
        let stale = now
            .duration_since(writing.1)
            .is_ok_and(|age| age >= timeout);
        if writing.0 == 0 || stale {
            *writing = (0, now);
        }
        writing.0 += 1;
    }

    /// Whether this node has a write to `folded` on its way, sent less
    /// than a node timeout ago (a write lost on the way holds no longer).
    fn network_room_is_writing(&self, folded: &Folded) -> bool {
        let now = self.clock.now();
        self.network.as_ref().is_some_and(|network| {
            network
                .rooms
                .writing
                .get(folded)
                .is_some_and(|(count, since)| {
                    *count > 0
                        && now
                            .duration_since(*since)
                            .is_ok_and(|age| age < network.timeout)
                })
        })
    }

    /// One write of this node's to `folded` is done: once none is left,
    /// the room shows the latest value known.
    fn network_room_written_one(&mut self, folded: &Folded) {
        let Some(network) = &mut self.network else {
            return;
        };
        let Some(writing) = network.rooms.writing.get_mut(folded) else {
            return;
        };
        writing.0 = writing.0.saturating_sub(1);
        if writing.0 > 0 {
            return;
        }
        network.rooms.writing.remove(folded);
        let latest = network
            .rooms
            .known
            .get(folded)
            .and_then(|known| known.state.clone());
        if let Some(latest) = latest
            && self.channels.contains_key(folded)
        {
            self.apply_room_state(folded, &latest);
        }
    }

    /// This node's write landed: noted as a value seen, then counted done
    /// when it answers a change counted on its way (`asked`).
    pub(super) fn network_room_written(&mut self, seen: Seen, asked: bool) {
        let Some(name) = rooms::folded_of(&seen.key) else {
            return;
        };
        let folded = self.fold(&name);
        self.network_room_seen(seen);
        if asked {
            self.network_room_written_one(&folded);
        }
    }

    /// This node's write did not land: the room shows the latest value
    /// known once no other write is on its way.
    pub(super) fn network_room_not_written(&mut self, key: &str) {
        if let Some(name) = rooms::folded_of(key) {
            let folded = self.fold(&name);
            self.network_room_written_one(&folded);
        }
    }

    /// A local user was the last member of `folded` on the network: its
    /// value goes (at the revision known).
    pub(crate) fn network_room_emptied(&mut self, folded: &Folded) {
        let Some(network) = &mut self.network else {
            return;
        };
        let revision = network
            .rooms
            .known
            .remove(folded)
            .map(|known| known.revision);
        network.link.remove_room(folded.as_str(), revision);
    }

    /// This node is stopping: the rooms only its users are in go from
    /// the bucket, as if each had left, so that a restart does not find
    /// them taken.
    pub(super) fn network_rooms_bye(&mut self) {
        let alone: Vec<Folded> = self
            .channels
            .iter()
            .filter(|(_, channel)| {
                !channel.persistent
                    && channel.registration.is_none()
                    && !channel.members.is_empty()
                    && channel.members.keys().all(|member| self.is_local(*member))
            })
            .map(|(folded, _)| folded.clone())
            .collect();
        for folded in alone {
            self.network_room_emptied(&folded);
        }
    }

    /// A value the watch saw, or this node wrote: applied here when newer
    /// than the one known. A room deleted while it has members here is
    /// created again from what this node holds, so no room lives on
    /// without a value.
    pub(super) fn network_room_seen(&mut self, seen: Seen) {
        let Some(name) = rooms::folded_of(&seen.key) else {
            warn!(key = %seen.key, "a key in the room states is no room's");
            return;
        };
        let folded = self.fold(&name);
        let Some(network) = &mut self.network else {
            return;
        };
        if !network.rooms.is_newer(&folded, seen.revision) {
            return;
        }
        if seen.deleted {
            network.rooms.note_deleted(&folded, seen.revision);
            self.network_room_revive(&folded);
            return;
        }
        let state = seen
            .state
            .filter(|state| self.fold(&state.name) == folded && self.acceptable_room(state));
        if state.is_none() {
            warn!(room = %name, "a room's value in the bucket is not one this node accepts");
        }
        self.network_known(&folded, seen.revision, state.clone());
        if let Some(state) = state
            && self.channels.contains_key(&folded)
            && !self.network_room_is_writing(&folded)
        {
            self.apply_room_state(&folded, &state);
        }
    }

    /// Whether a value's name is one this node would let a room have.
    fn acceptable_room(&self, state: &RoomState) -> bool {
        crate::proto::validate::is_channel_name(&state.name)
            && state.name.len() <= self.config.limits.channel_length
            && !state.name.contains([' ', ',', '\x07', '\0', '\r', '\n'])
    }

    /// `folded`'s value was deleted: written again from this node's view
    /// when a member of this node is still there.
    fn network_room_revive(&self, folded: &Folded) {
        let local_member = self
            .channels
            .get(folded)
            .is_some_and(|channel| channel.members.keys().any(|member| self.is_local(*member)));
        let (Some(network), Some(channel)) = (&self.network, self.channels.get(folded)) else {
            return;
        };
        if local_member {
            let change = Change::Modes {
                changes: Vec::new(),
                by: self.server_name().to_owned(),
                at: seconds(self.clock.now()),
            };
            network
                .link
                .revive_room(folded.as_str(), value_of(channel), change);
        }
    }

    /// What `state` sets, each part checked as MODE and TOPIC check it; a
    /// part that does not pass is left unset.
    fn room_target(&self, state: &RoomState) -> Target {
        let casemapping = self.config.server.casemapping;
        let max_entries = self.config.limits.max_list_entries;
        let mut modes = ChannelModes::from_flags(&state.flags);
        modes.key = state
            .key
            .clone()
            .filter(|key| channel_mode::is_valid_key(key));
        modes.limit = state
            .limit
            .filter(|&limit| limit > 0)
            .and_then(|limit| usize::try_from(limit).ok());
        let list = |kind: ListKind, entries: &[EntryState]| {
            let letter = modes::list_letter(kind).unwrap_or('b');
            let kept = entries
                .iter()
                .filter_map(|entry| {
                    let (extban, mask) =
                        channel_mode::list_entry(&state.name, (letter, kind), &entry.mask)?;
                    let set_by = clean_source(&entry.by).unwrap_or("*").to_owned();
                    Some(ListEntry {
                        mask: Mask::new(&mask, casemapping),
                        extban,
                        set_by,
                        set_at: time_of(entry.at),
                    })
                })
                .take(max_entries)
                .collect();
            (letter, kind, kept)
        };
        let topic = state.topic.as_ref().and_then(|topic| {
            let text = truncate(&topic.text, self.config.limits.topic_length);
            let clean = !text.is_empty() && !text.contains(['\0', '\r', '\n']);
            clean.then(|| Topic {
                text: text.to_owned(),
                set_by: clean_source(&topic.by).unwrap_or("*").to_owned(),
                set_at: time_of(topic.at),
            })
        });
        Target {
            modes,
            lists: [
                list(ListKind::Bans, &state.bans),
                list(ListKind::Exceptions, &state.exceptions),
                list(ListKind::InviteExceptions, &state.invite_exceptions),
            ],
            topic,
            created: time_of(state.created),
        }
    }

    /// Makes `folded` what `state` says, telling its members here what
    /// changed as MODE and TOPIC lines from whoever made the change.
    fn apply_room_state(&mut self, folded: &Folded, state: &RoomState) {
        let target = self.room_target(state);
        let source = state
            .by
            .as_deref()
            .and_then(clean_source)
            .unwrap_or(self.server_name())
            .to_owned();
        let casemapping = self.config.server.casemapping;
        let Some(channel) = self.channels.get_mut(folded) else {
            return;
        };
        let mut changes = Vec::new();
        for (letter, flag) in modes::channel_flags() {
            let wanted = target.modes.flag(flag);
            if channel.modes.flag(flag) != wanted {
                changes.push((wanted, letter, None));
            }
        }
        if channel.modes.invite_only != target.modes.invite_only {
            channel.invited.clear();
        }
        if channel.modes.key != target.modes.key {
            let arg = target.modes.key.clone().unwrap_or_else(|| "*".to_owned());
            changes.push((target.modes.key.is_some(), 'k', Some(arg)));
        }
        if channel.modes.limit != target.modes.limit {
            let arg = target.modes.limit.map(|limit| limit.to_string());
            changes.push((target.modes.limit.is_some(), 'l', arg));
        }
        for (letter, kind, entries) in target.lists {
            let held = kind.entries(channel);
            let has = |list: &[ListEntry], text: &str| {
                list.iter().any(|entry| casemapping.eq(&entry.text(), text))
            };
            for entry in held.iter().filter(|entry| !has(&entries, &entry.text())) {
                changes.push((false, letter, Some(entry.text())));
            }
            for entry in entries.iter().filter(|entry| !has(held, &entry.text())) {
                changes.push((true, letter, Some(entry.text())));
            }
            *kind.entries_mut(channel) = entries;
        }
        channel.modes = target.modes;
        channel.created = target.created;
        let topic_changed = channel.topic.as_ref().map(|topic| &topic.text)
            != target.topic.as_ref().map(|topic| &topic.text);
        channel.topic = target.topic;
        let name = channel.name.clone();
        if changes.is_empty() && !topic_changed {
            return;
        }
        // Stored as another node's events are: by this node only while
        // it keeps its own history.
        let hearing_peer = std::mem::replace(&mut self.hearing_peer, true);
        self.announce_modes(folded, &name, &source, &changes);
        if topic_changed {
            self.announce_topic(folded, &name, &source);
        }
        self.hearing_peer = hearing_peer;
        self.save_room(folded);
    }

    /// Tells `folded`'s members of `changes`, a few per MODE line.
    fn announce_modes(
        &mut self,
        folded: &Folded,
        name: &str,
        source: &str,
        changes: &[(bool, char, Option<String>)],
    ) {
        let per_line = self.config.limits.modes_per_command.max(1);
        for group in changes.chunks(per_line) {
            let mut letters = String::new();
            let mut sign = None;
            for (adding, letter, _) in group {
                if sign != Some(*adding) {
                    letters.push(if *adding { '+' } else { '-' });
                    sign = Some(*adding);
                }
                letters.push(*letter);
            }
            let mut line = Line::new(Some(source), "MODE").arg(name).arg(&letters);
            for (_, _, arg) in group {
                if let Some(arg) = arg {
                    line = line.arg(arg);
                }
            }
            let mut event = self.broadcast(line.finish());
            self.record_event(folded, &event);
            self.send_to_members(folded, &mut event, |_, _| true);
        }
    }

    /// Tells `folded`'s members of its new topic, from its setter.
    fn announce_topic(&mut self, folded: &Folded, name: &str, source: &str) {
        let Some(channel) = self.channels.get(folded) else {
            return;
        };
        let (setter, text) = match &channel.topic {
            Some(topic) if topic.set_by != "*" => (topic.set_by.clone(), topic.text.clone()),
            Some(topic) => (source.to_owned(), topic.text.clone()),
            None => (source.to_owned(), String::new()),
        };
        let line = Line::new(Some(&setter), "TOPIC")
            .arg(name)
            .trailing(&text)
            .finish();
        let msgid = self.next_msgid();
        let mut event = self.broadcast(line).with_msgid(msgid);
        let record = NewRecord {
            target: HistoryTarget::Room(folded.clone()),
            display: name,
            sender: &setter,
            account: None,
            command: "TOPIC",
            text: &text,
        };
        let gate = self.record_history(record, &event);
        event.set_gate(gate);
        self.send_to_members(folded, &mut event, |_, _| true);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::core::network::Network;
    use crate::core::testing::Harness;
    use crate::network::{Heard, NetworkHandle};

    const OP: &str = "op!o@example.org";

    /// alice in #room on node a, which then joins a network.
    fn alice_in_a_room() -> Harness {
        let mut h = Harness::new();
        h.register("alice");
        h.send("alice", "JOIN #room");
        h.take("alice");
        let now = h.state.clock.now();
        let link = NetworkHandle::detached("a");
        h.state.network = Some(Box::new(Network::new(link, Duration::from_secs(3), now)));
        h
    }

    /// #room's value with the key `key` and a ban on `ban`.
    fn value(key: &str, ban: &str) -> RoomState {
        RoomState {
            version: rooms::VERSION,
            name: "#room".into(),
            created: 1_700_000_000,
            flags: "int".into(),
            key: Some(key.into()),
            limit: Some(5),
            topic: Some(TopicState {
                text: "hello".into(),
                by: OP.into(),
                at: 1_700_000_001,
            }),
            bans: vec![EntryState {
                mask: ban.into(),
                by: OP.into(),
                at: 1_700_000_002,
            }],
            by: Some(OP.into()),
            ..Default::default()
        }
    }

    fn seen(h: &mut Harness, revision: u64, state: RoomState) {
        let seen = Seen {
            key: rooms::key("#room"),
            revision,
            state: Some(Box::new(state)),
            deleted: false,
        };
        h.state.network_heard(Heard::RoomSeen(seen));
    }

    #[test]
    fn a_newer_value_is_applied_and_only_what_changed_is_announced() {
        let mut h = alice_in_a_room();
        seen(&mut h, 5, value("sesame", "troll!*@*"));
        assert_eq!(
            h.take("alice"),
            [
                format!(":{OP} MODE #room +iklb sesame 5 troll!*@*"),
                format!(":{OP} TOPIC #room :hello"),
            ]
        );
        assert_eq!(h.channel("#room").modes.key.as_deref(), Some("sesame"));
        seen(&mut h, 6, value("sesame", "troll!*@*"));
        assert!(h.take("alice").is_empty(), "nothing changed");
        seen(&mut h, 4, value("other", "troll!*@*"));
        assert!(h.take("alice").is_empty(), "an older value is not applied");
        assert_eq!(h.channel("#room").modes.key.as_deref(), Some("sesame"));
    }

    #[test]
    fn parts_of_a_value_mode_would_refuse_are_left_unset() {
        let mut h = alice_in_a_room();
        seen(&mut h, 5, value("sesame", "troll!*@*"));
        h.take("alice");
        seen(&mut h, 6, value("two words", "a b\r\nQUIT"));
        assert_eq!(
            h.take("alice"),
            [format!(":{OP} MODE #room -kb * troll!*@*")]
        );
        let channel = h.channel("#room");
        assert!(channel.modes.key.is_none() && channel.bans.is_empty());
    }

    /// alice on node a, in a network, joining rooms that are new here.
    fn alice_in_a_network() -> Harness {
        let mut h = Harness::new();
        h.register("alice");
        let now = h.state.clock.now();
        let link = NetworkHandle::detached("a");
        h.state.network = Some(Box::new(Network::new(link, Duration::from_secs(3), now)));
        h
    }

    fn created(h: &mut Harness, nick: &str, outcome: Created) {
        let uid = h.id(nick).0;
        h.state.network_heard(Heard::RoomCreated { uid, outcome });
    }

    #[test]
    fn a_new_rooms_joiner_waits_for_its_creation_and_gets_ops_if_it_won() {
        let mut h = alice_in_a_network();
        h.send("alice", "JOIN #new,#other");
        h.send("alice", "PING after");
        assert!(h.take("alice").is_empty(), "waiting for #new's creation");
        created(&mut h, "alice", Created::Won { revision: 1 });
        let lines = h.take("alice");
        assert!(lines[1].ends_with(" 353 alice = #new :@alice"), "{lines:?}");
        assert_eq!(lines.len(), 3, "#other waits in turn: {lines:?}");
        created(&mut h, "alice", Created::Won { revision: 2 });
        let lines = h.take("alice");
        assert!(
            lines[1].ends_with(" 353 alice = #other :@alice"),
            "{lines:?}"
        );
        assert_eq!(
            lines.last().map(String::as_str),
            Some(":irc.test PONG irc.test :after")
        );
    }

    #[test]
    fn a_creation_that_takes_longer_than_a_node_timeout_is_refused_with_437() {
        let mut h = alice_in_a_network();
        h.send("alice", "JOIN #slow");
        h.send("alice", "PING after");
        h.advance(2);
        h.handle(crate::core::Event::Tick);
        assert!(h.take("alice").is_empty(), "within a node timeout");
        h.advance(2);
        h.handle(crate::core::Event::Tick);
        assert_eq!(
            h.take("alice"),
            [
                ":irc.test 437 alice #slow :Nick/channel is temporarily unavailable",
                ":irc.test PONG irc.test :after",
            ]
        );
        // Its answer is still out: another new room waits for none.
        h.send("alice", "JOIN #next");
        let refused = h.take("alice");
        assert!(refused[0].contains(" 437 alice #next "), "{refused:?}");
        // The late answer, a win for no one, is taken; then #next may be
        // created.
        created(&mut h, "alice", Created::Won { revision: 1 });
        assert!(h.take("alice").is_empty());
        assert!(!h.state.channels.contains_key(&h.state.fold("#slow")));
        h.send("alice", "JOIN #next");
        assert!(h.take("alice").is_empty(), "waiting for #next's creation");
        created(&mut h, "alice", Created::Won { revision: 2 });
        let lines = h.take("alice");
        assert!(
            lines[1].ends_with(" 353 alice = #next :@alice"),
            "{lines:?}"
        );
    }

    #[test]
    fn a_labeled_join_answers_what_came_before_a_waiting_room_under_its_label() {
        let mut h = Harness::new();
        h.register("alice");
        h.register("bob");
        h.send("bob", "JOIN #known");
        let now = h.state.clock.now();
        let link = NetworkHandle::detached("a");
        h.state.network = Some(Box::new(Network::new(link, Duration::from_secs(3), now)));
        h.send("alice", "CAP REQ :labeled-response batch");
        h.take("alice");
        h.send("alice", "@label=j1 JOIN #known,#new");
        let lines = h.take("alice");
        assert!(
            lines[0].starts_with("@label=j1 :irc.test BATCH +"),
            "{lines:?}"
        );
        assert!(
            lines.iter().any(|l| l.contains(" JOIN #known")),
            "{lines:?}"
        );
        assert!(lines.iter().all(|l| !l.contains("#new")), "{lines:?}");
        created(&mut h, "alice", Created::Won { revision: 2 });
        let lines = h.take("alice");
        assert!(lines[0].ends_with(" JOIN #new"), "{lines:?}");
        assert!(lines.iter().all(|l| !l.contains("label")), "{lines:?}");
    }

    #[test]
    fn a_joiner_whose_creation_lost_meets_the_rooms_state() {
        let mut h = alice_in_a_network();
        h.send("alice", "JOIN #room");
        let exists = |key: &str| Created::Exists {
            revision: 3,
            state: Some(Box::new(RoomState {
                flags: "nt".into(),
                ..value(key, "troll!*@*")
            })),
        };
        created(&mut h, "alice", exists("sesame"));
        assert_eq!(
            h.take("alice"),
            [":irc.test 475 alice #room :Cannot join channel (+k)"]
        );
        assert!(!h.state.channels.contains_key(&h.state.fold("#room")));
        h.send("alice", "JOIN #room sesame");
        created(&mut h, "alice", exists("sesame"));
        let lines = h.take("alice");
        assert!(lines[1].ends_with(" 332 alice #room :hello"), "{lines:?}");
        assert!(
            lines[3].ends_with(" 353 alice = #room :alice"),
            "no ops: {lines:?}"
        );
    }

    /// alice on a node settled in its network, which saw #room's value
    /// `left` at revision 3 some `secs` ago, joins #room with `key`; the
    /// bucket answers with that value, and then with `Won` if taken over.
    fn join_a_left_room(left: RoomState, secs: u64, key: &str) -> Harness {
        let mut h = alice_in_a_network();
        if let Some(network) = h.state.network.as_mut() {
            network.joined -= Duration::from_secs(60);
        }
        seen(&mut h, 3, left.clone());
        h.advance(secs);
        h.send("alice", &format!("JOIN #room {key}"));
        let exists = Created::Exists {
            revision: 3,
            state: Some(Box::new(left)),
        };
        created(&mut h, "alice", exists);
        h
    }

    #[test]
    fn a_value_left_by_a_room_that_is_gone_is_taken_over_with_its_state() {
        let left = RoomState {
            flags: "mnt".into(),
            key: None,
            ..value("", "troll!*@*")
        };
        let mut h = join_a_left_room(left, 4, "");
        assert!(h.take("alice").is_empty(), "taking it over");
        created(&mut h, "alice", Created::Won { revision: 4 });
        let lines = h.take("alice");
        let names = lines.iter().find(|line| line.contains(" 353 "));
        assert!(
            names.is_some_and(|line| line.ends_with(":@alice")),
            "{lines:?}"
        );
        let channel = h.channel("#room");
        assert_eq!(channel.bans.len(), 1, "its bans are kept");
        assert!(channel.modes.moderated && channel.topic.is_some());
    }

    #[test]
    fn a_joiner_taking_over_a_left_value_is_checked_against_it() {
        let left = RoomState {
            flags: "nt".into(),
            ..value("sesame", "troll!*@*")
        };
        let mut h = join_a_left_room(left, 4, "");
        created(&mut h, "alice", Created::Won { revision: 4 });
        assert_eq!(
            h.take("alice"),
            [":irc.test 475 alice #room :Cannot join channel (+k)"]
        );
        assert!(!h.state.channels.contains_key(&h.state.fold("#room")));
    }

    #[test]
    fn a_value_this_node_heard_of_an_instant_ago_is_not_taken_over() {
        let left = RoomState {
            flags: "nt".into(),
            key: None,
            ..value("", "troll!*@*")
        };
        let mut h = join_a_left_room(left, 1, "");
        let lines = h.take("alice");
        let names = lines.iter().find(|line| line.contains(" 353 "));
        assert!(
            names.is_some_and(|line| line.ends_with(":alice")),
            "{lines:?}"
        );
    }

    #[test]
    fn a_node_new_to_the_network_takes_over_no_value() {
        let mut h = alice_in_a_network();
        let left = RoomState {
            flags: "nt".into(),
            key: None,
            ..value("", "troll!*@*")
        };
        seen(&mut h, 3, left.clone());
        h.advance(4);
        h.send("alice", "JOIN #room");
        let exists = Created::Exists {
            revision: 3,
            state: Some(Box::new(left)),
        };
        created(&mut h, "alice", exists);
        let lines = h.take("alice");
        let names = lines.iter().find(|line| line.contains(" 353 "));
        assert!(
            names.is_some_and(|line| line.ends_with(":alice")),
            "{lines:?}"
        );
    }

    #[test]
    fn a_new_room_is_refused_with_437_when_the_bucket_fails() {
        let mut h = alice_in_a_network();
        h.send("alice", "JOIN #new");
        created(&mut h, "alice", Created::Failed("no quorum".into()));
        assert_eq!(
            h.take("alice"),
            [":irc.test 437 alice #new :Nick/channel is temporarily unavailable"]
        );
    }

    #[test]
    fn another_nodes_value_waits_while_this_nodes_own_change_is_written() {
        let mut h = alice_in_a_room();
        h.send("alice", "MODE #room +i");
        assert_eq!(h.take("alice"), [":alice!~alice@127.0.0.1 MODE #room +i"]);
        let theirs = RoomState {
            flags: "mnt".into(),
            key: None,
            limit: None,
            topic: None,
            bans: Vec::new(),
            ..value("", "")
        };
        seen(&mut h, 5, theirs.clone());
        assert!(h.take("alice").is_empty(), "+i is not undone meanwhile");
        let ours = RoomState {
            flags: "imnt".into(),
            ..theirs
        };
        h.state.network_heard(Heard::RoomWritten {
            key: rooms::key("#room"),
            revision: 6,
            state: Box::new(ours),
            asked: true,
        });
        assert_eq!(h.take("alice"), [format!(":{OP} MODE #room +m")]);
    }

    #[test]
    fn a_write_the_core_did_not_count_does_not_end_the_wait_of_one_it_did() {
        let mut h = alice_in_a_room();
        h.send("alice", "MODE #room +i");
        h.take("alice");
        let theirs = RoomState {
            flags: "mnt".into(),
            key: None,
            limit: None,
            topic: None,
            bans: Vec::new(),
            ..value("", "")
        };
        seen(&mut h, 5, theirs.clone());
        // A hidden change of this node's applied again: not alice's +i.
        let written = |revision, flags: &str, asked| Heard::RoomWritten {
            key: rooms::key("#room"),
            revision,
            state: Box::new(RoomState {
                flags: flags.into(),
                ..theirs.clone()
            }),
            asked,
        };
        h.state.network_heard(written(6, "mnt", false));
        assert!(h.take("alice").is_empty(), "+i is not undone meanwhile");
        h.state.network_heard(written(7, "imnt", true));
        assert_eq!(h.take("alice"), [format!(":{OP} MODE #room +m")]);
    }

    #[test]
    fn a_value_under_a_key_that_is_not_its_rooms_is_ignored() {
        let mut h = alice_in_a_room();
        let mut other = value("sesame", "troll!*@*");
        other.name = "#elsewhere".into();
        seen(&mut h, 5, other);
        assert!(h.take("alice").is_empty());
        assert!(h.channel("#room").modes.key.is_none());
    }
}
