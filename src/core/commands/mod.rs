//! Command handlers, one file per command family.

use std::time::{SystemTime, UNIX_EPOCH};

pub mod away;
pub mod cap;
pub mod channel_mode;
pub mod chathistory;
pub mod connection;
pub mod help;
pub mod info;
pub mod invite;
pub mod ison;
pub mod join;
pub mod kick;
pub mod kill;
pub mod kline;
pub mod list;
pub mod message;
pub mod monitor;
pub mod names;
pub mod oper;
pub mod part;
pub mod registration;
pub mod rehash;
pub mod setname;
pub mod stats;
pub mod topic;
pub mod user_mode;
pub mod userhost;
pub mod wallops;
pub mod who;
pub mod whois;
pub mod whowas;
pub mod whox;

/// Seconds since the epoch, for 317, 329, 367 and friends.
pub(crate) fn unix_time(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
