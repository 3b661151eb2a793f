//! Registered rooms (ChanServ): each room's founder account, its access
//! list, and what it keeps across restarts and across emptying (topic,
//! modes, key, limit, the b/e/I lists). The server holds every registered
//! room in memory and writes a room whole whenever it changes; it reads
//! them all once at startup.

use rusqlite::{OptionalExtension, Transaction, params};

use super::store::{AccountError, MAX_NAME_LEN, Store, account_id};

/// The longest room name stored, in bytes (`[limits] channel_length` is at
/// most 200).
pub const MAX_ROOM_NAME_LEN: usize = 200;
/// The longest topic stored, in bytes (`[limits] topic_length` is at most 400).
pub const MAX_TOPIC_LEN: usize = 400;
/// The longest `nick!user@host` of a topic's or list entry's setter.
pub const MAX_SETTER_LEN: usize = 512;
/// The longest list mask stored, extban prefix included.
pub const MAX_MASK_LEN: usize = 160;
/// The longest key stored.
pub const MAX_KEY_LEN: usize = 64;
/// Flag letters a room may have.
pub const MAX_MODES_LEN: usize = 32;
/// Accounts one room's access list may hold.
pub const MAX_ACCESS_ENTRIES: usize = 100;
/// Entries of one list (b, e or I) stored; also the most `[limits]
/// max_list_entries` may be, so a room's lists always fit.
pub const MAX_LIST_ENTRIES: usize = 1000;

/// What an access-listed account gets on joining its room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessLevel {
    Op,
    Voice,
}

impl AccessLevel {
    /// The word ChanServ and the store write it as.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessLevel::Op => "op",
            AccessLevel::Voice => "voice",
        }
    }

    /// `op` or `voice`, in any case.
    pub fn parse(word: &str) -> Option<AccessLevel> {
        match word.to_ascii_lowercase().as_str() {
            "op" => Some(AccessLevel::Op),
            "voice" => Some(AccessLevel::Voice),
            _ => None,
        }
    }
}

/// A topic as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicRecord {
    pub text: String,
    pub set_by: String,
    pub set_ms: i64,
}

/// One b/e/I entry as stored: its mode letter and its text as listed
/// (`~a:account` for an extban).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListRecord {
    pub mode: char,
    pub mask: String,
    pub set_by: String,
    pub set_ms: i64,
}

/// A registered room as stored: a plain record the core builds from its
/// room and builds its room from, and the store writes whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomRecord {
    /// As its founder spelled it.
    pub name: String,
    /// The founder's account name, as registered.
    pub founder: String,
    /// Accounts and what they get, in the order they were added.
    pub access: Vec<(String, AccessLevel)>,
    pub registered_ms: i64,
    /// Where the room's history starts (kept across restarts: the room is
    /// one incarnation for as long as it is registered).
    pub history_floor_ms: i64,
    pub topic: Option<TopicRecord>,
    /// Flag letters, as `ntR`.
    pub modes: String,
    pub key: Option<String>,
    pub limit: Option<u32>,
    pub lists: Vec<ListRecord>,
    /// Its IRCv3 metadata: keys and values, at most
    /// [`super::metadata::MAX_KEYS_PER_ACCOUNT`].
    pub metadata: Vec<(String, String)>,
}

