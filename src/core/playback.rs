//! Stored lines shown to a client: playback on JOIN, and the lines of a
//! CHATHISTORY answer.
//!
//! A line keeps its original sender, command and target. A client with
//! server-time gets the original time as `@time=` and the text untouched:
//! it shows the tag as the line's time (HexChat, WeeChat; irssi with
//! `/set show_server_time on`), so a time in the text too would show it
//! twice, in two zones. A client without server-time gets the time at the
//! start of the text with its zone, as `[15:04:05 UTC]` for today and
//! `[2026-11-20 15:04:05 UTC]` for an older line. With message-tags a line
//! also carries its original msgid.
//!
//! Which lines a joiner is played follows [`super::history_access`], less
//! what it was shown before (`super::seen`): lines this connection, or
//! another connection of its account, saw while a member or was played at
//! an earlier join are not played again.

use std::borrow::Cow;
use std::net::IpAddr;

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::caps::Caps;
use super::cloak::Cloak;
use super::multiline::{self, BatchLine, Bodies};
use super::{ClientId, State, history_access};
use crate::history::{self, Record, event_names_room};
use crate::proto::tags::{server_time, with_tags, write_tag};
use crate::proto::{Folded, Line};

/// After NAMES, the room's last lines that the joiner may read and has not
/// been shown yet, unless the client fetches history itself: a client with
/// `draft/chathistory` gets no playback, as Ergo does, and sends
/// CHATHISTORY (which gives it at least as much) when it wants it. The
/// lines come in a `chathistory` batch, or for a client without `batch`
/// between two NOTICEs from the server that say where playback starts and
/// ends.
pub fn on_join(state: &mut State, id: ClientId, room: &Folded) {
    let Some(history) = &state.history else {
        return;
    };
    // Only lines whose records are decided are played: the watermark is
    // read first, so every loss up to it is among those taken next, and
    // those lines leave the rings. A line still being committed is not
    // played to this joiner (it reads it with CHATHISTORY once stored):
    // if its batch then failed, it would have been shown unstored.
    let committed = history.committed_now();
    let lost = history.take_lost();
    state.playback.remove_lost(&lost);
    let seen = seen_before(state, id, room);
    let Some(caps) = state.clients.get(&id).map(|client| client.caps) else {
        return;
    };
    if state.config.history.playback_lines == 0 || caps.contains(Caps::CHATHISTORY) {
        return;
    }
    let Some(floor) = history_access::room_floor(state, id, room) else {
        return;
    };
    let Some(name) = state.channels.get(room).map(|channel| channel.name.clone()) else {
        return;
    };
    let now = state.clock.now();
    let max_age = state
        .config
        .history
        .playback_max_age()
        .map_or(i64::MIN, |age| {
            history::millis(now).saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX))
        });
    let mut records = state.playback.recent(room, floor.max(max_age), seen);
    records.retain(|(seq, _)| *seq <= committed);
    if records.is_empty() {
        return;
    }
    let today = utc(history::millis(now)).date_naive();
    let batch = caps.contains(Caps::BATCH).then(|| state.next_batch_id());
    let server = state.server_name().to_owned();
    let start = match &batch {
        Some(batch) => batch_start(&server, batch, "chathistory", &name),
        None => marker(&server, &name, &start_text(records.len(), caps)),
    };
    state.send(id, start);
    // Every line is committed already: nothing here waits for the disk.
    for (_, record) in &records {
        let lines = history_lines(record, caps, batch.as_deref(), today, state.cloak.as_ref());
        for line in lines {
            state.send(id, line);
        }
    }
    let end = match &batch {
        Some(batch) => batch_end(&server, batch),
        None => marker(&server, &name, "End of playback"),
    };
    state.send(id, end);
}

/// The last ring line `id` was shown in `room` before this join: on this
/// connection, or on any connection of its account, counting one still in
/// the room as having seen everything so far.
fn seen_before(state: &mut State, id: ClientId, room: &Folded) -> u64 {
    let Some(client) = state.clients.get_mut(&id) else {
        return 0;
    };
    let own = client.playback_seen.take(room);
    let Some(account) = client.account.clone() else {
        return own;
    };
    // Every connection of an account holds its name as registered.
    let stayed = state.channels.get(room).is_some_and(|channel| {
        channel.members.keys().any(|member| {
            *member != id
                && state.clients.get(member).and_then(|c| c.account.as_deref())
                    == Some(account.as_str())
        })
    });
    let shared = if stayed {
        state.playback.last()
    } else {
        state.account_seen.get(&state.fold(&account), room)
    };
    own.max(shared)
}

