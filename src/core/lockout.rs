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

/// NickServ REGISTERs per address before it must wait: each costs a
/// password hash, and an account holds a nick.
pub const REGISTRATIONS: u32 = 3;

/// Login attempts, per account from one address and per address.
///
/// An account is locked per address, not for everyone: a stranger's
/// wrong guesses must not lock its owner out. Guessing from many addresses
/// is bounded by the address lock, which a success does not clear (only
/// the successful attempt stops counting), so guesses cannot be spread
/// between logins to an account of one's own.
#[derive(Debug)]
pub(crate) struct LoginLockout {
    accounts: Lockout<(Folded, AddressKey)>,
    addresses: Lockout<AddressKey>,
    registrations: Lockout<AddressKey>,
}

impl Default for LoginLockout {
    fn default() -> LoginLockout {
        LoginLockout {
            accounts: Lockout::new(LOGIN_ATTEMPTS),
            addresses: Lockout::new(LOGIN_ATTEMPTS),
            registrations: Lockout::new(REGISTRATIONS),
        }
    }
}

impl LoginLockout {
    /// Starts a login to `account` from `address`, or refuses it (false)
    /// while either is locked. Both count only when both allow it.
    pub fn start_attempt(&mut self, account: Folded, address: AddressKey, now: SystemTime) -> bool {
        let key = (account, address);
        if !self.accounts.allows(&key, now) || !self.addresses.allows(&address, now) {
            return false;
        }
        self.accounts.start_attempt(key, now) && self.addresses.start_attempt(address, now)
    }

    /// A right password clears the account's record for this address; at
    /// the address it only stops counting as an attempt.
    pub fn succeeded(&mut self, account: Folded, address: AddressKey) {
        self.accounts.succeeded(&(account, address));
        self.addresses.uncount(&address);
    }

    /// Starts a REGISTER from `address`, or refuses it (false) past
    /// [`REGISTRATIONS`] within the lockout time; success does not clear it.
    pub fn start_registration(&mut self, address: AddressKey, now: SystemTime) -> bool {
        self.registrations.start_attempt(address, now)
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
            // Every record is live: the oldest one not locked goes, so the
            // map stays bounded and a lock cannot be flushed out by filling
            // it; with every record locked, new keys wait.
            let limit = self.limit;
            let oldest = self
                .attempts
                .iter()
                .filter(|(_, attempts)| attempts.count < limit)
                .min_by_key(|(_, attempts)| attempts.last)
                .map(|(_, attempts)| attempts.last);
            let Some(oldest) = oldest else {
                return false;
            };
            self.attempts
                .retain(|_, attempts| attempts.count >= limit || attempts.last != oldest);
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

    /// An attempt with `key` that succeeded no longer counts.
    fn uncount(&mut self, key: &K) {
        if let Some(attempts) = self.attempts.get_mut(key) {
            attempts.count = attempts.count.saturating_sub(1);
        }
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

    fn key(ip: &str) -> AddressKey {
        AddressKey::new(ip.parse().unwrap(), 64)
    }

    fn name(name: &str) -> Folded {
        crate::proto::Casemapping::Ascii.fold(name)
    }

    #[test]
    fn guesses_lock_the_account_for_their_address_only_and_the_address_for_every_account() {
        let mut lockout = LoginLockout::default();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let attacker = key("192.0.2.1");
        for _ in 0..LOGIN_ATTEMPTS {
            assert!(lockout.start_attempt(name("alice"), attacker, now));
        }
        assert!(!lockout.start_attempt(name("alice"), attacker, now));
        assert!(
            !lockout.start_attempt(name("bob"), attacker, now),
            "the address is locked"
        );
        // The owner, elsewhere, is not locked out by a stranger's guesses.
        assert!(lockout.start_attempt(name("alice"), key("198.51.100.1"), now));
        assert!(lockout.start_attempt(name("alice"), attacker, now + OPER_LOCKOUT));
    }

    #[test]
    fn logging_in_to_ones_own_account_does_not_reset_the_guesses_counted() {
        let mut lockout = LoginLockout::default();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let attacker = key("192.0.2.1");
        for _ in 0..LOGIN_ATTEMPTS - 1 {
            assert!(lockout.start_attempt(name("alice"), attacker, now));
        }
        assert!(lockout.start_attempt(name("mallory"), attacker, now));
        lockout.succeeded(name("mallory"), attacker);
        // The success stopped counting, the failed guesses did not.
        assert!(lockout.start_attempt(name("alice"), attacker, now));
        assert!(!lockout.start_attempt(name("alice"), attacker, now));
        assert!(!lockout.start_attempt(name("carol"), attacker, now));
    }

    #[test]
    fn a_lock_is_not_flushed_out_by_filling_the_table() {
        let mut lockout = Lockout::new(2);
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        assert!(lockout.start_attempt(u32::MAX, now));
        assert!(lockout.start_attempt(u32::MAX, now));
        for junk in 0..TRACKED as u32 * 2 {
            lockout.start_attempt(junk, now + Duration::from_secs(1));
        }
        assert!(lockout.attempts.len() <= TRACKED);
        assert!(!lockout.start_attempt(u32::MAX, now + Duration::from_secs(1)));
    }

    #[test]
    fn registrations_are_counted_per_address_and_not_cleared() {
        let mut lockout = LoginLockout::default();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let address = key("192.0.2.1");
        for _ in 0..REGISTRATIONS {
            assert!(lockout.start_registration(address, now));
        }
        assert!(!lockout.start_registration(address, now));
        assert!(lockout.start_registration(key("198.51.100.1"), now));
        assert!(lockout.start_registration(address, now + OPER_LOCKOUT));
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
