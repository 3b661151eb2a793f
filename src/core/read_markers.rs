//! draft/read-marker: where a person last read each target (a room or a
//! nick). A logged-in client's markers are its account's, shared by all
//! its connections and stored (the core holds every account's markers,
//! read once at startup, and hands each change to the worker to write);
//! a client that is not logged in has markers of its own connection,
//! gone when it leaves. A marker only ever moves forward.

use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

use super::caps::Caps;
use super::{AdminRequest, ClientId, State};
use crate::accounts::ReadMarkerRecord;
use crate::accounts::read_markers::MAX_MARKERS_PER_ACCOUNT;
use crate::config::Config;
use crate::network::wire::AccountChange;
use crate::proto::tags::server_time;
use crate::proto::{Folded, Line};

/// A marker: the target as last spelled, and the time read up to (ms).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marker {
    pub target: String,
    pub read_ms: i64,
}

/// One account's or one connection's markers, by folded target; at most
/// [`MAX_MARKERS_PER_ACCOUNT`], the least recently read going first.
#[derive(Debug, Default)]
pub struct TargetMarkers(HashMap<Folded, Marker>);

impl TargetMarkers {
    /// The time read up to in `target`, if a marker is set.
    pub fn get(&self, target: &Folded) -> Option<i64> {
        self.0.get(target).map(|marker| marker.read_ms)
    }

    /// Moves the marker in `target` forward to `read_ms`; returns the
    /// marker now in force and whether it moved.
    pub fn advance(&mut self, target: Folded, spelled: &str, read_ms: i64) -> (i64, bool) {
        if let Some(marker) = self.0.get_mut(&target) {
            if marker.read_ms >= read_ms {
                return (marker.read_ms, false);
            }
            marker.read_ms = read_ms;
            spelled.clone_into(&mut marker.target);
            return (read_ms, true);
        }
        if self.0.len() >= MAX_MARKERS_PER_ACCOUNT {
            self.evict_oldest();
        }
        let marker = Marker {
            target: spelled.to_owned(),
            read_ms,
        };
        self.0.insert(target, marker);
        (read_ms, true)
    }

    fn evict_oldest(&mut self) {
        let oldest = self
            .0
            .iter()
            .min_by_key(|(target, marker)| (marker.read_ms, (*target).clone()))
            .map(|(target, _)| target.clone());
        if let Some(oldest) = oldest {
            self.0.remove(&oldest);
        }
    }

    /// A renamed room's marker follows it; returns it, if there was one.
    /// A marker already held under the new name is not thrown back: the
    /// later of the two stays, as the store keeps it.
    pub fn rename(&mut self, old: &Folded, new: &Folded, display: &str) -> Option<i64> {
        let mut marker = self.0.remove(old)?;
        display.clone_into(&mut marker.target);
        if let Some(held) = self.0.get(new) {
            marker.read_ms = marker.read_ms.max(held.read_ms);
        }
        let read_ms = marker.read_ms;
        self.0.insert(new.clone(), marker);
        Some(read_ms)
    }

    /// Every marker, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Marker> {
        self.0.values()
    }
}

/// Every account's markers, by folded account name.
#[derive(Debug, Default)]
pub struct AccountReadMarkers(HashMap<Folded, TargetMarkers>);

impl AccountReadMarkers {
    /// The markers read from the store at startup.
    pub fn load(&mut self, config: &Config, records: Vec<ReadMarkerRecord>) {
        let fold = |name: &str| config.server.casemapping.fold(name);
        for record in records {
            let target = fold(&record.target);
            self.0.entry(fold(&record.account)).or_default().advance(
                target,
                &record.target,
                record.read_ms,
            );
        }
    }

    /// A renamed room's markers follow it: the accounts whose marker
    /// moved, with it, to be stored under the new name.
    pub fn rename(&mut self, old: &Folded, new: &Folded, display: &str) -> Vec<(Folded, i64)> {
        self.0
            .iter_mut()
            .filter_map(|(account, markers)| {
                let read_ms = markers.rename(old, new, display)?;
                Some((account.clone(), read_ms))
            })
            .collect()
    }

    /// Moves `account`'s marker in `target` forward (another node's move,
    /// stored there); returns the marker in force and whether it moved.
    pub fn advance(
        &mut self,
        account: Folded,
        target: Folded,
        spelled: &str,
        read_ms: i64,
    ) -> (i64, bool) {
        self.0
            .entry(account)
            .or_default()
            .advance(target, spelled, read_ms)
    }

    /// Whether `account` has markers here.
    pub fn holds(&self, account: &Folded) -> bool {
        self.0.contains_key(account)
    }

    /// A dropped account's markers go with it, as its rows do.
    pub fn forget(&mut self, account: &Folded) {
        self.0.remove(account);
    }
}

/// `timestamp=YYYY-MM-DDThh:mm:ss.sssZ` as ms since the epoch; `None`
/// for anything else, `*` included (a client may not set "nothing read").
pub fn parse_timestamp(param: &str) -> Option<i64> {
    let value = param.strip_prefix("timestamp=")?;
    let time = chrono::DateTime::parse_from_rfc3339(value).ok()?;
    Some(time.timestamp_millis()).filter(|ms| *ms >= 0)
}

