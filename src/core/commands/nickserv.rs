//! NickServ: the account service for clients without SASL, answering
//! `PRIVMSG NickServ :<command>` and its alias `NS <command>` with NOTICEs
//! from `NickServ!NickServ@services.`, as Ergo does. Its nick is reserved.
//! REGISTER, IDENTIFY and INFO are done by the worker; [`answered`] says
//! how they went.

use crate::core::{AccountAbout, AccountJob, AccountOutcome, AccountPurpose, Refusal};
use crate::core::{ClientId, State};
use crate::net::Gate;
use crate::proto::{Line, Message};

use super::nickserv_set;

/// The service's nick, reserved for it.
pub const NICK: &str = "NickServ";
const SOURCE: &str = "NickServ!NickServ@services.";

const HELP: &[&str] = &[
    "NickServ keeps accounts: log in with one from any connection.",
    "REGISTER <password>: creates an account named after your nick and logs you in.",
    "IDENTIFY [account] <password>: logs you in (the account defaults to your nick).",
    "LOGOUT: logs you out.",
    "GHOST <nick>: disconnects a connection using <nick>, when your account owns the nick or the connection is logged in to your account.",
    "INFO [account]: tells about an account.",
    "SET PASSWORD <new password>: changes the password of the account you are logged in to.",
    "SET ENFORCE ON|OFF: whether others using your nicks must log in or be renamed (when the server leaves it to each account).",
    "DROP [account] <password>: deletes the account (by default yours) and frees its nicks.",
    "CERT ADD [fingerprint] | DEL <fingerprint> | LIST: the TLS client certificates that log in to your account (default: this connection's).",
    "Operators (privilege accounts): SAREGISTER <account> <password>, SUSPEND <account> [reason], UNSUSPEND <account>.",
    "Clients that support SASL (PLAIN, SCRAM-SHA-256, EXTERNAL on TLS) can log in while connecting instead.",
];

/// Whether `target` names the service.
pub fn is_service(state: &State, target: &str) -> bool {
    super::service::is(state, target, NICK)
}

/// `NS <command> [<arguments>]`
pub fn ns(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    let text = message.params.join(" ");
    command(state, id, &text);
    Ok(())
}

/// One line sent to the service.
pub fn command(state: &mut State, id: ClientId, text: &str) {
    let Some((verb, arguments)) = super::service::words(state, id, text, say) else {
        return;
    };
    match (verb.as_str(), arguments.as_slice()) {
        ("REGISTER", [password]) => register(state, id, password),
        ("REGISTER", [_, _, ..]) => say(state, id, "A password cannot contain spaces."),
        ("IDENTIFY", [password]) => {
            let nick = nick_of(state, id);
            identify(state, id, &nick, password);
        }
        ("IDENTIFY", [account, password, ..]) => identify(state, id, account, password),
        ("LOGOUT", _) => logout(state, id),
        ("GHOST", [nick, ..]) => ghost(state, id, nick),
        ("GHOST", []) => say(state, id, "Syntax: GHOST <nick>"),
        ("CERT", arguments) => super::certificates::cert(state, id, arguments),
        ("SAREGISTER" | "SUSPEND" | "UNSUSPEND", arguments) => {
            super::account_admin::command(state, id, &verb, arguments);
        }
        ("SET", arguments) => nickserv_set::set(state, id, arguments),
        ("DROP", arguments) => nickserv_set::drop(state, id, arguments),
        ("INFO", arguments) => {
            let account = match arguments.first() {
                Some(account) => (*account).to_owned(),
                None => account_of(state, id).unwrap_or_else(|| nick_of(state, id)),
            };
            let job = AccountJob::Info { account };
            if !state.account_job(id, AccountPurpose::Info, job) {
                unavailable(state, id);
            }
        }
        ("HELP", _) | ("", _) => {
            for line in HELP {
                say(state, id, line);
            }
        }
        ("REGISTER", []) => say(state, id, "Syntax: REGISTER <password>"),
        ("IDENTIFY", []) => say(state, id, "Syntax: IDENTIFY [account] <password>"),
        _ => say(state, id, "Unknown command; send HELP for the list."),
    }
}

