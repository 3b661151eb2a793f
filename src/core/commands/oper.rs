//! OPER: the name and host are checked here; the password hash is checked by
//! the admin worker (argon2 takes milliseconds the core must not spend), and
//! [`checked`] finishes the job when its answer arrives. Meanwhile the
//! client's later lines wait ([`State::wait_off_core`]), so its commands are
//! answered in the order it sent them. Every attempt counts towards the
//! address's lockout from the moment it starts.

use tracing::{info, warn};

use crate::config::{Oper, Privilege};
use crate::core::{AdminRequest, OperAnswer, Refusal};
use crate::core::{Client, ClientId, State};
use crate::proto::mask::Mask;
use crate::proto::numeric;
use crate::proto::{Casemapping, Line, Message};

/// `OPER <name> <password>`
///
/// The password is checked off the core; the answer comes in `checked`.
pub fn oper(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    let name = message.param(0);
    let now = state.clock.now();
    let Some(client) = state.clients.get(&id) else {
        return Ok(());
    };
    let (ip, nick) = (client.ip, client.nick.clone());
    let key = state.address_key(ip);
    if !state.admin.oper_lockout.start_attempt(key, now) {
        warn!(?nick, %ip, oper = ?name, "OPER refused: too many failed attempts");
        password_incorrect(state, id);
        return Ok(());
    }
    let block = state.config.oper.iter().find(|block| block.name == name);
    let Some(block) = block.filter(|block| host_allowed(block, client)) else {
        warn!(?nick, %ip, oper = ?name, "OPER failed: no block for this name and host");
        state.metrics.oper_failed();
        return Err(Refusal::no_oper_host());
    };
    if block.password_hash.is_empty() {
        // A block for an account only: logging in to it is the way in.
        warn!(?nick, %ip, oper = ?name, "OPER failed: the block has no password");
        password_incorrect(state, id);
        return Ok(());
    }
    let answer = OperAnswer::new(id, block.name.clone(), state.inbox.clone());
    let request = AdminRequest::CheckOper {
        answer,
        password: message.param(1).to_owned(),
        hash: block.password_hash.clone(),
    };
    if !state.admin.request(request) {
        password_incorrect(state, id);
        return Ok(());
    }
    state.wait_off_core(id);
    Ok(())
}

/// The admin worker's answer for `id`'s OPER as `oper`.
pub fn checked(state: &mut State, id: ClientId, oper: &str, valid: bool) {
    state.resume(id, |state| answer(state, id, oper, valid));
}

fn answer(state: &mut State, id: ClientId, oper: &str, valid: bool) {
    let Some(client) = state.clients.get(&id) else {
        return;
    };
    let (ip, nick) = (client.ip, client.nick.clone());
    if !valid {
        warn!(?nick, %ip, oper, "OPER failed: wrong password");
        password_incorrect(state, id);
        return;
    }
    // A REHASH may have removed the block while the hash was checked.
    if !state.config.oper.iter().any(|block| block.name == oper) {
        state.metrics.oper_failed();
        state.refuse(id, Refusal::no_oper_host());
        return;
    }
    let key = state.address_key(ip);
    state.admin.oper_lockout.succeeded(&key);
    info!(?nick, %ip, oper, "OPER succeeded");
    grant(state, id, oper);
    if let Some(client) = state.clients.get_mut(&id) {
        client.oper_by_account = false;
    }
}

/// Whether `client` connects from one of the block's hosts (real
/// address or cloak); a block without hosts allows any.
fn host_allowed(block: &Oper, client: &Client) -> bool {
    let userhosts = [
        format!("{}@{}", client.user, client.real_host),
        format!("{}@{}", client.user, client.host),
    ];
    block.hosts.is_empty()
        || block.hosts.iter().any(|mask| {
            let mask = Mask::new(mask, Casemapping::Ascii);
            userhosts.iter().any(|userhost| mask.matches(userhost))
        })
}

