//! Registered rooms (ChanServ) as the core keeps them: a founder account
//! and an access list on the room ([`Registration`]), the status they give
//! on joining and on logging in, and the whole room handed to the worker
//! to store whenever it changes. The core holds every registered room from
//! startup ([`State::load_registered_rooms`]); like a `[[room]]`, one
//! outlives its last member, so its history is one incarnation.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::commands::chanserv;
use super::extban;
use super::{AdminRequest, Channel, ChannelModes, ClientId, ListEntry, State, Topic};
use crate::accounts::{AccessLevel, ListRecord, RoomRecord, TopicRecord};
use crate::history::millis;
use crate::proto::mask::Mask;
use crate::proto::modes::{self, ChannelModeKind, MemberStatus};
use crate::proto::{Folded, Line};

/// A registered room's owners.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// The founder's account, as registered.
    pub founder: String,
    /// Accounts and what they get, in the order they were added; at most
    /// [`crate::accounts::rooms::MAX_ACCESS_ENTRIES`].
    pub access: Vec<(String, AccessLevel)>,
    pub registered_ms: i64,
}

impl State {
    /// What `account` is owed in `channel`: op for its founder, else its
    /// access entry; nothing in an unregistered room.
    pub fn room_level(&self, channel: &Channel, account: &str) -> Option<AccessLevel> {
        let registration = channel.registration.as_ref()?;
        let casemapping = self.config.server.casemapping;
        if casemapping.eq(&registration.founder, account) {
            return Some(AccessLevel::Op);
        }
        registration
            .access
            .iter()
            .find(|(listed, _)| casemapping.eq(listed, account))
            .map(|(_, level)| *level)
    }

    /// Gives `id` the status its account is owed in `folded`, announced by
    /// ChanServ; a member without an account, or owed nothing, is left as
    /// it is.
    pub fn grant_owed_status(&mut self, id: ClientId, folded: &Folded) {
        let (Some(client), Some(channel)) = (self.clients.get(&id), self.channels.get(folded))
        else {
            return;
        };
        let Some(account) = client.account.as_deref() else {
            return;
        };
        let status = match self.room_level(channel, account) {
            Some(AccessLevel::Op) => MemberStatus::Op,
            Some(AccessLevel::Voice) => MemberStatus::Voice,
            None => return,
        };
        self.set_status(id, folded, status, true);
    }

    /// On logging in: the status owed in every registered room `id` is in.
    pub fn grant_owed_status_everywhere(&mut self, id: ClientId) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let mut rooms: Vec<Folded> = client.channels.iter().cloned().collect();
        rooms.sort_unstable();
        for folded in rooms {
            self.grant_owed_status(id, &folded);
        }
    }

    /// Sets or takes `status` of member `id` and tells the room, as
    /// ChanServ; nothing when it already is so.
    pub fn set_status(&mut self, id: ClientId, folded: &Folded, status: MemberStatus, on: bool) {
        let Some(nick) = self.clients.get(&id).map(|client| client.nick.clone()) else {
            return;
        };
        let Some(channel) = self.channels.get_mut(folded) else {
            return;
        };
        let Some(membership) = channel.members.get_mut(&id) else {
            return;
        };
        let held = membership.status_mut(status);
        if *held == on {
            return;
        }
        *held = on;
        let letter = modes::status_modes()
            .find(|mode| mode.status == status)
            .map_or('o', |mode| mode.letter);
        let change = format!("{}{letter}", if on { '+' } else { '-' });
        let line = Line::new(Some(chanserv::SOURCE), "MODE")
            .arg(&channel.name)
            .arg(&change)
            .arg(&nick)
            .finish();
        let mut event = self.broadcast(line);
        self.send_to_members(folded, &mut event, |_, _| true);
    }

    /// Hands the worker the room as it is now, when it is registered.
    pub fn save_room(&mut self, folded: &Folded) {
        let Some(record) = self.channels.get(folded).and_then(room_record) else {
            return;
        };
        self.admin.request(AdminRequest::SaveRoom(record));
    }

    /// Hands the worker a registered room renamed from `old`, as it is now.
    pub fn save_renamed_room(&mut self, old: String, folded: &Folded) {
        let Some(record) = self.channels.get(folded).and_then(room_record) else {
            return;
        };
        self.admin.request(AdminRequest::RenameRoom { old, record });
    }

    /// A dropped account's rooms, as the store already has them (its rows
    /// go with the account): the rooms it founded are no longer
    /// registered, and it leaves every access list. Members keep the
    /// status they hold now; an emptied room (not a `[[room]]`) goes.
    pub fn forget_rooms_of(&mut self, account: &str) {
        let casemapping = self.config.server.casemapping;
        let mut emptied = Vec::new();
        for (folded, channel) in &mut self.channels {
            let Some(registration) = &mut channel.registration else {
                continue;
            };
            if casemapping.eq(&registration.founder, account) {
                channel.registration = None;
                if channel.members.is_empty() && !channel.persistent {
                    emptied.push(folded.clone());
                }
            } else {
                registration
                    .access
                    .retain(|(listed, _)| !casemapping.eq(listed, account));
            }
        }
        for folded in emptied {
            self.destroy_room(&folded);
        }
    }

    /// Creates (or, for a `[[room]]`, completes) the registered rooms the
    /// store held at startup.
    pub fn load_registered_rooms(&mut self, rooms: Vec<RoomRecord>) {
        let casemapping = self.config.server.casemapping;
        let max_entries = self.config.limits.max_list_entries;
        let now = self.clock.now();
        for record in rooms {
            let folded = self.fold(&record.name);
            let channel = self
                .channels
                .entry(folded)
                .or_insert_with(|| Channel::new(&record.name, now));
            restore(channel, record, casemapping, max_entries);
        }
    }
}

