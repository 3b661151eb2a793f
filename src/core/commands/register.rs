//! REGISTER and VERIFY: IRCv3 `draft/account-registration`. REGISTER
//! creates an account (named after the nick, or any name when
//! `custom_account_names` is on) through the worker, as NickServ REGISTER
//! does, and logs the client in; every refusal is a `FAIL` with a code the
//! spec names. With `registration_requires_email` the account is created
//! pending instead, the worker mails it a code, and VERIFY with that code
//! logs the client in.

use crate::config::Registration;
use crate::core::{AccountJob, AccountOutcome, AccountPurpose, Client, Refusal};
use crate::core::{ClientId, State};
use crate::proto::Message;
use crate::proto::validate::is_valid_nick;

/// The longest account name, whatever NICKLEN is (the store's limit).
pub const MAX_ACCOUNT_LEN: usize = 64;
/// A VERIFY code longer than this is not one the server mailed.
const MAX_CODE_LEN: usize = 64;

/// A refusal: the spec's code, the parameter it names and a text.
struct Failure {
    code: &'static str,
    context: String,
    text: &'static str,
}

impl Failure {
    fn new(code: &'static str, context: &str, text: &'static str) -> Failure {
        Failure {
            code,
            context: context.to_owned(),
            text,
        }
    }
}

/// Whether the capability is offered: accounts are on and someone may
/// register from IRC.
pub fn offered(state: &State) -> bool {
    state.accounts_enabled() && state.config.accounts.registration != Registration::Off
}

/// The capability's value: the keys the configuration turns on.
pub fn cap_value(state: &State, _: &Client) -> Option<String> {
    let accounts = &state.config.accounts;
    let keys: Vec<&str> = [
        (before_connect(state), "before-connect"),
        (accounts.custom_account_names, "custom-account-name"),
        (accounts.registration_requires_email, "email-required"),
    ]
    .into_iter()
    .filter_map(|(on, key)| on.then_some(key))
    .collect();
    (!keys.is_empty()).then(|| keys.join(","))
}

/// Whether REGISTER works before the connection is registered: as
/// configured, but never on a server with a connection password, which
/// registering early would get round (the spec's security consideration).
fn before_connect(state: &State) -> bool {
    state.config.accounts.registration_before_connect && state.config.server.password.is_none()
}

/// `REGISTER <account> {<email> | "*"} <password>`
pub fn register(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    let (wanted, email, password) = (message.param(0), message.param(1), message.param(2));
    let started = may_use(state, id, "REGISTER", wanted)
        .and_then(|()| account_name(state, id, wanted))
        .and_then(|account| {
            let email = check_email(state, &account, email)?;
            start(state, id, account, email, password)
        });
    if let Err(failure) = started {
        send(state, id, "REGISTER", &failure);
    }
    Ok(())
}

/// `VERIFY <account> <code>`: the code mailed when REGISTER answered
/// VERIFICATION_REQUIRED.
pub fn verify(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    let (account, code) = (message.param(0), message.param(1));
    let started =
        may_use(state, id, "VERIFY", account).and_then(|()| start_verify(state, id, account, code));
    if let Err(failure) = started {
        send(state, id, "VERIFY", &failure);
    }
    Ok(())
}

/// Hands the code to the worker, unless no code can be waiting for it.
fn start_verify(state: &mut State, id: ClientId, account: &str, code: &str) -> Result<(), Failure> {
    let invalid = || {
        let text = "No registration is waiting for that code";
        Failure::new("INVALID_CODE", account, text)
    };
    let plausible =
        !code.is_empty() && code.len() <= MAX_CODE_LEN && account.len() <= MAX_ACCOUNT_LEN;
    if !state.config.accounts.registration_requires_email || !plausible {
        return Err(invalid());
    }
    if let Some(client) = state.clients.get_mut(&id) {
        client.registering = Some(account.to_owned());
    }
    let job = AccountJob::VerifyCode {
        account: account.to_owned(),
        code: code.to_owned(),
    };
    if !state.account_job(id, AccountPurpose::VerifyCommand, job) {
        let text = "Accounts cannot be reached right now; try again later";
        return Err(Failure::new("TEMPORARILY_UNAVAILABLE", account, text));
    }
    Ok(())
}

