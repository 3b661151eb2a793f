//! Room events in history (`[history] events`): joins, parts, kicks,
//! quits, nick and mode changes are stored as the members saw them, for
//! CHATHISTORY to return to `draft/event-playback` clients. Playback on
//! join and other clients see messages only (`history::ring::is_playable`,
//! `history::Query::events`).
//!
//! Their lines do not wait for the commit, as a message's do: a join or a
//! mode change is the room's state, which must reach members at once, and
//! its record going missing in a crash costs less than holding every join
//! for the disk. The records still go in the writer's batches, so they add
//! no commit of their own.

use super::broadcast::Broadcast;
use super::{ClientId, State};
use crate::history::{HistoryTarget, NewRecord};
use crate::proto::Folded;

impl State {
    /// Stores `event` (a finished `:source COMMAND params` line) in the
    /// history of `room`, when events are kept.
    pub fn record_event(&mut self, room: &Folded, event: &Broadcast) {
        if !self.config.history.events || self.history.is_none() {
            return;
        }
        let Some(display) = self.channels.get(room).map(|c| c.name.clone()) else {
            return;
        };
        let Ok(body) = std::str::from_utf8(event.body()) else {
            return;
        };
        let body = body.trim_end_matches("\r\n");
        let Some((source, rest)) = body.strip_prefix(':').and_then(|b| b.split_once(' ')) else {
            return;
        };
        let (command, params) = rest.split_once(' ').unwrap_or((rest, ""));
        let record = NewRecord {
            target: HistoryTarget::Room(room.clone()),
            display: &display,
            sender: source,
            account: event.account(),
            command,
            text: params,
        };
        self.record_history(record, event);
    }

    /// Stores `event` (a QUIT or NICK) in the history of every room `id`
    /// is in.
    pub fn record_event_in_rooms(&mut self, id: ClientId, event: &Broadcast) {
        let rooms: Vec<Folded> = self
            .clients
            .get(&id)
            .map(|client| client.channels.iter().cloned().collect())
            .unwrap_or_default();
        for room in &rooms {
            self.record_event(room, event);
        }
    }
}
