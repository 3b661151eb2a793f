//! Logging in and out of accounts: the one place that changes
//! [`Client::account`](super::Client::account), tells the client (900, 901)
//! and its account-notify peers (`ACCOUNT`). Passwords are checked by the
//! worker ([`AccountJob`]); [`State::check_login`] counts the attempt and
//! holds the client's later lines until the answer comes back.

use tracing::{info, warn};

use super::caps::Caps;
use super::commands::{
    account_admin, authenticate, certificates, chanserv, nickserv, oper, register, registration,
};
use super::jobs::{MAX_ACCOUNT_JOBS, MAX_ACCOUNT_JOBS_PER_ADDRESS};
use super::{AccountAnswer, AccountJob, AccountOutcome, AccountPurpose, AdminRequest};
use super::{Client, ClientId, State};
use crate::config::Registration;
use crate::proto::Line;
use crate::proto::numeric;

impl State {
    /// Logs `id` in to `account` (its name as registered), replacing any
    /// account it was logged in to: 900, then +r.
    pub fn log_in(&mut self, id: ClientId, account: &str) {
        self.log_in_without_mode_line(id, account);
        self.announce_registered_mode(id);
        // Not in a SASL exchange (`log_in_without_mode_line`), whose lines
        // clients read as the exchange's.
        self.read_markers_on_login(id);
    }

