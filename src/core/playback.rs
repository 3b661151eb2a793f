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

use super::Event;
use super::caps::Caps;
use super::cloak::Cloak;
use super::multiline::{self, BatchLine, Bodies};
use super::{ClientId, State, history_access};
use crate::history::{self, Record, StoreError, event_names_room};
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
    // A shared store may hold lines this node never saw (said on other
    // nodes while nobody here was in the room): read them first.
    if history.is_shared() && !state.playback.has(room) {
        load(state, id, room);
        return;
    }
    // Only lines whose records are durable are played: in the journal or
    // the database. The mark is read first, so every loss the writer has
    // reported up to it is among those taken next, and those lines leave
    // the rings. (A line whose database commit fails after it was played
    // was seen live by the room's members too: a failing disk loses it for
    // all alike.)
    let committed = history.durable_now();
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
    play(
        state,
        id,
        &name,
        caps,
        records.iter().map(|(_, record)| record),
    );
}

/// Sends `id` the playback of `records` (committed, oldest first, each one
/// it may read) in room `name`: a `chathistory` batch or two NOTICEs
/// around the lines, the newest within the reply budget.
fn play<'r>(
    state: &mut State,
    id: ClientId,
    name: &str,
    caps: Caps,
    records: impl DoubleEndedIterator<Item = &'r Record>,
) {
    let now = state.clock.now();
    let today = utc(history::millis(now)).date_naive();
    let batch = caps.contains(Caps::BATCH).then(|| state.next_batch_id());
    let server = state.server_name().to_owned();
    let played = within_budget(
        records,
        state.config.limits.history_reply_budget(),
        Keep::Newest,
        |record| history_lines(record, caps, batch.as_deref(), today, state.cloak.as_ref()),
    );
    let start = match &batch {
        Some(batch) => batch_start(&server, batch, "chathistory", name),
        None => marker(&server, name, &start_text(played.len(), caps)),
    };
    state.send(id, start);
    // Every line is committed already: nothing here waits for the disk.
    for line in played.into_iter().flatten() {
        state.send(id, line);
    }
    let end = match &batch {
        Some(batch) => batch_end(&server, batch),
        None => marker(&server, name, "End of playback"),
    };
    state.send(id, end);
}

/// A room's last lines, read from the shared store for the members who
/// joined it while this node had no ring for it.
#[derive(Debug)]
pub struct Loaded {
    pub room: Folded,
    pub records: Result<Vec<Record>, StoreError>,
}

/// Rooms whose playback is being read from a shared store at most.
const MAX_LOADS: usize = 256;

/// The joiner waits for the room's lines from the store, read on the
/// history reader (one read per room; later joiners wait for the same).
/// Nothing is read for a client that fetches history itself, nor when it
/// may read nothing of the room, nor for a room this join created.
fn load(state: &mut State, id: ClientId, room: &Folded) {
    let wants = state
        .clients
        .get(&id)
        .is_some_and(|client| !client.caps.contains(Caps::CHATHISTORY));
    let lines = state.config.history.playback_lines;
    if !wants || lines == 0 || history_access::room_floor(state, id, room).is_none() {
        return;
    }
    if let Some(waiting) = state.playback_loads.get_mut(room) {
        // A member that left and came back meanwhile is played once.
        if !waiting.contains(&id) {
            waiting.push(id);
        }
        return;
    }
    // A room this join created has said nothing yet: its history starts
    // now. (A standing or registered room is one incarnation for ever.)
    let just_created = state.channels.get(room).is_some_and(|channel| {
        channel.members.len() <= 1 && !channel.persistent && channel.registration.is_none()
    });
    if just_created {
        return;
    }
    // Rooms read at once at most: after a restart every user rejoins, and
    // CHATHISTORY shares the reader's queue.
    if state.playback_loads.len() >= MAX_LOADS {
        tracing::debug!(room = %room.as_str(), "too many playback reads at once; this join is played nothing");
        return;
    }
    let (Some(history), Some(inbox)) = (state.history.clone(), state.inbox.clone()) else {
        return;
    };
    let Some(incarnation) = state
        .channels
        .get(room)
        .map(|channel| channel.history_floor)
    else {
        return;
    };
    let since = incarnation.max(max_age_floor(state));
    let key = room.clone();
    // The reader is not the core: it may wait for room in the inbox.
    let reply = move |records| {
        let loaded = Loaded { room: key, records };
        let _ = inbox.blocking_send(Event::PlaybackLoaded(Box::new(loaded)));
    };
    if history.recent(room.clone(), lines, since, reply).is_ok() {
        state.playback_loads.insert(room.clone(), vec![id]);
    }
}

/// The oldest time `[history] playback_max_age` lets playback show.
fn max_age_floor(state: &State) -> i64 {
    let now = state.clock.now();
    state
        .config
        .history
        .playback_max_age()
        .map_or(i64::MIN, |age| {
            history::millis(now).saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX))
        })
}

