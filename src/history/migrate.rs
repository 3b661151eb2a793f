//! `rookery history migrate --to postgres://…`: copies one node's SQLite
//! history into the PostgreSQL database a network shares.
//!
//! Rows go in the order SQLite stored them, a page at a time, each page
//! one transaction; a msgid already there is skipped, so running it again
//! (after an interruption, or twice) copies nothing twice. The standing
//! rooms' floors go too, unless the database has its own already.
//! The node's accounts, kept in the same file, follow the lines
//! (`accounts::transfer`, run by the same command).

use super::postgres::PgStore;
use super::{Store, StoreError};

/// Rows read and inserted at a time.
const PAGE: usize = 5000;

/// What a migration did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Copied {
    /// Lines read from the SQLite file.
    pub read: u64,
    /// Lines PostgreSQL did not have yet.
    pub inserted: u64,
}

/// Copies every line and standing-room floor of `from` into `to`.
pub fn migrate(from: &Store, to: &mut PgStore) -> Result<Copied, StoreError> {
    let mut copied = Copied::default();
    let mut after = 0;
    loop {
        let page = from
            .page_after(after, PAGE)
            .map_err(|e| e.at(from.path()))?;
        let Some((last, _)) = page.last() else {
            break;
        };
        after = *last;
        let inserted = to
            .insert_batch(page.iter().map(|(_, record)| record))
            .map_err(|e| to.at(e))?;
        copied.read += page.len() as u64;
        copied.inserted += inserted as u64;
        if page.len() < PAGE {
            break;
        }
    }
    let floors = from.standing_floors().map_err(|e| e.at(from.path()))?;
    to.adopt_standing(&floors).map_err(|e| to.at(e))?;
    Ok(copied)
}