/// A registered client logged in to an account that an `[[oper]]` block
/// names, from one of its hosts, becomes that operator: no OPER password.
pub fn grant_for_account(state: &mut State, id: ClientId) {
    let Some(client) = state.clients.get(&id).filter(|client| client.registered) else {
        return;
    };
    let Some(account) = client.account.as_deref() else {
        return;
    };
    let casemapping = state.config.server.casemapping;
    let block = state.config.oper.iter().find(|block| {
        block
            .account
            .as_deref()
            .is_some_and(|named| casemapping.eq(named, account))
            && host_allowed(block, client)
    });
    let Some(name) = block.map(|block| block.name.clone()) else {
        return;
    };
    info!(nick = ?client.nick, ip = %client.ip, account, oper = %name, "operator by account");
    grant(state, id, &name);
    if let Some(client) = state.clients.get_mut(&id) {
        client.oper_by_account = true;
    }
}

/// Ends operator status that came from an account, when the client
/// leaves that account (logout, suspension, DROP, another login): -o and
/// its privileges go.
pub fn revoke_for_account(state: &mut State, id: ClientId) {
    let Some(client) = state.clients.get_mut(&id) else {
        return;
    };
    if !std::mem::take(&mut client.oper_by_account) || !client.modes.oper {
        return;
    }
    client.modes.oper = false;
    client.privileges.clear();
    client.outbox.set_flood_exempt(false);
    info!(nick = ?client.nick, ip = %client.ip, "operator by account no longer");
    let line = Line::new(Some(&client.source), "MODE")
        .arg(&client.nick)
        .arg("-o")
        .finish();
    state.send(id, line);
}

/// Whether an `[[oper]]` block names the account `name`: such names are
/// created only by SAREGISTER or the CLI, never by a REGISTER from IRC,
/// else whoever registered one first would become that operator.
pub fn names_operator_account(state: &State, name: &str) -> bool {
    let casemapping = state.config.server.casemapping;
    state.config.oper.iter().any(|block| {
        block
            .account
            .as_deref()
            .is_some_and(|named| casemapping.eq(named, name))
    })
}

/// Makes `id` the operator of the block called `oper`: +o, its
/// privileges, 381.
fn grant(state: &mut State, id: ClientId, oper: &str) {
    let Some(block) = state.config.oper.iter().find(|block| block.name == oper) else {
        return;
    };
    let privileges = block.privileges.clone();
    let Some(client) = state.clients.get_mut(&id) else {
        return;
    };
    let nick = client.nick.clone();
    let newly = !client.modes.oper;
    client.modes.oper = true;
    client
        .outbox
        .set_flood_exempt(privileges.contains(&Privilege::Exempt));
    client.privileges = privileges;
    if newly {
        let line = Line::new(Some(&client.source), "MODE")
            .arg(&nick)
            .arg("+o")
            .finish();
        state.send(id, line);
    }
    state.reply(
        id,
        numeric::RPL_YOUREOPER,
        &[],
        "You are now an IRC operator",
    );
}

