//! Command handlers, one file per command family.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::proto::serialize::is_middle_safe;

pub mod away;
pub mod cap;
pub mod channel_mode;
pub mod connection;
pub mod info;
pub mod ison;
pub mod registration;
pub mod user_mode;
pub mod userhost;
pub mod who;
pub mod whois;
pub mod whowas;

/// Client text to echo as a middle parameter of a numeric (a nick, a
/// mask), or `*` when it could not be one (empty, a space, a leading `:`).
pub(crate) fn echoable(param: &str) -> &str {
    if is_middle_safe(param) { param } else { "*" }
}

/// Seconds since the epoch, for 317, 329, 367 and friends.
pub(crate) fn unix_time(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
