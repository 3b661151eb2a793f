//! Verification codes by mail over real sockets: REGISTER with an address
//! when the server requires one, the code mailed through a relay (a tiny
//! SMTP listener inside the test), and VERIFY with it.

mod common;

use std::net::SocketAddr;

use common::{Client, TempDir, test_config_with_history};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The longest wait for a line that follows a password hash, slow in a
/// debug build on a busy machine.
const HASHING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// One mail as the relay received it.
#[derive(Debug)]
struct Mail {
    recipients: Vec<String>,
    /// Headers and body, dot-stuffing undone, lines joined by `\n`.
    data: String,
}

/// A relay taking one mail: 220, 250 to EHLO/HELO/MAIL/RCPT, 354 to
/// DATA, 250 after the dot, 221 to QUIT.
async fn one_mail_relay() -> (SocketAddr, oneshot::Receiver<Mail>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (sender, received) = oneshot::channel();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (reader, mut writer) = stream.into_split();
        let mut lines = BufReader::new(reader).lines();
        writer.write_all(b"220 relay.test ESMTP\r\n").await.unwrap();
        let mut mail = Mail {
            recipients: Vec::new(),
            data: String::new(),
        };
        while let Ok(Some(line)) = lines.next_line().await {
            let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
            let reply: &[u8] = match verb.as_str() {
                "EHLO" => b"250-relay.test\r\n250 8BITMIME\r\n",
                "RCPT" => {
                    let to = line.trim_start_matches("RCPT TO:");
                    mail.recipients.push(to.trim_matches(['<', '>']).to_owned());
                    b"250 OK\r\n"
                }
                "DATA" => {
                    writer.write_all(b"354 go ahead\r\n").await.unwrap();
                    while let Ok(Some(line)) = lines.next_line().await {
                        if line == "." {
                            break;
                        }
                        let line = line.strip_prefix('.').unwrap_or(&line);
                        mail.data.push_str(line);
                        mail.data.push('\n');
                    }
                    b"250 queued\r\n"
                }
                "QUIT" => {
                    writer.write_all(b"221 bye\r\n").await.unwrap();
                    break;
                }
                _ => b"250 OK\r\n",
            };
            writer.write_all(reply).await.unwrap();
        }
        let _ = sender.send(mail);
    });
    (addr, received)
}

async fn start(dir: &TempDir, relay: SocketAddr) -> rookery::ServerHandle {
    let extra = format!(
        "accounts.registration_requires_email = true\n\
         accounts.smtp.relay = \"{relay}\"\n\
         accounts.smtp.from = \"irc@example.org\"\n\
         server.network = \"TestNet\""
    );
    let config = test_config_with_history(&dir.join("history.db"), &extra);
    rookery::start(config).await.unwrap()
}

/// `bar` registers with an address and is told to verify; the mail the
/// relay took.
async fn registered_pending(addr: SocketAddr, mail: oneshot::Receiver<Mail>) -> (Client, Mail) {
    let mut bar = Client::register(addr, "bar").await;
    bar.line_timeout = HASHING_TIMEOUT;
    bar.send("REGISTER * bar@example.org hunter2").await;
    assert_eq!(
        bar.expect_containing("REGISTER").await,
        ":irc.test REGISTER VERIFICATION_REQUIRED bar :Account created; send VERIFY with the code mailed to your address"
    );
    (bar, mail.await.expect("the relay took a mail"))
}

/// The code in the mail's `/quote VERIFY` line.
fn code_in(mail: &Mail) -> String {
    let command = mail
        .data
        .lines()
        .find_map(|line| line.trim().strip_prefix("/quote VERIFY bar "))
        .unwrap_or_else(|| panic!("no VERIFY line in {:?}", mail.data));
    command.to_owned()
}

#[tokio::test]
async fn the_mailed_code_verifies_the_account_and_logs_in() {
    let dir = TempDir::new("mail-verify");
    let (relay, mail) = one_mail_relay().await;
    let server = start(&dir, relay).await;
    let addr = server.local_addrs()[0];
    let (mut bar, mail) = registered_pending(addr, mail).await;
    assert_eq!(mail.recipients, ["bar@example.org"]);
    assert!(
        mail.data.contains("Subject: Your TestNet account\n"),
        "{}",
        mail.data
    );
    assert!(
        mail.data.contains("From: irc@example.org\n"),
        "{}",
        mail.data
    );
    let code = code_in(&mail);
    assert_eq!(code.len(), 8, "{code}");

    let mut other = Client::register(addr, "other").await;
    other.line_timeout = HASHING_TIMEOUT;
    other.send("NS IDENTIFY bar hunter2").await;
    other.expect_containing("Invalid account credentials").await;

    bar.send(&format!("VERIFY bar {code}")).await;
    assert_eq!(
        bar.expect_containing("VERIFY").await,
        ":irc.test VERIFY SUCCESS bar :Account successfully verified"
    );
    bar.expect_containing(" 900 bar bar!~bar@127.0.0.1 bar ")
        .await;
    other.send("NS IDENTIFY bar hunter2").await;
    other.expect_containing(" 900 other ").await;
}

#[tokio::test]
async fn a_wrong_code_is_refused_and_the_right_one_still_works() {
    let dir = TempDir::new("mail-wrong-code");
    let (relay, mail) = one_mail_relay().await;
    let server = start(&dir, relay).await;
    let addr = server.local_addrs()[0];
    let (mut bar, mail) = registered_pending(addr, mail).await;
    let code = code_in(&mail);
    let wrong = if code == "AAAAAAAA" {
        "BBBBBBBB"
    } else {
        "AAAAAAAA"
    };
    bar.send(&format!("VERIFY bar {wrong}")).await;
    bar.send("WHOIS bar").await;
    assert_eq!(
        bar.expect_containing("VERIFY").await,
        ":irc.test FAIL VERIFY INVALID_CODE bar :That code is wrong or has expired"
    );
    let whois = bar.expect_containing(" 318 ").await;
    assert!(
        !bar.received.iter().any(|line| line.contains(" 330 ")),
        "not logged in before {whois}"
    );
    bar.send(&format!("VERIFY bar {code}")).await;
    bar.expect_containing("VERIFY SUCCESS bar ").await;
}

#[tokio::test]
async fn a_relay_that_refuses_connections_fails_the_registration_and_keeps_no_account() {
    let dir = TempDir::new("mail-relay-down");
    // A port nothing listens on any more.
    let relay = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let server = start(&dir, relay).await;
    let addr = server.local_addrs()[0];
    let mut bar = Client::register(addr, "bar").await;
    bar.line_timeout = HASHING_TIMEOUT;
    bar.send("REGISTER * bar@example.org hunter2").await;
    assert_eq!(
        bar.expect_containing("REGISTER").await,
        ":irc.test FAIL REGISTER TEMPORARILY_UNAVAILABLE bar :The verification mail could not be sent; try again later"
    );
    bar.send("VERIFY bar AAAAAAAA").await;
    bar.expect_containing("FAIL VERIFY INVALID_CODE bar ").await;
    bar.send("NS INFO bar").await;
    bar.expect_containing("No such account").await;
}
