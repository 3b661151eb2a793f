//! SCRAM-SHA-256 (RFC 5802, RFC 7677) over AUTHENTICATE. The client never
//! sends its password: it proves it knows it. The core parses the
//! messages and keeps the nonces; the worker reads the account's salt and
//! checks the proof against the stored verifier, so no verifier ever
//! reaches the core. The attempt counts when the client names its account.
//!
//! ```text
//! C: n,,n=<account>,r=<client nonce>                 (client-first)
//! S: r=<client+server nonce>,s=<salt>,i=<iterations> (server-first)
//! C: c=biws,r=<client+server nonce>,p=<proof>        (client-final)
//! S: v=<server signature>                            (server-final)
//! C: +                                               then 900, 903
//! ```

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::{Mechanism, SaslExchange, challenge, fail, succeed};
use crate::core::cloak::random_secret;
use crate::core::{AccountJob, AccountPurpose, Refusal};
use crate::core::{ClientId, State};
use crate::proto::{Casemapping, numeric};

/// Where an exchange is.
#[derive(Debug)]
pub(super) enum Step {
    /// Waiting for the client-first-message.
    ClientFirst,
    /// The worker reads the account's salt.
    Salting(Exchange),
    /// server-first sent; waiting for the client-final-message.
    ClientFinal(Exchange),
    /// The worker checks the proof.
    Proving,
    /// server-final sent; waiting for the client's empty response.
    Proved { account: String },
}

impl Step {
    /// Whether this step holds a proof of `account`'s password.
    pub(super) fn proves(&self, account: &str, casemapping: Casemapping) -> bool {
        matches!(self, Step::Proved { account: proved } if casemapping.eq(proved, account))
    }
}

/// What an exchange keeps between its messages.
#[derive(Debug)]
pub(super) struct Exchange {
    account: String,
    /// `n,,` or `y,,` (with `a=<account>` between the commas when given):
    /// the client-final's `c=` must repeat it.
    gs2_header: String,
    client_first_bare: String,
    /// The client's nonce, then the client's and the server's together.
    nonce: String,
    server_first: String,
}

/// A complete client response for `step`.
pub(super) fn respond(
    state: &mut State,
    id: ClientId,
    step: Step,
    response: &[u8],
) -> Result<(), Refusal> {
    let refused = || Refusal::new(numeric::ERR_SASLFAIL, &[]);
    match step {
        Step::ClientFirst => {
            let exchange = std::str::from_utf8(response)
                .ok()
                .and_then(client_first)
                .ok_or_else(refused)?;
            let job = AccountJob::ScramSalt {
                account: exchange.account.clone(),
            };
            let account = exchange.account.clone();
            set(state, id, Step::Salting(exchange));
            if !state.start_login(id, AccountPurpose::Sasl, &account, job) {
                set_none(state, id);
                return Err(refused());
            }
            Ok(())
        }
        Step::ClientFinal(exchange) => {
            let text = std::str::from_utf8(response).map_err(|_| refused())?;
            let (without_proof, proof) = client_final(text, &exchange).ok_or_else(refused)?;
            let auth_message = format!(
                "{},{},{without_proof}",
                exchange.client_first_bare, exchange.server_first
            );
            let job = AccountJob::ScramProof {
                account: exchange.account.clone(),
                auth_message,
                proof,
            };
            set(state, id, Step::Proving);
            // The attempt was counted at the client-first-message.
            if !state.account_job(id, AccountPurpose::Sasl, job) {
                set_none(state, id);
                return Err(refused());
            }
            Ok(())
        }
        Step::Proved { account } if response.is_empty() => {
            succeed(state, id, &account);
            Ok(())
        }
        // A step the worker is doing gets no line: the client's lines wait.
        Step::Proved { .. } | Step::Salting(_) | Step::Proving => Err(refused()),
    }
}

/// The worker found the account's salt: send the server-first-message.
pub(super) fn salted(state: &mut State, id: ClientId, salt: &[u8], iterations: u32) {
    let Some(Step::Salting(mut exchange)) = take(state, id) else {
        return fail(state, id);
    };
    exchange.nonce.push_str(&random_secret());
    exchange.server_first = format!(
        "r={},s={},i={iterations}",
        exchange.nonce,
        STANDARD.encode(salt)
    );
    let server_first = exchange.server_first.clone();
    set(state, id, Step::ClientFinal(exchange));
    challenge(state, id, server_first.as_bytes());
}

