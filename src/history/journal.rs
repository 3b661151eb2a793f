//! The journal: where a stored line becomes durable before anyone sees it.
//!
//! The core appends each record to an in-memory buffer as it is made, and
//! after each batch of events writes the buffer to a file with one
//! `write(2)` and moves the journal's mark; only then may the lines of
//! those records go out. The same bytes then go to the writer thread as
//! one `Chunk`: the core makes no per-record allocation for the writer,
//! and wakes it once per batch, not once per record. A record whose write has returned is in the
//! operating system's page cache and survives the server being killed
//! (`kill -9`), as a committed SQLite transaction in WAL mode with
//! `synchronous = NORMAL` does. The writer thread still stores every
//! record in the database, in large batches, behind the clients' backs;
//! each batch's transaction also notes the highest sequence number it
//! stored (the checkpoint), so a start knows which journal entries the
//! database lacks: those after the checkpoint, replayed before anything
//! else is written.
//!
//! Two files take turns: the core writes one until it passes
//! [`ROTATE_BYTES`], then empties the other and writes that, once the
//! database has everything the other held. A file is bounded by how far
//! the writer lags, which its own queue bounds.
//!
//! An entry is `length (u32) · checksum (u64) · body`, little-endian; the
//! body is the epoch, the sequence number and the record's fields. A
//! partial last entry (the process killed in the middle of a write) or a
//! damaged one ends the file's replay: its lines were never released.
//! Sequence numbers restart at each start; the epoch, stored with the
//! checkpoint and moved on at each start, tells one start's entries from
//! the next's.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::{error, info};

use super::{HistoryTarget, Record};

/// The size past which the core moves to the other file.
pub const ROTATE_BYTES: u64 = 8 << 20;
/// The most a replay reads of one file: a file this big means the writer
/// stalled for millions of lines; what is past it is left to the database.
const REPLAY_LIMIT: u64 = 1 << 30;
/// `length · checksum` before each body.
const HEADER: usize = 12;

/// The two files beside the database `db`: `history.db.journal.0` and `.1`.
pub fn paths(db: &Path) -> [PathBuf; 2] {
    let name = |n: u8| {
        let mut name = db.as_os_str().to_owned();
        name.push(format!(".journal.{n}"));
        PathBuf::from(name)
    };
    [name(0), name(1)]
}

/// Records the core hands the writer at once, encoded as in the journal.
pub(crate) struct Chunk {
    pub bytes: Vec<u8>,
    /// How many records it holds.
    pub records: usize,
}

/// The core's side: the buffer, the file being written, and the mark the
/// connections read.
pub(crate) struct Journal {
    /// None under `sync = "full"`: records only pass through to the writer.
    files: Option<[File; 2]>,
    current: usize,
    /// The highest sequence number written to each file (0: none).
    highest: [u64; 2],
    /// Bytes in the current file.
    size: u64,
    epoch: u64,
    buffer: Vec<u8>,
    /// The highest sequence number in the buffer.
    pending: u64,
    /// How many records the buffer holds.
    count: usize,
    mark: Arc<AtomicU64>,
    /// Set while writes fail, so the failure is logged once, not per batch.
    failing: bool,
    path: PathBuf,
}