/// The checks REGISTER and VERIFY share: accounts on, the connection far
/// enough along, the client not logged in yet.
fn may_use(state: &State, id: ClientId, command: &str, wanted: &str) -> Result<(), Failure> {
    let Some(client) = state.clients.get(&id) else {
        return Ok(());
    };
    if !state.accounts_enabled() {
        let text = "Accounts are not enabled on this server";
        return Err(Failure::new("TEMPORARILY_UNAVAILABLE", wanted, text));
    }
    if !client.registered && !before_connect(state) {
        let text = "You must complete the connection before registering your account";
        return Err(Failure::new("COMPLETE_CONNECTION_REQUIRED", wanted, text));
    }
    if let Some(account) = &client.account {
        let text = "You are already logged in";
        return Err(Failure::new("ALREADY_AUTHENTICATED", account, text));
    }
    if command == "REGISTER" && state.registration_allowed(id).is_err() {
        let text = "Account registration is not open on this server";
        return Err(Failure::new("DISALLOWED", wanted, text));
    }
    Ok(())
}

/// The account REGISTER creates: `*` is the current nick; another name
/// only with `custom_account_names`, and not a nick someone is using.
fn account_name(state: &State, id: ClientId, wanted: &str) -> Result<String, Failure> {
    let nick = state
        .clients
        .get(&id)
        .map(|client| client.nick.clone())
        .unwrap_or_default();
    if nick.is_empty() {
        return Err(Failure::new(
            "NEED_NICK",
            "*",
            "You must choose a nick first",
        ));
    }
    let account = if wanted == "*" {
        nick.clone()
    } else {
        wanted.to_owned()
    };
    let own_nick = state.fold(&account) == state.fold(&nick);
    if !own_nick && !state.config.accounts.custom_account_names {
        let text = "You may only register your nick as your account name";
        return Err(Failure::new("ACCOUNT_NAME_MUST_BE_NICK", wanted, text));
    }
    let max_len = state.config.limits.nick_length.min(MAX_ACCOUNT_LEN);
    if !is_valid_nick(&account, max_len) || super::nickserv::is_service(state, &account) {
        let text = "That account name cannot be used; it must be a valid nick";
        return Err(Failure::new("BAD_ACCOUNT_NAME", wanted, text));
    }
    if super::oper::names_operator_account(state, &account) {
        let text = "That account name is reserved";
        return Err(Failure::new("BAD_ACCOUNT_NAME", &account, text));
    }
    if !own_nick && state.nicks.contains_key(&state.fold(&account)) {
        let text = "That name is another user's nick";
        return Err(Failure::new("ACCOUNT_EXISTS", &account, text));
    }
    Ok(account)
}

/// The address REGISTER gave: `*` for none, refused when one is required.
/// Its form is checked by the worker, before the password is hashed.
fn check_email(state: &State, account: &str, email: &str) -> Result<Option<String>, Failure> {
    match email {
        "*" if state.config.accounts.registration_requires_email => {
            let text = "An email address is required to register";
            Err(Failure::new("INVALID_EMAIL", account, text))
        }
        "*" => Ok(None),
        email => Ok(Some(email.to_owned())),
    }
}

/// Counts the registration against the address and hands it to the worker.
fn start(
    state: &mut State,
    id: ClientId,
    account: String,
    email: Option<String>,
    password: &str,
) -> Result<(), Failure> {
    if password.is_empty() {
        let text = "The password cannot be empty";
        return Err(Failure::new("UNACCEPTABLE_PASSWORD", &account, text));
    }
    if let Err(refused) = state.start_registration(id) {
        return Err(Failure::new(
            "TEMPORARILY_UNAVAILABLE",
            &account,
            refused.text(),
        ));
    }
    if let Some(client) = state.clients.get_mut(&id) {
        client.registering = Some(account.clone());
    }
    let job = AccountJob::Register {
        name: account.clone(),
        password: password.to_owned(),
        email,
    };
    if !state.account_job(id, AccountPurpose::RegisterCommand, job) {
        let text = "Accounts cannot be reached right now; try again later";
        return Err(Failure::new("TEMPORARILY_UNAVAILABLE", &account, text));
    }
    Ok(())
}

