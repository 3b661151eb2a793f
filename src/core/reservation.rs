//! Nick reservation (`[accounts] nick_reservation`): which account owns
//! each registered nick, and the deadline by which a client using another
//! account's nick must log in to it or be renamed to a guest nick.
//!
//! The owners are an index the core reads without the store: loaded once
//! at startup and kept current by the outcomes of the account jobs that
//! add or remove nicks (REGISTER, SET ENFORCE, DROP). The deadlines wait
//! in a queue ordered by time, one entry per client at most, which the
//! server's once-a-second [`Event::Tick`](super::Event::Tick) empties of
//! those due ([`State::expire_guest_deadlines`]).

use std::collections::{BTreeSet, HashMap};
use std::time::SystemTime;

use super::commands::{nickserv, registration};
use super::{ClientId, State};
use crate::config::NickReservation;
use crate::network::wire::AccountChange;
use crate::proto::{Casemapping, Folded};

/// Guest nicks tried at random before counting up from one.
const RANDOM_GUEST_TRIES: usize = 20;
/// The most digits a guest number takes: `Guest12345`.
const GUEST_DIGITS: u32 = 5;

/// The account owning a nick.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// Its name as registered.
    pub account: String,
    /// It turned enforcement on (for `nick_reservation = "optional"`).
    pub enforce: bool,
}

/// The nick index and the renaming deadlines.
#[derive(Debug, Default)]
pub struct Reservations {
    /// Folded nick to its owner; bounded by the accounts and the nicks
    /// each may own.
    owners: HashMap<Folded, Owner>,
    /// When each client that must log in is renamed; one entry per client
    /// (its [`Client::guest_deadline`](super::Client::guest_deadline)).
    deadlines: BTreeSet<(SystemTime, ClientId)>,
}

impl Reservations {
    /// The index as the store lists it at startup.
    pub fn new(owners: impl IntoIterator<Item = (Folded, Owner)>) -> Reservations {
        Reservations {
            owners: owners.into_iter().collect(),
            deadlines: BTreeSet::new(),
        }
    }

    /// The account owning `nick`, if any.
    pub fn owner(&self, nick: &Folded) -> Option<&Owner> {
        self.owners.get(nick)
    }

    /// Records that `account` owns `nick` (a REGISTER).
    pub fn add(&mut self, nick: Folded, account: &str) {
        let enforce = self.enforces(account);
        let account = account.to_owned();
        self.owners.insert(nick, Owner { account, enforce });
    }

    /// Forgets every nick of `account`; a dropped account.
    pub fn remove_account(&mut self, account: &str, casemapping: Casemapping) {
        self.owners
            .retain(|_, owner| !casemapping.eq(&owner.account, account));
    }

    /// Sets whether `account`'s nicks are enforced (SET ENFORCE).
    pub fn set_enforce(&mut self, account: &str, on: bool, casemapping: Casemapping) {
        for owner in self.owners.values_mut() {
            if casemapping.eq(&owner.account, account) {
                owner.enforce = on;
            }
        }
    }

    /// Whether `account` asked for its nicks to be enforced.
    fn enforces(&self, account: &str) -> bool {
        self.owners
            .values()
            .any(|owner| owner.account == account && owner.enforce)
    }
}

impl State {
    /// A new account owns the nick of its name: every path creating one
    /// (NickServ REGISTER, draft REGISTER, SAREGISTER) tells the index.
    pub fn account_created(&mut self, account: &str) {
        let nick = self.fold(account);
        self.reservations.add(nick, account);
        let account = account.to_owned();
        self.network_account(AccountChange::Created { account });
    }

    /// Whether `id` is logged in to the account owning its nick (WHOIS 307).
    pub fn owns_nick(&self, id: ClientId) -> bool {
        let Some(client) = self.clients.get(&id) else {
            return false;
        };
        let casemapping = self.config.server.casemapping;
        let owner = self.reservations.owner(&self.fold(&client.nick));
        match (owner, client.account.as_deref()) {
            (Some(owner), Some(account)) => casemapping.eq(&owner.account, account),
            _ => false,
        }
    }