/// The worker accepted the proof: send the server-final-message; the
/// client's empty answer to it completes the login.
pub(super) fn proved(state: &mut State, id: ClientId, account: String, signature: &[u8]) {
    let Some(Step::Proving) = take(state, id) else {
        return fail(state, id);
    };
    set(state, id, Step::Proved { account });
    let server_final = format!("v={}", STANDARD.encode(signature));
    challenge(state, id, server_final.as_bytes());
}

/// Parses a client-first-message: no channel binding (`n` or `y`), an
/// authorization identity only if it is the account itself, no
/// mandatory extensions.
fn client_first(text: &str) -> Option<Exchange> {
    let mut parts = text.splitn(3, ',');
    let (binding, authzid, bare) = (parts.next()?, parts.next()?, parts.next()?);
    if binding != "n" && binding != "y" {
        return None;
    }
    let mut attributes = bare.split(',');
    let account = saslname(attributes.next()?.strip_prefix("n=")?)?;
    let nonce = attributes.next()?.strip_prefix("r=")?;
    if account.is_empty() || !is_printable(nonce) || nonce.is_empty() {
        return None;
    }
    if !authzid.is_empty() && saslname(authzid.strip_prefix("a=")?)? != account {
        return None;
    }
    Some(Exchange {
        account,
        gs2_header: format!("{binding},{authzid},"),
        client_first_bare: bare.to_owned(),
        nonce: nonce.to_owned(),
        server_first: String::new(),
    })
}

/// Parses a client-final-message for `exchange`: the part the AuthMessage
/// includes, and the proof.
fn client_final<'a>(text: &'a str, exchange: &Exchange) -> Option<(&'a str, Vec<u8>)> {
    let (without_proof, proof) = text.rsplit_once(",p=")?;
    let mut attributes = without_proof.split(',');
    let binding = STANDARD
        .decode(attributes.next()?.strip_prefix("c=")?)
        .ok()?;
    let nonce = attributes.next()?.strip_prefix("r=")?;
    if binding != exchange.gs2_header.as_bytes() || nonce != exchange.nonce {
        return None;
    }
    Some((without_proof, STANDARD.decode(proof).ok()?))
}

/// A SCRAM `saslname`: `=2C` and `=3D` stand for `,` and `=`.
fn saslname(text: &str) -> Option<String> {
    let name = text.replace("=2C", ",").replace("=3D", "=");
    (!text.replace("=2C", "").replace("=3D", "").contains('=')).then_some(name)
}

/// RFC 5802's `printable`: ASCII from `!` to `~` but `,`.
fn is_printable(text: &str) -> bool {
    text.bytes()
        .all(|b| (b'!'..=b'~').contains(&b) && b != b',')
}

fn take(state: &mut State, id: ClientId) -> Option<Step> {
    match state.clients.get_mut(&id)?.sasl.take()?.mechanism {
        Mechanism::Scram(step) => Some(step),
        Mechanism::Plain | Mechanism::External => None,
    }
}

fn set(state: &mut State, id: ClientId, step: Step) {
    if let Some(client) = state.clients.get_mut(&id) {
        client.sasl = Some(Box::new(SaslExchange::new(Mechanism::Scram(step))));
    }
}