impl Store {
    /// Writes a registered room whole, replacing what was stored under its
    /// name by the same registration (same registration time; a TRANSFER
    /// keeps it). A different registration of a name stored already is
    /// refused: a room is registered anew only after its drop is written.
    /// The founder must exist; an access entry whose account is gone
    /// (dropped since it was added) is left out, as it would have gone
    /// with the account.
    pub fn save_room(&mut self, room: &RoomRecord) -> Result<(), AccountError> {
        check_room(room)?;
        super::metadata::check_room_metadata(&room.metadata)?;
        let key = self.naming().key(&room.name);
        let founder_key = self.naming().key(&room.founder);
        let access: Vec<(String, AccessLevel)> = room
            .access
            .iter()
            .map(|(account, level)| (self.naming().key(account), *level))
            .collect();
        let transaction = self.connection().transaction()?;
        let founder = account_named(&transaction, &founder_key, &room.founder)?;
        let stored: Option<i64> = transaction
            .query_row(
                "SELECT registered_ms FROM account_rooms WHERE name_key = ?1",
                [&key],
                |row| row.get(0),
            )
            .optional()?;
        if stored.is_some_and(|stored| stored != room.registered_ms) {
            return Err(AccountError::RoomTaken(room.name.clone()));
        }
        transaction.execute("DELETE FROM account_rooms WHERE name_key = ?1", [&key])?;
        transaction.execute(
            "INSERT INTO account_rooms (name, name_key, founder, registered_ms, history_floor_ms,
                 topic, topic_by, topic_ms, modes, channel_key, member_limit)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                room.name,
                key,
                founder,
                room.registered_ms,
                room.history_floor_ms,
                room.topic.as_ref().map(|t| &t.text),
                room.topic.as_ref().map(|t| &t.set_by),
                room.topic.as_ref().map(|t| t.set_ms),
                room.modes,
                room.key,
                room.limit,
            ],
        )?;
        let id = transaction.last_insert_rowid();
        for (account_key, level) in &access {
            let Some(account) = account_id(&transaction, account_key)? else {
                continue;
            };
            transaction.execute(
                "INSERT OR REPLACE INTO account_room_access (room, account, level) VALUES (?1, ?2, ?3)",
                params![id, account, level.as_str()],
            )?;
        }
        for (position, entry) in room.lists.iter().enumerate() {
            transaction.execute(
                "INSERT INTO account_room_lists (room, mode, position, mask, set_by, set_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    id,
                    entry.mode.to_string(),
                    position as i64,
                    entry.mask,
                    entry.set_by,
                    entry.set_ms
                ],
            )?;
        }
        super::metadata::insert_room_metadata(&transaction, id, &room.metadata)?;
        transaction.commit()?;
        Ok(())
    }

    /// Moves a registered room to a new name (RENAME) in one statement, so
    /// no crash leaves it under both names or neither; its access, lists
    /// and metadata follow through the room's id. True when it was stored.
    pub fn rename_room(&mut self, old: &str, new: &str) -> Result<bool, AccountError> {
        let (old_key, new_key) = (self.naming().key(old), self.naming().key(new));
        let moved = self.connection().execute(
            "UPDATE account_rooms SET name = ?1, name_key = ?2 WHERE name_key = ?3",
            params![new, new_key, old_key],
        )?;
        Ok(moved > 0)
    }

    /// Forgets a registered room; true when it was registered.
    pub fn drop_room(&mut self, name: &str) -> Result<bool, AccountError> {
        let key = self.naming().key(name);
        let removed = self
            .connection()
            .execute("DELETE FROM account_rooms WHERE name_key = ?1", [key])?;
        Ok(removed > 0)
    }

    /// Every registered room, in name order; none before the account
    /// tables exist.
    pub fn rooms(&self) -> Result<Vec<RoomRecord>, AccountError> {
        if !self.has_tables() {
            return Ok(Vec::new());
        }
        let mut select = self.reader().prepare(
            "SELECT r.id, r.name, a.name, r.registered_ms, r.history_floor_ms, r.topic,
                    r.topic_by, r.topic_ms, r.modes, r.channel_key, r.member_limit
             FROM account_rooms r JOIN accounts a ON a.id = r.founder ORDER BY r.name_key",
        )?;
        let rows = select.query_map([], |row| {
            let topic = match row.get::<_, Option<String>>(5)? {
                Some(text) => Some(TopicRecord {
                    text,
                    set_by: row.get(6)?,
                    set_ms: row.get(7)?,
                }),
                None => None,
            };
            let room = RoomRecord {
                name: row.get(1)?,
                founder: row.get(2)?,
                access: Vec::new(),
                registered_ms: row.get(3)?,
                history_floor_ms: row.get(4)?,
                topic,
                modes: row.get(8)?,
                key: row.get(9)?,
                limit: row.get(10)?,
                lists: Vec::new(),
                metadata: Vec::new(),
            };
            Ok((row.get::<_, i64>(0)?, room))
        })?;
        let mut rooms = Vec::new();
        for row in rows {
            let (id, mut room) = row?;
            room.access = self.room_access(id)?;
            room.lists = self.room_lists(id)?;
            room.metadata = self.room_metadata(id)?;
            rooms.push(room);
        }
        Ok(rooms)
    }

    fn room_access(&self, room: i64) -> Result<Vec<(String, AccessLevel)>, AccountError> {
        let mut select = self.reader().prepare_cached(
            "SELECT a.name, x.level FROM account_room_access x JOIN accounts a ON a.id = x.account
             WHERE x.room = ?1 ORDER BY x.rowid",
        )?;
        let rows = select.query_map([room], |row| {
            let level: String = row.get(1)?;
            Ok((row.get(0)?, level))
        })?;
        let mut access = Vec::new();
        for row in rows {
            let (account, level) = row?;
            // The schema admits only the two words.
            if let Some(level) = AccessLevel::parse(&level) {
                access.push((account, level));
            }
        }
        Ok(access)
    }

    fn room_lists(&self, room: i64) -> Result<Vec<ListRecord>, AccountError> {
        let mut select = self.reader().prepare_cached(
            "SELECT mode, mask, set_by, set_ms FROM account_room_lists WHERE room = ?1
             ORDER BY position",
        )?;
        let rows = select.query_map([room], |row| {
            let mode: String = row.get(0)?;
            Ok(ListRecord {
                mode: mode.chars().next().unwrap_or('b'),
                mask: row.get(1)?,
                set_by: row.get(2)?,
                set_ms: row.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// The id of the account `key`, or `NotFound` naming it as given.
fn account_named(
    transaction: &Transaction<'_>,
    key: &str,
    name: &str,
) -> Result<i64, AccountError> {
    account_id(transaction, key)?.ok_or_else(|| AccountError::NotFound(name.to_owned()))
}

/// Every bound of a room record, before anything is written.
pub(super) fn check_room(room: &RoomRecord) -> Result<(), AccountError> {
    let too_long = |field, value: &str, max| {
        if value.is_empty() || value.len() > max {
            Err(AccountError::TooLong { field, max })
        } else {
            Ok(())
        }
    };
    too_long("room name", &room.name, MAX_ROOM_NAME_LEN)?;
    too_long("founder", &room.founder, MAX_NAME_LEN)?;
    if room.modes.len() > MAX_MODES_LEN {
        return Err(AccountError::TooLong {
            field: "modes",
            max: MAX_MODES_LEN,
        });
    }
    if let Some(key) = &room.key {
        too_long("key", key, MAX_KEY_LEN)?;
    }
    if let Some(topic) = &room.topic {
        too_long("topic setter", &topic.set_by, MAX_SETTER_LEN)?;
        if topic.text.len() > MAX_TOPIC_LEN {
            return Err(AccountError::TooLong {
                field: "topic",
                max: MAX_TOPIC_LEN,
            });
        }
    }
    if room.access.len() > MAX_ACCESS_ENTRIES {
        return Err(AccountError::TooMany {
            what: "access entries",
            max: MAX_ACCESS_ENTRIES,
        });
    }
    for mode in ['b', 'e', 'I'] {
        let entries = room.lists.iter().filter(|entry| entry.mode == mode);
        if entries.count() > MAX_LIST_ENTRIES {
            return Err(AccountError::TooMany {
                what: "list entries",
                max: MAX_LIST_ENTRIES,
            });
        }
    }
    for entry in &room.lists {
        if !matches!(entry.mode, 'b' | 'e' | 'I') {
            return Err(AccountError::InvalidListMode(entry.mode));
        }
        too_long("list mask", &entry.mask, MAX_MASK_LEN)?;
        too_long("list entry setter", &entry.set_by, MAX_SETTER_LEN)?;
    }
    Ok(())
}
