//! Password lockouts: after a number of attempts that did not succeed, a
//! key (an address, an account) is refused without a password check for a
//! while. OPER locks an address after [`OPER_ATTEMPTS`]; logging in to an
//! account locks the account and the address after `[accounts]
//! login_attempts` within `login_window`.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, SystemTime};

use crate::config::AccountsConfig;
use crate::proto::{AddressKey, Folded};

/// Failed OPER attempts after which an address is refused without a check.
pub const OPER_ATTEMPTS: u32 = 3;
/// How long those refusals last, for OPER and logins alike.
pub const OPER_LOCKOUT: Duration = Duration::from_secs(60);
/// The window of `[accounts] registrations_per_address_per_hour`.
const REGISTRATION_WINDOW: Duration = Duration::from_secs(3600);

/// Keys tracked at most; past it expired records are dropped.
const TRACKED: usize = 1024;

/// Attempts per key, forgotten once they expire.
#[derive(Debug)]
pub(crate) struct Lockout<K> {
    attempts: HashMap<K, Attempts>,
    limit: u32,
    /// How long an attempt counts.
    window: Duration,
}

/// OPER attempts per address.
pub(crate) type OperLockout = Lockout<AddressKey>;

impl Default for OperLockout {
    fn default() -> OperLockout {
        Lockout::new(OPER_ATTEMPTS, OPER_LOCKOUT)
    }
}

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
        LoginLockout::new(&AccountsConfig::default())
    }
}

impl LoginLockout {
    /// The lockout `[accounts]` asks for.
    pub fn new(config: &AccountsConfig) -> LoginLockout {
        let mut lockout = LoginLockout {
            accounts: Lockout::new(0, Duration::ZERO),
            addresses: Lockout::new(0, Duration::ZERO),
            registrations: Lockout::new(0, REGISTRATION_WINDOW),
        };
        lockout.configure(config);
        lockout
    }

    /// Takes the limits of `[accounts]` (at startup and on REHASH); the
    /// attempts counted so far still count.
    pub fn configure(&mut self, config: &AccountsConfig) {
        let window = config.login_window();
        for lockout in [&mut self.accounts.limit, &mut self.addresses.limit] {
            *lockout = config.login_attempts;
        }
        self.accounts.window = window;
        self.addresses.window = window;
        self.registrations.limit = config.registrations_per_address_per_hour;
    }

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
    /// `registrations_per_address_per_hour`; success does not clear it.
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
    pub fn new(limit: u32, window: Duration) -> Lockout<K> {
        Lockout {
            attempts: HashMap::new(),
            limit,
            window,
        }
    }

    /// Whether an attempt with `key` would be allowed now.
    fn allows(&self, key: &K, now: SystemTime) -> bool {
        self.attempts.get(key).is_none_or(|attempts| {
            expired(attempts.last, now, self.window) || attempts.count < self.limit
        })
    }

    /// Starts an attempt with `key`, or refuses it (false) while the key
    /// has its limit of attempts failed or still being checked.
    pub fn start_attempt(&mut self, key: K, now: SystemTime) -> bool {
        if self.attempts.len() >= TRACKED {
            let window = self.window;
            self.attempts
                .retain(|_, attempts| !expired(attempts.last, now, window));
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
        if expired(attempts.last, now, self.window) {
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

/// Whether an attempt made at `last` no longer counts at `now`.
fn expired(last: SystemTime, now: SystemTime, window: Duration) -> bool {
    now.duration_since(last).unwrap_or_default() >= window
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults of `[accounts]`: 5 logins a minute, 3 registrations an hour.
    const LOGIN_ATTEMPTS: u32 = 5;
    const LOGIN_WINDOW: Duration = Duration::from_secs(60);
    const REGISTRATIONS: u32 = 3;

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
        assert!(lockout.start_attempt(name("alice"), attacker, now + LOGIN_WINDOW));
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
        let mut lockout = Lockout::new(2, OPER_LOCKOUT);
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
        assert!(!lockout.start_registration(address, now + LOGIN_WINDOW));
        assert!(lockout.start_registration(address, now + REGISTRATION_WINDOW));
    }

    #[test]
    fn rehash_applies_the_configured_limits_and_window() {
        let mut lockout = LoginLockout::default();
        let config: AccountsConfig = toml::from_str(
            "login_attempts = 2\nlogin_window = \"10s\"\nregistrations_per_address_per_hour = 1",
        )
        .unwrap();
        lockout.configure(&config);
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let address = key("192.0.2.1");
        for _ in 0..2 {
            assert!(lockout.start_attempt(name("alice"), address, now));
        }
        assert!(!lockout.start_attempt(name("alice"), address, now));
        let later = now + Duration::from_secs(10);
        assert!(lockout.start_attempt(name("alice"), address, later));
        assert!(lockout.start_registration(address, now));
        assert!(!lockout.start_registration(address, now));
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
