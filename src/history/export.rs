//! `rookery history export`: one room's history as JSON lines, one record
//! per line, oldest first.

use std::io::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::backend::Backend;
use super::{HistoryTarget, Record, StoreError};
use crate::proto::Folded;

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the export: {0}")]
    Write(#[from] std::io::Error),
    #[error("cannot encode a record: {0}")]
    Encode(#[from] serde_json::Error),
}

/// One exported line. The time is given both ways: readable and exact.
#[derive(Serialize)]
struct Line<'a> {
    msgid: &'a str,
    /// RFC 3339, UTC, milliseconds.
    time: String,
    time_ms: i64,
    room: &'a str,
    sender: &'a str,
    account: Option<&'a str>,
    command: &'a str,
    text: &'a str,
    tags: &'a str,
}

/// Writes every record of `room` from `since_ms` on to `out`; returns how
/// many.
pub fn export(
    store: &mut Backend,
    room: &Folded,
    since_ms: Option<i64>,
    out: &mut impl Write,
) -> Result<u64, ExportError> {
    let mut written = 0;
    let target = HistoryTarget::Room(room.clone());
    store.for_each(&target, since_ms, |record: Record| {
        let line = Line {
            msgid: &record.msgid,
            time: format_time(record.time_ms),
            time_ms: record.time_ms,
            room: &record.target_display,
            sender: &record.sender,
            account: record.account.as_deref(),
            command: &record.command,
            text: &record.text,
            tags: &record.tags,
        };
        serde_json::to_writer(&mut *out, &line)?;
        out.write_all(b"\n")?;
        written += 1;
        Ok::<_, ExportError>(())
    })?;
    out.flush()?;
    Ok(written)
}

/// `2021-01-01T00:00:00.000Z`.
pub fn format_time(time_ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(time_ms).map_or_else(
        || time_ms.to_string(),
        |time| time.to_rfc3339_opts(SecondsFormat::Millis, true),
    )
}

/// Reads `--since`: RFC 3339 (`2021-01-01T00:00:00Z`, any offset) or Unix
/// seconds (`1609459200`). Returns milliseconds since the epoch.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<i64>()
            .ok()
            .and_then(|seconds| seconds.checked_mul(1000))
            .ok_or_else(|| format!("{text} is too large for Unix seconds"));
    }
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.timestamp_millis())
        .map_err(|error| {
            format!(
                "{text:?} is neither Unix seconds nor an RFC 3339 time such as 2021-01-01T00:00:00Z: {error}"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HistorySync;
    use crate::history::Store;
    use crate::history::testing::{TempDb, folded, record};

    #[test]
    fn export_writes_one_json_object_per_line_oldest_first() {
        let db = TempDb::new();
        let mut store = Store::open(db.path(), HistorySync::Normal).unwrap();
        let mut quoted = record("b", 1_609_459_201_500, "#room");
        quoted.text = "say \"hi\"\nand \\ bye".into();
        quoted.account = Some("alice".into());
        store
            .insert_batch([
                &quoted,
                &record("a", 1_609_459_200_000, "#room"),
                &record("x", 1_609_459_200_000, "#other"),
            ])
            .unwrap();
        let mut store = Backend::Sqlite(store);
        let mut out = Vec::new();
        assert_eq!(
            export(&mut store, &folded("#room"), None, &mut out).unwrap(),
            2
        );
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["msgid"], "a");
        assert_eq!(lines[0]["time"], "2021-01-01T00:00:00.000Z");
        assert_eq!(lines[0]["account"], serde_json::Value::Null);
        assert_eq!(lines[1]["time_ms"], 1_609_459_201_500_i64);
        assert_eq!(lines[1]["room"], "#ROOM");
        assert_eq!(lines[1]["sender"], "alice!~alice@127.0.0.1");
        assert_eq!(lines[1]["command"], "PRIVMSG");
        assert_eq!(lines[1]["text"], "say \"hi\"\nand \\ bye");
        assert_eq!(lines[1]["account"], "alice");
        let mut since = Vec::new();
        export(
            &mut store,
            &folded("#room"),
            Some(1_609_459_201_000),
            &mut since,
        )
        .unwrap();
        assert_eq!(String::from_utf8(since).unwrap().lines().count(), 1);
    }

    #[test]
    fn since_reads_rfc3339_and_unix_seconds() {
        assert_eq!(parse_time("1609459200"), Ok(1_609_459_200_000));
        assert_eq!(parse_time("2021-01-01T00:00:00Z"), Ok(1_609_459_200_000));
        assert_eq!(
            parse_time("2021-01-01T01:00:00.250+01:00"),
            Ok(1_609_459_200_250)
        );
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("").is_err());
    }
}
