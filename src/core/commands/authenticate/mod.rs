//! AUTHENTICATE: SASL (IRCv3 sasl 3.1 and 3.2) with the PLAIN,
//! SCRAM-SHA-256 (`scram.rs`) and, on TLS, EXTERNAL mechanisms. Each client response arrives
//! base64-encoded in chunks of 400 bytes (a shorter chunk or `+` ends
//! it); passwords and proofs are checked off the core
//! ([`State::check_login`]) and [`answered`] goes on with 903 or 904.
//! Registration waits for CAP END, so a client that negotiated `sasl`
//! logs in before it registers. A client may authenticate again at any
//! time, to the same account or another (sasl 3.2 re-authentication), so
//! 907 is never sent; a failed attempt keeps the account it had.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

mod scram;

use crate::core::{AccountJob, AccountOutcome, AccountPurpose, Client, Refusal};
use crate::core::{ClientId, State};
use crate::proto::numeric;
use crate::proto::{Line, Message};

/// The length of a full chunk: one this long says more follow.
const CHUNK: usize = 400;
/// The most base64 a response may take: PLAIN carries two names and a
/// password, far less than this.
const MAX_RESPONSE: usize = 4 * CHUNK;

/// A SASL exchange in progress: the mechanism and where it is, and the
/// client response received so far.
#[derive(Debug)]
pub struct SaslExchange {
    mechanism: Mechanism,
    response: String,
}

#[derive(Debug)]
enum Mechanism {
    Plain,
    Scram(scram::Step),
    External,
}

impl SaslExchange {
    fn new(mechanism: Mechanism) -> SaslExchange {
        SaslExchange {
            mechanism,
            response: String::new(),
        }
    }
}

/// Sends a server challenge: base64 in 400-byte chunks, and `+` after a
/// full last one (or for an empty challenge).
fn challenge(state: &mut State, id: ClientId, data: &[u8]) {
    let encoded = STANDARD.encode(data);
    let mut chunks: Vec<&str> = encoded
        .as_bytes()
        .chunks(CHUNK)
        .map(|chunk| std::str::from_utf8(chunk).unwrap_or_default())
        .collect();
    if encoded.len().is_multiple_of(CHUNK) {
        chunks.push("+");
    }
    for chunk in chunks {
        state.send(id, Line::new(None, "AUTHENTICATE").arg(chunk).finish());
    }
}

/// Ends the exchange of `id` as failed.
fn fail(state: &mut State, id: ClientId) {
    if let Some(client) = state.clients.get_mut(&id) {
        client.sasl = None;
    }
    state.metrics.sasl_failed();
    state.refuse(id, Refusal::new(numeric::ERR_SASLFAIL, &[]));
}

/// Logs `id` in after a successful exchange: 900 and 903, +r set without
/// a MODE line ([`State::log_in_without_mode_line`]). A client logged in
/// already is logged in to this account instead (sasl 3.2
/// re-authentication).
fn succeed(state: &mut State, id: ClientId, account: &str) {
    let Some(client) = state.clients.get_mut(&id) else {
        return;
    };
    client.sasl = None;
    state.log_in_without_mode_line(id, account);
    state.reply(
        id,
        numeric::RPL_SASLSUCCESS,
        &[],
        "SASL authentication successful",
    );
}

/// `AUTHENTICATE <mechanism>`, then `AUTHENTICATE <base64 chunk>|+|*`
pub fn authenticate(state: &mut State, id: ClientId, message: &Message) -> Result<(), Refusal> {
    let outcome = step(state, id, message.param(0));
    // Every failure found here ends in one 904; those found off the core
    // go through `fail`.
    if let Err(refusal) = &outcome
        && refusal.numeric() == numeric::ERR_SASLFAIL
    {
        state.metrics.sasl_failed();
    }
    outcome
}