/// What the NOTICE before a playback without `batch` says.
fn start_text(lines: usize, caps: Caps) -> String {
    let what = if lines == 1 {
        "the last line".to_owned()
    } else {
        format!("the last {lines} lines")
    };
    if caps.contains(Caps::SERVER_TIME) {
        format!("Playback of {what} said here")
    } else {
        format!("Playback of {what} said here, with the time each was said")
    }
}

/// `:server NOTICE #room :text`: shown in the room's window by every
/// client, from the server, so it cannot be taken for a member's line.
fn marker(server: &str, room: &str, text: &str) -> Bytes {
    Line::new(Some(server), "NOTICE")
        .arg(room)
        .trailing(text)
        .finish()
}

/// One stored message in the form `caps` asks for, inside `batch` if
/// given: one line, or a multiline message as a `draft/multiline` batch
/// (nested in `batch`) or, without the capability, its non-blank lines
/// with the msgid on the first.
pub fn history_lines(
    record: &Record,
    caps: Caps,
    batch: Option<&str>,
    today: chrono::NaiveDate,
    cloak: Option<&Cloak>,
) -> Vec<Bytes> {
    if record.command == "TAGMSG" && !caps.contains(Caps::MESSAGE_TAGS) {
        // message-tags allows TAGMSG only to clients that negotiated it.
        return Vec::new();
    }
    let Some(lines) = multiline::decode(&record.text) else {
        return vec![history_line(record, caps, batch, today, cloak)];
    };
    let shown = Shown {
        record,
        caps,
        batch,
        today,
        cloak,
    };
    if caps.contains(Caps::MULTILINE.union(Caps::BATCH)) {
        return shown.batched(lines);
    }
    multiline::shown_alone(&lines)
        .enumerate()
        .map(|(i, text)| shown.line(text, i == 0))
        .collect()
}

/// One stored line in the form `caps` asks for, inside `batch` if given.
/// With cloaking on (`cloak`), a sender stored with its address (before
/// cloaking was on, or by an older version) shows the cloak instead.
pub fn history_line(
    record: &Record,
    caps: Caps,
    batch: Option<&str>,
    today: chrono::NaiveDate,
    cloak: Option<&Cloak>,
) -> Bytes {
    let shown = Shown {
        record,
        caps,
        batch,
        today,
        cloak,
    };
    shown.line(&record.text, true)
}

/// A record being shown to one client.
struct Shown<'a> {
    record: &'a Record,
    caps: Caps,
    batch: Option<&'a str>,
    today: chrono::NaiveDate,
    cloak: Option<&'a Cloak>,
}

impl Shown<'_> {
    /// `text` as a line of the record, with its msgid when `first`: a
    /// message, notice or topic with its text (timed in the text for a
    /// client without server-time), a tag message with none, and a room
    /// event with the parameters it was sent with.
    fn line(&self, text: &str, first: bool) -> Bytes {
        let record = self.record;
        let sender = shown_sender(&record.sender, self.cloak);
        let line = Line::new(Some(&sender), &record.command);
        let body = match record.command.as_str() {
            "PRIVMSG" | "NOTICE" | "TOPIC" => {
                line.arg(&record.target_display).trailing(&self.timed(text))
            }
            "TAGMSG" => line.arg(&record.target_display),
            command if event_names_room(command) => {
                with_params(line.arg(&record.target_display), text)
            }
            _ => with_params(line, text),
        }
        .finish();
        with_tags(&self.tags(first), &body)
    }

    /// The text, with the time in front for a client without server-time.
    fn timed<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if self.caps.contains(Caps::SERVER_TIME) {
            Cow::Borrowed(text)
        } else {
            Cow::Owned(with_time_prefix(text, self.record.time_ms, self.today))
        }
    }

    /// The record's tags for this client, with the msgid when `msgid`.
    fn tags(&self, msgid: bool) -> String {
        let (record, caps) = (self.record, self.caps);
        let time = server_time(std::time::UNIX_EPOCH + millis_duration(record.time_ms));
        let mut tags = String::new();
        let mut add = |key: &str, value: Option<&str>| {
            if !tags.is_empty() {
                tags.push(';');
            }
            write_tag(&mut tags, key, value);
        };
        if let Some(batch) = self.batch {
            add("batch", Some(batch));
        }
        if caps.contains(Caps::MESSAGE_TAGS) && msgid {
            add("msgid", Some(&record.msgid));
        }
        if caps.contains(Caps::SERVER_TIME) {
            add("time", Some(&time));
        }
        if caps.contains(Caps::MESSAGE_TAGS) && !record.tags.is_empty() {
            tags.push(';');
            tags.push_str(&record.tags);
        }
        tags
    }

    /// The record as a `draft/multiline` batch named after its msgid; its
    /// start and end belong to the enclosing batch, if any.
    fn batched(&self, mut lines: Vec<BatchLine>) -> Vec<Bytes> {
        let record = self.record;
        if let Some(first) = lines.first_mut() {
            first.text = self.timed(&first.text).into_owned();
        }
        let reference = format!("ml{}", record.msgid);
        let sender = shown_sender(&record.sender, self.cloak);
        let bodies = Bodies::new(
            &sender,
            &record.command,
            &record.target_display,
            &reference,
            &lines,
        );
        let outer = self.batch.map(|batch| format!("batch={batch}"));
        let mut out = Vec::with_capacity(lines.len() + 2);
        out.push(with_tags(&self.tags(true), &bodies.start));
        out.extend(bodies.batched);
        out.push(with_tags(outer.as_deref().unwrap_or_default(), &bodies.end));
        out
    }
}

