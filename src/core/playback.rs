//! Stored lines shown to a client: playback on JOIN, and the lines of a
//! CHATHISTORY answer.
//!
//! A line keeps its original sender, command and target. A client with
//! server-time gets the original time as `@time=`, and with message-tags
//! the original msgid. Unless it negotiated both, the time (UTC) also goes
//! at the start of the text, as `[15:04:05]` for today and
//! `[2026-11-20 15:04:05]` for an older line: irssi 1.4 negotiates
//! server-time without message-tags, yet by default (`show_server_time
//! OFF`) stamps each line with the time it arrived, so a replay would look
//! as if it had just been said. Clients that take message-tags (WeeChat)
//! show `@time=` as the line's time, and get the text untouched.

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::caps::Caps;
use super::{ClientId, State};
use crate::history::{self, Record};
use crate::proto::tags::{server_time, with_tags, write_tag};
use crate::proto::{Folded, Line};

/// After NAMES, the room's last lines, unless the client fetches history
/// itself: a client with `draft/chathistory` gets no playback, as Ergo
/// does, and sends CHATHISTORY when it wants it. Playback is not bounded
/// by `visibility`: it exists to show what was said before the join.
pub fn on_join(state: &mut State, id: ClientId, room: &Folded) {
    if state.history.is_none() || state.config.history.playback_lines == 0 {
        return;
    }
    let Some(caps) = state.clients.get(&id).map(|client| client.caps) else {
        return;
    };
    if caps.contains(Caps::CHATHISTORY) {
        return;
    }
    let Some(name) = state.channels.get(room).map(|channel| channel.name.clone()) else {
        return;
    };
    let now = state.clock.now();
    let since = state
        .config
        .history
        .playback_max_age()
        .map(|age| history::millis(now) - i64::try_from(age.as_millis()).unwrap_or(i64::MAX));
    let records = state.playback.recent(room.as_str(), since);
    if records.is_empty() {
        return;
    }
    let today = utc(history::millis(now)).date_naive();
    let batch = caps.contains(Caps::BATCH).then(|| state.next_batch_id());
    let seq = records.iter().map(|(seq, _)| *seq).max().unwrap_or(0);
    if let Some(batch) = &batch {
        let start = batch_start(state.server_name(), batch, "chathistory", &name);
        state.send_after(id, start, seq);
    }
    for (seq, record) in &records {
        let line = history_line(record, caps, batch.as_deref(), today);
        state.send_after(id, line, *seq);
    }
    if let Some(batch) = &batch {
        let end = batch_end(state.server_name(), batch);
        state.send_after(id, end, seq);
    }
}

/// One stored line in the form `caps` asks for, inside `batch` if given.
pub fn history_line(
    record: &Record,
    caps: Caps,
    batch: Option<&str>,
    today: chrono::NaiveDate,
) -> Bytes {
    let time = server_time(std::time::UNIX_EPOCH + millis_duration(record.time_ms));
    let text = if caps.contains(Caps::SERVER_TIME.union(Caps::MESSAGE_TAGS)) {
        record.text.clone()
    } else {
        with_time_prefix(&record.text, record.time_ms, today)
    };
    let body = Line::new(Some(&record.sender), &record.command)
        .arg(&record.target_display)
        .trailing(&text)
        .finish();
    let mut tags = String::new();
    let mut add = |key: &str, value: Option<&str>| {
        if !tags.is_empty() {
            tags.push(';');
        }
        write_tag(&mut tags, key, value);
    };
    if let Some(batch) = batch {
        add("batch", Some(batch));
    }
    if caps.contains(Caps::MESSAGE_TAGS) {
        add("msgid", Some(&record.msgid));
    }
    if caps.contains(Caps::SERVER_TIME) {
        add("time", Some(&time));
    }
    if caps.contains(Caps::MESSAGE_TAGS) && !record.tags.is_empty() {
        tags.push(';');
        tags.push_str(&record.tags);
    }
    with_tags(&tags, &body)
}

/// `[15:04:05] text` for a line from `today` (UTC), else with the date; a
/// CTCP ACTION keeps its framing with the time inside it.
pub fn with_time_prefix(text: &str, time_ms: i64, today: chrono::NaiveDate) -> String {
    let time = utc(time_ms);
    let stamp = if time.date_naive() == today {
        time.format("[%H:%M:%S]").to_string()
    } else {
        time.format("[%Y-%m-%d %H:%M:%S]").to_string()
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
        let line = history_line(&record, caps, batch, today());
        String::from_utf8_lossy(&line).trim_end().to_owned()
    }

    #[test]
    fn a_plain_client_gets_the_time_in_the_text() {
        assert_eq!(
            line(Caps::NONE, None),
            ":alice!~alice@127.0.0.1 PRIVMSG #Room :[22:13:20] text of m1"
        );
        let yesterday = today().succ_opt().unwrap();
        assert_eq!(
            with_time_prefix("hi", TIME, yesterday),
            "[2023-11-14 22:13:20] hi"
        );
        assert_eq!(
            with_time_prefix("\u{1}ACTION waves\u{1}", TIME, today()),
            "\u{1}ACTION [22:13:20] waves\u{1}"
        );
    }

    #[test]
    fn server_time_and_message_tags_carry_the_original_time_and_msgid() {
        assert_eq!(
            line(Caps::SERVER_TIME, Some("b1")),
            "@batch=b1;time=2023-11-14T22:13:20.123Z :alice!~alice@127.0.0.1 PRIVMSG #Room :[22:13:20] text of m1"
        );
        assert_eq!(
            line(Caps::SERVER_TIME.union(Caps::MESSAGE_TAGS), None),
            "@msgid=m1;time=2023-11-14T22:13:20.123Z :alice!~alice@127.0.0.1 PRIVMSG #Room :text of m1"
        );
    }
}
