//! `rookery history migrate --to postgres://…`: copies one node's SQLite
//! history into the PostgreSQL database a network shares.
//!
//! Rows go in the order SQLite stored them, a page at a time, each page
//! one transaction; a msgid already there is skipped, so running it again
//! (after an interruption, or twice) copies nothing twice. The standing
//! rooms' floors go too, unless the database has its own already.
//! The node's accounts, kept in the same file, go first
//! (`accounts::transfer`, run by the same command): a private line of an
//! account whose name the database holds for another account is not
//! copied, or that other account would read this node's conversations.

use std::collections::HashSet;

use super::postgres::PgStore;
use super::{HistoryTarget, Party, Record, Store, StoreError};
use crate::proto::Folded;

/// Rows read and inserted at a time.
const PAGE: usize = 5000;

/// What a migration did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Copied {
    /// Lines read from the SQLite file.
    pub read: u64,
    /// Lines PostgreSQL did not have yet.
    pub inserted: u64,
    /// Private lines left out: one of their parties is an account whose
    /// name is another account's in the database.
    pub withheld: u64,
}

/// Copies every line and standing-room floor of `from` into `to`, less the
/// private lines of the accounts in `withheld` (casefolded names).
pub fn migrate(
    from: &Store,
    to: &mut PgStore,
    withheld: &HashSet<Folded>,
) -> Result<Copied, StoreError> {
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
        let kept: Vec<&Record> = page
            .iter()
            .map(|(_, record)| record)
            .filter(|record| !withholds(withheld, &record.target))
            .collect();
        let inserted = to
            .insert_batch(kept.iter().copied())
            .map_err(|e| to.at(e))?;
        copied.read += page.len() as u64;
        copied.withheld += (page.len() - kept.len()) as u64;
        copied.inserted += inserted as u64;
        if page.len() < PAGE {
            break;
        }
    }
    let floors = from.standing_floors().map_err(|e| e.at(from.path()))?;
    to.adopt_standing(&floors).map_err(|e| to.at(e))?;
    Ok(copied)
}

/// Whether `target` is a private conversation with a party among the
/// `withheld` accounts.
fn withholds(withheld: &HashSet<Folded>, target: &HistoryTarget) -> bool {
    let HistoryTarget::Private(conversation) = target else {
        return false;
    };
    let (lesser, greater) = conversation.parties();
    [lesser, greater]
        .into_iter()
        .any(|party| matches!(party, Party::Account(name) if withheld.contains(name)))
}