/// The room as the store keeps it; `None` when it is not registered.
pub fn room_record(channel: &Channel) -> Option<RoomRecord> {
    let registration = channel.registration.as_ref()?;
    let flags: String = modes::channel_flags()
        .filter(|(_, flag)| channel.modes.flag(*flag))
        .map(|(letter, _)| letter)
        .collect();
    let lists = modes::CHANNEL_MODES
        .iter()
        .filter_map(|mode| match mode.kind {
            ChannelModeKind::List(kind) => Some((mode.letter, kind.entries(channel))),
            _ => None,
        });
    let lists = lists
        .flat_map(|(letter, entries)| entries.iter().map(move |entry| list_record(letter, entry)))
        .collect();
    Some(RoomRecord {
        name: channel.name.clone(),
        founder: registration.founder.clone(),
        access: registration.access.clone(),
        registered_ms: registration.registered_ms,
        history_floor_ms: channel.history_floor,
        topic: channel.topic.as_ref().map(|topic| TopicRecord {
            text: topic.text.clone(),
            set_by: topic.set_by.clone(),
            set_ms: millis(topic.set_at),
        }),
        modes: flags,
        key: channel.modes.key.clone(),
        limit: channel
            .modes
            .limit
            .map(|limit| u32::try_from(limit).unwrap_or(u32::MAX)),
        lists,
        metadata: channel
            .metadata
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect(),
    })
}

fn list_record(letter: char, entry: &ListEntry) -> ListRecord {
    ListRecord {
        mode: letter,
        mask: entry.text(),
        set_by: entry.set_by.clone(),
        set_ms: millis(entry.set_at),
    }
}

/// Gives `channel` what the store kept of it. Entries that no longer
/// parse (an extban type since removed) and those past the configured
/// list length are left out.
fn restore(
    channel: &mut Channel,
    record: RoomRecord,
    casemapping: crate::proto::Casemapping,
    max_entries: usize,
) {
    let mut modes = ChannelModes::from_flags(&record.modes);
    modes.key = record.key;
    modes.limit = record.limit.map(|limit| limit as usize);
    channel.modes = modes;
    channel.topic = record.topic.map(|topic| Topic {
        text: topic.text,
        set_by: topic.set_by,
        set_at: time_of(topic.set_ms),
    });
    channel.history_floor = record.history_floor_ms;
    channel.metadata = record.metadata.into_iter().collect();
    for entry in record.lists {
        let Some(ChannelModeKind::List(kind)) = modes::channel_mode(entry.mode) else {
            continue;
        };
        let (extban, mask) = match extban::parse(&entry.mask) {
            extban::Parsed::Plain(mask) => (None, mask),
            extban::Parsed::Extended(extban, mask) => (Some(extban), mask),
            extban::Parsed::Unknown => continue,
        };
        let list = kind.entries_mut(channel);
        if list.len() < max_entries {
            list.push(ListEntry {
                mask: Mask::new(mask, casemapping),
                extban,
                set_by: entry.set_by,
                set_at: time_of(entry.set_ms),
            });
        }
    }
    channel.registration = Some(Registration {
        founder: record.founder,
        access: record.access,
        registered_ms: record.registered_ms,
    });
}

fn time_of(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}
