//! The OPER lockout: after [`OPER_ATTEMPTS`] failed attempts an address is
//! refused without a password check for [`OPER_LOCKOUT`].

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use crate::net::AddressKey;

/// Failed OPER attempts after which an address is refused without a check.
pub const OPER_ATTEMPTS: u32 = 3;
/// How long those refusals last.
pub const OPER_LOCKOUT: Duration = Duration::from_secs(60);

/// OPER attempts per address, forgotten once they expire.
#[derive(Debug, Default)]
pub struct OperLockout {
    attempts: HashMap<AddressKey, OperAttempts>,
}

/// OPER attempts from one address that did not succeed (yet): each counts
/// from the moment it starts, so attempts checked in parallel count too.
#[derive(Debug)]
struct OperAttempts {
    count: u32,
    last: SystemTime,
}

impl OperLockout {
    /// Starts an OPER attempt from `key`, or refuses it (false) while the
    /// address has [`OPER_ATTEMPTS`] attempts failed or still being checked.
    pub fn start_attempt(&mut self, key: AddressKey, now: SystemTime) -> bool {
        if self.attempts.len() >= 1024 {
            self.attempts
                .retain(|_, attempts| !expired(attempts.last, now));
        }
        let attempts = self.attempts.entry(key).or_insert(OperAttempts {
            count: 0,
            last: now,
        });
        if expired(attempts.last, now) {
            attempts.count = 0;
        }
        if attempts.count >= OPER_ATTEMPTS {
            return false;
        }
        attempts.count += 1;
        attempts.last = now;
        true
    }

    /// A right password clears the address's record.
    pub fn succeeded(&mut self, key: AddressKey) {
        self.attempts.remove(&key);
    }
}

fn expired(last: SystemTime, now: SystemTime) -> bool {
    now.duration_since(last).unwrap_or_default() >= OPER_LOCKOUT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_opers_started_lock_an_address_for_a_while() {
        let mut lockout = OperLockout::default();
        let key = AddressKey::new("192.0.2.1".parse().unwrap(), 64);
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        for _ in 0..OPER_ATTEMPTS {
            assert!(lockout.start_attempt(key, now));
        }
        assert!(!lockout.start_attempt(key, now));
        assert!(lockout.start_attempt(key, now + OPER_LOCKOUT));
    }

    #[test]
    fn an_ipv6_network_shares_one_oper_lockout() {
        let mut lockout = OperLockout::default();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        for host in 1..=OPER_ATTEMPTS {
            let ip = format!("2001:db8:0:1::{host}").parse().unwrap();
            assert!(lockout.start_attempt(AddressKey::new(ip, 64), now));
        }
        let other_host = AddressKey::new("2001:db8:0:1::99".parse().unwrap(), 64);
        assert!(!lockout.start_attempt(other_host, now));
    }
}
