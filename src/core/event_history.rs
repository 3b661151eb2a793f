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
use crate::history::{HistoryTarget, NewRecord, event_names_room};
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
        let params = if event_names_room(command) {
            after_room(params)
        } else {
            params
        };
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
    /// is in, but those it is a hidden member of (an auditorium's, see
    /// `Channel::hides`): playback could not tell who may see it there.
    pub fn record_event_in_rooms(&mut self, id: ClientId, event: &Broadcast) {
        let shown_in = |room: &&Folded| {
            self.channels
                .get(*room)
                .is_some_and(|channel| !channel.hides(id))
        };
        let rooms: Vec<Folded> = self
            .clients
            .get(&id)
            .map(|client| client.channels.iter().filter(shown_in).cloned().collect())
            .unwrap_or_default();
        for room in &rooms {
            self.record_event(room, event);
        }
    }
}

/// The parameters after the first (the room), as written on the wire.
fn after_room(params: &str) -> &str {
    if params.starts_with(':') {
        return "";
    }
    params.split_once(' ').map_or("", |(_, rest)| rest)
}

#[cfg(test)]
mod tests {
    use crate::core::testing::HistoryHarness;

    /// What a CHATHISTORY answer holds, without tags, batch lines or the
    /// time a client without server-time gets in the text.
    fn commands(lines: &[String]) -> Vec<String> {
        lines
            .iter()
            .map(|line| match line.strip_prefix('@') {
                Some(tagged) => tagged.split_once(' ').map_or("", |(_, rest)| rest),
                None => line.as_str(),
            })
            .filter(|line| !line.contains(" BATCH "))
            .map(str::to_owned)
            .collect()
    }

    /// alice (op, with the capabilities `caps`) and bob in #room, after a
    /// day in the room's life.
    fn a_day(caps: &str) -> HistoryHarness {
        let mut t = HistoryHarness::new();
        t.h.register("alice");
        t.h.send(
            "alice",
            &format!("CAP REQ :batch server-time message-tags {caps}"),
        );
        t.h.send("alice", "JOIN #room");
        t.h.register("bob");
        t.h.send("bob", "CAP REQ :message-tags");
        t.h.send("bob", "JOIN #room");
        t.h.send("alice", "TOPIC #room :plans");
        t.h.send("bob", "@+draft/react=x TAGMSG #room");
        t.h.send("bob", "PRIVMSG #room :hi");
        t.h.send("alice", "MODE #room +v bob");
        t.h.send("bob", "NICK robert");
        t.h.send("bob", "PART #room :later");
        t.h.send("bob", "JOIN #room");
        t.h.send("alice", "KICK #room robert :out");
        t.h.send("bob", "JOIN #room");
        t.h.send("bob", "QUIT :bye");
        t
    }

    #[test]
    fn event_playback_readers_get_every_event_as_it_was_sent() {
        let mut t = a_day("draft/chathistory draft/event-playback");
        let lines = t.query("alice", "CHATHISTORY LATEST #room * 50");
        let bob = "bob!~bob@127.0.0.1";
        let robert = "robert!~bob@127.0.0.1";
        let alice = "alice!~alice@127.0.0.1";
        assert_eq!(
            commands(&lines),
            [
                format!(":{alice} JOIN #room"),
                format!(":{bob} JOIN #room"),
                format!(":{alice} TOPIC #room :plans"),
                format!(":{bob} TAGMSG #room"),
                format!(":{bob} PRIVMSG #room :hi"),
                format!(":{alice} MODE #room +v bob"),
                format!(":{bob} NICK robert"),
                format!(":{robert} PART #room :later"),
                format!(":{robert} JOIN #room"),
                format!(":{alice} KICK #room robert :out"),
                format!(":{robert} JOIN #room"),
                format!(":{robert} QUIT :Quit: bye"),
            ]
        );
        let react = lines.iter().find(|line| line.contains(" TAGMSG ")).unwrap();
        assert!(react.contains("+draft/react=x"), "{react}");
    }

