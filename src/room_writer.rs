//! Registered rooms' and read markers' writes, on a task of their own so
//! that account jobs never wait behind them. Each room has at most one
//! write pending, the latest state of the room: a flood of TOPIC or MODE
//! changes in one room queues one record, not one per change. Likewise
//! each account's marker in each target: a flood of MARKREAD queues one.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing::error;

use crate::accounts::{Accounts, Naming, Place, ReadMarkerRecord, RoomRecord};

/// What is still to be written for one room: a drop of the registration
/// stored before (when the room was dropped since), the move of its stored
/// registration from the name it had (when it was renamed since), then its
/// latest record (when it is registered now).
#[derive(Clone, Debug, PartialEq)]
pub struct RoomWrite {
    pub name: String,
    pub drop_first: bool,
    pub moved_from: Option<String>,
    pub save: Option<RoomRecord>,
}

/// One write of the queue.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    Room(Box<RoomWrite>),
    ReadMarker(ReadMarkerRecord),
}

/// The rooms with a write pending, one slot each, keyed by folded name;
/// and the read markers, one slot per folded account and target.
#[derive(Debug, Default)]
pub struct RoomQueue {
    rooms: BTreeMap<String, RoomWrite>,
    markers: BTreeMap<(String, String), ReadMarkerRecord>,
    closed: bool,
}

impl RoomQueue {
    /// The room's latest record, replacing any record still unwritten.
    pub fn save(&mut self, key: String, record: RoomRecord) {
        let name = record.name.clone();
        self.slot(key, name).save = Some(record);
    }

    /// Forgets the room's registration, and any record still unwritten.
    pub fn drop_room(&mut self, key: String, name: String) {
        let slot = self.slot(key, name);
        slot.drop_first = true;
        slot.save = None;
    }

    /// A registered room renamed from `old_name`: one write, under the new
    /// key, moves its stored row and then saves `record`. A pending write
    /// under the old key is taken in (taken later, it would register the
    /// old name again); only its drop of a stale registration stays.
    pub fn rename(&mut self, old_key: String, old_name: String, key: String, record: RoomRecord) {
        let old = self.rooms.remove(&old_key);
        let moved_from = match &old {
            Some(old) if old.drop_first => {
                let stale = old.moved_from.clone();
                self.drop_room(old_key, old_name);
                stale
            }
            Some(old) => Some(old.moved_from.clone().unwrap_or(old_name)),
            None => Some(old_name),
        };
        let slot = self.slot(key, record.name.clone());
        slot.moved_from = moved_from;
        slot.save = Some(record);
    }

    fn slot(&mut self, key: String, name: String) -> &mut RoomWrite {
        self.rooms.entry(key).or_insert(RoomWrite {
            name,
            drop_first: false,
            moved_from: None,
            save: None,
        })
    }

    /// The account's latest marker in a target, replacing any unwritten.
    /// A marker moved by a rename (`moved_from`, the old target's key)
    /// takes the old target's unwritten write in: taken after this one, it
    /// would bring the old row back. The move of the row, once asked for,
    /// stays asked for when a later marker replaces this one.
    pub fn save_marker(
        &mut self,
        key: (String, String),
        mut marker: ReadMarkerRecord,
        moved_from: Option<(String, String)>,
    ) {
        if let Some(old) = moved_from.and_then(|old| self.markers.remove(&old)) {
            marker.read_ms = marker.read_ms.max(old.read_ms);
        }
        if let Some(pending) = self.markers.get(&key) {
            marker.renamed_from = marker.renamed_from.or(pending.renamed_from.clone());
        }
        self.markers.insert(key, marker);
    }

    /// The next write, taking it out of the queue: rooms first.
    pub fn take(&mut self) -> Option<Write> {
        if let Some((_, write)) = self.rooms.pop_first() {
            return Some(Write::Room(Box::new(write)));
        }
        self.markers
            .pop_first()
            .map(|(_, marker)| Write::ReadMarker(marker))
    }

    /// Rooms with a write pending.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.rooms.len()
    }
}

/// The handle the worker keeps: it queues writes and, at shutdown, waits
/// for the last of them.
pub struct RoomWriter {
    queue: Arc<Mutex<RoomQueue>>,
    wake: Arc<Notify>,
    naming: Naming,
    task: JoinHandle<()>,
}