    /// The account `id` must log in to, to keep its nick: the nick's
    /// owner, when the configuration enforces it and the client is not
    /// logged in to it.
    fn nick_claimed_from(&self, id: ClientId) -> Option<String> {
        let client = self.clients.get(&id)?;
        let owner = self.reservations.owner(&self.fold(&client.nick))?;
        let enforced = self.enforced(owner);
        let logged_in = client
            .account
            .as_deref()
            .is_some_and(|account| self.fold(account) == self.fold(&owner.account));
        (enforced && !logged_in).then(|| owner.account.clone())
    }

    /// After a registered client took its nick (NICK, registering, or a
    /// change of account): when another account owns it, the client is
    /// told to log in, and renamed if it has not by `guest_after` from
    /// its first such nick. Changing nick does not restart that time, and
    /// once it is spent the client is renamed at once.
    pub fn check_reserved_nick(&mut self, id: ClientId) {
        if self.owns_nick(id) {
            // Logged in to the owner: the grace period is not needed.
            self.cancel_guest_deadline(id);
            if let Some(client) = self.clients.get_mut(&id) {
                client.guest_grace_spent = false;
            }
            return;
        }
        let Some(account) = self.nick_claimed_from(id) else {
            return;
        };
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        if client.guest_grace_spent {
            return self.rename_to_guest(id);
        }
        let now = self.clock.now();
        let deadline = client
            .guest_deadline
            .unwrap_or_else(|| now + self.config.accounts.guest_after());
        if client.guest_deadline.is_none() {
            self.reservations.deadlines.insert((deadline, id));
            if let Some(client) = self.clients.get_mut(&id) {
                client.guest_deadline = Some(deadline);
            }
        }
        let left = deadline.duration_since(now).unwrap_or_default();
        let text = format!(
            "This nick is owned by the account {account}. Log in to it within {} seconds (/msg NickServ IDENTIFY <password>), or your nick will be changed.",
            left.as_secs().max(1)
        );
        nickserv::say(self, id, &text);
    }

    /// Whether `id`, its grace period spent, is refused the nick `wanted`
    /// because another account owns it and enforces it.
    pub fn nick_refused_after_grace(&self, id: ClientId, wanted: &str) -> bool {
        let Some(client) = self.clients.get(&id).filter(|c| c.guest_grace_spent) else {
            return false;
        };
        let Some(owner) = self.reservations.owner(&self.fold(wanted)) else {
            return false;
        };
        let logged_in = client
            .account
            .as_deref()
            .is_some_and(|account| self.fold(account) == self.fold(&owner.account));
        self.enforced(owner) && !logged_in
    }

    /// Whether the configuration enforces `owner`'s nicks.
    fn enforced(&self, owner: &Owner) -> bool {
        match self.config.accounts.nick_reservation {
            NickReservation::Strict => true,
            NickReservation::Optional => owner.enforce,
            NickReservation::Off => false,
        }
    }

    /// Drops `id`'s renaming deadline, if it has one.
    pub fn cancel_guest_deadline(&mut self, id: ClientId) {
        let deadline = self
            .clients
            .get_mut(&id)
            .and_then(|client| client.guest_deadline.take());
        if let Some(deadline) = deadline {
            self.reservations.deadlines.remove(&(deadline, id));
        }
    }

    /// Renames each client whose deadline passed and that still uses a
    /// nick another account owns.
    pub fn expire_guest_deadlines(&mut self) {
        let now = self.clock.now();
        while let Some(&(deadline, id)) = self.reservations.deadlines.first() {
            if deadline > now {
                break;
            }
            self.cancel_guest_deadline(id);
            if let Some(client) = self.clients.get_mut(&id) {
                client.guest_grace_spent = true;
            }
            if self.nick_claimed_from(id).is_some() {
                self.rename_to_guest(id);
            }
        }
    }

    /// Gives `id` a guest nick and tells it why; with every guest nick
    /// taken, the client is disconnected instead.
    pub fn rename_to_guest(&mut self, id: ClientId) {
        let Some(guest) = self.guest_nick() else {
            self.disconnect(id, "Nick owned by an account, and no guest nick free");
            return;
        };
        registration::force_nick(self, id, &guest);
        let text = format!("You did not log in in time; your nick is now {guest}.");
        nickserv::say(self, id, &text);
    }