fn set_none(state: &mut State, id: ClientId) {
    if let Some(client) = state.clients.get_mut(&id) {
        client.sasl = None;
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    use super::*;
    use crate::core::login::tests::answer;
    use crate::core::testing::Harness;
    use crate::core::{AccountJob, AccountOutcome};

    fn send(h: &mut Harness, message: &str) {
        h.send("c", &format!("AUTHENTICATE {}", STANDARD.encode(message)));
    }

    /// A client that started SCRAM-SHA-256 before registering.
    fn started() -> (
        Harness,
        tokio::sync::mpsc::UnboundedReceiver<crate::core::AdminRequest>,
    ) {
        let mut h = Harness::new();
        let requests = h.attach_worker();
        h.connect("c");
        h.send("c", "CAP REQ sasl");
        h.send("c", "NICK alice");
        h.send("c", "USER alice 0 * :Alice");
        h.send("c", "AUTHENTICATE SCRAM-SHA-256");
        h.take("c");
        (h, requests)
    }

    #[test]
    fn the_exchange_runs_in_order_and_the_worker_sees_the_auth_message() {
        let (mut h, mut requests) = started();
        send(&mut h, "n,,n=alice,r=abc");
        let job = answer(
            &mut h,
            &mut requests,
            AccountOutcome::ScramSalt {
                salt: b"salt".to_vec(),
                iterations: 4096,
            },
        );
        assert!(matches!(job, AccountJob::ScramSalt { account } if account == "alice"));
        let lines = h.take("c");
        let server_first = lines[0].strip_prefix("AUTHENTICATE ").unwrap();
        let server_first = String::from_utf8(STANDARD.decode(server_first).unwrap()).unwrap();
        let nonce = server_first
            .strip_prefix("r=")
            .and_then(|rest| rest.split(',').next())
            .unwrap()
            .to_owned();
        assert!(nonce.starts_with("abc") && nonce.len() > 3);
        assert!(
            server_first.ends_with(",s=c2FsdA==,i=4096"),
            "{server_first}"
        );

        let without_proof = format!("c=biws,r={nonce}");
        send(&mut h, &format!("{without_proof},p=AAAA"));
        let job = answer(
            &mut h,
            &mut requests,
            AccountOutcome::ScramProved {
                account: "Alice".into(),
                server_signature: vec![1, 2, 3],
            },
        );
        let expected = format!("n=alice,r=abc,{server_first},{without_proof}");
        assert!(matches!(
            job,
            AccountJob::ScramProof { account, auth_message, proof }
                if account == "alice" && auth_message == expected && proof == [0, 0, 0]
        ));
        assert_eq!(h.take("c"), ["AUTHENTICATE dj1BUUlE"]);
        h.send("c", "AUTHENTICATE +");
        let lines = h.take("c");
        assert_eq!(
            lines,
            [
                ":irc.test 900 alice alice!~alice@127.0.0.1 Alice :You are now logged in as Alice",
                ":irc.test 903 alice :SASL authentication successful",
            ]
        );
    }

    #[test]
    fn a_wrong_nonce_or_channel_binding_fails_before_any_proof_is_checked() {
        let (mut h, mut requests) = started();
        send(&mut h, "p=tls-unique,,n=alice,r=abc");
        assert_eq!(
            h.take("c"),
            [":irc.test 904 alice :SASL authentication failed"]
        );
        h.send("c", "AUTHENTICATE SCRAM-SHA-256");
        h.take("c");
        send(&mut h, "n,,n=alice,r=abc");
        let salt = AccountOutcome::ScramSalt {
            salt: b"salt".to_vec(),
            iterations: 4096,
        };
        answer(&mut h, &mut requests, salt);
        h.take("c");
        send(&mut h, "c=biws,r=abcWRONG,p=AAAA");
        assert_eq!(
            h.take("c"),
            [":irc.test 904 alice :SASL authentication failed"]
        );
        assert!(requests.try_recv().is_err(), "no proof was checked");
    }

    /// Runs the exchange of `started` up to the server-final-message.
    fn proved_as_alice(
        h: &mut Harness,
        requests: &mut tokio::sync::mpsc::UnboundedReceiver<crate::core::AdminRequest>,
    ) {
        send(h, "n,,n=alice,r=abc");
        let salt = AccountOutcome::ScramSalt {
            salt: b"salt".to_vec(),
            iterations: 4096,
        };
        answer(h, requests, salt);
        let lines = h.take("c");
        let server_first = lines[0].strip_prefix("AUTHENTICATE ").unwrap();
        let server_first = String::from_utf8(STANDARD.decode(server_first).unwrap()).unwrap();
        let nonce = server_first[2..].split(',').next().unwrap().to_owned();
        send(h, &format!("c=biws,r={nonce},p=AAAA"));
        let proved = AccountOutcome::ScramProved {
            account: "alice".into(),
            server_signature: vec![1, 2, 3],
        };
        answer(h, requests, proved);
        assert_eq!(h.take("c"), ["AUTHENTICATE dj1BUUlE"]);
    }

    #[test]
    fn a_proof_waiting_for_the_final_response_dies_with_a_suspension() {
        let (mut h, mut requests) = started();
        proved_as_alice(&mut h, &mut requests);
        h.register("oper");
        h.make_oper("oper");
        let oper = h.id("oper");
        h.state.clients.get_mut(&oper).unwrap().privileges =
            vec![crate::config::Privilege::Accounts];
        h.send("oper", "NS SUSPEND alice");
        answer(
            &mut h,
            &mut requests,
            AccountOutcome::Changed("alice".into()),
        );
        h.send("c", "AUTHENTICATE +");
        let lines = h.take("c");
        assert_eq!(
            lines.last().unwrap(),
            ":irc.test 904 alice :SASL authentication failed"
        );
        assert!(
            !lines.iter().any(|line| line.contains(" 900 ")),
            "{lines:?}"
        );
        assert_eq!(h.state.clients[&h.id("c")].account, None);
    }

    #[test]
    fn saslnames_decode_their_escapes_and_refuse_others() {
        assert_eq!(saslname("a=2Cb=3Dc").as_deref(), Some("a,b=c"));
        assert_eq!(saslname("a=41"), None);
    }
}