/// A room's lines came from the store: each member that waited is played
/// those it may read and has not had live since it joined (every line in
/// the ring now came live, after the read was asked), and the ring is
/// seeded with them, so later joiners are played from memory.
pub fn loaded(state: &mut State, loaded: Loaded) {
    let Loaded { room, records } = loaded;
    let waiting = state.playback_loads.remove(&room).unwrap_or_default();
    let records = match records {
        Ok(records) => records,
        Err(error) => {
            tracing::warn!(%error, room = %room.as_str(), "playback could not be read from the history database");
            return;
        }
    };
    let Some((name, incarnation)) = state
        .channels
        .get(&room)
        .map(|channel| (channel.name.clone(), channel.history_floor))
    else {
        return;
    };
    let fresh: Vec<Record> = records
        .into_iter()
        .filter(|record| {
            record.time_ms >= incarnation && !state.playback.holds(&room, &record.msgid)
        })
        .collect();
    let max_age = max_age_floor(state);
    for id in waiting {
        let Some(floor) = history_access::room_floor(state, id, &room) else {
            continue;
        };
        let Some(caps) = state.clients.get(&id).map(|client| client.caps) else {
            continue;
        };
        let since = floor.max(max_age);
        let readable: Vec<&Record> = fresh.iter().filter(|r| r.time_ms >= since).collect();
        if !readable.is_empty() {
            play(state, id, &name, caps, readable.into_iter());
        }
    }
    state.playback.seed(&room, fresh);
}

/// Which records a reply over its budget keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// The first ones: a reply read forward (AFTER, BETWEEN, AROUND).
    Oldest,
    /// The last ones: a playback, or a reply read backward (BEFORE, LATEST).
    Newest,
}

