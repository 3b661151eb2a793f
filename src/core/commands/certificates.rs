//! NickServ CERT: the TLS client certificates that log in to the caller's
//! account with SASL EXTERNAL, named by their SHA-256 fingerprints. The
//! store changes are worker jobs, as every account change is.

use super::nickserv::{account_of, say, unavailable};
use crate::core::{AccountJob, AccountOutcome, AccountPurpose};
use crate::core::{ClientId, State};

/// A SHA-256 fingerprint in hex.
const FINGERPRINT_LEN: usize = 64;

/// `CERT ADD [<fingerprint>]`, `CERT DEL <fingerprint>`, `CERT LIST`.
pub fn cert(state: &mut State, id: ClientId, arguments: &[&str]) {
    let Some(account) = account_of(state, id) else {
        say(state, id, "You must be logged in to use CERT.");
        return;
    };
    let subcommand = arguments.first().map(|word| word.to_ascii_uppercase());
    let given = arguments.get(1).copied();
    let job = match (subcommand.as_deref(), given) {
        (Some("ADD"), given) => {
            let Some(fingerprint) = fingerprint_to_add(state, id, given) else {
                return;
            };
            AccountJob::AddCertificate {
                account,
                fingerprint,
            }
        }
        (Some("DEL"), Some(given)) => {
            let Some(fingerprint) = normalize(given) else {
                return not_a_fingerprint(state, id, given);
            };
            AccountJob::RemoveCertificate {
                account,
                fingerprint,
            }
        }
        (Some("LIST"), _) => AccountJob::ListCertificates { account },
        _ => {
            say(
                state,
                id,
                "Syntax: CERT ADD [fingerprint] | DEL <fingerprint> | LIST",
            );
            return;
        }
    };
    if !state.account_job(id, AccountPurpose::Certificates, job) {
        unavailable(state, id);
    }
}

/// The fingerprint CERT ADD names, or the connection's own certificate's.
fn fingerprint_to_add(state: &mut State, id: ClientId, given: Option<&str>) -> Option<String> {
    match given {
        Some(given) => {
            let normalized = normalize(given);
            if normalized.is_none() {
                not_a_fingerprint(state, id, given);
            }
            normalized
        }
        None => {
            let own = state.clients.get(&id)?.certificate.clone();
            if own.is_none() {
                let text = "You have no client certificate on this connection; give a fingerprint.";
                say(state, id, text);
            }
            own
        }
    }
}