/// `line` with the parameters `params` holds as a line writes them:
/// words, then the trailing one after a `:`.
fn with_params(mut line: Line, params: &str) -> Line {
    let mut rest = params;
    while !rest.is_empty() {
        if let Some(trailing) = rest.strip_prefix(':') {
            return line.trailing(trailing);
        }
        let (word, after) = rest.split_once(' ').unwrap_or((rest, ""));
        line = line.arg(word);
        rest = after;
    }
    line
}

/// `nick!user@host` as others may see it now: with cloaking on, a host
/// that is an address (as shown uncloaked, an IPv6 one perhaps with a
/// leading `0`) becomes the cloak the server gives that address today.
fn shown_sender<'a>(sender: &'a str, cloak: Option<&Cloak>) -> Cow<'a, str> {
    let Some(cloak) = cloak else {
        return Cow::Borrowed(sender);
    };
    let Some((user, host)) = sender.rsplit_once('@') else {
        return Cow::Borrowed(sender);
    };
    match host.parse::<IpAddr>() {
        Ok(ip) => Cow::Owned(format!("{user}@{}", cloak.host(ip))),
        Err(_) => Cow::Borrowed(sender),
    }
}

/// `[15:04:05 UTC] text` for a line from `today` (UTC), else with the
/// date; a CTCP ACTION keeps its framing with the time inside it.
pub fn with_time_prefix(text: &str, time_ms: i64, today: chrono::NaiveDate) -> String {
    let time = utc(time_ms);
    let stamp = if time.date_naive() == today {
        time.format("[%H:%M:%S UTC]").to_string()
    } else {
        time.format("[%Y-%m-%d %H:%M:%S UTC]").to_string()
    };
    match text.strip_prefix("\u{1}ACTION ") {
        Some(action) => format!("\u{1}ACTION {stamp} {action}"),
        None => format!("{stamp} {text}"),
    }
}

/// `:server BATCH +ref type param`.
pub fn batch_start(server: &str, reference: &str, kind: &str, param: &str) -> Bytes {
    Line::new(Some(server), "BATCH")
        .arg(&format!("+{reference}"))
        .arg(kind)
        .arg(param)
        .finish()
}

/// `:server BATCH -ref`.
pub fn batch_end(server: &str, reference: &str) -> Bytes {
    Line::new(Some(server), "BATCH")
        .arg(&format!("-{reference}"))
        .finish()
}

pub fn utc(time_ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(time_ms).unwrap_or_default()
}

