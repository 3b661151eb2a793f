//! NickServ SAREGISTER, SUSPEND and UNSUSPEND: operators with the
//! `accounts` privilege create accounts and lock them. The store changes
//! are worker jobs; each action is logged and announced to every
//! operator, and a suspension logs the account out everywhere.

use tracing::info;

use super::nickserv::{say, unavailable};
use super::register::MAX_ACCOUNT_LEN;
use crate::config::Privilege;
use crate::core::{AccountJob, AccountOutcome, AccountPurpose};
use crate::core::{ClientId, State};
use crate::network::wire::AccountChange;
use crate::proto::validate::is_valid_nick;

/// The longest suspension reason, in bytes (the store's limit).
const MAX_REASON_LEN: usize = 300;

/// `SAREGISTER <account> <password>`, `SUSPEND <account> [reason]`,
/// `UNSUSPEND <account>`; `verb` is one of these, uppercased.
pub fn command(state: &mut State, id: ClientId, verb: &str, arguments: &[&str]) {
    let allowed = state
        .clients
        .get(&id)
        .is_some_and(|client| client.has_privilege(Privilege::Accounts));
    if !allowed {
        say(state, id, "That needs the operator privilege `accounts`.");
        return;
    }
    let Some((purpose, job)) = job(state, id, verb, arguments) else {
        return;
    };
    if !state.account_job(id, purpose, job) {
        unavailable(state, id);
    }
}

/// The job for one of the commands, or none after saying why.
fn job(
    state: &mut State,
    id: ClientId,
    verb: &str,
    arguments: &[&str],
) -> Option<(AccountPurpose, AccountJob)> {
    let by = state.clients.get(&id)?.nick.clone();
    match (verb, arguments) {
        ("SAREGISTER", [account, _]) if !is_valid_nick(account, MAX_ACCOUNT_LEN) => {
            say(state, id, "An account name must be a valid nick.");
            None
        }
        ("SAREGISTER", [account, password]) => Some((
            AccountPurpose::Saregister,
            AccountJob::Register {
                name: (*account).to_owned(),
                password: (*password).to_owned(),
                email: None,
            },
        )),
        ("SUSPEND", [account, reason @ ..]) => {
            let reason = match reason.join(" ") {
                reason if reason.is_empty() => "no reason given".to_owned(),
                reason => reason,
            };
            if reason.len() > MAX_REASON_LEN {
                let text = format!("The reason may be at most {MAX_REASON_LEN} bytes.");
                say(state, id, &text);
                return None;
            }
            let account = (*account).to_owned();
            let job = AccountJob::Suspend {
                account,
                reason,
                by,
            };
            Some((AccountPurpose::Suspend, job))
        }
        ("UNSUSPEND", [account]) => {
            let account = (*account).to_owned();
            Some((AccountPurpose::Unsuspend, AccountJob::Unsuspend { account }))
        }
        _ => {
            let syntax = match verb {
                "SAREGISTER" => "Syntax: SAREGISTER <account> <password>",
                "SUSPEND" => "Syntax: SUSPEND <account> [reason]",
                _ => "Syntax: UNSUSPEND <account>",
            };
            say(state, id, syntax);
            None
        }
    }
}

/// The worker's answer: told to the operator, logged and announced.
pub fn answered(state: &mut State, id: ClientId, purpose: AccountPurpose, outcome: AccountOutcome) {
    let (account, done) = match (purpose, outcome) {
        (AccountPurpose::Saregister, AccountOutcome::Valid(account)) => (account, "registered"),
        (AccountPurpose::Suspend, AccountOutcome::Changed(account)) => (account, "suspended"),
        (AccountPurpose::Unsuspend, AccountOutcome::Changed(account)) => (account, "unsuspended"),
        (_, AccountOutcome::NotFound) => return say(state, id, "No such account."),
        (_, AccountOutcome::Taken) => {
            let text = "That name is already registered, or owned by an account.";
            return say(state, id, text);
        }
        (_, AccountOutcome::BadPassword) => {
            return say(state, id, "That password cannot be used.");
        }
        _ => return unavailable(state, id),
    };
    let by = state
        .clients
        .get(&id)
        .map(|client| client.nick.clone())
        .unwrap_or_default();
    info!(%by, %account, "account {done} by an operator");
    say(state, id, &format!("Account {account} {done}."));
    match purpose {
        AccountPurpose::Suspend => log_out_everywhere(state, &account),
        AccountPurpose::Saregister => state.account_created(&account),
        _ => {}
    }
    announce(state, &format!("{by} {done} the account {account}"));
}

/// Logs every connection of `account` out: a suspended account is not
/// used any longer, not only refused at the next login.
fn log_out_everywhere(state: &mut State, account: &str) {
    let change = AccountChange::Suspended {
        account: account.to_owned(),
    };
    state.network_account(change);
    for id in state.log_out_account(account) {
        say(state, id, "Your account has been suspended.");
    }
}

