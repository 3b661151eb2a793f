//! NickServ's commands that change an account: `SET PASSWORD`, `SET
//! ENFORCE` and `DROP`. The worker writes the store; [`answered`] brings
//! the core's view (the nick index, who is logged in) in line with it.

use super::authenticate;
use super::nickserv::{account_of, say, say_after, unavailable};
use crate::core::{AccountJob, AccountOutcome, AccountPurpose};
use crate::core::{ClientId, State};
use crate::history::Party;
use crate::network::wire::AccountChange;

/// `SET PASSWORD <new>` or `SET ENFORCE ON|OFF`, for the account the
/// client is logged in to.
pub fn set(state: &mut State, id: ClientId, arguments: &[&str]) {
    let setting = arguments.first().map(|s| s.to_ascii_uppercase());
    let value = arguments.get(1).copied().unwrap_or_default();
    let enforce = match value.to_ascii_uppercase().as_str() {
        "ON" => Some(true),
        "OFF" => Some(false),
        _ => None,
    };
    let account = account_of(state, id);
    let job = match (setting.as_deref(), arguments.len(), enforce, account) {
        (Some("PASSWORD"), 3.., _, _) => {
            return say(state, id, "A password cannot contain spaces.");
        }
        (Some("PASSWORD" | "ENFORCE"), 2, _, None) => {
            return say(state, id, "You must be logged in to change your account.");
        }
        (Some("PASSWORD"), 2, _, Some(account)) => {
            let job = AccountJob::SetPassword {
                account: account.clone(),
                password: value.to_owned(),
            };
            // Each new password costs a hash: counted as a login attempt.
            if !state.start_login(id, AccountPurpose::Change, &account, job) {
                unavailable(state, id);
            }
            return;
        }
        (Some("ENFORCE"), 2, Some(on), Some(account)) => AccountJob::SetEnforce { account, on },
        _ => {
            return say(
                state,
                id,
                "Syntax: SET PASSWORD <new password> | SET ENFORCE ON|OFF",
            );
        }
    };
    if !state.account_job(id, AccountPurpose::Change, job) {
        unavailable(state, id);
    }
}

/// `DROP [<account>] <password>`: deletes the account (by default the one
/// logged in to) once the password is checked, as a login attempt is.
pub fn drop(state: &mut State, id: ClientId, arguments: &[&str]) {
    let (account, password) = match arguments {
        [password] => match account_of(state, id) {
            Some(account) => (account, *password),
            None => return say(state, id, "Syntax: DROP <account> <password>"),
        },
        [account, password] => ((*account).to_owned(), *password),
        _ => return say(state, id, "Syntax: DROP [<account>] <password>"),
    };
    let job = AccountJob::Drop {
        account: account.clone(),
        password: password.to_owned(),
    };
    if !state.start_login(id, AccountPurpose::Change, &account, job) {
        say(state, id, "Invalid account credentials.");
    }
}

/// The worker's answer to SET or DROP.
pub fn answered(state: &mut State, id: ClientId, outcome: AccountOutcome) {
    match outcome {
        AccountOutcome::PasswordSet => {
            // A proof of the old password must not log anyone in now.
            if let Some(account) = account_of(state, id) {
                authenticate::forget_proofs(state, &account);
            }
            say(state, id, "Your password has been changed.");
        }
        AccountOutcome::EnforceSet(on) => {
            if let Some(account) = account_of(state, id) {
                let casemapping = state.config.server.casemapping;
                state.reservations.set_enforce(&account, on, casemapping);
                state.network_account(AccountChange::Enforce { account, on });
            }
            let text = if on {
                "Your nicks are now enforced: others using them must log in or be renamed."
            } else {
                "Your nicks are no longer enforced."
            };
            say(state, id, text);
        }
        AccountOutcome::Dropped(account) => dropped(state, id, &account),
        AccountOutcome::BadPassword => say(state, id, "That password cannot be used."),
        AccountOutcome::Invalid => say(state, id, "Invalid account credentials."),
        AccountOutcome::Suspended => say(state, id, "That account is suspended."),
        _ => unavailable(state, id),
    }
}