fn millis_duration(time_ms: i64) -> std::time::Duration {
    std::time::Duration::from_millis(u64::try_from(time_ms).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::testing::record;

    /// 2023-11-14T22:13:20.123Z
    const TIME: i64 = 1_700_000_000_123;

    fn today() -> chrono::NaiveDate {
        utc(TIME).date_naive()
    }

    fn line(caps: Caps, batch: Option<&str>) -> String {
        let mut record = record("m1", TIME, "#room");
        record.target_display = "#Room".into();
        let line = history_line(&record, caps, batch, today(), None);
        String::from_utf8_lossy(&line).trim_end().to_owned()
    }

    #[test]
    fn a_plain_client_gets_the_time_in_the_text() {
        assert_eq!(
            line(Caps::NONE, None),
            ":alice!~alice@127.0.0.1 PRIVMSG #Room :[22:13:20 UTC] text of m1"
        );
        let yesterday = today().succ_opt().unwrap();
        assert_eq!(
            with_time_prefix("hi", TIME, yesterday),
            "[2023-11-14 22:13:20 UTC] hi"
        );
        assert_eq!(
            with_time_prefix("\u{1}ACTION waves\u{1}", TIME, today()),
            "\u{1}ACTION [22:13:20 UTC] waves\u{1}"
        );
    }

    #[test]
    fn with_cloaking_on_a_stored_address_shows_as_its_cloak() {
        let cloak = Cloak::new("secret", "ip", 64);
        let expected = format!("alice!~alice@{}", cloak.host([127, 0, 0, 1].into()));
        assert_eq!(
            shown_sender("alice!~alice@127.0.0.1", Some(&cloak)),
            expected
        );
        let v6 = cloak.host("::1".parse().unwrap());
        assert_eq!(
            shown_sender("bob!b@0::1", Some(&cloak)),
            format!("bob!b@{v6}")
        );
        // A cloak, a host name and a server stay as they are.
        for sender in [
            "carol!c@kq3vxm2a.d4n7pfwe.ip",
            "dave!d@example.org",
            "irc.test",
        ] {
            assert_eq!(shown_sender(sender, Some(&cloak)), sender);
        }
        assert_eq!(
            shown_sender("alice!~alice@127.0.0.1", None),
            "alice!~alice@127.0.0.1"
        );
        let record = record("m1", TIME, "#room");
        let line = history_line(&record, Caps::SERVER_TIME, None, today(), Some(&cloak));
        let line = String::from_utf8_lossy(&line).into_owned();
        assert!(line.contains(&format!(":{expected} PRIVMSG")), "{line}");
        assert!(!line.contains("127.0.0.1"), "{line}");
    }

    #[test]
    fn server_time_and_message_tags_carry_the_original_time_and_msgid() {
        // server-time without message-tags (HexChat, irssi): the time in
        // the tag only, not twice.
        assert_eq!(
            line(Caps::SERVER_TIME, Some("b1")),
            "@batch=b1;time=2023-11-14T22:13:20.123Z :alice!~alice@127.0.0.1 PRIVMSG #Room :text of m1"
        );
        assert_eq!(
            line(Caps::SERVER_TIME.union(Caps::MESSAGE_TAGS), None),
            "@msgid=m1;time=2023-11-14T22:13:20.123Z :alice!~alice@127.0.0.1 PRIVMSG #Room :text of m1"
        );
    }

    /// The room lines among `lines`, without their time.
    fn played(lines: &[String]) -> Vec<&str> {
        lines
            .iter()
            .filter(|line| line.contains(" PRIVMSG #room "))
            .filter_map(|line| line.split_once(" UTC] ").map(|(_, text)| text))
            .collect()
    }

    #[test]
    fn an_account_is_not_played_again_what_another_of_its_connections_was_shown() {
        let mut t = crate::core::testing::HistoryHarness::new();
        t.h.register("alice");
        t.log_in("alice", "alice");
        t.h.register("bob");
        t.h.send("bob", "JOIN #room");
        t.h.send("bob", "PRIVMSG #room :one");
        t.settle();
        t.h.send("alice", "JOIN #room");
        assert_eq!(played(&t.h.take("alice")), ["one"]);
        t.h.send("bob", "PRIVMSG #room :two");
        t.h.send("alice", "QUIT :bye");
        t.h.send("bob", "PRIVMSG #room :three");
        t.settle();
        // alice again: she saw "two" live before she left.
        t.h.register("phone");
        t.log_in("phone", "alice");
        t.h.send("phone", "JOIN #room");
        assert_eq!(played(&t.h.take("phone")), ["three"]);
        // While one of her connections is in the room, she has seen it all.
        t.h.register("tablet");
        t.log_in("tablet", "alice");
        t.h.send("tablet", "JOIN #room");
        assert_eq!(played(&t.h.take("tablet")), Vec::<&str>::new());
        // Someone else is played everything.
        t.h.register("carol");
        t.h.send("carol", "JOIN #room");
        assert_eq!(played(&t.h.take("carol")), ["one", "two", "three"]);
    }
}