/// A server notice to every operator.
fn announce(state: &mut State, text: &str) {
    let opers: Vec<ClientId> = state
        .clients
        .values()
        .filter(|client| client.registered && client.modes.oper)
        .map(|client| client.id)
        .collect();
    for oper in opers {
        state.server_notice(oper, &format!("*** Accounts: {text}"));
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Privilege;
    use crate::core::login::tests::answer;
    use crate::core::testing::Harness;
    use crate::core::{AccountJob, AccountOutcome};

    /// `oper` with the `accounts` privilege, `other` an operator without it,
    /// and bob logged in to `Bob` twice.
    fn setup() -> (
        Harness,
        tokio::sync::mpsc::UnboundedReceiver<crate::core::AdminRequest>,
    ) {
        let mut h = Harness::new();
        let mut requests = h.attach_worker();
        for nick in ["oper", "other", "bob", "bob2"] {
            h.register(nick);
        }
        h.make_oper("oper");
        h.make_oper("other");
        let id = h.id("oper");
        h.state.clients.get_mut(&id).unwrap().privileges = vec![Privilege::Accounts];
        for nick in ["bob", "bob2"] {
            h.send(nick, "NS IDENTIFY bob hunter2");
            answer(&mut h, &mut requests, AccountOutcome::Valid("Bob".into()));
            h.take(nick);
        }
        (h, requests)
    }

    #[test]
    fn suspend_logs_the_account_out_everywhere_and_tells_every_operator() {
        let (mut h, mut requests) = setup();
        h.send("oper", "NS SUSPEND bob spamming the lobby");
        let job = answer(&mut h, &mut requests, AccountOutcome::Changed("Bob".into()));
        assert!(matches!(
            job,
            AccountJob::Suspend { account, reason, by }
                if account == "bob" && reason == "spamming the lobby" && by == "oper"
        ));
        for nick in ["bob", "bob2"] {
            let lines = h.take(nick);
            assert!(lines[0].contains(" 901 "), "{lines:?}");
            assert!(lines[1].ends_with(" MODE bob -r") || lines[1].ends_with(" MODE bob2 -r"));
            assert!(lines[2].ends_with(":Your account has been suspended."));
            assert_eq!(h.state.clients[&h.id(nick)].account, None);
        }
        assert_eq!(
            h.take("oper"),
            [
                ":NickServ!NickServ@services. NOTICE oper :Account Bob suspended.",
                ":irc.test NOTICE oper :*** Accounts: oper suspended the account Bob",
            ]
        );
        assert_eq!(
            h.take("other"),
            [":irc.test NOTICE other :*** Accounts: oper suspended the account Bob"]
        );
    }

    #[test]
    fn saregister_and_unsuspend_do_not_log_the_operator_in() {
        let (mut h, mut requests) = setup();
        h.send("oper", "NS SAREGISTER carol hunter2");
        let job = answer(&mut h, &mut requests, AccountOutcome::Valid("carol".into()));
        assert!(matches!(job, AccountJob::Register { name, .. } if name == "carol"));
        h.send("oper", "NS UNSUSPEND nobody");
        answer(&mut h, &mut requests, AccountOutcome::NotFound);
        let lines = h.take("oper");
        assert_eq!(
            lines,
            [
                ":NickServ!NickServ@services. NOTICE oper :Account carol registered.",
                ":irc.test NOTICE oper :*** Accounts: oper registered the account carol",
                ":NickServ!NickServ@services. NOTICE oper :No such account.",
            ]
        );
        assert_eq!(h.state.clients[&h.id("oper")].account, None);
        let owner = h.state.reservations.owner(&h.state.fold("carol"));
        assert_eq!(owner.map(|owner| owner.account.as_str()), Some("carol"));
    }

    #[test]
    fn only_operators_with_the_accounts_privilege_may() {
        let (mut h, mut requests) = setup();
        for nick in ["other", "bob"] {
            h.send(nick, "NS SUSPEND oper");
            assert_eq!(
                h.take(nick),
                [format!(
                    ":NickServ!NickServ@services. NOTICE {nick} :That needs the operator privilege `accounts`."
                )]
            );
        }
        h.send("oper", "NS SAREGISTER carol");
        h.send("oper", "NS SAREGISTER #carol hunter2");
        assert_eq!(
            h.take("oper"),
            [
                ":NickServ!NickServ@services. NOTICE oper :Syntax: SAREGISTER <account> <password>",
                ":NickServ!NickServ@services. NOTICE oper :An account name must be a valid nick.",
            ]
        );
        assert!(requests.try_recv().is_err(), "no job for the worker");
    }
}