    #[test]
    fn a_renamed_room_replays_its_events_under_the_new_name() {
        let mut t = a_day("draft/chathistory draft/event-playback");
        t.h.send("alice", "RENAME #room #hall :moved");
        let lines = t.query("alice", "CHATHISTORY LATEST #hall * 50");
        let events: Vec<String> = commands(&lines)
            .into_iter()
            .filter(|line| {
                [" JOIN ", " PART ", " KICK ", " MODE "]
                    .iter()
                    .any(|c| line.contains(c))
            })
            .collect();
        assert_eq!(events.len(), 7, "{lines:?}");
        for event in &events {
            assert!(event.contains(" #hall"), "{event}");
            assert!(!event.contains("#room"), "{event}");
        }
        assert!(
            events.contains(&":alice!~alice@127.0.0.1 KICK #hall robert :out".to_owned()),
            "{events:?}"
        );
    }

    #[test]
    fn a_reader_without_message_tags_gets_no_tag_messages() {
        let mut t = a_day("draft/chathistory draft/event-playback");
        t.h.register("carol");
        t.h.send(
            "carol",
            "CAP REQ :batch draft/chathistory draft/event-playback",
        );
        t.h.send("carol", "JOIN #room");
        let lines = t.query("carol", "CHATHISTORY LATEST #room * 50");
        assert!(
            !lines.iter().any(|line| line.contains("TAGMSG")),
            "{lines:?}"
        );
        assert!(
            lines.iter().any(|line| line.contains(" PRIVMSG #room :")),
            "{lines:?}"
        );
    }

    #[test]
    fn other_readers_and_playback_get_messages_only() {
        let mut t = a_day("draft/chathistory");
        let lines = t.query("alice", "CHATHISTORY LATEST #room * 50");
        assert_eq!(commands(&lines), [":bob!~bob@127.0.0.1 PRIVMSG #room :hi"]);
        t.h.register("carol");
        t.h.send("carol", "CAP REQ :batch server-time");
        t.h.take("carol");
        t.h.send("carol", "JOIN #room");
        let played: Vec<String> =
            t.h.take("carol")
                .into_iter()
                .filter(|line| line.contains("batch="))
                .collect();
        assert_eq!(commands(&played), [":bob!~bob@127.0.0.1 PRIVMSG #room :hi"]);
    }

    #[test]
    fn typing_is_never_stored() {
        let mut t = a_day("draft/chathistory draft/event-playback");
        t.h.send("alice", "@+typing=active TAGMSG #room");
        t.h.send("alice", "@+typing=active;+draft/react=y TAGMSG #room");
        t.h.send("alice", "@+draft/typing=paused;+draft/reply=x TAGMSG #room");
        let lines = t.query("alice", "CHATHISTORY LATEST #room * 3");
        let tagmsgs: Vec<&String> = lines.iter().filter(|l| l.contains(" TAGMSG ")).collect();
        assert!(tagmsgs.is_empty(), "{lines:?}");
    }

    #[test]
    fn with_events_off_only_messages_and_topics_are_stored() {
        let mut t = HistoryHarness::new();
        std::sync::Arc::make_mut(&mut t.h.state.config)
            .history
            .events = false;
        t.h.register("alice");
        t.h.send(
            "alice",
            "CAP REQ :server-time draft/chathistory draft/event-playback",
        );
        t.h.send("alice", "JOIN #room");
        t.h.send("alice", "@+draft/react=x TAGMSG #room");
        t.h.send("alice", "TOPIC #room :plans");
        t.h.send("alice", "PRIVMSG #room :hi");
        let lines = t.query("alice", "CHATHISTORY LATEST #room * 50");
        assert_eq!(
            commands(&lines),
            [
                ":alice!~alice@127.0.0.1 TOPIC #room :plans",
                ":alice!~alice@127.0.0.1 PRIVMSG #room :hi",
            ]
        );
    }
}