/// One AUTHENTICATE line: a mechanism to start with, or the next chunk of
/// the client's response.
fn step(state: &mut State, id: ClientId, param: &str) -> Result<(), Refusal> {
    if !state.accounts_enabled() {
        return Err(Refusal::new(numeric::ERR_SASLFAIL, &[]));
    }
    let Some(client) = state.clients.get_mut(&id) else {
        return Ok(());
    };
    if param == "*" {
        client.sasl = None;
        return Err(Refusal::new(numeric::ERR_SASLABORTED, &[]));
    }
    let Some(exchange) = client.sasl.as_mut() else {
        return start(state, id, param);
    };
    if param.len() > CHUNK {
        client.sasl = None;
        return Err(Refusal::new(numeric::ERR_SASLTOOLONG, &[]));
    }
    if param != "+" {
        exchange.response.push_str(param);
    }
    if exchange.response.len() > MAX_RESPONSE {
        // 905 is for one line over 400 bytes; a response that never ends
        // simply fails.
        client.sasl = None;
        return Err(Refusal::new(numeric::ERR_SASLFAIL, &[]));
    }
    if param.len() == CHUNK {
        return Ok(());
    }
    let Some(exchange) = client.sasl.take() else {
        return Ok(());
    };
    let Ok(response) = STANDARD.decode(&exchange.response) else {
        return Err(Refusal::new(numeric::ERR_SASLFAIL, &[]));
    };
    match exchange.mechanism {
        Mechanism::Scram(step) => scram::respond(state, id, step, &response),
        Mechanism::Plain => plain_login(state, id, &response),
        Mechanism::External => external_login(state, id, &response),
    }
}

/// The mechanisms offered to `client`: EXTERNAL on TLS connections only,
/// since only they can carry a client certificate.
pub fn mechanisms(client: &Client) -> &'static str {
    if client.secure {
        "PLAIN,SCRAM-SHA-256,EXTERNAL"
    } else {
        "PLAIN,SCRAM-SHA-256"
    }
}

/// `AUTHENTICATE <mechanism>`: starts an exchange, or refuses an unknown
/// mechanism with the list (908) and 904. EXTERNAL without a client
/// certificate fails at once.
fn start(state: &mut State, id: ClientId, param: &str) -> Result<(), Refusal> {
    let Some(client) = state.clients.get_mut(&id) else {
        return Ok(());
    };
    let wanted = param.to_ascii_uppercase();
    let mechanism = match wanted.as_str() {
        "PLAIN" => Mechanism::Plain,
        "SCRAM-SHA-256" => Mechanism::Scram(scram::Step::ClientFirst),
        "EXTERNAL" if client.certificate.is_some() => Mechanism::External,
        "EXTERNAL" if client.secure => return Err(Refusal::new(numeric::ERR_SASLFAIL, &[])),
        _ => {
            let offered = mechanisms(client);
            let text = "are available SASL mechanisms";
            state.reply(id, numeric::RPL_SASLMECHS, &[offered], text);
            return Err(Refusal::new(numeric::ERR_SASLFAIL, &[]));
        }
    };
    client.sasl = Some(Box::new(SaslExchange::new(mechanism)));
    state.send(id, Line::new(None, "AUTHENTICATE").arg("+").finish());
    Ok(())
}

/// PLAIN's one response: the password is checked by the worker.
fn plain_login(state: &mut State, id: ClientId, response: &[u8]) -> Result<(), Refusal> {
    let Some((account, password)) = plain(state, response) else {
        return Err(Refusal::new(numeric::ERR_SASLFAIL, &[]));
    };
    if !state.check_login(id, AccountPurpose::Sasl, &account, &password) {
        return Err(Refusal::new(numeric::ERR_SASLFAIL, &[]));
    }
    Ok(())
}

/// EXTERNAL's one response, an authorization identity or nothing: the
/// worker finds the account that registered the connection's certificate.
/// Nothing is guessed, so no attempt is counted against a lockout.
fn external_login(state: &mut State, id: ClientId, response: &[u8]) -> Result<(), Refusal> {
    let refused = || Refusal::new(numeric::ERR_SASLFAIL, &[]);
    let authzid = std::str::from_utf8(response).map_err(|_| refused())?;
    let fingerprint = state
        .clients
        .get(&id)
        .and_then(|client| client.certificate.clone())
        .ok_or_else(refused)?;
    let job = AccountJob::Certificate {
        fingerprint,
        account: (!authzid.is_empty()).then(|| authzid.to_owned()),
    };
    if !state.account_job(id, AccountPurpose::Sasl, job) {
        return Err(refused());
    }
    Ok(())
}

/// The account and password of a PLAIN response (RFC 4616:
/// `[authzid] NUL authcid NUL passwd`). An authorization identity other
/// than the account itself (compared under the casemapping, as account
/// names are) is refused: nobody may act for another here.
fn plain(state: &State, response: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(response).ok()?;
    let mut parts = text.split('\0');
    let (authzid, account, password) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || account.is_empty() {
        return None;
    }
    if !authzid.is_empty() && state.fold(authzid) != state.fold(account) {
        return None;
    }
    Some((account.to_owned(), password.to_owned()))
}