impl Journal {
    /// Opens both files empty (replay has run), to write entries of `epoch`.
    pub(crate) fn create(db: &Path, epoch: u64) -> std::io::Result<Journal> {
        let [first, second] = paths(db);
        let open = |path: &Path| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|file| file.set_len(0).map(|()| file))
        };
        let files = [open(&first)?, open(&second)?];
        Ok(Journal {
            files: Some(files),
            ..Journal::without_files(epoch, first)
        })
    }

    /// A journal that writes no file (`sync = "full"`, where lines wait for
    /// the database): it only gathers records for the writer.
    pub(crate) fn without_files(epoch: u64, path: PathBuf) -> Journal {
        Journal {
            files: None,
            current: 0,
            highest: [0, 0],
            size: 0,
            epoch,
            buffer: Vec::new(),
            pending: 0,
            count: 0,
            mark: Arc::new(AtomicU64::new(0)),
            failing: false,
            path,
        }
    }

    /// The mark: every record up to it is in the journal.
    pub(crate) fn mark(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.mark)
    }

    /// Adds record `seq` to the buffer; nothing is written yet.
    pub(crate) fn append(&mut self, seq: u64, record: &Record) {
        let start = self.buffer.len();
        self.buffer.extend_from_slice(&[0; HEADER]);
        encode(&mut self.buffer, self.epoch, seq, record);
        let body = &self.buffer[start + HEADER..];
        let length = u32::try_from(body.len()).unwrap_or(u32::MAX).to_le_bytes();
        let checksum = checksum(body).to_le_bytes();
        self.buffer[start..start + 4].copy_from_slice(&length);
        self.buffer[start + 4..start + HEADER].copy_from_slice(&checksum);
        self.pending = seq;
        self.count += 1;
    }

    /// Writes the buffer with one system call, moves the mark, and
    /// returns the records for the writer; `None` when there were none.
    /// `stored` is the database's mark, which says when the other file may
    /// be emptied. A failed write is logged and the mark moves anyway: as
    /// when a commit fails, chat is worth more than the record of it, and
    /// the writer still tries the database.
    pub(crate) fn flush(&mut self, stored: u64) -> Option<Chunk> {
        if self.buffer.is_empty() {
            return None;
        }
        if let Some(files) = self.files.as_mut() {
            let file = &mut files[self.current];
            match file.write_all(&self.buffer) {
                Ok(()) => {
                    self.size += self.buffer.len() as u64;
                    if std::mem::take(&mut self.failing) {
                        info!(file = %self.path.display(), "history journal writes succeed again");
                    }
                }
                Err(error) => {
                    // A partial entry would end every later replay of this
                    // file: cut what was written of the buffer.
                    let _ = file.set_len(self.size);
                    if !std::mem::replace(&mut self.failing, true) {
                        error!(%error, file = %self.path.display(), "writing the history journal failed; lines are delivered before they are stored");
                    }
                }
            }
            self.highest[self.current] = self.pending;
            self.mark.store(self.pending, Ordering::Release);
            self.rotate(stored);
        }
        let chunk = Chunk {
            bytes: std::mem::take(&mut self.buffer),
            records: std::mem::take(&mut self.count),
        };
        Some(chunk)
    }

    /// Moves to the other file once this one is big and the database has
    /// everything the other holds.
    fn rotate(&mut self, stored: u64) {
        let other = 1 - self.current;
        if self.size < ROTATE_BYTES || self.highest[other] > stored {
            return;
        }
        let Some(files) = self.files.as_mut() else {
            return;
        };
        if let Err(error) = files[other].set_len(0) {
            error!(%error, file = %self.path.display(), "emptying a history journal file failed");
            return;
        }
        self.current = other;
        self.highest[other] = 0;
        self.size = 0;
    }
}

/// The records of a chunk, with their sequence numbers, appended to
/// `out`.
pub(crate) fn decode_chunk(bytes: &[u8], out: &mut Vec<(u64, Record)>) {
    let mut rest = bytes;
    while let Some((body, after)) = next_entry(rest) {
        rest = after;
        if let Some((_, seq, record)) = decode(body) {
            out.push((seq, record));
        }
    }
}