/// The worker's answer: the account is created and the client logged in
/// to it (900, account-notify), or a FAIL saying why not.
pub fn answered(state: &mut State, id: ClientId, outcome: AccountOutcome) {
    let Some(client) = state.clients.get_mut(&id) else {
        return;
    };
    let wanted = client.registering.take().unwrap_or_default();
    let failure = match outcome {
        AccountOutcome::Valid(account) => {
            let text = "Account successfully registered";
            return succeeded(state, id, "REGISTER", &account, text);
        }
        AccountOutcome::Pending(account) => {
            let text = "Account created; send VERIFY with the code mailed to your address";
            reply(
                state,
                id,
                "REGISTER",
                "VERIFICATION_REQUIRED",
                &account,
                text,
            );
            return;
        }
        AccountOutcome::MailFailed => {
            let text = "The verification mail could not be sent; try again later";
            Failure::new("TEMPORARILY_UNAVAILABLE", &wanted, text)
        }
        AccountOutcome::Taken => Failure::new(
            "ACCOUNT_EXISTS",
            &wanted,
            "That name is already registered, or owned by an account",
        ),
        AccountOutcome::BadPassword => {
            let text = "That password cannot be used";
            Failure::new("UNACCEPTABLE_PASSWORD", &wanted, text)
        }
        AccountOutcome::BadEmail => {
            let text = "Mail cannot be sent to that address";
            Failure::new("INVALID_EMAIL", &wanted, text)
        }
        _ => {
            let text = "Accounts cannot be reached right now; try again later";
            Failure::new("TEMPORARILY_UNAVAILABLE", &wanted, text)
        }
    };
    send(state, id, "REGISTER", &failure);
}

/// The worker's answer to VERIFY: the account is verified and the
/// client logged in to it, as after REGISTER SUCCESS, or a FAIL.
pub fn verified(state: &mut State, id: ClientId, outcome: AccountOutcome) {
    let Some(client) = state.clients.get_mut(&id) else {
        return;
    };
    let wanted = client.registering.take().unwrap_or_default();
    let failure = match outcome {
        AccountOutcome::Valid(account) => {
            let text = "Account successfully verified";
            return succeeded(state, id, "VERIFY", &account, text);
        }
        AccountOutcome::Invalid => {
            let text = "That code is wrong or has expired";
            Failure::new("INVALID_CODE", &wanted, text)
        }
        _ => {
            let text = "Accounts cannot be reached right now; try again later";
            Failure::new("TEMPORARILY_UNAVAILABLE", &wanted, text)
        }
    };
    send(state, id, "VERIFY", &failure);
}

/// REGISTER or VERIFY SUCCESS: the account now owns its name as a nick
/// (as after NickServ REGISTER), and the client is logged in to it.
fn succeeded(state: &mut State, id: ClientId, command: &str, account: &str, text: &str) {
    state.account_created(account);
    reply(state, id, command, "SUCCESS", account, text);
    state.log_in(id, account);
}

/// A reply that is not a FAIL: `<command> <code> <account> :<text>`.
fn reply(state: &mut State, id: ClientId, command: &str, code: &str, account: &str, text: &str) {
    let line = crate::proto::Line::new(Some(state.server_name()), command)
        .arg(code)
        .arg(account)
        .trailing(text)
        .finish();
    state.send(id, line);
}