/// The worker's answer to a PLAIN response or a SCRAM step.
pub fn answered(state: &mut State, id: ClientId, outcome: AccountOutcome) {
    match outcome {
        AccountOutcome::Valid(account) => succeed(state, id, &account),
        AccountOutcome::ScramSalt { salt, iterations } => {
            scram::salted(state, id, &salt, iterations);
        }
        AccountOutcome::ScramProved {
            account,
            server_signature,
        } => scram::proved(state, id, account, &server_signature),
        AccountOutcome::Suspended => {
            if let Some(client) = state.clients.get_mut(&id) {
                client.sasl = None;
            }
            state.refuse(id, Refusal::new(numeric::ERR_NICKLOCKED, &[]));
        }
        _ => fail(state, id),
    }
}

/// Ends every SCRAM exchange whose proof of `account`'s password waits
/// only for the client's final `+`: the account was suspended, dropped
/// or given a new password, so that proof no longer logs anyone in.
pub fn forget_proofs(state: &mut State, account: &str) {
    let casemapping = state.config.server.casemapping;
    for client in state.clients.values_mut() {
        let proved = client
            .sasl
            .as_ref()
            .is_some_and(|exchange| match &exchange.mechanism {
                Mechanism::Scram(step) => step.proves(account, casemapping),
                Mechanism::Plain | Mechanism::External => false,
            });
        if proved {
            client.sasl = None;
        }
    }
}