    /// [`State::log_in`] without the MODE line for +r (the mode is set),
    /// for SASL: clients read the lines after AUTHENTICATE as the
    /// exchange's (900, 903, then the next exchange's `AUTHENTICATE +`),
    /// so a MODE among them is taken for a wrong answer. They see +r in
    /// 221, and a client registering after SASL with its welcome.
    pub fn log_in_without_mode_line(&mut self, id: ClientId, account: &str) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        let changed = client.account.as_deref() != Some(account);
        client.account = Some(account.to_owned());
        client.modes.registered = true;
        info!(nick = ?client.nick, ip = %client.ip, account, "logged in");
        let mask = shown_mask(client);
        let text = format!("You are now logged in as {account}");
        self.reply(id, numeric::RPL_LOGGEDIN, &[&mask, account], &text);
        if changed {
            self.notify_account(id);
            self.network_login(id);
            self.recheck_reserved_nick(id);
            oper::revoke_for_account(self, id);
            // Before registration, the welcome grants it.
            oper::grant_for_account(self, id);
            self.grant_owed_status_everywhere(id);
            super::metadata::on_login(self, id, account);
        }
    }

    /// Logs `id` out of its account, if it is logged in.
    pub fn log_out(&mut self, id: ClientId) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        if client.account.take().is_none() {
            return;
        }
        client.modes.registered = false;
        let registered = client.registered;
        let mask = shown_mask(client);
        self.reply(
            id,
            numeric::RPL_LOGGEDOUT,
            &[&mask],
            "You are now logged out",
        );
        if registered {
            self.send_own_mode(id, "-r");
        }
        self.notify_account(id);
        self.network_login(id);
        self.recheck_reserved_nick(id);
        oper::revoke_for_account(self, id);
    }

    /// Logs this node's connections of `account` out, and ends any SCRAM
    /// exchange waiting to log in to it: the account was suspended or
    /// dropped, so no one may go on using it. Returns the clients logged
    /// out. Users of other nodes are left to their own node, which hears
    /// of the change and says so with a Login: logging them out here would
    /// give them guest deadlines and renames in this node's view only.
    pub fn log_out_account(&mut self, account: &str) -> Vec<ClientId> {
        authenticate::forget_proofs(self, account);
        let casemapping = self.config.server.casemapping;
        let logged_in: Vec<ClientId> = self
            .clients
            .values()
            .filter(|client| client.remote.is_none())
            .filter(|client| {
                client
                    .account
                    .as_deref()
                    .is_some_and(|theirs| casemapping.eq(theirs, account))
            })
            .map(|client| client.id)
            .collect();
        for &id in &logged_in {
            self.log_out(id);
        }
        logged_in
    }

    /// A registered client whose account changed may now have to log in
    /// to keep its nick, or no longer has to.
    fn recheck_reserved_nick(&mut self, id: ClientId) {
        if self
            .clients
            .get(&id)
            .is_some_and(|client| client.registered)
        {
            self.check_reserved_nick(id);
        }
    }

    /// Tells a registered client with +r that it has it: after a login,
    /// or after the welcome of a client that logged in while connecting.
    pub fn announce_registered_mode(&mut self, id: ClientId) {
        if self
            .clients
            .get(&id)
            .is_some_and(|client| client.registered && client.modes.registered)
        {
            self.send_own_mode(id, "+r");
        }
    }

    /// `:nick!user@host MODE nick <change>` to the client itself.
    fn send_own_mode(&mut self, id: ClientId, change: &str) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let line = Line::new(Some(&client.source), "MODE")
            .arg(&client.nick)
            .arg(change)
            .finish();
        self.send(id, line);
    }

    /// account-notify: `:nick!user@host ACCOUNT <account|*>` to peers (and
    /// extended-monitor watchers) that asked for it.
    pub(crate) fn notify_account(&mut self, id: ClientId) {
        let Some(client) = self.clients.get(&id).filter(|client| client.registered) else {
            return;
        };
        let account = client.account.as_deref().unwrap_or("*");
        let line = Line::new(Some(&client.source), "ACCOUNT")
            .arg(account)
            .finish();
        let mut event = self.event_from(id, line);
        let audience = self.audience(id, Caps::ACCOUNT_NOTIFY);
        self.send_all(audience, &mut event);
    }

    /// Starts a login to `account` with `password` for `purpose`: the
    /// worker checks it while the client's later lines wait. False when
    /// the attempt is refused (locked out, or no worker): the caller
    /// answers that as a wrong password.
    pub fn check_login(
        &mut self,
        id: ClientId,
        purpose: AccountPurpose,
        account: &str,
        password: &str,
    ) -> bool {
        let job = AccountJob::Verify {
            account: account.to_owned(),
            password: password.to_owned(),
        };
        self.start_login(id, purpose, account, job)
    }

    /// Counts a login attempt to `account` against the account and the
    /// client's address, then hands `job` to the worker; false when the
    /// attempt is refused (locked out, or no worker).
    pub fn start_login(
        &mut self,
        id: ClientId,
        purpose: AccountPurpose,
        account: &str,
        job: AccountJob,
    ) -> bool {
        let Some(client) = self.clients.get(&id) else {
            return false;
        };
        let (ip, nick) = (client.ip, client.nick.clone());
        let (folded, address) = (self.fold(account), self.address_key(ip));
        let now = self.clock.now();
        if !self.admin.login_lockout.start_attempt(folded, address, now) {
            warn!(?nick, %ip, account, "login refused: too many failed attempts");
            return false;
        }
        self.account_job(id, purpose, job)
    }

    /// Whether `id` may create an account from IRC under `[accounts]
    /// registration`; counts nothing. Every REGISTER path asks this.
    pub fn registration_allowed(&self, id: ClientId) -> Result<(), RegistrationRefused> {
        let oper = self
            .clients
            .get(&id)
            .is_some_and(|client| client.modes.oper);
        match self.config.accounts.registration {
            Registration::Open => Ok(()),
            Registration::Opers if oper => Ok(()),
            Registration::Opers => Err(RegistrationRefused::OpersOnly),
            Registration::Off => Err(RegistrationRefused::Closed),
        }
    }

    /// Starts a REGISTER by `id`: allowed by the configuration, and
    /// counted against the client's address (refused past the hourly
    /// limit), before any password is hashed.
    pub fn start_registration(&mut self, id: ClientId) -> Result<(), RegistrationRefused> {
        self.registration_allowed(id)?;
        let Some(client) = self.clients.get(&id) else {
            return Err(RegistrationRefused::TooMany);
        };
        let (ip, nick) = (client.ip, client.nick.clone());
        let address = self.address_key(ip);
        let now = self.clock.now();
        if !self.admin.login_lockout.start_registration(address, now) {
            warn!(?nick, %ip, "registration refused: too many from this address");
            return Err(RegistrationRefused::TooMany);
        }
        Ok(())
    }

    /// Hands an account job to the worker and holds `id`'s later lines
    /// until its answer; false when there is no worker, or its queue is
    /// full ([`MAX_ACCOUNT_JOBS`]): the caller says to try again later.
    pub fn account_job(&mut self, id: ClientId, purpose: AccountPurpose, job: AccountJob) -> bool {
        let Some(address) = self
            .clients
            .get(&id)
            .map(|client| self.address_key(client.ip))
        else {
            return false;
        };
        let from_address = self
            .admin
            .account_job_addresses
            .iter()
            .filter(|(_, theirs)| *theirs == address)
            .count();
        if self.admin.account_jobs >= MAX_ACCOUNT_JOBS
            || from_address >= MAX_ACCOUNT_JOBS_PER_ADDRESS
        {
            warn!(
                client = id.0,
                "account job refused: the worker's queue is full"
            );
            return false;
        }
        let answer = AccountAnswer::new(id, purpose, self.inbox.clone());
        if !self.admin.request(AdminRequest::Account { job, answer }) {
            return false;
        }
        self.admin.account_jobs += 1;
        self.admin.account_job_addresses.push((id, address));
        self.wait_off_core(id);
        true
    }

    /// Whether accounts can be used at all: `[accounts] enabled`, and they
    /// live in the history database.
    pub fn accounts_enabled(&self) -> bool {
        self.config.accounts.enabled && self.config.history.enabled
    }
}