fn send(state: &mut State, id: ClientId, command: &str, failure: &Failure) {
    let context = [failure.context.as_str()];
    state.fail(id, command, failure.code, &context, failure.text);
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, Registration};
    use crate::core::login::tests::answer;
    use crate::core::testing::Harness;
    use crate::core::{AccountJob, AccountOutcome, AdminRequest};
    use tokio::sync::mpsc::UnboundedReceiver;

    fn harness(change: impl FnOnce(&mut Config)) -> Harness {
        let mut config = Config::default();
        config.server.name = "irc.test".into();
        change(&mut config);
        Harness::with_config(config)
    }

    #[test]
    fn register_creates_the_account_of_the_nick_and_logs_in() {
        let mut h = Harness::new();
        let mut requests = h.attach_worker();
        h.register("alice");
        h.send("alice", "REGISTER * * hunter2");
        h.send("alice", "PING after");
        assert!(h.take("alice").is_empty(), "PING waits for REGISTER");
        let job = answer(&mut h, &mut requests, AccountOutcome::Valid("alice".into()));
        assert!(matches!(
            job,
            AccountJob::Register { name, password, email: None }
                if name == "alice" && password == "hunter2"
        ));
        assert_eq!(
            h.take("alice"),
            [
                ":irc.test REGISTER SUCCESS alice :Account successfully registered",
                ":irc.test 900 alice alice!~alice@127.0.0.1 alice :You are now logged in as alice",
                ":alice!~alice@127.0.0.1 MODE alice +r",
                ":irc.test PONG irc.test :after",
            ]
        );
        // The new account owns the nick at once, as after NickServ REGISTER.
        assert!(h.state.owns_nick(h.id("alice")));
    }

    #[test]
    fn before_connect_registers_and_logs_in_before_the_welcome() {
        let mut h = Harness::new();
        let mut requests = h.attach_worker();
        h.connect("bar");
        h.send("bar", "CAP LS 302");
        h.send("bar", "NICK bar");
        h.take("bar");
        h.send("bar", "REGISTER bar * hunter2");
        answer(&mut h, &mut requests, AccountOutcome::Valid("bar".into()));
        assert_eq!(
            h.take("bar"),
            [
                ":irc.test REGISTER SUCCESS bar :Account successfully registered",
                ":irc.test 900 bar bar!*@127.0.0.1 bar :You are now logged in as bar",
            ]
        );
        assert!(!h.state.clients[&h.id("bar")].registered);
    }

    #[test]
    fn without_before_connect_register_waits_for_the_connection() {
        let mut h = harness(|config| config.accounts.registration_before_connect = false);
        let mut requests = h.attach_worker();
        h.connect("bar");
        h.send("bar", "NICK bar");
        h.send("bar", "REGISTER * * hunter2");
        h.send("bar", "VERIFY bar 1234");
        assert!(requests.try_recv().is_err(), "no job for the worker");
        assert_eq!(
            h.take("bar"),
            [
                ":irc.test FAIL REGISTER COMPLETE_CONNECTION_REQUIRED * :You must complete the connection before registering your account",
                ":irc.test FAIL VERIFY COMPLETE_CONNECTION_REQUIRED bar :You must complete the connection before registering your account",
            ]
        );
    }

    #[test]
    fn a_connection_password_turns_before_connect_off() {
        let mut h = harness(|config| config.server.password = Some("sesame".into()));
        let mut requests = h.attach_worker();
        h.connect("bar");
        h.send("bar", "CAP LS 302");
        let caps = h.take("bar").join(" ");
        assert!(caps.contains(" draft/account-registration "), "{caps}");
        h.send("bar", "NICK bar");
        h.send("bar", "REGISTER * * hunter2");
        assert!(requests.try_recv().is_err(), "no job for the worker");
        let lines = h.take("bar");
        assert!(
            lines[0].starts_with(":irc.test FAIL REGISTER COMPLETE_CONNECTION_REQUIRED * :"),
            "{lines:?}"
        );
    }

    #[test]
    fn register_before_nick_needs_a_nick() {
        let mut h = Harness::new();
        h.attach_worker();
        h.connect("anon");
        h.send("anon", "REGISTER * * hunter2");
        assert_eq!(
            h.take("anon"),
            [":irc.test FAIL REGISTER NEED_NICK * :You must choose a nick first"]
        );
    }

    #[test]
    fn another_name_needs_custom_account_names_and_must_not_be_a_nick_in_use() {
        let mut h = Harness::new();
        let mut requests = h.attach_worker();
        h.register("bar");
        h.send("bar", "REGISTER foo * hunter2");
        assert_eq!(
            h.take("bar"),
            [
                ":irc.test FAIL REGISTER ACCOUNT_NAME_MUST_BE_NICK foo :You may only register your nick as your account name"
            ]
        );
        let mut h = harness(|config| config.accounts.custom_account_names = true);
        h.attach_worker();
        h.register("bar");
        h.register("foo");
        h.send("bar", "REGISTER foo * hunter2");
        h.send("bar", "REGISTER NickServ * hunter2");
        assert_eq!(
            h.take("bar"),
            [
                ":irc.test FAIL REGISTER ACCOUNT_EXISTS foo :That name is another user's nick",
                ":irc.test FAIL REGISTER BAD_ACCOUNT_NAME NickServ :That account name cannot be used; it must be a valid nick",
            ]
        );
        assert!(requests.try_recv().is_err(), "no job for the worker");
    }

    #[test]
    fn a_custom_name_is_registered_as_asked() {
        let mut h = harness(|config| config.accounts.custom_account_names = true);
        let mut requests = h.attach_worker();
        h.register("bar");
        h.send("bar", "REGISTER Foo * hunter2");
        let job = answer(&mut h, &mut requests, AccountOutcome::Valid("Foo".into()));
        assert!(matches!(job, AccountJob::Register { name, .. } if name == "Foo"));
        let lines = h.take("bar");
        assert_eq!(
            lines[0],
            ":irc.test REGISTER SUCCESS Foo :Account successfully registered"
        );
        assert_eq!(
            h.state.clients[&h.id("bar")].account.as_deref(),
            Some("Foo")
        );
    }

    #[test]
    fn an_email_is_required_when_configured_and_passed_on_when_given() {
        let mut h = harness(|config| config.accounts.registration_requires_email = true);
        let mut requests = h.attach_worker();
        h.register("bar");
        h.send("bar", "REGISTER * * hunter2");
        assert_eq!(
            h.take("bar"),
            [":irc.test FAIL REGISTER INVALID_EMAIL bar :An email address is required to register"]
        );
        h.send("bar", "REGISTER * bar@example.org hunter2");
        let job = answer(&mut h, &mut requests, AccountOutcome::BadEmail);
        assert!(matches!(
            job,
            AccountJob::Register { email: Some(email), .. } if email == "bar@example.org"
        ));
        assert_eq!(
            h.take("bar"),
            [":irc.test FAIL REGISTER INVALID_EMAIL bar :Mail cannot be sent to that address"]
        );
    }

    #[test]
    fn the_workers_refusals_are_the_specs_codes() {
        let mut h = Harness::new();
        let mut requests = h.attach_worker();
        h.register("bar");
        h.send("bar", "REGISTER * * hunter2");
        answer(&mut h, &mut requests, AccountOutcome::Taken);
        h.send("bar", "REGISTER * * hunter2");
        answer(&mut h, &mut requests, AccountOutcome::BadPassword);
        h.send("bar", "REGISTER * * :");
        assert_eq!(
            h.take("bar"),
            [
                ":irc.test FAIL REGISTER ACCOUNT_EXISTS bar :That name is already registered, or owned by an account",
                ":irc.test FAIL REGISTER UNACCEPTABLE_PASSWORD bar :That password cannot be used",
                ":irc.test FAIL REGISTER UNACCEPTABLE_PASSWORD bar :The password cannot be empty",
            ]
        );
        assert_eq!(h.state.clients[&h.id("bar")].account, None);
    }

    #[test]
    fn a_logged_in_client_cannot_register_or_verify() {
        let mut h = Harness::new();
        let mut requests = h.attach_worker();
        h.register("bar");
        h.send("bar", "REGISTER * * hunter2");
        answer(&mut h, &mut requests, AccountOutcome::Valid("bar".into()));
        h.take("bar");
        h.send("bar", "REGISTER * * hunter2");
        h.send("bar", "VERIFY bar 1234");
        assert_eq!(
            h.take("bar"),
            [
                ":irc.test FAIL REGISTER ALREADY_AUTHENTICATED bar :You are already logged in",
                ":irc.test FAIL VERIFY ALREADY_AUTHENTICATED bar :You are already logged in",
            ]
        );
    }

    #[test]
    fn verify_has_no_code_to_accept() {
        let mut h = Harness::new();
        h.attach_worker();
        h.register("bar");
        h.send("bar", "VERIFY bar 1234");
        assert_eq!(
            h.take("bar"),
            [":irc.test FAIL VERIFY INVALID_CODE bar :No registration is waiting for that code"]
        );
    }

    /// bar, on a server that wants an address, after REGISTER was
    /// answered with `outcome`.
    fn registered_with_email(
        outcome: AccountOutcome,
    ) -> (Harness, UnboundedReceiver<AdminRequest>) {
        let mut h = harness(|config| config.accounts.registration_requires_email = true);
        let mut requests = h.attach_worker();
        h.register("bar");
        h.send("bar", "REGISTER * bar@example.org hunter2");
        answer(&mut h, &mut requests, outcome);
        (h, requests)
    }

    #[test]
    fn a_pending_registration_asks_for_the_code_and_does_not_log_in() {
        let (mut h, _requests) = registered_with_email(AccountOutcome::Pending("bar".into()));
        assert_eq!(
            h.take("bar"),
            [
                ":irc.test REGISTER VERIFICATION_REQUIRED bar :Account created; send VERIFY with the code mailed to your address"
            ]
        );
        assert_eq!(h.state.clients[&h.id("bar")].account, None);
    }

    #[test]
    fn the_right_code_verifies_and_logs_in_before_later_lines() {
        let (mut h, mut requests) = registered_with_email(AccountOutcome::Pending("bar".into()));
        h.take("bar");
        h.send("bar", "VERIFY bar Ab3-x_9Z");
        h.send("bar", "PING after");
        assert!(h.take("bar").is_empty(), "PING waits for VERIFY");
        let job = answer(&mut h, &mut requests, AccountOutcome::Valid("bar".into()));
        assert!(matches!(
            job,
            AccountJob::VerifyCode { account, code } if account == "bar" && code == "Ab3-x_9Z"
        ));
        assert_eq!(
            h.take("bar"),
            [
                ":irc.test VERIFY SUCCESS bar :Account successfully verified",
                ":irc.test 900 bar bar!~bar@127.0.0.1 bar :You are now logged in as bar",
                ":bar!~bar@127.0.0.1 MODE bar +r",
                ":irc.test PONG irc.test :after",
            ]
        );
        assert_eq!(
            h.state.clients[&h.id("bar")].account.as_deref(),
            Some("bar")
        );
        let owner = h.state.reservations.owner(&h.state.fold("BAR"));
        assert_eq!(owner.map(|owner| owner.account.as_str()), Some("bar"));
    }

    #[test]
    fn a_wrong_code_is_invalid_code_and_does_not_log_in() {
        let (mut h, mut requests) = registered_with_email(AccountOutcome::Pending("bar".into()));
        h.take("bar");
        h.send("bar", "VERIFY bar wrong");
        answer(&mut h, &mut requests, AccountOutcome::Invalid);
        let long = "x".repeat(65);
        h.send("bar", &format!("VERIFY bar {long}"));
        assert!(
            requests.try_recv().is_err(),
            "no job for an impossible code"
        );
        assert_eq!(
            h.take("bar"),
            [
                ":irc.test FAIL VERIFY INVALID_CODE bar :That code is wrong or has expired",
                ":irc.test FAIL VERIFY INVALID_CODE bar :No registration is waiting for that code",
            ]
        );
        assert_eq!(h.state.clients[&h.id("bar")].account, None);
        assert!(h.state.reservations.owner(&h.state.fold("bar")).is_none());
    }

    #[test]
    fn a_mail_the_relay_refuses_is_temporarily_unavailable() {
        let (mut h, _requests) = registered_with_email(AccountOutcome::MailFailed);
        assert_eq!(
            h.take("bar"),
            [
                ":irc.test FAIL REGISTER TEMPORARILY_UNAVAILABLE bar :The verification mail could not be sent; try again later"
            ]
        );
    }

    #[test]
    fn nickserv_register_points_to_register_when_an_address_is_required() {
        let mut h = harness(|config| config.accounts.registration_requires_email = true);
        let mut requests = h.attach_worker();
        h.register("bar");
        h.send("bar", "NS REGISTER hunter2");
        assert!(requests.try_recv().is_err(), "no job for the worker");
        assert_eq!(
            h.take("bar"),
            [
                ":NickServ!NickServ@services. NOTICE bar :Registering needs an email address: /quote REGISTER * <email> <password>"
            ]
        );
    }

    #[test]
    fn registration_for_opers_refuses_others_and_off_withdraws_the_capability() {
        let mut h = harness(|config| config.accounts.registration = Registration::Opers);
        let mut requests = h.attach_worker();
        h.register("bar");
        h.register("oper");
        h.make_oper("oper");
        h.send("bar", "REGISTER * * hunter2");
        assert_eq!(
            h.take("bar"),
            [
                ":irc.test FAIL REGISTER DISALLOWED * :Account registration is not open on this server"
            ]
        );
        h.send("oper", "REGISTER * * hunter2");
        answer(&mut h, &mut requests, AccountOutcome::Valid("oper".into()));
        let mut h = harness(|config| config.accounts.registration = Registration::Off);
        h.connect("bar");
        h.send("bar", "CAP LS 302");
        let caps = h.take("bar").join(" ");
        assert!(!caps.contains("draft/account-registration"), "{caps}");
    }

    #[test]
    fn the_capability_lists_the_configured_keys() {
        let cap_ls = |change: fn(&mut Config)| {
            let mut h = harness(change);
            h.connect("bar");
            h.send("bar", "CAP LS 302");
            let caps = h.take("bar").join(" ");
            caps.split([' ', ':'])
                .find(|cap| cap.starts_with("draft/account-registration"))
                .map(str::to_owned)
        };
        assert_eq!(
            cap_ls(|_| {}).as_deref(),
            Some("draft/account-registration=before-connect")
        );
        assert_eq!(
            cap_ls(|config| {
                config.accounts.registration_before_connect = false;
            })
            .as_deref(),
            Some("draft/account-registration")
        );
        assert_eq!(
            cap_ls(|config| {
                config.accounts.custom_account_names = true;
                config.accounts.registration_requires_email = true;
            })
            .as_deref(),
            Some("draft/account-registration=before-connect,custom-account-name,email-required")
        );
    }

    #[test]
    fn registrations_from_one_address_are_throttled() {
        let mut h = Harness::new();
        let mut requests = h.attach_worker();
        let nicks = ["a1", "a2", "a3", "a4"];
        for nick in nicks {
            h.register(nick);
        }
        for nick in &nicks[..3] {
            h.send(nick, "REGISTER * * hunter2");
            answer(&mut h, &mut requests, AccountOutcome::Taken);
        }
        h.send("a4", "REGISTER * * hunter2");
        assert!(requests.try_recv().is_err(), "no job for the worker");
        assert_eq!(
            h.take("a4"),
            [
                ":irc.test FAIL REGISTER TEMPORARILY_UNAVAILABLE a4 :Too many accounts registered from your address; try again later."
            ]
        );
    }
}