/// An account is gone: everyone logged in to it is logged out, its nicks
/// are free, its rooms unregistered and its private conversations deleted
/// (a later account of the name starts with none).
fn dropped(state: &mut State, id: ClientId, account: &str) {
    let casemapping = state.config.server.casemapping;
    state.reservations.remove_account(account, casemapping);
    let change = AccountChange::Dropped {
        account: account.to_owned(),
    };
    state.network_account(change);
    state.log_out_account(account);
    state.forget_rooms_of(account);
    let key = state.fold(account);
    state.read_markers.forget(&key);
    let party = Party::Account(state.fold(account));
    let deleted = state
        .history
        .as_ref()
        .and_then(|history| history.forget(party))
        // Refused by the writer (logged there): the account is gone all
        // the same, so the client is told at once.
        .unwrap_or(0);
    tracing::info!(account, "account dropped from IRC");
    // Told once its conversations are deleted: from then on no account of
    // the name reads them.
    say_after(
        state,
        id,
        &format!("The account {account} has been dropped."),
        deleted,
    );
}

#[cfg(test)]
mod tests {
    use crate::accounts::AccessLevel;
    use crate::core::login::tests::answer;
    use crate::core::registered::Registration;
    use crate::core::reservation::{Owner, Reservations};
    use crate::core::testing::Harness;
    use crate::core::{AccountJob, AccountOutcome, Channel};

    /// alice and alice2, both logged in to `alice`, which owns `alice`.
    fn two_logged_in() -> (
        Harness,
        tokio::sync::mpsc::UnboundedReceiver<crate::core::AdminRequest>,
    ) {
        let mut h = Harness::new();
        let mut requests = h.attach_worker();
        let owner = Owner {
            account: "alice".into(),
            enforce: false,
        };
        h.state.reservations = Reservations::new([(h.state.fold("alice"), owner)]);
        for name in ["alice", "alice2"] {
            h.register(name);
            h.send(name, "NS IDENTIFY alice hunter2");
            answer(&mut h, &mut requests, AccountOutcome::Valid("alice".into()));
            h.take(name);
        }
        (h, requests)
    }

    #[test]
    fn set_password_changes_the_logged_in_accounts_password() {
        let (mut h, mut requests) = two_logged_in();
        h.register("bob");
        h.send("bob", "NS SET PASSWORD new");
        assert_eq!(
            h.take("bob"),
            [
                ":NickServ!NickServ@services. NOTICE bob :You must be logged in to change your account."
            ]
        );
        h.send("alice", "NS SET PASSWORD correct-horse");
        let job = answer(&mut h, &mut requests, AccountOutcome::PasswordSet);
        assert!(matches!(
            job,
            AccountJob::SetPassword { account, password } if account == "alice" && password == "correct-horse"
        ));
        assert_eq!(
            h.take("alice"),
            [":NickServ!NickServ@services. NOTICE alice :Your password has been changed."]
        );
    }

    #[test]
    fn set_password_counts_against_the_login_lockout() {
        let mut config = crate::config::Config::default();
        config.server.name = "irc.test".into();
        config.accounts = toml::from_str("login_attempts = 1").unwrap();
        let mut h = Harness::with_config(config);
        let mut requests = h.attach_worker();
        h.register("alice");
        let id = h.id("alice");
        h.state.log_in(id, "alice");
        h.take("alice");
        h.send("alice", "NS SET PASSWORD one");
        answer(&mut h, &mut requests, AccountOutcome::PasswordSet);
        h.take("alice");
        h.send("alice", "NS SET PASSWORD two");
        assert!(requests.try_recv().is_err(), "no second hash this window");
        assert_eq!(
            h.take("alice"),
            [
                ":NickServ!NickServ@services. NOTICE alice :Accounts cannot be reached right now; try again later."
            ]
        );
    }

