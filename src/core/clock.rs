//! Where the core reads the time, and the whole seconds replies show.

use std::time::{SystemTime, UNIX_EPOCH};

/// Where the core reads the time: a trait so tests can hold it still.
pub trait Clock: Send {
    fn now(&self) -> SystemTime;
}

/// The wall clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Seconds since the epoch, for 317, 329, 367 and friends.
pub(crate) fn unix_time(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
