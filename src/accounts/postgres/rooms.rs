//! Registered rooms in the shared database: written whole, read all at
//! start, as the SQLite store does (`super::super::rooms`).

use postgres::{Client, Row};

use super::{PgAccounts, account_id, pair, taken};
use crate::accounts::metadata::check_room_metadata;
use crate::accounts::rooms::{AccessLevel, ListRecord, RoomRecord, TopicRecord, check_room};
use crate::accounts::store::AccountError;

impl PgAccounts {
    /// Writes a registered room whole; see [`crate::accounts::Store::save_room`].
    pub fn save_room(&mut self, room: &RoomRecord) -> Result<(), AccountError> {
        check_room(room)?;
        check_room_metadata(&room.metadata)?;
        let key = self.naming.key(&room.name);
        let founder_key = self.naming.key(&room.founder);
        let access: Vec<(String, AccessLevel)> = room
            .access
            .iter()
            .map(|(account, level)| (self.naming.key(account), *level))
            .collect();
        let written = (|| -> Result<(), AccountError> {
            let mut transaction = self.client.get_mut().transaction()?;
            let founder = account_id(&mut transaction, &founder_key)?
                .ok_or_else(|| AccountError::NotFound(room.founder.clone()))?;
            let stored = transaction.query_opt(
                "SELECT registered_ms FROM account_rooms WHERE name_key = $1 FOR UPDATE",
                &[&key],
            )?;
            let stored: Option<i64> = stored.map(|row| row.try_get(0)).transpose()?;
            if stored.is_some_and(|stored| stored != room.registered_ms) {
                return Err(AccountError::RoomTaken(room.name.clone()));
            }
            transaction.execute("DELETE FROM account_rooms WHERE name_key = $1", &[&key])?;
            let topic = room.topic.as_ref();
            let limit = room.limit.map(i64::from);
            let id: i64 = transaction
                .query_one(
                    "INSERT INTO account_rooms (name, name_key, founder, registered_ms,
                         history_floor_ms, topic, topic_by, topic_ms, modes, channel_key,
                         member_limit)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
                    &[
                        &room.name,
                        &key,
                        &founder,
                        &room.registered_ms,
                        &room.history_floor_ms,
                        &topic.map(|t| &t.text),
                        &topic.map(|t| &t.set_by),
                        &topic.map(|t| t.set_ms),
                        &room.modes,
                        &room.key,
                        &limit,
                    ],
                )?
                .try_get(0)?;
            for (account_key, level) in &access {
                let Some(account) = account_id(&mut transaction, account_key)? else {
                    continue;
                };
                transaction.execute(
                    "INSERT INTO account_room_access (room, account, level) VALUES ($1, $2, $3)
                     ON CONFLICT (room, account) DO UPDATE SET level = excluded.level",
                    &[&id, &account, &level.as_str()],
                )?;
            }
            for (position, entry) in room.lists.iter().enumerate() {
                transaction.execute(
                    "INSERT INTO account_room_lists (room, mode, position, mask, set_by, set_ms)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    &[
                        &id,
                        &entry.mode.to_string(),
                        &(position as i64),
                        &entry.mask,
                        &entry.set_by,
                        &entry.set_ms,
                    ],
                )?;
            }
            for (key, value) in &room.metadata {
                transaction.execute(
                    "INSERT INTO account_room_metadata (room, key, value) VALUES ($1, $2, $3)
                     ON CONFLICT (room, key) DO UPDATE SET value = excluded.value",
                    &[&id, key, value],
                )?;
            }
            transaction.commit()?;
            Ok(())
        })();
        written.map_err(|error| taken(error, &room.name))
    }

    /// Moves a registered room to a new name; true when it was stored.
    pub fn rename_room(&mut self, old: &str, new: &str) -> Result<bool, AccountError> {
        let (old_key, new_key) = (self.naming.key(old), self.naming.key(new));
        let moved = self
            .client
            .get_mut()
            .execute(
                "UPDATE account_rooms SET name = $1, name_key = $2 WHERE name_key = $3",
                &[&new, &new_key, &old_key],
            )
            .map_err(|error| taken(error.into(), new))?;
        Ok(moved > 0)
    }

    /// Forgets a registered room; true when it was registered.
    pub fn drop_room(&mut self, name: &str) -> Result<bool, AccountError> {
        let removed = self.client.get_mut().execute(
            "DELETE FROM account_rooms WHERE name_key = $1",
            &[&self.naming.key(name)],
        )?;
        Ok(removed > 0)
    }

    /// Every registered room, in name order.
    pub fn rooms(&self) -> Result<Vec<RoomRecord>, AccountError> {
        if !self.has_tables {
            return Ok(Vec::new());
        }
        let mut client = self.client.borrow_mut();
        let rows = client.query(
            "SELECT r.id, r.name, a.name, r.registered_ms, r.history_floor_ms, r.topic,
                    r.topic_by, r.topic_ms, r.modes, r.channel_key, r.member_limit
             FROM account_rooms r JOIN accounts a ON a.id = r.founder ORDER BY r.name_key",
            &[],
        )?;
        let mut rooms = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: i64 = row.try_get(0)?;
            let mut room = room_from_row(row)?;
            room.access = room_access(&mut client, id)?;
            room.lists = room_lists(&mut client, id)?;
            let metadata = client.query(
                "SELECT key, value FROM account_room_metadata WHERE room = $1 ORDER BY key",
                &[&id],
            )?;
            room.metadata = metadata.iter().map(pair).collect::<Result<_, _>>()?;
            rooms.push(room);
        }
        Ok(rooms)
    }
}