/// Registration completed during an exchange ends it (sasl 3.1: 906).
pub fn abort_on_registration(state: &mut State, id: ClientId) {
    if let Some(client) = state.clients.get_mut(&id)
        && client.sasl.take().is_some()
    {
        state.refuse(id, Refusal::new(numeric::ERR_SASLABORTED, &[]));
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    use crate::core::login::tests::answer;
    use crate::core::testing::Harness;
    use crate::core::{AccountJob, AccountOutcome};

    fn plain(account: &str, password: &str) -> String {
        STANDARD.encode(format!("\0{account}\0{password}"))
    }

    /// A client that asked for `sasl` and started PLAIN, before registering.
    fn started(h: &mut Harness) {
        h.connect("c");
        h.send("c", "CAP LS 302");
        h.send("c", "NICK alice");
        h.send("c", "USER alice 0 * :Alice");
        h.send("c", "CAP REQ sasl");
        let lines = h.take("c");
        assert!(
            lines
                .iter()
                .any(|l| l.contains(" sasl=PLAIN,SCRAM-SHA-256 ")),
            "{lines:?}"
        );
        h.send("c", "AUTHENTICATE PLAIN");
        assert_eq!(h.take("c"), ["AUTHENTICATE +"]);
    }

    #[test]
    fn authenticating_again_after_registration_switches_account_and_tells_peers() {
        let mut h = Harness::new();
        let mut requests = h.attach_worker();
        h.register("watcher");
        h.send("watcher", "CAP REQ account-notify");
        h.register("alice");
        h.send("alice", "CAP REQ sasl");
        for name in ["watcher", "alice"] {
            h.send(name, "JOIN #room");
        }
        h.take("watcher");
        h.take("alice");
        for (account, password) in [("alice", "hunter2"), ("bob", "pw")] {
            h.send("alice", "AUTHENTICATE PLAIN");
            assert_eq!(h.take("alice"), ["AUTHENTICATE +"], "no 907");
            h.send(
                "alice",
                &format!("AUTHENTICATE {}", plain(account, password)),
            );
            answer(&mut h, &mut requests, AccountOutcome::Valid(account.into()));
            let lines = h.take("alice");
            assert_eq!(
                lines,
                [
                    format!(
                        ":irc.test 900 alice alice!~alice@127.0.0.1 {account} :You are now logged in as {account}"
                    ),
                    ":irc.test 903 alice :SASL authentication successful".to_owned(),
                ]
            );
            assert_eq!(
                h.take("watcher"),
                [format!(":alice!~alice@127.0.0.1 ACCOUNT {account}")]
            );
        }
        // A failed attempt keeps the account.
        h.send("alice", "AUTHENTICATE PLAIN");
        h.send(
            "alice",
            &format!("AUTHENTICATE {}", plain("carol", "wrong")),
        );
        answer(&mut h, &mut requests, AccountOutcome::Invalid);
        assert_eq!(
            h.state.clients[&h.id("alice")].account.as_deref(),
            Some("bob")
        );
    }

    #[test]
    fn a_suspended_account_is_refused_with_902_and_authzid_ignores_case() {
        let mut h = Harness::new();
        let mut requests = h.attach_worker();
        started(&mut h);
        let response = STANDARD.encode("ALICE\0alice\0hunter2");
        h.send("c", &format!("AUTHENTICATE {response}"));
        answer(&mut h, &mut requests, AccountOutcome::Suspended);
        assert_eq!(
            h.take("c"),
            [":irc.test 902 alice :SASL authentication failed: the account is suspended"]
        );
        assert_eq!(h.state.clients[&h.id("c")].account, None);
    }

    #[test]
    fn plain_logs_in_before_registration_completes() {
        let mut h = Harness::new();
        let mut requests = h.attach_worker();
        started(&mut h);
        h.send("c", &format!("AUTHENTICATE {}", plain("alice", "hunter2")));
        h.send("c", "CAP END");
        assert!(h.take("c").is_empty(), "CAP END waits for the check");
        let job = answer(&mut h, &mut requests, AccountOutcome::Valid("Alice".into()));
        assert!(matches!(
            job,
            AccountJob::Verify { account, password } if account == "alice" && password == "hunter2"
        ));
        let lines = h.take("c");
        assert_eq!(
            lines[..2],
            [
                ":irc.test 900 alice alice!~alice@127.0.0.1 Alice :You are now logged in as Alice",
                ":irc.test 903 alice :SASL authentication successful",
            ]
        );
        assert!(lines[2].starts_with(":irc.test 001 alice "), "{lines:?}");
        // +r once registered, after the welcome burst.
        assert_eq!(
            lines.last().map(String::as_str),
            Some(":alice!~alice@127.0.0.1 MODE alice +r")
        );
    }

    #[test]
    fn a_wrong_password_fails_and_the_account_locks_after_five_attempts() {
        let mut h = Harness::new();
        let mut requests = h.attach_worker();
        started(&mut h);
        for attempt in 1..=6 {
            if attempt > 1 {
                h.send("c", "AUTHENTICATE PLAIN");
                h.take("c");
            }
            h.send("c", &format!("AUTHENTICATE {}", plain("alice", "wrong")));
            if attempt <= 5 {
                answer(&mut h, &mut requests, AccountOutcome::Invalid);
            } else {
                assert!(requests.try_recv().is_err(), "the sixth is not checked");
            }
            assert_eq!(
                h.take("c"),
                [":irc.test 904 alice :SASL authentication failed"]
            );
        }
    }

    #[test]
    fn chunks_of_400_continue_and_plus_ends_an_exact_multiple() {
        let mut h = Harness::new();
        let mut requests = h.attach_worker();
        started(&mut h);
        // 300 bytes of PLAIN make exactly 400 of base64.
        let password = "p".repeat(300 - "\0alice\0".len());
        let encoded = plain("alice", &password);
        assert_eq!(encoded.len(), 400);
        h.send("c", &format!("AUTHENTICATE {encoded}"));
        assert!(requests.try_recv().is_err(), "a full chunk waits for more");
        h.send("c", "AUTHENTICATE +");
        let job = answer(&mut h, &mut requests, AccountOutcome::Invalid);
        assert!(matches!(job, AccountJob::Verify { password: p, .. } if p == password));
    }

    #[test]
    fn a_response_that_never_ends_fails_without_a_check() {
        let mut h = Harness::new();
        let mut requests = h.attach_worker();
        started(&mut h);
        let chunk = "A".repeat(400);
        for _ in 0..4 {
            h.send("c", &format!("AUTHENTICATE {chunk}"));
        }
        assert!(h.take("c").is_empty());
        h.send("c", &format!("AUTHENTICATE {chunk}"));
        assert_eq!(
            h.take("c"),
            [":irc.test 904 alice :SASL authentication failed"]
        );
        assert!(requests.try_recv().is_err());
        assert!(h.state.clients[&h.id("c")].sasl.is_none());
    }

    #[test]
    fn abort_unknown_mechanism_too_long_and_bad_base64() {
        let mut h = Harness::new();
        let _requests = h.attach_worker();
        started(&mut h);
        h.send("c", "AUTHENTICATE *");
        assert_eq!(
            h.take("c"),
            [":irc.test 906 alice :SASL authentication aborted"]
        );
        h.send("c", "AUTHENTICATE EXTERNAL");
        assert_eq!(
            h.take("c"),
            [
                ":irc.test 908 alice PLAIN,SCRAM-SHA-256 :are available SASL mechanisms",
                ":irc.test 904 alice :SASL authentication failed",
            ]
        );
        h.send("c", "AUTHENTICATE PLAIN");
        h.take("c");
        h.send("c", &format!("AUTHENTICATE {}", "A".repeat(401)));
        assert_eq!(h.take("c"), [":irc.test 905 alice :SASL message too long"]);
        h.send("c", "AUTHENTICATE PLAIN");
        h.take("c");
        h.send("c", "AUTHENTICATE !!!notbase64");
        assert_eq!(
            h.take("c"),
            [":irc.test 904 alice :SASL authentication failed"]
        );
        // Another identity than the account is refused before any check.
        h.send("c", "AUTHENTICATE PLAIN");
        h.take("c");
        let other = STANDARD.encode("bob\0alice\0pw");
        h.send("c", &format!("AUTHENTICATE {other}"));
        assert_eq!(
            h.take("c"),
            [":irc.test 904 alice :SASL authentication failed"]
        );
    }

    #[test]
    fn registering_during_an_exchange_aborts_it() {
        let mut h = Harness::new();
        started(&mut h);
        h.send("c", "CAP END");
        let lines = h.take("c");
        assert_eq!(lines[0], ":irc.test 906 alice :SASL authentication aborted");
        assert!(lines[1].starts_with(":irc.test 001 alice "));
    }

    const FINGERPRINT: &str = "3fa1a6a32bb09eb3fca6e7b40b1bee79f755e8c6572683941b209edec7f7120f";

    #[test]
    fn external_logs_in_to_the_account_of_the_connections_certificate() {
        let mut h = Harness::new();
        let mut requests = h.attach_worker();
        h.connect_with_certificate("c", FINGERPRINT);
        h.send("c", "CAP LS 302");
        let caps = h.take("c").join(" ");
        assert!(
            caps.contains(" sasl=PLAIN,SCRAM-SHA-256,EXTERNAL "),
            "{caps}"
        );
        h.send("c", "NICK alice");
        h.send("c", "USER alice 0 * :Alice");
        h.send("c", "CAP REQ sasl");
        h.take("c");
        h.send("c", "AUTHENTICATE EXTERNAL");
        assert_eq!(h.take("c"), ["AUTHENTICATE +"]);
        h.send("c", "AUTHENTICATE +");
        let job = answer(&mut h, &mut requests, AccountOutcome::Valid("alice".into()));
        assert!(matches!(
            job,
            AccountJob::Certificate { fingerprint, account: None } if fingerprint == FINGERPRINT
        ));
        assert_eq!(
            h.take("c"),
            [
                ":irc.test 900 alice alice!~alice@127.0.0.1 alice :You are now logged in as alice",
                ":irc.test 903 alice :SASL authentication successful",
            ]
        );
    }

    #[test]
    fn external_passes_the_named_account_and_fails_without_a_certificate() {
        let mut h = Harness::new();
        let mut requests = h.attach_worker();
        h.connect_with_certificate("c", FINGERPRINT);
        h.send("c", "NICK alice");
        h.send("c", "AUTHENTICATE EXTERNAL");
        h.send("c", &format!("AUTHENTICATE {}", STANDARD.encode("Alice")));
        let job = answer(&mut h, &mut requests, AccountOutcome::Invalid);
        assert!(matches!(
            job,
            AccountJob::Certificate { account: Some(account), .. } if account == "Alice"
        ));
        assert_eq!(
            h.take("c"),
            [
                "AUTHENTICATE +",
                ":irc.test 904 alice :SASL authentication failed",
            ]
        );
        // Plain text: EXTERNAL is not offered at all.
        h.connect("plain");
        h.send("plain", "NICK bob");
        h.send("plain", "AUTHENTICATE EXTERNAL");
        assert_eq!(
            h.take("plain"),
            [
                ":irc.test 908 bob PLAIN,SCRAM-SHA-256 :are available SASL mechanisms",
                ":irc.test 904 bob :SASL authentication failed",
            ]
        );
        assert!(requests.try_recv().is_err(), "no job without a certificate");
    }

    #[test]
    fn whois_shows_the_fingerprint_to_its_owner_and_operators_only() {
        let mut h = Harness::new();
        h.connect_with_certificate("alice", FINGERPRINT);
        h.send("alice", "NICK alice");
        h.send("alice", "USER alice 0 * :Alice");
        h.register("bob");
        h.register("oper");
        h.make_oper("oper");
        h.take("alice");
        let certfp = |asker: &str| {
            format!(":irc.test 276 {asker} alice :has client certificate fingerprint {FINGERPRINT}")
        };
        for (asker, sees) in [("alice", true), ("bob", false), ("oper", true)] {
            h.send(asker, "WHOIS alice");
            let whois = h.take(asker);
            assert_eq!(whois.contains(&certfp(asker)), sees, "{asker}: {whois:?}");
        }
    }
}