/// 64 lowercase hex digits; colons (as `openssl x509 -fingerprint`
/// prints them) and uppercase are accepted.
fn normalize(fingerprint: &str) -> Option<String> {
    let digits: String = fingerprint
        .chars()
        .filter(|&c| c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (digits.len() == FINGERPRINT_LEN && digits.bytes().all(|b| b.is_ascii_hexdigit()))
        .then_some(digits)
}

fn not_a_fingerprint(state: &mut State, id: ClientId, given: &str) {
    let text = format!("{given} is not a SHA-256 fingerprint (64 hexadecimal digits).");
    say(state, id, &text);
}

/// The worker's answer to a CERT command.
pub fn answered(state: &mut State, id: ClientId, outcome: AccountOutcome) {
    let text = match outcome {
        AccountOutcome::CertificateAdded => {
            "That certificate now logs in to your account (SASL EXTERNAL).".to_owned()
        }
        AccountOutcome::CertificateRemoved(true) => "That certificate was removed.".to_owned(),
        AccountOutcome::CertificateRemoved(false) => {
            "Your account has no such certificate.".to_owned()
        }
        AccountOutcome::Certificates(fingerprints) if fingerprints.is_empty() => {
            "Your account has no certificates.".to_owned()
        }
        AccountOutcome::Certificates(fingerprints) => {
            for fingerprint in &fingerprints {
                say(state, id, &format!("Certificate: {fingerprint}"));
            }
            format!("{} certificate(s).", fingerprints.len())
        }
        AccountOutcome::Taken => "That certificate belongs to another account.".to_owned(),
        AccountOutcome::TooMany => "Your account has as many certificates as it may.".to_owned(),
        _ => return unavailable(state, id),
    };
    say(state, id, &text);
}

#[cfg(test)]
mod tests {
    use crate::core::login::tests::answer;
    use crate::core::testing::Harness;
    use crate::core::{AccountJob, AccountOutcome};

    const FINGERPRINT: &str = "3fa1a6a32bb09eb3fca6e7b40b1bee79f755e8c6572683941b209edec7f7120f";

    /// `name`, connected over TLS with [`FINGERPRINT`], logged in to `alice`.
    fn logged_in(h: &mut Harness, name: &str) {
        h.connect_with_certificate(name, FINGERPRINT);
        h.send(name, &format!("NICK {name}"));
        h.send(name, &format!("USER {name} 0 * :{name}"));
        h.take(name);
        let mut requests = h.attach_worker();
        h.send(name, "NS IDENTIFY alice hunter2");
        answer(h, &mut requests, AccountOutcome::Valid("alice".into()));
        h.take(name);
    }

    #[test]
    fn cert_add_defaults_to_the_connections_certificate() {
        let mut h = Harness::new();
        logged_in(&mut h, "alice");
        let mut requests = h.attach_worker();
        h.send("alice", "NS CERT ADD");
        let job = answer(&mut h, &mut requests, AccountOutcome::CertificateAdded);
        assert!(matches!(
            job,
            AccountJob::AddCertificate { account, fingerprint }
                if account == "alice" && fingerprint == FINGERPRINT
        ));
        assert_eq!(
            h.take("alice"),
            [
                ":NickServ!NickServ@services. NOTICE alice :That certificate now logs in to your account (SASL EXTERNAL)."
            ]
        );
    }

    #[test]
    fn cert_del_and_list_take_the_fingerprint_in_any_form() {
        let mut h = Harness::new();
        logged_in(&mut h, "alice");
        let mut requests = h.attach_worker();
        let colons = FINGERPRINT
            .to_ascii_uppercase()
            .as_bytes()
            .chunks(2)
            .map(|pair| std::str::from_utf8(pair).unwrap())
            .collect::<Vec<_>>()
            .join(":");
        h.send("alice", &format!("NS CERT DEL {colons}"));
        let job = answer(
            &mut h,
            &mut requests,
            AccountOutcome::CertificateRemoved(true),
        );
        assert!(matches!(
            job,
            AccountJob::RemoveCertificate { fingerprint, .. } if fingerprint == FINGERPRINT
        ));
        h.send("alice", "NS CERT LIST");
        let outcome = AccountOutcome::Certificates(vec![FINGERPRINT.into()]);
        answer(&mut h, &mut requests, outcome);
        h.send("alice", "NS CERT DEL 1234");
        assert!(requests.try_recv().is_err(), "no job for a bad fingerprint");
        let lines = h.take("alice");
        let texts: Vec<&str> = lines
            .iter()
            .map(|line| line.split_once(" :").unwrap().1)
            .collect();
        assert_eq!(
            texts,
            [
                "That certificate was removed.",
                &format!("Certificate: {FINGERPRINT}"),
                "1 certificate(s).",
                "1234 is not a SHA-256 fingerprint (64 hexadecimal digits).",
            ]
        );
    }

    #[test]
    fn cert_needs_a_login_and_add_without_a_certificate_a_fingerprint() {
        let mut h = Harness::new();
        let mut requests = h.attach_worker();
        h.register("bob");
        h.send("bob", "NS CERT LIST");
        assert_eq!(
            h.take("bob"),
            [":NickServ!NickServ@services. NOTICE bob :You must be logged in to use CERT."]
        );
        h.send("bob", "NS IDENTIFY hunter2");
        answer(&mut h, &mut requests, AccountOutcome::Valid("bob".into()));
        h.take("bob");
        h.send("bob", "NS CERT ADD");
        assert!(requests.try_recv().is_err(), "no job without a fingerprint");
        let lines = h.take("bob");
        assert!(
            lines[0].ends_with(
                ":You have no client certificate on this connection; give a fingerprint."
            ),
            "{lines:?}"
        );
    }
}