/// Tells a client that is logged in so (true); REGISTER and IDENTIFY are
/// for those who are not.
fn already_logged_in(state: &mut State, id: ClientId) -> bool {
    let Some(account) = account_of(state, id) else {
        return false;
    };
    say(
        state,
        id,
        &format!("You are already logged in as {account}."),
    );
    true
}

fn register(state: &mut State, id: ClientId, password: &str) {
    if already_logged_in(state, id) {
        return;
    }
    // An address to verify is required, and only REGISTER takes one.
    if state.config.accounts.registration_requires_email {
        let text = "Registering needs an email address: /quote REGISTER * <email> <password>";
        say(state, id, text);
        return;
    }
    let name = nick_of(state, id);
    if super::oper::names_operator_account(state, &name) {
        say(state, id, "That name is reserved; it cannot be registered.");
        return;
    }
    if let Err(refused) = state.start_registration(id) {
        say(state, id, refused.text());
        return;
    }
    let job = AccountJob::Register {
        name,
        password: password.to_owned(),
        email: None,
    };
    if !state.account_job(id, AccountPurpose::Register, job) {
        unavailable(state, id);
    }
}

fn identify(state: &mut State, id: ClientId, account: &str, password: &str) {
    if already_logged_in(state, id) {
        return;
    }
    if !state.check_login(id, AccountPurpose::Identify, account, password) {
        say(state, id, "Invalid account credentials.");
    }
}

fn logout(state: &mut State, id: ClientId) {
    if account_of(state, id).is_none() {
        say(state, id, "You are not logged in.");
        return;
    }
    state.log_out(id);
    say(state, id, "You are now logged out.");
}

/// Frees `nick` from a stale connection of the same account, or from
/// anyone using a nick the caller's account owns: that connection quits,
/// as Ergo's GHOST does, so the owner can take the nick back.
fn ghost(state: &mut State, id: ClientId, nick: &str) {
    let Some(account) = account_of(state, id) else {
        say(state, id, "You must be logged in to use GHOST.");
        return;
    };
    let casemapping = state.config.server.casemapping;
    let folded = state.fold(nick);
    let ghost = state
        .nicks
        .get(&folded)
        .copied()
        .filter(|&other| other != id);
    let same_account = ghost
        .and_then(|other| state.clients.get(&other))
        .and_then(|other| other.account.as_deref())
        .is_some_and(|theirs| casemapping.eq(theirs, &account));
    let owned = state
        .reservations
        .owner(&folded)
        .is_some_and(|owner| casemapping.eq(&owner.account, &account));
    let (Some(ghost), true) = (ghost, same_account || owned) else {
        say(
            state,
            id,
            &format!(
                "{nick} is not another connection of your account, nor a nick your account owns."
            ),
        );
        return;
    };
    let by = nick_of(state, id);
    tracing::info!(?by, %account, ghost = ?nick, "GHOST");
    let reason = format!("GHOSTed by {by}");
    // A ghost on another node is disconnected by its node.
    let server = state.server_name().to_owned();
    if !state.network_kill(ghost, &server, &reason, &reason) {
        state.disconnect(ghost, &reason);
    }
    say(state, id, &format!("{nick} has been disconnected."));
}