impl RoomWriter {
    /// Starts the writing task on the account tables at `place`.
    pub fn start(place: Place, naming: Naming) -> RoomWriter {
        let queue = Arc::new(Mutex::new(RoomQueue::default()));
        let wake = Arc::new(Notify::new());
        let store = (place, naming);
        let task = tokio::spawn(write_rooms(Arc::clone(&queue), Arc::clone(&wake), store));
        RoomWriter {
            queue,
            wake,
            naming,
            task,
        }
    }

    /// Queues the room's latest record.
    pub fn save(&self, record: RoomRecord) {
        let key = self
            .naming
            .casemapping
            .fold(&record.name)
            .as_str()
            .to_owned();
        self.with_queue(|queue| queue.save(key, record));
    }

    /// Queues an account's read marker in a target.
    pub fn save_marker(&self, marker: ReadMarkerRecord) {
        let fold = |name: &str| self.naming.casemapping.fold(name).as_str().to_owned();
        let key = (fold(&marker.account), fold(&marker.target));
        let moved_from = marker
            .renamed_from
            .as_deref()
            .map(|old| (key.0.clone(), fold(old)));
        self.with_queue(|queue| queue.save_marker(key, marker, moved_from));
    }

    /// Queues a registered room's rename from `old_name`, with its record.
    pub fn rename(&self, old_name: String, record: RoomRecord) {
        let fold = |name: &str| self.naming.casemapping.fold(name).as_str().to_owned();
        let (old_key, key) = (fold(&old_name), fold(&record.name));
        self.with_queue(|queue| queue.rename(old_key, old_name, key, record));
    }

    /// Queues the room's unregistration.
    pub fn drop_room(&self, name: String) {
        let key = self.naming.casemapping.fold(&name).as_str().to_owned();
        self.with_queue(|queue| queue.drop_room(key, name));
    }

    /// Writes what is pending, then stops.
    pub async fn finish(self) {
        self.with_queue(|queue| queue.closed = true);
        if let Err(error) = self.task.await {
            error!("the registered room writer failed: {error}");
        }
    }

    fn with_queue(&self, change: impl FnOnce(&mut RoomQueue)) {
        change(&mut self.queue.lock().unwrap_or_else(PoisonError::into_inner));
        self.wake.notify_one();
    }
}

/// Writes the queue's rooms one at a time until it is closed and empty.
async fn write_rooms(
    queue: Arc<Mutex<RoomQueue>>,
    wake: Arc<Notify>,
    (place, naming): (Place, Naming),
) {
    loop {
        let next = {
            let mut queue = queue.lock().unwrap_or_else(PoisonError::into_inner);
            match queue.take() {
                None if queue.closed => return,
                next => next,
            }
        };
        match next {
            Some(write) => store(&place, naming, write).await,
            None => wake.notified().await,
        }
    }
}

async fn store(place: &Place, naming: Naming, write: Write) {
    let place = place.clone();
    let written = tokio::task::spawn_blocking(move || {
        let mut store = Accounts::open(&place, naming)?;
        match write {
            Write::Room(write) => store_room(&mut store, &write),
            Write::ReadMarker(marker) => store.save_read_marker(&marker),
        }
    })
    .await;
    match written {
        Ok(Ok(())) => {}
        Ok(Err(error)) => error!("cannot store a registered room or read marker: {error}"),
        Err(error) => error!("the registered room writer failed: {error}"),
    }
}