impl State {
    /// The markers `id` reads and moves: its account's, or its own.
    fn markers_of(&self, id: ClientId) -> Option<&TargetMarkers> {
        let client = self.clients.get(&id)?;
        match &client.account {
            Some(account) => self.read_markers.0.get(&self.fold(account)),
            None => Some(&client.read_markers),
        }
    }

    /// The time `id` read `target` up to, if it set a marker there.
    pub fn read_marker(&self, id: ClientId, target: &str) -> Option<i64> {
        self.markers_of(id)?.get(&self.fold(target))
    }

    /// MARKREAD set: moves `id`'s marker in `target` forward. A move is
    /// stored (for an account) and told to every connection of the
    /// account with the capability; a marker that did not move is told
    /// back to `id` alone, as it stands.
    pub fn mark_read(&mut self, id: ClientId, target: &str, read_ms: i64) {
        let folded = self.fold(target);
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        let account = client.account.clone();
        let markers = match &account {
            Some(account) => {
                let key = self.config.server.casemapping.fold(account);
                self.read_markers.0.entry(key).or_default()
            }
            None => &mut client.read_markers,
        };
        let (now_read, moved) = markers.advance(folded, target, read_ms);
        match account.filter(|_| moved) {
            Some(account) => self.share_read_marker(account, target, now_read),
            None => self.send_read_marker(id, target, Some(now_read)),
        }
    }

    /// Stores an account's marker and tells every connection of it, here
    /// and (with shared accounts) on the other nodes.
    fn share_read_marker(&mut self, account: String, target: &str, read_ms: i64) {
        self.tell_read_marker(&account, target, read_ms);
        self.network_account(AccountChange::ReadMarker {
            account: account.clone(),
            target: target.to_owned(),
            read_ms,
        });
        self.admin
            .request(AdminRequest::SaveReadMarker(ReadMarkerRecord {
                account,
                target: target.to_owned(),
                read_ms,
                renamed_from: None,
            }));
    }

    /// Tells every capable connection of `account` its marker in `target`.
    pub(crate) fn tell_read_marker(&mut self, account: &str, target: &str, read_ms: i64) {
        let casemapping = self.config.server.casemapping;
        let told: Vec<ClientId> = self
            .clients
            .values()
            .filter(|client| client.caps.contains(Caps::READ_MARKER))
            .filter(|client| {
                client
                    .account
                    .as_deref()
                    .is_some_and(|theirs| casemapping.eq(theirs, account))
            })
            .map(|client| client.id)
            .collect();
        for id in told {
            self.send_read_marker(id, target, Some(read_ms));
        }
    }

    /// `:server MARKREAD <target> timestamp=<time>`, or `*` for none.
    pub fn send_read_marker(&mut self, id: ClientId, target: &str, read_ms: Option<i64>) {
        let value = match read_ms {
            Some(ms) => {
                let time = UNIX_EPOCH + Duration::from_millis(ms.max(0).unsigned_abs());
                format!("timestamp={}", server_time(time))
            }
            None => "*".to_owned(),
        };
        let line = Line::new(Some(self.server_name()), "MARKREAD")
            .arg(target)
            .arg(&value)
            .finish();
        self.send(id, line);
    }

    /// After the JOIN of `room` (before its 366), a capable client learns
    /// its marker there, as the spec requires.
    pub fn read_marker_on_join(&mut self, id: ClientId, room: &Folded) {
        let Some(name) = self.channels.get(room).map(|room| room.name.clone()) else {
            return;
        };
        if self
            .clients
            .get(&id)
            .is_some_and(|client| client.has_cap(Caps::READ_MARKER))
        {
            let read_ms = self.read_marker(id, &name);
            self.send_read_marker(id, &name, read_ms);
        }
    }

    /// Once registered and logged in, a capable client learns every marker
    /// of its account: the server keeps no connection in its rooms while
    /// the person is away, so no JOIN brings them back, and a client coming
    /// back (or a second device) should not wait for one to know where it was.
    pub fn read_markers_on_login(&mut self, id: ClientId) {
        let ready = self.clients.get(&id).is_some_and(|client| {
            client.registered && client.account.is_some() && client.caps.contains(Caps::READ_MARKER)
        });
        let Some(markers) = self.markers_of(id).filter(|_| ready) else {
            return;
        };
        let mut markers: Vec<Marker> = markers.iter().cloned().collect();
        markers.sort_unstable_by(|a, b| a.target.cmp(&b.target));
        for marker in markers {
            self.send_read_marker(id, &marker.target, Some(marker.read_ms));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TargetMarkers;
    use crate::proto::casemap::Casemapping;

    #[test]
    fn a_rename_onto_a_later_marker_keeps_the_later() {
        let folded = |name: &str| Casemapping::Ascii.fold(name);
        let mut markers = TargetMarkers::default();
        markers.advance(folded("#old"), "#old", 5);
        markers.advance(folded("#new"), "#new", 9);
        assert_eq!(
            markers.rename(&folded("#old"), &folded("#new"), "#new"),
            Some(9)
        );
        let kept: Vec<(String, i64)> = markers
            .iter()
            .map(|marker| (marker.target.clone(), marker.read_ms))
            .collect();
        assert_eq!(kept, [("#new".to_owned(), 9)]);
    }
}