/// The worker's answer to REGISTER, IDENTIFY, INFO, SET or DROP.
pub fn answered(state: &mut State, id: ClientId, purpose: AccountPurpose, outcome: AccountOutcome) {
    if purpose == AccountPurpose::Change {
        return nickserv_set::answered(state, id, outcome);
    }
    match (purpose, outcome) {
        (AccountPurpose::Register, AccountOutcome::Valid(account)) => {
            state.account_created(&account);
            state.log_in(id, &account);
            let text = format!("Account {account} created; you are now logged in.");
            say(state, id, &text);
        }
        (_, AccountOutcome::Valid(account)) => {
            state.log_in(id, &account);
            say(state, id, &format!("You are now logged in as {account}."));
        }
        (_, AccountOutcome::Taken) => {
            let text = "That name is already registered, or owned by an account.";
            say(state, id, text);
        }
        (_, AccountOutcome::BadPassword) => say(state, id, "That password cannot be used."),
        (_, AccountOutcome::BadEmail) => say(state, id, "That email address cannot be used."),
        (_, AccountOutcome::BadName { max }) => {
            let text = format!(
                "Your nick cannot name an account: account names are nicks of at most {max} characters."
            );
            say(state, id, &text);
        }
        (_, AccountOutcome::Invalid) => say(state, id, "Invalid account credentials."),
        (_, AccountOutcome::Suspended) => say(state, id, "That account is suspended."),
        (_, AccountOutcome::About(Some(about))) => info(state, id, &about),
        (_, AccountOutcome::About(None)) => say(state, id, "No such account."),
        // SCRAM's answers go to AUTHENTICATE only, SET's and DROP's above.
        (
            _,
            AccountOutcome::Unavailable
            | AccountOutcome::ScramSalt { .. }
            | AccountOutcome::ScramProved { .. }
            | AccountOutcome::CertificateAdded
            | AccountOutcome::CertificateRemoved(_)
            | AccountOutcome::Certificates(_)
            | AccountOutcome::TooMany
            | AccountOutcome::Changed(_)
            | AccountOutcome::NotFound
            | AccountOutcome::PasswordSet
            | AccountOutcome::EnforceSet(_)
            | AccountOutcome::Dropped(_)
            | AccountOutcome::Pending(_)
            | AccountOutcome::MailFailed,
        ) => unavailable(state, id),
    }
}

fn info(state: &mut State, id: ClientId, about: &AccountAbout) {
    let created = std::time::UNIX_EPOCH
        + std::time::Duration::from_millis(u64::try_from(about.created_ms).unwrap_or(0));
    let registered = crate::proto::tags::server_time(created);
    say(state, id, &format!("Account: {}", about.name));
    say(state, id, &format!("Registered: {registered}"));
    // The nicks an account holds and its suspension are its owner's and
    // the operators' business, not a stranger's.
    let owner =
        account_of(state, id).is_some_and(|own| state.fold(&own) == state.fold(&about.name));
    let oper = state
        .clients
        .get(&id)
        .is_some_and(|client| client.modes.oper);
    if !(owner || oper) {
        return;
    }
    if !about.nicks.is_empty() {
        say(state, id, &format!("Nicks: {}", about.nicks.join(" ")));
    }
    if about.suspended {
        say(state, id, "This account is suspended.");
    }
}

pub(super) fn unavailable(state: &mut State, id: ClientId) {
    say(
        state,
        id,
        "Accounts cannot be reached right now; try again later.",
    );
}

/// A NOTICE from the service to `id`.
pub fn say(state: &mut State, id: ClientId, text: &str) {
    say_after(state, id, text, 0);
}

/// [`say`], once the history writer has done request `seq` (0: at once).
pub fn say_after(state: &mut State, id: ClientId, text: &str, seq: u64) {
    let Some(client) = state.clients.get(&id) else {
        return;
    };
    let line = Line::new(Some(SOURCE), "NOTICE")
        .arg(client.target())
        .trailing(text)
        .finish();
    state.send_after(id, line, Gate::store(seq));
}

fn nick_of(state: &State, id: ClientId) -> String {
    state
        .clients
        .get(&id)
        .map(|client| client.nick.clone())
        .unwrap_or_default()
}

pub(super) fn account_of(state: &State, id: ClientId) -> Option<String> {
    state.clients.get(&id)?.account.clone()
}

#[cfg(test)]
mod tests {
    use crate::core::login::tests::answer;
    use crate::core::testing::Harness;
    use crate::core::{AccountAbout, AccountJob, AccountOutcome};

