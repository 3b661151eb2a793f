//! Password lockouts: after a number of attempts that did not succeed, a
//! key (an address, an account) is refused without a password check for a
//! while. OPER locks an address after [`OPER_ATTEMPTS`]; logging in to an
//! account locks the account and the address after [`LOGIN_ATTEMPTS`].

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, SystemTime};

use crate::proto::{AddressKey, Folded};

/// Failed OPER attempts after which an address is refused without a check.
pub const OPER_ATTEMPTS: u32 = 3;
/// How long those refusals last, for OPER and logins alike.
pub const OPER_LOCKOUT: Duration = Duration::from_secs(60);
/// Login attempts (SASL, IDENTIFY) after which an account, or an address,
/// is refused without a check: enough for typing mistakes, too few to guess.
pub const LOGIN_ATTEMPTS: u32 = 5;

/// Keys tracked at most; past it expired records are dropped.
const TRACKED: usize = 1024;

/// Attempts per key, forgotten once they expire.
#[derive(Debug)]
pub(crate) struct Lockout<K> {
    attempts: HashMap<K, Attempts>,
    limit: u32,
}

/// OPER attempts per address.
pub(crate) type OperLockout = Lockout<AddressKey>;

impl Default for OperLockout {
    fn default() -> OperLockout {
        Lockout::new(OPER_ATTEMPTS)
    }
}

/// Login attempts, per account and per address.
#[derive(Debug)]
pub(crate) struct LoginLockout {
    pub accounts: Lockout<Folded>,
    pub addresses: Lockout<AddressKey>,
}

impl Default for LoginLockout {
    fn default() -> LoginLockout {
        LoginLockout {
            accounts: Lockout::new(LOGIN_ATTEMPTS),
            addresses: Lockout::new(LOGIN_ATTEMPTS),
        }
    }
}

impl LoginLockout {
    /// Starts a login to `account` from `address`, or refuses it (false)
    /// while either is locked. Both count only when both allow it.
    pub fn start_attempt(&mut self, account: Folded, address: AddressKey, now: SystemTime) -> bool {
        if !self.accounts.allows(&account, now) || !self.addresses.allows(&address, now) {
            return false;
        }
        self.accounts.start_attempt(account, now) && self.addresses.start_attempt(address, now)
    }

    /// A right password clears both records.
    pub fn succeeded(&mut self, account: &Folded, address: AddressKey) {
        self.accounts.succeeded(account);
        self.addresses.succeeded(&address);
    }
}

/// Attempts with one key that did not succeed (yet): each counts from the
/// moment it starts, so attempts checked in parallel count too.
#[derive(Debug)]
struct Attempts {
    count: u32,
    last: SystemTime,
}

impl<K: Hash + Eq> Lockout<K> {
    pub fn new(limit: u32) -> Lockout<K> {
        Lockout {
            attempts: HashMap::new(),
            limit,
        }
    }

    /// Whether an attempt with `key` would be allowed now.
    fn allows(&self, key: &K, now: SystemTime) -> bool {
        self.attempts
            .get(key)
            .is_none_or(|attempts| expired(attempts.last, now) || attempts.count < self.limit)
    }

    /// Starts an attempt with `key`, or refuses it (false) while the key
    /// has its limit of attempts failed or still being checked.
    pub fn start_attempt(&mut self, key: K, now: SystemTime) -> bool {
        if self.attempts.len() >= TRACKED {
            self.attempts
                .retain(|_, attempts| !expired(attempts.last, now));
        }
        if self.attempts.len() >= TRACKED && !self.attempts.contains_key(&key) {
            // Every record is live: the oldest goes, so the map stays bounded.
            let oldest = self
                .attempts
                .iter()
                .min_by_key(|(_, attempts)| attempts.last)
                .map(|(_, attempts)| attempts.last);
            if let Some(oldest) = oldest {
                self.attempts.retain(|_, attempts| attempts.last != oldest);
            }
        }
        let attempts = self.attempts.entry(key).or_insert(Attempts {
            count: 0,
            last: now,
        });
        if expired(attempts.last, now) {
            attempts.count = 0;
        }
        if attempts.count >= self.limit {
            return false;
        }
        attempts.count += 1;
        attempts.last = now;
        true
    }

    /// A right password clears the key's record.
    pub fn succeeded(&mut self, key: &K) {
        self.attempts.remove(key);
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
    fn a_locked_account_is_refused_from_any_address_and_a_locked_address_for_any_account() {
        let mut lockout = LoginLockout::default();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let alice = || crate::proto::Casemapping::Ascii.fold("alice");
        for host in 1..=LOGIN_ATTEMPTS {
            let ip = format!("192.0.2.{host}").parse().unwrap();
            assert!(lockout.start_attempt(alice(), AddressKey::new(ip, 64), now));
        }
        let elsewhere = AddressKey::new("198.51.100.1".parse().unwrap(), 64);
        assert!(!lockout.start_attempt(alice(), elsewhere, now));
        let bob = crate::proto::Casemapping::Ascii.fold("bob");
        for _ in 1..LOGIN_ATTEMPTS {
            assert!(lockout.start_attempt(bob.clone(), elsewhere, now));
        }
        // alice's refused attempt did not count against the address.
        assert!(lockout.start_attempt(bob.clone(), elsewhere, now));
        let carol = crate::proto::Casemapping::Ascii.fold("carol");
        assert!(!lockout.start_attempt(carol, elsewhere, now));
        assert!(lockout.start_attempt(alice(), elsewhere, now + OPER_LOCKOUT));
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