/// Why an account cannot be registered from IRC now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistrationRefused {
    /// `[accounts] registration = "off"`.
    Closed,
    /// `registration = "opers"`, and the client is not an operator.
    OpersOnly,
    /// The client's address registered its share this hour.
    TooMany,
}

impl RegistrationRefused {
    /// What the client is told.
    pub fn text(self) -> &'static str {
        match self {
            RegistrationRefused::Closed => "Registering accounts is disabled on this server.",
            RegistrationRefused::OpersOnly => "Only operators may register accounts here.",
            RegistrationRefused::TooMany => {
                "Too many accounts registered from your address; try again later."
            }
        }
    }
}

/// The worker's answer to an account job of `id`.
pub fn answered(state: &mut State, id: ClientId, purpose: AccountPurpose, outcome: AccountOutcome) {
    state.admin.account_jobs = state.admin.account_jobs.saturating_sub(1);
    let addresses = &mut state.admin.account_job_addresses;
    if let Some(index) = addresses.iter().position(|(client, _)| *client == id) {
        addresses.swap_remove(index);
    }
    // Only a login clears guesses; a REGISTER or SAREGISTER must not.
    let logged_in = match (&outcome, purpose) {
        (
            AccountOutcome::Valid(name),
            AccountPurpose::Sasl | AccountPurpose::Identify | AccountPurpose::Pass,
        ) => Some(name),
        (AccountOutcome::ScramProved { account, .. }, _) => Some(account),
        (AccountOutcome::Dropped(account), _) => Some(account),
        _ => None,
    };
    if let (Some(name), Some(client)) = (logged_in, state.clients.get(&id)) {
        let address = state.address_key(client.ip);
        let folded = state.fold(name);
        state.admin.login_lockout.succeeded(folded, address);
    }
    state.resume(id, |state| match purpose {
        AccountPurpose::Sasl => authenticate::answered(state, id, outcome),
        AccountPurpose::RegisterCommand => register::answered(state, id, outcome),
        AccountPurpose::VerifyCommand => register::verified(state, id, outcome),
        AccountPurpose::Certificates => certificates::answered(state, id, outcome),
        AccountPurpose::Saregister | AccountPurpose::Suspend | AccountPurpose::Unsuspend => {
            account_admin::answered(state, id, purpose, outcome)
        }
        AccountPurpose::ChanServ => chanserv::answered(state, id, outcome),
        AccountPurpose::Pass => registration::pass_answered(state, id, outcome),
        _ => nickserv::answered(state, id, purpose, outcome),
    });
}

/// The `nick!user@host` of 900 and 901, also before registration: `*`
/// stands for what the client has not sent yet.
fn shown_mask(client: &Client) -> String {
    let or_star = |part: &str| if part.is_empty() { "*" } else { part }.to_owned();
    format!(
        "{}!{}@{}",
        or_star(&client.nick),
        or_star(&client.user),
        client.host
    )
}

#[cfg(test)]
pub(super) mod tests {
    use tokio::sync::mpsc;

    use crate::core::testing::Harness;
    use crate::core::{AccountJob, AccountOutcome, AdminRequest};