    #[test]
    fn register_creates_the_account_of_the_current_nick_and_logs_in() {
        let mut h = Harness::new();
        let mut requests = h.attach_worker();
        h.register("alice");
        h.send("alice", "PRIVMSG NickServ :REGISTER hunter2");
        h.send("alice", "PING after");
        assert!(h.take("alice").is_empty(), "PING waits for REGISTER");
        let job = answer(&mut h, &mut requests, AccountOutcome::Valid("alice".into()));
        assert!(matches!(
            job,
            AccountJob::Register { name, password, .. } if name == "alice" && password == "hunter2"
        ));
        assert_eq!(
            h.take("alice"),
            [
                ":irc.test 900 alice alice!~alice@127.0.0.1 alice :You are now logged in as alice",
                ":alice!~alice@127.0.0.1 MODE alice +r",
                ":NickServ!NickServ@services. NOTICE alice :Account alice created; you are now logged in.",
                ":irc.test PONG irc.test :after",
            ]
        );
    }

    #[test]
    fn registrations_from_one_address_are_limited_before_any_hash() {
        let mut h = Harness::new();
        let mut requests = h.attach_worker();
        let nicks = ["a1", "a2", "a3", "a4"];
        for nick in nicks {
            h.register(nick);
        }
        for nick in &nicks[..3] {
            h.send(nick, "NS REGISTER hunter2");
            answer(&mut h, &mut requests, AccountOutcome::Taken);
        }
        h.take("a4");
        h.send("a4", "NS REGISTER hunter2");
        assert!(requests.try_recv().is_err(), "no job for the worker");
        assert_eq!(
            h.take("a4"),
            [
                ":NickServ!NickServ@services. NOTICE a4 :Too many accounts registered from your address; try again later."
            ]
        );
    }

    fn harness_with(accounts: &str) -> Harness {
        let mut config = crate::config::Config::default();
        config.server.name = "irc.test".into();
        config.accounts = toml::from_str(accounts).unwrap();
        Harness::with_config(config)
    }

    #[test]
    fn registration_opers_lets_only_operators_register_and_off_nobody() {
        let mut h = harness_with("registration = \"opers\"");
        let mut requests = h.attach_worker();
        h.register("alice");
        h.register("oper");
        h.make_oper("oper");
        h.send("alice", "NS REGISTER hunter2");
        assert!(requests.try_recv().is_err(), "no job for the worker");
        assert_eq!(
            h.take("alice"),
            [
                ":NickServ!NickServ@services. NOTICE alice :Only operators may register accounts here."
            ]
        );
        h.send("oper", "NS REGISTER hunter2");
        answer(&mut h, &mut requests, AccountOutcome::Valid("oper".into()));
        let mut h = harness_with("registration = \"off\"");
        let mut requests = h.attach_worker();
        h.register("oper");
        h.make_oper("oper");
        h.send("oper", "NS REGISTER hunter2");
        assert!(requests.try_recv().is_err(), "no job for the worker");
        assert_eq!(
            h.take("oper"),
            [
                ":NickServ!NickServ@services. NOTICE oper :Registering accounts is disabled on this server."
            ]
        );
    }

    #[test]
    fn accounts_disabled_answer_so_and_offer_no_sasl() {
        let mut h = harness_with("enabled = false");
        h.register("alice");
        h.send("alice", "NS IDENTIFY hunter2");
        assert_eq!(
            h.take("alice"),
            [":NickServ!NickServ@services. NOTICE alice :Accounts are not enabled on this server."]
        );
        h.send("alice", "CAP LS 302");
        let caps = h.take("alice").join(" ");
        assert!(!caps.contains("sasl"), "{caps}");
    }