fn store_room(
    store: &mut Accounts,
    write: &RoomWrite,
) -> Result<(), crate::accounts::AccountError> {
    if write.drop_first {
        store.drop_room(&write.name)?;
    }
    if let Some(old) = &write.moved_from {
        store.rename_room(old, &write.name)?;
    }
    match &write.save {
        Some(record) => store.save_room(record),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::{RoomQueue, RoomWrite, Write};
    use crate::accounts::{ReadMarkerRecord, RoomRecord};

    fn take_room(queue: &mut RoomQueue) -> RoomWrite {
        match queue.take() {
            Some(Write::Room(write)) => *write,
            other => panic!("expected a room write, got {other:?}"),
        }
    }

    fn record(name: &str, topic_ms: i64) -> RoomRecord {
        RoomRecord {
            name: name.into(),
            founder: "alice".into(),
            access: Vec::new(),
            registered_ms: 1,
            history_floor_ms: topic_ms,
            topic: None,
            modes: String::new(),
            key: None,
            limit: None,
            lists: Vec::new(),
            metadata: Vec::new(),
        }
    }

    #[test]
    fn a_flood_of_changes_to_one_room_leaves_one_write_of_its_latest_state() {
        let mut queue = RoomQueue::default();
        for change in 0..10_000 {
            queue.save("#flood".into(), record("#flood", change));
        }
        queue.save("#calm".into(), record("#calm", 0));
        assert_eq!(queue.len(), 2);
        let calm = take_room(&mut queue);
        let flood = take_room(&mut queue);
        assert_eq!(calm.name, "#calm");
        assert_eq!(flood.save, Some(record("#flood", 9_999)));
        assert!(queue.take().is_none());
    }

    #[test]
    fn a_drop_then_a_new_registration_writes_both_in_order() {
        let mut queue = RoomQueue::default();
        queue.save("#room".into(), record("#room", 1));
        queue.drop_room("#room".into(), "#room".into());
        let dropped = take_room(&mut queue);
        assert!(dropped.drop_first && dropped.save.is_none());
        queue.drop_room("#room".into(), "#room".into());
        queue.save("#room".into(), record("#room", 2));
        let replaced = take_room(&mut queue);
        assert!(replaced.drop_first);
        assert_eq!(replaced.save, Some(record("#room", 2)));
    }

    #[test]
    fn a_rename_is_one_write_that_takes_in_the_old_names_pending_save() {
        let mut queue = RoomQueue::default();
        queue.save("#zed".into(), record("#zed", 1));
        queue.rename(
            "#zed".into(),
            "#zed".into(),
            "#abc".into(),
            record("#abc", 2),
        );
        let renamed = take_room(&mut queue);
        assert_eq!(renamed.name, "#abc");
        assert_eq!(renamed.moved_from.as_deref(), Some("#zed"));
        assert_eq!(renamed.save, Some(record("#abc", 2)));
        assert!(!renamed.drop_first);
        assert!(queue.take().is_none(), "nothing is written under #zed");
    }

    #[test]
    fn a_flood_of_markers_in_one_target_leaves_one_write_after_the_rooms() {
        let mut queue = RoomQueue::default();
        let key = || ("alice".to_owned(), "#room".to_owned());
        for read_ms in 0..1_000 {
            let marker = ReadMarkerRecord {
                account: "alice".into(),
                target: "#room".into(),
                read_ms,
                renamed_from: None,
            };
            queue.save_marker(key(), marker, None);
        }
        queue.save("#room".into(), record("#room", 1));
        assert_eq!(take_room(&mut queue).name, "#room");
        match queue.take() {
            Some(Write::ReadMarker(marker)) => assert_eq!(marker.read_ms, 999),
            other => panic!("expected the latest marker, got {other:?}"),
        }
        assert!(queue.take().is_none());
    }

    fn marker(target: &str, read_ms: i64, renamed_from: Option<&str>) -> ReadMarkerRecord {
        ReadMarkerRecord {
            account: "alice".into(),
            target: target.into(),
            read_ms,
            renamed_from: renamed_from.map(str::to_owned),
        }
    }

    #[test]
    fn a_rename_takes_in_the_old_names_unwritten_marker() {
        let mut queue = RoomQueue::default();
        let key = |target: &str| ("alice".to_owned(), target.to_owned());
        // "#zed" sorts after "#abc": left in the queue, the old name's
        // write would be taken after the move and bring its row back.
        queue.save_marker(key("#zed"), marker("#zed", 7, None), None);
        let moved = marker("#abc", 5, Some("#zed"));
        queue.save_marker(key("#abc"), moved, Some(key("#zed")));
        queue.save_marker(key("#abc"), marker("#abc", 9, None), None);
        match queue.take() {
            Some(Write::ReadMarker(written)) => {
                assert_eq!(written, marker("#abc", 9, Some("#zed")));
            }
            other => panic!("expected the moved marker, got {other:?}"),
        }
        assert!(queue.take().is_none(), "no write under the old name");
    }
}