    /// An unused nick of `guest_format` that fits `nick_length` and no
    /// account owns: a random number first, else the first free one.
    fn guest_nick(&self) -> Option<String> {
        let format = &self.config.accounts.guest_format;
        let room = self
            .config
            .limits
            .nick_length
            .saturating_sub(format.len() - 1);
        let digits = u32::try_from(room)
            .unwrap_or(u32::MAX)
            .clamp(1, GUEST_DIGITS);
        let top = 10u64.pow(digits);
        let free = |nick: &String| {
            let folded = self.fold(nick);
            nick.len() <= self.config.limits.nick_length
                && !self.nicks.contains_key(&folded)
                && self.reservations.owner(&folded).is_none()
        };
        let random = (0..RANDOM_GUEST_TRIES)
            .map(|_| format.replacen('*', &random_below(top).to_string(), 1))
            .find(&free);
        random.or_else(|| {
            (0..top)
                .map(|n| format.replacen('*', &n.to_string(), 1))
                .find(free)
        })
    }
}

/// A random number below `top`, from the system's source.
fn random_below(top: u64) -> u64 {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut bytes = [0u8; 8];
    // Guest numbers need not be secret: a failed source gives number 0,
    // and the search for a free nick goes on.
    let _ = SystemRandom::new().fill(&mut bytes);
    u64::from_le_bytes(bytes) % top
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::AccountOutcome;
    use crate::core::Event;
    use crate::core::login::tests::answer;
    use crate::core::testing::Harness;

    const NOTICE: &str = ":NickServ!NickServ@services. NOTICE alice :This nick is owned by the account Alice. Log in to it within 30 seconds (/msg NickServ IDENTIFY <password>), or your nick will be changed.";

    /// A server where the account `Alice` owns `alice` (enforced or not),
    /// under `nick_reservation = mode`.
    fn harness(mode: &str, enforce: bool) -> Harness {
        let mut config = crate::config::Config::default();
        config.server.name = "irc.test".into();
        config.accounts = toml::from_str(&format!("nick_reservation = \"{mode}\"")).unwrap();
        let mut h = Harness::with_config(config);
        let owner = Owner {
            account: "Alice".into(),
            enforce,
        };
        h.state.reservations = Reservations::new([(h.state.fold("alice"), owner)]);
        h
    }

    /// The lines `name` got, the NickServ notices only.
    fn notices(h: &mut Harness, name: &str) -> Vec<String> {
        h.take(name)
            .into_iter()
            .filter(|line| line.starts_with(":NickServ!"))
            .collect()
    }

    fn guest_renamed(h: &mut Harness) -> String {
        let lines = h.take("alice");
        assert_eq!(lines.len(), 2, "{lines:?}");
        let nick = lines[0]
            .strip_prefix(":alice!~alice@127.0.0.1 NICK ")
            .unwrap_or_else(|| panic!("a NICK line: {lines:?}"))
            .to_owned();
        assert_eq!(
            lines[1],
            format!(
                ":NickServ!NickServ@services. NOTICE {nick} :You did not log in in time; your nick is now {nick}."
            )
        );
        nick
    }

    #[test]
    fn a_client_taking_an_owned_nick_is_told_then_renamed_to_a_guest_when_time_passes() {
        let mut h = harness("strict", false);
        h.connect("alice");
        h.send("alice", "NICK alice");
        h.send("alice", "USER alice 0 * :Mallory");
        assert_eq!(notices(&mut h, "alice"), [NOTICE]);
        h.advance(29);
        h.state.handle(Event::Tick);
        assert!(h.take("alice").is_empty(), "not yet");
        h.advance(1);
        h.state.handle(Event::Tick);
        let guest = guest_renamed(&mut h);
        let digits = guest.strip_prefix("Guest").unwrap();
        assert!(
            digits.len() <= 5 && digits.bytes().all(|b| b.is_ascii_digit()),
            "{guest}"
        );
        assert_eq!(h.state.clients[&h.id("alice")].nick, guest);
        assert!(h.state.reservations.deadlines.is_empty());
    }

    #[test]
    fn changing_nick_and_back_does_not_restart_the_time_to_log_in() {
        let mut h = harness("strict", false);
        h.register("alice");
        h.advance(29);
        h.send("alice", "NICK other");
        h.send("alice", "NICK alice");
        h.take("alice");
        h.advance(1);
        h.state.handle(Event::Tick);
        let guest = guest_renamed(&mut h);
        assert!(guest.starts_with("Guest"), "{guest}");
    }

    #[test]
    fn a_client_renamed_off_an_owned_nick_may_not_take_it_again() {
        let mut h = harness("strict", false);
        h.register("alice");
        h.advance(30);
        h.state.handle(Event::Tick);
        let guest = guest_renamed(&mut h);
        h.send("alice", "NICK alice");
        assert_eq!(
            h.take("alice"),
            [format!(
                ":irc.test 433 {guest} alice :Nickname is reserved by a different account"
            )]
        );
        assert_eq!(h.state.clients[&h.id("alice")].nick, guest);
    }

    #[test]
    fn logging_in_to_the_owner_in_time_keeps_the_nick() {
        let mut h = harness("strict", false);
        let mut requests = h.attach_worker();
        h.register("alice");
        h.send("alice", "NS IDENTIFY hunter2");
        answer(&mut h, &mut requests, AccountOutcome::Valid("Alice".into()));
        h.take("alice");
        h.advance(30);
        h.state.handle(Event::Tick);
        assert!(h.take("alice").is_empty());
        assert_eq!(h.state.clients[&h.id("alice")].nick, "alice");
        // WHOIS says she identified for it.
        h.send("alice", "WHOIS alice");
        let whois = h.take("alice");
        assert!(
            whois.contains(&":irc.test 307 alice alice :has identified for this nick".to_owned()),
            "{whois:?}"
        );
    }

    #[test]
    fn changing_to_an_owned_nick_starts_the_clock_and_leaving_it_stops_it() {
        let mut h = harness("strict", false);
        h.register("bob");
        h.send("bob", "NICK ALICE");
        let lines = h.take("bob");
        assert_eq!(lines[0], ":bob!~bob@127.0.0.1 NICK ALICE");
        assert!(lines[1].contains("NOTICE ALICE :This nick is owned by the account Alice."));
        h.send("bob", "NICK bob");
        h.take("bob");
        h.advance(30);
        h.state.handle(Event::Tick);
        assert!(h.take("bob").is_empty());
        assert_eq!(h.state.clients[&h.id("bob")].nick, "bob");
    }

    #[test]
    fn optional_reservation_renames_only_for_accounts_that_enforce() {
        for (enforce, told) in [(false, false), (true, true)] {
            let mut h = harness("optional", enforce);
            h.register("alice");
            h.advance(30);
            h.state.handle(Event::Tick);
            let renamed = h.state.clients[&h.id("alice")].nick != "alice";
            assert_eq!(renamed, told, "enforce {enforce}");
        }
    }

    #[test]
    fn reservation_off_renames_nobody() {
        let mut h = harness("off", true);
        h.connect("alice");
        h.send("alice", "NICK alice");
        h.send("alice", "USER alice 0 * :Mallory");
        assert!(notices(&mut h, "alice").is_empty());
        h.advance(30);
        h.state.handle(Event::Tick);
        assert_eq!(h.state.clients[&h.id("alice")].nick, "alice");
    }

    #[test]
    fn a_guest_nick_fits_the_nick_length_and_is_unused() {
        let mut config = crate::config::Config::default();
        config.limits.nick_length = 7;
        let mut h = Harness::with_config(config);
        for n in 0..10 {
            h.register(&format!("Guest{n}"));
        }
        let guest = h.state.guest_nick().unwrap();
        assert_eq!(guest.len(), 7, "{guest}");
        h.state.config = std::sync::Arc::new({
            let mut config = (*h.state.config).clone();
            config.limits.nick_length = 6;
            config
        });
        assert_eq!(h.state.guest_nick(), None, "Guest0 to Guest9 are taken");
    }

    #[test]
    fn ghost_disconnects_whoever_uses_a_nick_the_account_owns() {
        let mut h = harness("off", false);
        let mut requests = h.attach_worker();
        h.register("alice");
        h.register("alice_");
        h.send("alice_", "NS IDENTIFY Alice hunter2");
        answer(&mut h, &mut requests, AccountOutcome::Valid("Alice".into()));
        h.take("alice_");
        h.send("alice_", "NS GHOST alice");
        assert_eq!(
            h.take("alice_"),
            [":NickServ!NickServ@services. NOTICE alice_ :alice has been disconnected."]
        );
        assert!(!h.state.clients.contains_key(&h.id("alice")));
    }
}