    #[test]
    fn info_tells_a_stranger_the_name_and_date_only() {
        let mut h = Harness::new();
        let mut requests = h.attach_worker();
        h.register("alice");
        h.register("bob");
        let about = AccountAbout {
            name: "alice".into(),
            created_ms: 0,
            suspended: true,
            nicks: vec!["alice".into(), "alicia".into()],
        };
        h.send("bob", "NS INFO alice");
        answer(
            &mut h,
            &mut requests,
            AccountOutcome::About(Some(about.clone())),
        );
        let told = h.take("bob");
        assert_eq!(told.len(), 2, "{told:?}");
        assert!(told[0].ends_with(":Account: alice"), "{told:?}");
        h.send("alice", "NS IDENTIFY hunter2");
        answer(&mut h, &mut requests, AccountOutcome::Valid("alice".into()));
        h.take("alice");
        h.send("alice", "NS INFO");
        answer(&mut h, &mut requests, AccountOutcome::About(Some(about)));
        let told = h.take("alice");
        assert!(
            told.iter()
                .any(|line| line.ends_with(":Nicks: alice alicia")),
            "{told:?}"
        );
        assert!(
            told.iter()
                .any(|line| line.ends_with(":This account is suspended."))
        );
    }

    #[test]
    fn a_password_with_spaces_is_refused_not_cut() {
        let mut h = Harness::new();
        let mut requests = h.attach_worker();
        h.register("alice");
        h.send("alice", "NS REGISTER correct horse battery");
        assert!(requests.try_recv().is_err(), "no job for the worker");
        assert_eq!(
            h.take("alice"),
            [":NickServ!NickServ@services. NOTICE alice :A password cannot contain spaces."]
        );
    }

    #[test]
    fn a_taken_name_and_wrong_credentials_leave_the_client_logged_out() {
        let mut h = Harness::new();
        let mut requests = h.attach_worker();
        h.register("alice");
        h.send("alice", "NS REGISTER hunter2");
        answer(&mut h, &mut requests, AccountOutcome::Taken);
        h.send("alice", "NS IDENTIFY alice wrong");
        answer(&mut h, &mut requests, AccountOutcome::Invalid);
        assert_eq!(
            h.take("alice"),
            [
                ":NickServ!NickServ@services. NOTICE alice :That name is already registered, or owned by an account.",
                ":NickServ!NickServ@services. NOTICE alice :Invalid account credentials.",
            ]
        );
        assert_eq!(h.state.clients[&h.id("alice")].account, None);
    }

    #[test]
    fn ghost_disconnects_only_a_connection_of_the_same_account() {
        let mut h = Harness::new();
        let mut requests = h.attach_worker();
        h.register("alice");
        h.register("alice_");
        h.register("mallory");
        for (name, account) in [
            ("alice", "alice"),
            ("alice_", "Alice"),
            ("mallory", "mallory"),
        ] {
            h.send(name, "NS IDENTIFY pw");
            answer(&mut h, &mut requests, AccountOutcome::Valid(account.into()));
            h.take(name);
        }
        h.send("mallory", "NS GHOST alice");
        assert_eq!(
            h.take("mallory"),
            [
                ":NickServ!NickServ@services. NOTICE mallory :alice is not another connection of your account, nor a nick your account owns."
            ]
        );
        h.send("alice_", "NS GHOST alice");
        assert_eq!(
            h.take("alice_"),
            [":NickServ!NickServ@services. NOTICE alice_ :alice has been disconnected."]
        );
        assert!(!h.state.clients.contains_key(&h.id("alice")));
        h.send("alice_", "NICK alice");
        assert_eq!(h.take("alice_"), [":alice_!~alice_@127.0.0.1 NICK alice"]);
    }

    #[test]
    fn the_service_nick_is_reserved_and_its_messages_are_not_relayed() {
        let mut h = Harness::new();
        h.register("alice");
        h.send("alice", "NICK NickServ");
        assert_eq!(
            h.take("alice"),
            [":irc.test 432 alice NickServ :Erroneous nickname"]
        );
        h.send("alice", "NOTICE nickserv :REGISTER x");
        assert!(h.take("alice").is_empty());
        h.send("alice", "NS HELP");
        let help = h.take("alice");
        assert!(
            help.iter()
                .all(|l| l.starts_with(":NickServ!NickServ@services. NOTICE alice :"))
        );
        assert!(help.len() > 3);
    }
}