/// The entries of both files that the database may lack: those of
/// `epoch` after `checkpoint`, in order. Stops reading a file at its first
/// partial or damaged entry.
pub(crate) fn replay(
    db: &Path,
    epoch: u64,
    checkpoint: u64,
) -> std::io::Result<Vec<(u64, Record)>> {
    let mut entries = Vec::new();
    for path in paths(db) {
        let mut bytes = Vec::new();
        match File::open(&path) {
            Ok(file) => {
                file.take(REPLAY_LIMIT).read_to_end(&mut bytes)?;
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        }
        let mut rest = bytes.as_slice();
        while let Some((body, after)) = next_entry(rest) {
            rest = after;
            let Some((entry_epoch, seq, record)) = decode(body) else {
                break;
            };
            if entry_epoch == epoch && seq > checkpoint {
                entries.push((seq, record));
            }
        }
    }
    entries.sort_by_key(|(seq, _)| *seq);
    entries.dedup_by_key(|(seq, _)| *seq);
    Ok(entries)
}

/// The body of the first entry of `bytes` and what follows it, if the
/// entry is whole and its checksum matches.
fn next_entry(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let length = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let sum = u64::from_le_bytes(bytes.get(4..HEADER)?.try_into().ok()?);
    let body = bytes.get(HEADER..HEADER.checked_add(length)?)?;
    (checksum(body) == sum).then(|| (body, &bytes[HEADER + length..]))
}

/// FNV-1a, 64 bits: enough to tell a damaged entry from a whole one.
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn encode(out: &mut Vec<u8>, epoch: u64, seq: u64, record: &Record) {
    out.extend_from_slice(&epoch.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&record.time_ms.to_le_bytes());
    for text in [
        record.msgid.as_str(),
        &record.target.column(),
        &record.target_display,
        &record.sender,
        &record.command,
        &record.text,
        &record.tags,
    ] {
        put(out, text);
    }
    match &record.account {
        Some(account) => {
            out.push(1);
            put(out, account);
        }
        None => out.push(0),
    }
}

fn put(out: &mut Vec<u8>, text: &str) {
    let length = u32::try_from(text.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&text.as_bytes()[..length as usize]);
}

fn decode(body: &[u8]) -> Option<(u64, u64, Record)> {
    let mut reader = Reader(body);
    let epoch = reader.u64()?;
    let seq = reader.u64()?;
    let time_ms = reader.u64()? as i64;
    let msgid = reader.text()?;
    let target = HistoryTarget::from_column(&reader.text()?);
    let target_display = reader.text()?;
    let sender = reader.text()?;
    let command = reader.text()?;
    let text = reader.text()?;
    let tags = reader.text()?;
    let account = match reader.byte()? {
        0 => None,
        _ => Some(reader.text()?),
    };
    let record = Record {
        msgid,
        time_ms,
        target,
        target_display,
        sender,
        account,
        command,
        text,
        tags,
    };
    Some((epoch, seq, record))
}

/// Reads an entry's body front to back.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let (taken, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(taken)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|bytes| bytes[0])
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn text(&mut self) -> Option<String> {
        let length = u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize;
        String::from_utf8(self.take(length)?.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{TempDb, record};
    use super::*;

    #[test]
    fn entries_after_the_checkpoint_come_back_in_order() {
        let db = TempDb::new();
        let mut journal = Journal::create(db.path(), 7).unwrap();
        for seq in 1..=4 {
            journal.append(seq, &record(&format!("m{seq}"), seq as i64, "#room"));
        }
        let chunk = journal.flush(0).expect("records");
        assert_eq!(journal.mark().load(Ordering::Acquire), 4);
        assert!(journal.flush(0).is_none(), "nothing new to write");
        assert_eq!(chunk.records, 4);
        let mut decoded = Vec::new();
        decode_chunk(&chunk.bytes, &mut decoded);
        assert_eq!(decoded.len(), 4);
        assert_eq!(decoded[3], (4, record("m4", 4, "#room")));
        let back = replay(db.path(), 7, 2).unwrap();
        let seqs: Vec<u64> = back.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(seqs, [3, 4]);
        assert_eq!(back[0].1, record("m3", 3, "#room"));
        assert!(
            replay(db.path(), 8, 0).unwrap().is_empty(),
            "another epoch's"
        );
    }

    #[test]
    fn a_partial_last_entry_ends_the_replay() {
        let db = TempDb::new();
        let mut journal = Journal::create(db.path(), 1).unwrap();
        journal.append(1, &record("whole", 1, "#room"));
        journal.append(2, &record("cut", 2, "alice bob"));
        journal.flush(0);
        let [path, _] = paths(db.path());
        let length = std::fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(length - 3)
            .unwrap();
        let back = replay(db.path(), 1, 0).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].1.msgid, "whole");
    }

    #[test]
    fn a_full_file_gives_way_once_the_database_has_the_other() {
        let db = TempDb::new();
        let mut journal = Journal::create(db.path(), 1).unwrap();
        let big = Record {
            text: "x".repeat(64 << 10),
            ..record("big", 1, "#room")
        };
        let mut seq = 0;
        while journal.current == 0 {
            seq += 1;
            journal.append(seq, &big);
            journal.flush(0);
        }
        let first_file = seq;
        // The second fills, but the first is not stored yet: it stays.
        while journal.size < ROTATE_BYTES {
            seq += 1;
            journal.append(seq, &big);
            journal.flush(first_file - 1);
        }
        assert_eq!(journal.current, 1);
        seq += 1;
        journal.append(seq, &big);
        journal.flush(first_file);
        assert_eq!(journal.current, 0, "the stored file is reused");
        let back = replay(db.path(), 1, 0).unwrap();
        assert_eq!(back.first().map(|(seq, _)| *seq), Some(first_file + 1));
        assert_eq!(back.last().map(|(seq, _)| *seq), Some(seq));
    }
}