    /// Answers the one account job waiting in `requests`, and returns it.
    pub fn answer(
        h: &mut Harness,
        requests: &mut mpsc::UnboundedReceiver<AdminRequest>,
        outcome: AccountOutcome,
    ) -> AccountJob {
        let Ok(AdminRequest::Account { job, answer }) = requests.try_recv() else {
            panic!("an account job was requested");
        };
        h.state.handle(answer.into_event(outcome));
        job
    }

    /// alice, with account-notify, extended-join and account-tag, in #room;
    /// bob about to log in as `Bob`.
    fn watched_login() -> (Harness, mpsc::UnboundedReceiver<AdminRequest>) {
        let mut h = Harness::new();
        let mut requests = h.attach_worker();
        h.register("alice");
        h.send("alice", "CAP REQ :account-notify extended-join account-tag");
        h.register("bob");
        h.send("alice", "JOIN #room");
        h.send("bob", "JOIN #room");
        h.take("alice");
        h.take("bob");
        h.send("bob", "NS IDENTIFY hunter2");
        let job = answer(&mut h, &mut requests, AccountOutcome::Valid("Bob".into()));
        assert!(matches!(
            job,
            AccountJob::Verify { account, password } if account == "bob" && password == "hunter2"
        ));
        (h, requests)
    }

    #[test]
    fn logging_in_is_told_to_the_client_and_to_account_notify_peers() {
        let (mut h, _requests) = watched_login();
        assert_eq!(
            h.take("bob"),
            [
                ":irc.test 900 bob bob!~bob@127.0.0.1 Bob :You are now logged in as Bob",
                ":bob!~bob@127.0.0.1 MODE bob +r",
                ":NickServ!NickServ@services. NOTICE bob :You are now logged in as Bob.",
            ]
        );
        // account-tag too, as on anything a logged-in user causes.
        assert_eq!(
            h.take("alice"),
            ["@account=Bob :bob!~bob@127.0.0.1 ACCOUNT Bob"]
        );
        h.send("bob", "NS LOGOUT");
        assert_eq!(
            h.take("bob"),
            [
                ":irc.test 901 bob bob!~bob@127.0.0.1 :You are now logged out",
                ":bob!~bob@127.0.0.1 MODE bob -r",
                ":NickServ!NickServ@services. NOTICE bob :You are now logged out.",
            ]
        );
        assert_eq!(h.take("alice"), [":bob!~bob@127.0.0.1 ACCOUNT *"]);
    }

    #[test]
    fn a_watcher_with_extended_monitor_hears_a_login_outside_any_room() {
        let mut h = Harness::new();
        h.register("bob");
        for (watcher, caps) in [
            ("watcher", "extended-monitor account-notify"),
            ("plain", "account-notify"),
        ] {
            h.register(watcher);
            h.send(watcher, &format!("CAP REQ :{caps}"));
            h.send(watcher, "MONITOR + bob");
            h.take(watcher);
        }
        let bob = h.id("bob");
        h.state.log_in(bob, "Bob");
        assert_eq!(h.take("watcher"), [":bob!~bob@127.0.0.1 ACCOUNT Bob"]);
        assert_eq!(h.take("plain"), Vec::<String>::new(), "no extended-monitor");
        h.state.log_out(bob);
        assert_eq!(h.take("watcher"), [":bob!~bob@127.0.0.1 ACCOUNT *"]);
    }

    #[test]
    fn a_full_worker_queue_answers_try_again_instead_of_growing() {
        let mut h = Harness::new();
        let mut requests = h.attach_worker();
        h.register("alice");
        h.state.admin.account_jobs = crate::core::jobs::MAX_ACCOUNT_JOBS;
        h.send("alice", "NS INFO bob");
        assert!(requests.try_recv().is_err(), "no job queued");
        assert_eq!(
            h.take("alice"),
            [
                ":NickServ!NickServ@services. NOTICE alice :Accounts cannot be reached right now; try again later."
            ]
        );
        h.state.admin.account_jobs -= 1;
        h.send("alice", "NS INFO bob");
        answer(&mut h, &mut requests, AccountOutcome::About(None));
        assert_eq!(
            h.state.admin.account_jobs,
            crate::core::jobs::MAX_ACCOUNT_JOBS - 1
        );
    }