/// The lines each of `records` (oldest first) is shown as, `shown` gives
/// them, for as many whole records as fit `budget` bytes from the end
/// `keep` names, oldest first; always at least one record, as sent live.
pub fn within_budget<'r>(
    records: impl DoubleEndedIterator<Item = &'r Record>,
    budget: usize,
    keep: Keep,
    mut shown: impl FnMut(&Record) -> Vec<Bytes>,
) -> Vec<Vec<Bytes>> {
    let records: Box<dyn Iterator<Item = &Record>> = match keep {
        Keep::Oldest => Box::new(records),
        Keep::Newest => Box::new(records.rev()),
    };
    let (mut kept, mut spent) = (Vec::new(), 0);
    for record in records {
        let lines = shown(record);
        let bytes: usize = lines.iter().map(Bytes::len).sum();
        if !kept.is_empty() && spent + bytes > budget {
            break;
        }
        spent += bytes;
        kept.push(lines);
    }
    if keep == Keep::Newest {
        kept.reverse();
    }
    kept
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
    let lines = record
        .is_multiline()
        .then(|| multiline::decode(&record.text))
        .flatten();
    let Some(lines) = lines else {
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
        if caps.contains(Caps::MESSAGE_TAGS) && !record.client_tags().is_empty() {
            add_stored(&mut tags, record.client_tags());
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

/// `tags` followed by a record's stored tags, with a `;` between only
/// when `tags` already holds some.
fn add_stored(tags: &mut String, stored: &str) {
    if !tags.is_empty() {
        tags.push(';');
    }
    tags.push_str(stored);
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

    #[test]
    fn fallback_lines_after_the_first_carry_only_the_stored_tags() {
        let mut record = record("m1", TIME, "#room");
        record.text = "one\ntwo".into();
        record.tags = "+draft/reply=m0".into();
        record.prepare(true);
        let lines = history_lines(&record, Caps::MESSAGE_TAGS, None, today(), None);
        let lines: Vec<_> = lines.iter().map(|l| String::from_utf8_lossy(l)).collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].starts_with("@msgid=m1;+draft/reply=m0 "),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].starts_with("@+draft/reply=m0 :alice"),
            "{}",
            lines[1]
        );
    }

    /// alice in #room says `lines`, settled; history on.
    fn said(lines: &[&str]) -> crate::core::testing::HistoryHarness {
        let mut t = crate::core::testing::HistoryHarness::new();
        t.h.register("alice");
        t.h.send("alice", "JOIN #room");
        for line in lines {
            t.h.send("alice", line);
        }
        t.settle();
        t
    }

    const CAPABLE: &str =
        "CAP REQ :batch draft/multiline message-tags draft/chathistory draft/event-playback";

    #[test]
    fn a_bare_cr_in_one_line_replays_as_the_one_line_relayed() {
        let mut t = said(&["PRIVMSG #room :hi\r\u{1}VERSION\u{1}"]);
        t.h.register("carol");
        t.h.send("carol", "JOIN #room");
        let lines = t.h.take("carol");
        let played: Vec<&String> = lines.iter().filter(|l| l.contains(" PRIVMSG ")).collect();
        assert_eq!(played.len(), 1, "{lines:?}");
        assert!(
            played[0].ends_with(" UTC] hi \u{1}VERSION\u{1}"),
            "{}",
            played[0]
        );
    }

    #[test]
    fn a_line_of_crs_replays_as_one_line_not_a_batch() {
        let text = "\r".repeat(400);
        let mut t = said(&[&format!("PRIVMSG #room :{text}")]);
        t.h.register("bob");
        t.h.send("bob", CAPABLE);
        t.h.send("bob", "JOIN #room");
        let lines = t.query("bob", "CHATHISTORY LATEST #room * 10");
        let messages: Vec<&String> = lines.iter().filter(|l| l.contains(" PRIVMSG ")).collect();
        assert_eq!(messages.len(), 1, "{lines:?}");
        assert!(
            !lines.iter().any(|l| l.contains("draft/multiline")),
            "{lines:?}"
        );
    }

    #[test]
    fn a_topic_kick_or_quit_with_a_cr_replays_as_one_line() {
        let mut t = said(&["TOPIC #room :new\rtopic"]);
        t.h.register("dan");
        t.h.send("dan", "JOIN #room");
        t.h.send("alice", "KICK #room dan :go\raway");
        t.h.register("erin");
        t.h.send("erin", "JOIN #room");
        t.h.send("erin", "QUIT :so\rlong");
        t.settle();
        t.h.register("bob");
        t.h.send("bob", CAPABLE);
        t.h.send("bob", "JOIN #room");
        let lines = t.query("bob", "CHATHISTORY LATEST #room * 20");
        assert!(
            !lines.iter().any(|l| l.contains("draft/multiline")),
            "{lines:?}"
        );
        for expected in [
            " UTC] new topic",
            " KICK #room dan :go away",
            " QUIT :Quit: so long",
        ] {
            assert!(
                lines.iter().any(|l| l.ends_with(expected)),
                "{expected}: {lines:?}"
            );
        }
    }

    #[test]
    fn a_multiline_record_is_not_played_when_any_line_is_a_ctcp() {
        let mut record = record("m1", TIME, "#room");
        record.text = "hi\n\u{1}VERSION\u{1}".into();
        record.prepare(true);
        assert!(!crate::history::ring::is_playable(&record));
        record.text = "hi\n\u{1}ACTION waves\u{1}".into();
        assert!(crate::history::ring::is_playable(&record));
    }

    /// alice, with history on and an 8 KiB sendq (a 2 KiB reply budget),
    /// sends #room three multiline messages of ten 100-byte lines each,
    /// whose words are `one`, `two` and `three`.
    fn three_long_messages() -> crate::core::testing::HistoryHarness {
        let mut t = crate::core::testing::HistoryHarness::new();
        std::sync::Arc::make_mut(&mut t.h.state.config)
            .limits
            .sendq_bytes = 8192;
        t.h.register("alice");
        t.h.send("alice", "CAP REQ :batch draft/multiline");
        t.h.send("alice", "JOIN #room");
        for (i, word) in ["one", "two", "three"].into_iter().enumerate() {
            t.h.send("alice", &format!("BATCH +r{i} draft/multiline #room"));
            let text = format!("{word} {}", "x".repeat(96));
            for _ in 0..10 {
                t.h.send("alice", &format!("@batch=r{i} PRIVMSG #room :{text}"));
            }
            t.h.send("alice", &format!("BATCH -r{i}"));
        }
        t.settle();
        t
    }

    /// The first word of each multiline message among `lines`, and the
    /// msgid on its start.
    fn messages(lines: &[String]) -> Vec<(String, String)> {
        let starts = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.ends_with(" draft/multiline #room"));
        starts
            .map(|(i, start)| {
                let msgid = start
                    .split(['=', ';', ' '])
                    .skip_while(|p| *p != "@msgid" && *p != "msgid")
                    .nth(1);
                let word = lines[i + 2].rsplit(" :").next().unwrap_or_default();
                (
                    word.split(' ').next().unwrap_or_default().to_owned(),
                    msgid.unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn a_chathistory_reply_ends_at_its_byte_budget_and_pages_on() {
        let mut t = three_long_messages();
        t.h.register("bob");
        t.h.send("bob", CAPABLE);
        t.h.send("bob", "JOIN #room");
        let latest = t.query("bob", "CHATHISTORY LATEST #room * 10");
        let bytes: usize = latest.iter().map(|l| l.len() + 2).sum();
        assert!(bytes <= 2048 + 200, "{bytes} bytes: {latest:?}");
        let found = messages(&latest);
        let words: Vec<&str> = found.iter().map(|(w, _)| w.as_str()).collect();
        assert_eq!(words, ["three"], "{latest:?}");
        let before = t.query(
            "bob",
            &format!("CHATHISTORY BEFORE #room msgid={} 10", found[0].1),
        );
        let words: Vec<String> = messages(&before).into_iter().map(|(w, _)| w).collect();
        assert_eq!(words, ["two"], "{before:?}");
    }

    #[test]
    fn join_playback_keeps_the_newest_messages_within_its_byte_budget() {
        let mut t = three_long_messages();
        t.h.register("carol");
        t.h.send(
            "carol",
            "CAP REQ :batch draft/multiline message-tags server-time",
        );
        t.h.send("carol", "JOIN #room");
        let lines = t.h.take("carol");
        let words: Vec<String> = messages(&lines).into_iter().map(|(w, _)| w).collect();
        assert_eq!(words, ["three"], "{lines:?}");
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
