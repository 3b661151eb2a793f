//! Helpers for history tests: temporary database files and records.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{HistoryTarget, Record};
use crate::proto::{Casemapping, Folded};

/// A database path in the temporary directory, removed (with its WAL
/// files) on drop.
pub struct TempDb {
    path: PathBuf,
}

impl TempDb {
    pub fn new() -> TempDb {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("rookery-unit-{}-{n}.db", std::process::id()));
        let db = TempDb { path };
        db.remove();
        db
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn remove(&self) {
        for suffix in ["", "-wal", "-shm", ".journal.0", ".journal.1"] {
            let mut name = self.path.clone().into_os_string();
            name.push(suffix);
            let _ = std::fs::remove_file(name);
        }
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        self.remove();
    }
}

/// A folded name, for tests.
pub fn folded(name: &str) -> Folded {
    Casemapping::Ascii.fold(name)
}

/// A target written as the store keeps it: `#room`, or `alice bob` for a
/// private conversation.
pub fn target(column: &str) -> HistoryTarget {
    HistoryTarget::from_column(column)
}

/// A PRIVMSG from alice with the msgid as its text, to `target` written as
/// the store keeps it.
pub fn record(msgid: &str, time_ms: i64, target: &str) -> Record {
    Record {
        msgid: msgid.to_owned(),
        time_ms,
        target: HistoryTarget::from_column(target),
        target_display: target.to_uppercase(),
        sender: "alice!~alice@127.0.0.1".to_owned(),
        account: None,
        command: "PRIVMSG".to_owned(),
        text: format!("text of {msgid}"),
        tags: String::new(),
    }
}