    #[test]
    fn set_enforce_is_stored_then_kept_in_the_index() {
        let (mut h, mut requests) = two_logged_in();
        h.send("alice", "NS SET ENFORCE maybe");
        assert!(
            h.take("alice")[0]
                .ends_with(":Syntax: SET PASSWORD <new password> | SET ENFORCE ON|OFF")
        );
        h.send("alice", "NS SET ENFORCE on");
        let job = answer(&mut h, &mut requests, AccountOutcome::EnforceSet(true));
        assert!(matches!(job, AccountJob::SetEnforce { on: true, .. }));
        let folded = h.state.fold("alice");
        assert!(h.state.reservations.owner(&folded).unwrap().enforce);
    }

    #[test]
    fn drop_logs_out_every_connection_and_frees_the_nicks() {
        let (mut h, mut requests) = two_logged_in();
        h.send("alice", "NS DROP hunter2");
        let job = answer(
            &mut h,
            &mut requests,
            AccountOutcome::Dropped("alice".into()),
        );
        assert!(matches!(
            job,
            AccountJob::Drop { account, password } if account == "alice" && password == "hunter2"
        ));
        let lines = h.take("alice");
        assert!(lines[0].starts_with(":irc.test 901 alice "), "{lines:?}");
        assert_eq!(
            lines.last().unwrap(),
            ":NickServ!NickServ@services. NOTICE alice :The account alice has been dropped."
        );
        assert!(h.take("alice2")[0].starts_with(":irc.test 901 alice2 "));
        for name in ["alice", "alice2"] {
            assert_eq!(h.state.clients[&h.id(name)].account, None);
        }
        assert!(h.state.reservations.owner(&h.state.fold("alice")).is_none());
    }

    /// A registered room named `name`, founded by `founder`, with `access`.
    fn registered_room(h: &mut Harness, name: &str, founder: &str, access: &[&str]) {
        let mut channel = Channel::new(name, h.state.clock.now());
        channel.registration = Some(Registration {
            founder: founder.into(),
            access: access
                .iter()
                .map(|account| ((*account).to_owned(), AccessLevel::Op))
                .collect(),
            registered_ms: 0,
        });
        let folded = h.state.fold(name);
        h.state.channels.insert(folded, channel);
    }

    #[test]
    fn drop_unregisters_the_accounts_rooms_and_takes_it_off_access_lists() {
        let (mut h, mut requests) = two_logged_in();
        registered_room(&mut h, "#empty", "alice", &[]);
        h.send("alice2", "JOIN #occupied");
        registered_room(&mut h, "#theirs", "bob", &["carol", "Alice"]);
        let occupied = h.state.fold("#occupied");
        h.state.channels.get_mut(&occupied).unwrap().registration = Some(Registration {
            founder: "alice".into(),
            access: Vec::new(),
            registered_ms: 0,
        });
        h.send("alice", "NS DROP hunter2");
        answer(
            &mut h,
            &mut requests,
            AccountOutcome::Dropped("alice".into()),
        );
        assert!(!h.state.channels.contains_key(&h.state.fold("#empty")));
        assert_eq!(h.state.channels[&occupied].registration, None);
        let theirs = &h.state.channels[&h.state.fold("#theirs")];
        let access = &theirs.registration.as_ref().unwrap().access;
        assert_eq!(access, &[("carol".to_owned(), AccessLevel::Op)]);
    }

    #[test]
    fn drop_with_a_wrong_password_keeps_the_account() {
        let (mut h, mut requests) = two_logged_in();
        h.send("alice", "NS DROP alice wrong");
        answer(&mut h, &mut requests, AccountOutcome::Invalid);
        assert_eq!(
            h.take("alice"),
            [":NickServ!NickServ@services. NOTICE alice :Invalid account credentials."]
        );
        assert!(h.state.reservations.owner(&h.state.fold("alice")).is_some());
    }
}