/// 464, and one more failed OPER in the metrics.
fn password_incorrect(state: &mut State, id: ClientId) {
    state.metrics.oper_failed();
    state.refuse(id, Refusal::password_mismatch());
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, Oper, Privilege};
    use crate::core::login::tests::answer;
    use crate::core::testing::Harness;
    use crate::core::{AccountOutcome, AdminRequest};

    /// A server whose `[[oper]] boss` is granted by logging in to `Alice`
    /// from `hosts`.
    fn by_account(hosts: &[&str]) -> Harness {
        let mut config = Config::default();
        config.server.name = "irc.test".into();
        config.oper = vec![Oper {
            name: "boss".into(),
            password_hash: String::new(),
            account: Some("Alice".into()),
            hosts: hosts.iter().map(|host| (*host).to_owned()).collect(),
            privileges: vec![Privilege::Kill],
        }];
        Harness::with_config(config)
    }

    #[test]
    fn logging_in_to_the_blocks_account_makes_an_operator() {
        let mut h = by_account(&["*@127.0.0.1"]);
        let mut requests = h.attach_worker();
        h.register("alice");
        h.send("alice", "NS IDENTIFY hunter2");
        answer(&mut h, &mut requests, AccountOutcome::Valid("alice".into()));
        let lines = h.take("alice");
        assert_eq!(
            lines[1..3],
            [
                ":alice!~alice@127.0.0.1 MODE alice +o",
                ":irc.test 381 alice :You are now an IRC operator",
            ]
        );
        let alice = &h.state.clients[&h.id("alice")];
        assert!(alice.modes.oper);
        assert_eq!(alice.privileges, [Privilege::Kill]);
    }

    #[test]
    fn the_account_from_another_host_is_not_an_operator() {
        let mut h = by_account(&["*@192.0.2.1"]);
        let mut requests = h.attach_worker();
        h.register("alice");
        h.send("alice", "NS IDENTIFY hunter2");
        answer(&mut h, &mut requests, AccountOutcome::Valid("alice".into()));
        assert!(!h.state.clients[&h.id("alice")].modes.oper);
        h.register("mallory");
        h.send("mallory", "NS IDENTIFY hunter2");
        answer(
            &mut h,
            &mut requests,
            AccountOutcome::Valid("mallory".into()),
        );
        assert!(!h.state.clients[&h.id("mallory")].modes.oper);
    }

    #[test]
    fn a_sasl_login_while_connecting_makes_an_operator_after_the_welcome() {
        let mut h = by_account(&[]);
        let mut requests = h.attach_worker();
        h.connect("c");
        h.send("c", "CAP REQ sasl");
        h.send("c", "NICK alice");
        h.send("c", "USER alice 0 * :Alice");
        h.send("c", "AUTHENTICATE PLAIN");
        h.send("c", "AUTHENTICATE AGFsaWNlAGh1bnRlcjI=");
        answer(&mut h, &mut requests, AccountOutcome::Valid("alice".into()));
        h.take("c");
        h.send("c", "CAP END");
        let lines = h.take("c");
        let motd_end = lines.iter().position(|l| l.contains(" 376 ")).unwrap();
        assert_eq!(
            lines[motd_end + 1..motd_end + 4],
            [
                ":alice!~alice@127.0.0.1 MODE alice +r",
                ":alice!~alice@127.0.0.1 MODE alice +o",
                ":irc.test 381 alice :You are now an IRC operator",
            ]
        );
    }

    #[test]
    fn logging_out_or_into_another_account_ends_operator_status_by_account() {
        let mut h = by_account(&[]);
        let mut requests = h.attach_worker();
        h.register("alice");
        h.send("alice", "NS IDENTIFY hunter2");
        answer(&mut h, &mut requests, AccountOutcome::Valid("alice".into()));
        h.take("alice");
        h.send("alice", "NS LOGOUT");
        let lines = h.take("alice");
        assert!(
            lines.contains(&":alice!~alice@127.0.0.1 MODE alice -o".to_owned()),
            "{lines:?}"
        );
        let alice = &h.state.clients[&h.id("alice")];
        assert!(!alice.modes.oper && alice.privileges.is_empty());

        h.send("alice", "NS IDENTIFY hunter2");
        answer(&mut h, &mut requests, AccountOutcome::Valid("alice".into()));
        assert!(h.state.clients[&h.id("alice")].modes.oper);
        // sasl 3.2 re-authentication to another account.
        let id = h.id("alice");
        h.state.log_in(id, "bob");
        assert!(!h.state.clients[&id].modes.oper);
    }

    #[test]
    fn an_operator_account_name_cannot_be_registered_from_irc() {
        let mut h = by_account(&[]);
        let mut requests = h.attach_worker();
        h.register("alice");
        h.send("alice", "NS REGISTER hunter2");
        h.send("alice", "REGISTER * * hunter2");
        assert_eq!(
            h.take("alice"),
            [
                ":NickServ!NickServ@services. NOTICE alice :That name is reserved; it cannot be registered.",
                ":irc.test FAIL REGISTER BAD_ACCOUNT_NAME alice :That account name is reserved",
            ]
        );
        assert!(requests.try_recv().is_err(), "no account was created");
        assert!(!h.state.clients[&h.id("alice")].modes.oper);
    }

    #[test]
    fn oper_refuses_a_block_without_a_password_without_a_check() {
        let mut h = by_account(&[]);
        let mut requests = h.attach_worker();
        h.register("alice");
        h.send("alice", "OPER boss anything");
        assert!(
            !matches!(requests.try_recv(), Ok(AdminRequest::CheckOper { .. })),
            "no password check"
        );
        assert_eq!(h.take("alice"), [":irc.test 464 alice :Password incorrect"]);
    }
}