    #[test]
    fn one_address_holds_only_a_few_account_jobs_at_once() {
        let mut h = Harness::new();
        let mut requests = h.attach_worker();
        let limit = crate::core::jobs::MAX_ACCOUNT_JOBS_PER_ADDRESS;
        let names: Vec<String> = (0..=limit).map(|n| format!("c{n}")).collect();
        for name in &names {
            h.register(name);
            h.send(name, "NS INFO bob");
        }
        let last = names.last().unwrap();
        assert_eq!(
            h.take(last),
            [format!(
                ":NickServ!NickServ@services. NOTICE {last} :Accounts cannot be reached right now; try again later."
            )]
        );
        answer(&mut h, &mut requests, AccountOutcome::About(None));
        h.send(last, "NS INFO bob");
        assert_eq!(h.state.admin.account_jobs, limit);
    }

    #[test]
    fn pass_account_colon_password_logs_in_before_the_welcome() {
        let mut h = Harness::new();
        let mut requests = h.attach_worker();
        h.connect("c");
        h.send("c", "PASS alice:hunter2");
        h.send("c", "NICK alice");
        h.send("c", "USER alice 0 * :Alice");
        assert!(h.take("c").is_empty(), "registration waits for the check");
        let job = answer(&mut h, &mut requests, AccountOutcome::Valid("Alice".into()));
        assert!(matches!(
            job,
            AccountJob::Verify { account, password } if account == "alice" && password == "hunter2"
        ));
        let lines = h.take("c");
        assert_eq!(
            lines[0],
            ":irc.test 900 * *!*@127.0.0.1 Alice :You are now logged in as Alice"
        );
        assert!(lines[1].starts_with(":irc.test 001 alice "), "{lines:?}");
        assert_eq!(
            lines.last().unwrap(),
            ":alice!~alice@127.0.0.1 MODE alice +r"
        );
    }

    #[test]
    fn a_wrong_pass_login_is_told_and_registration_goes_on() {
        let mut h = Harness::new();
        let mut requests = h.attach_worker();
        h.connect("c");
        h.send("c", "PASS alice:wrong");
        answer(&mut h, &mut requests, AccountOutcome::Invalid);
        h.send("c", "NICK alice");
        h.send("c", "USER alice 0 * :Alice");
        let lines = h.take("c");
        assert_eq!(
            lines[0],
            ":irc.test NOTICE * :PASS: invalid account credentials; you are not logged in"
        );
        assert!(lines[1].starts_with(":irc.test 001 alice "), "{lines:?}");
        assert_eq!(h.state.clients[&h.id("c")].account, None);
    }

    #[test]
    fn user_mode_r_follows_the_login_and_no_client_can_set_or_clear_it() {
        let (mut h, _requests) = watched_login();
        h.take("bob");
        h.take("alice");
        h.send("bob", "MODE bob");
        assert_eq!(h.take("bob"), [":irc.test 221 bob +r"]);
        h.send("bob", "MODE bob -r");
        h.send("alice", "MODE alice +r");
        assert!(h.take("bob").is_empty());
        assert!(h.take("alice").is_empty());
        h.send("bob", "MODE bob");
        h.send("alice", "MODE alice");
        assert_eq!(h.take("bob"), [":irc.test 221 bob +r"]);
        assert_eq!(h.take("alice"), [":irc.test 221 alice +"]);
    }

    #[test]
    fn the_account_shows_in_account_tag_extended_join_whois_and_whox() {
        let (mut h, _requests) = watched_login();
        h.take("alice");
        h.take("bob");
        h.send("bob", "PRIVMSG #room :hi");
        assert_eq!(
            h.take("alice"),
            ["@account=Bob :bob!~bob@127.0.0.1 PRIVMSG #room :hi"]
        );
        h.send("bob", "PART #room");
        h.send("bob", "JOIN #room");
        let lines = h.take("alice");
        assert_eq!(
            lines[1],
            "@account=Bob :bob!~bob@127.0.0.1 JOIN #room Bob :bob Name"
        );
        h.send("alice", "WHOIS bob");
        let whois = h.take("alice");
        assert!(
            whois.contains(&":irc.test 330 alice bob Bob :is logged in as".to_owned()),
            "{whois:?}"
        );
        h.send("alice", "WHO bob %na");
        h.send("alice", "WHO alice %na");
        assert_eq!(
            h.take("alice"),
            [
                ":irc.test 354 alice bob Bob",
                ":irc.test 315 alice bob :End of WHO list",
                ":irc.test 354 alice alice 0",
                ":irc.test 315 alice alice :End of WHO list",
            ]
        );
    }
}