fn room_from_row(row: &Row) -> Result<RoomRecord, postgres::Error> {
    let topic = match row.try_get::<_, Option<String>>(5)? {
        Some(text) => Some(TopicRecord {
            text,
            set_by: row.try_get(6)?,
            set_ms: row.try_get(7)?,
        }),
        None => None,
    };
    let limit: Option<i64> = row.try_get(10)?;
    Ok(RoomRecord {
        name: row.try_get(1)?,
        founder: row.try_get(2)?,
        access: Vec::new(),
        registered_ms: row.try_get(3)?,
        history_floor_ms: row.try_get(4)?,
        topic,
        modes: row.try_get(8)?,
        key: row.try_get(9)?,
        limit: limit.and_then(|limit| u32::try_from(limit).ok()),
        lists: Vec::new(),
        metadata: Vec::new(),
    })
}

fn room_access(client: &mut Client, room: i64) -> Result<Vec<(String, AccessLevel)>, AccountError> {
    let rows = client.query(
        "SELECT a.name, x.level FROM account_room_access x JOIN accounts a ON a.id = x.account
         WHERE x.room = $1 ORDER BY x.added",
        &[&room],
    )?;
    let mut access = Vec::with_capacity(rows.len());
    for row in &rows {
        let level: String = row.try_get(1)?;
        // The schema admits only the two words.
        if let Some(level) = AccessLevel::parse(&level) {
            access.push((row.try_get(0)?, level));
        }
    }
    Ok(access)
}

fn room_lists(client: &mut Client, room: i64) -> Result<Vec<ListRecord>, AccountError> {
    let rows = client.query(
        "SELECT mode, mask, set_by, set_ms FROM account_room_lists WHERE room = $1
         ORDER BY position",
        &[&room],
    )?;
    let entry = |row: &Row| -> Result<ListRecord, postgres::Error> {
        let mode: String = row.try_get(0)?;
        Ok(ListRecord {
            mode: mode.chars().next().unwrap_or('b'),
            mask: row.try_get(1)?,
            set_by: row.try_get(2)?,
            set_ms: row.try_get(3)?,
        })
    };
    Ok(rows.iter().map(entry).collect::<Result<_, _>>()?)
}
