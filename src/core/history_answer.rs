//! A CHATHISTORY query's answer on its way from the history reader back
//! into the core ([`super::Event::HistoryAnswered`]): who asked for what,
//! and what the reader found.

use super::ClientId;
use crate::history::{Record, StoreError, TargetActivity};

/// Who asked for what, carried through the query.
#[derive(Debug)]
pub struct Request {
    pub id: ClientId,
    /// The subcommand, uppercased.
    pub sub: String,
    /// The target as the client wrote it; empty for TARGETS.
    pub target: String,
}

/// What the reader found.
#[derive(Debug)]
pub enum Outcome {
    Lines(Result<Vec<Record>, StoreError>),
    Targets(Result<Vec<TargetActivity>, StoreError>),
}

/// A query's answer on its way back to the core.
#[derive(Debug)]
pub struct Answer {
    pub request: Request,
    pub outcome: Outcome,
}
