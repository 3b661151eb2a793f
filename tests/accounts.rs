//! Accounts over real sockets: registering with NickServ, logging in with
//! SASL PLAIN or IDENTIFY from another connection, and what peers see.

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{Client, TempDir, test_config_with_history};

async fn start(dir: &TempDir) -> rookery::ServerHandle {
    let config = test_config_with_history(&dir.join("history.db"), "");
    rookery::start(config).await.unwrap()
}

#[tokio::test]
async fn sasl_plain_logs_in_with_the_right_password_only() {
    let dir = TempDir::new("accounts-sasl");
    let server = start(&dir).await;
    let addr = server.local_addrs()[0];
    Client::with_account(addr, "alice", "hunter2").await;

    let (_, exchange) = Client::sasl_plain(addr, "alice2", "ALICE", "wrong").await;
    assert_eq!(
        exchange.last().map(String::as_str),
        Some(":irc.test 904 alice2 :SASL authentication failed")
    );

    let mut client = Client::connect(addr).await;
    client.send("CAP LS 302").await;
    client.send("CAP REQ sasl").await;
    client.send("NICK alice3").await;
    client.send("USER a 0 * :a").await;
    client.send("AUTHENTICATE PLAIN").await;
    client.expect_containing("AUTHENTICATE +").await;
    let response = STANDARD.encode("\0ALICE\0hunter2");
    client.send(&format!("AUTHENTICATE {response}")).await;
    let logged_in = client.expect_containing(" 900 ").await;
    assert_eq!(
        logged_in,
        ":irc.test 900 alice3 alice3!~a@127.0.0.1 alice :You are now logged in as alice"
    );
    client.expect_containing(" 903 ").await;
    client.send("CAP END").await;
    client.expect_containing(" 001 ").await;
}

#[tokio::test]
async fn nickserv_register_then_identify_from_a_second_connection() {
    let dir = TempDir::new("accounts-identify");
    let server = start(&dir).await;
    let addr = server.local_addrs()[0];
    let mut alice = Client::with_account(addr, "alice", "hunter2").await;
    alice.send("QUIT").await;

    let mut other = Client::register(addr, "someone").await;
    other.send("NS IDENTIFY alice hunter3").await;
    other.expect_containing("Invalid account credentials").await;
    other.send("NS IDENTIFY alice hunter2").await;
    let line = other.expect_containing(" 900 ").await;
    assert!(
        line.ends_with(" alice :You are now logged in as alice"),
        "{line}"
    );
    other.send("WHOIS someone").await;
    other
        .expect_containing(" 330 someone someone alice :is logged in as")
        .await;
    other.send("NS INFO alice").await;
    other
        .expect_containing("NOTICE someone :Account: alice")
        .await;
}

#[tokio::test]
async fn a_peer_sees_the_account_on_join_and_on_messages() {
    let dir = TempDir::new("accounts-peer");
    let server = start(&dir).await;
    let addr = server.local_addrs()[0];
    let mut bob = Client::connect(addr).await;
    bob.send("CAP REQ :extended-join account-tag account-notify")
        .await;
    bob.send("CAP END").await;
    bob.register_as("bob").await;
    bob.send("JOIN #room").await;
    bob.expect_containing(" 366 ").await;

    let (mut alice, exchange) = {
        let mut alice = Client::with_account(addr, "alice", "hunter2").await;
        alice.send("QUIT").await;
        assert!(alice.is_closed().await);
        Client::sasl_plain(addr, "alice", "alice", "hunter2").await
    };
    let end = exchange.last().cloned().unwrap_or_default();
    assert!(end.contains(" 903 "), "{end}");
    alice.send("JOIN #room").await;
    assert_eq!(
        bob.expect_containing("JOIN").await,
        "@account=alice :alice!~alice@127.0.0.1 JOIN #room alice :alice"
    );
    alice.send("PRIVMSG #room :hi").await;
    assert_eq!(
        bob.expect_containing("PRIVMSG").await,
        "@account=alice :alice!~alice@127.0.0.1 PRIVMSG #room :hi"
    );
    alice.send("NS LOGOUT").await;
    assert_eq!(
        bob.expect_containing("ACCOUNT").await,
        ":alice!~alice@127.0.0.1 ACCOUNT *"
    );
}

#[tokio::test]
async fn a_stolen_nick_is_not_logged_in() {
    let dir = TempDir::new("accounts-stolen");
    let server = start(&dir).await;
    let addr = server.local_addrs()[0];
    let mut alice = Client::with_account(addr, "alice", "hunter2").await;
    alice.send("QUIT").await;
    assert!(alice.is_closed().await);

    let mut bob = Client::connect(addr).await;
    bob.send("CAP REQ :extended-join account-tag").await;
    bob.send("CAP END").await;
    bob.register_as("bob").await;
    bob.send("JOIN #room").await;
    bob.expect_containing(" 366 ").await;

    let mut mallory = Client::register(addr, "alice").await;
    mallory.send("NS IDENTIFY wrong").await;
    mallory
        .expect_containing("Invalid account credentials")
        .await;
    mallory.send("JOIN #room").await;
    assert_eq!(
        bob.expect_containing("JOIN").await,
        ":alice!~alice@127.0.0.1 JOIN #room * :alice"
    );
    mallory.send("PRIVMSG #room :it is me").await;
    assert_eq!(
        bob.expect_containing("PRIVMSG").await,
        ":alice!~alice@127.0.0.1 PRIVMSG #room :it is me"
    );
    bob.send("WHO alice %na").await;
    assert_eq!(
        bob.expect_containing(" 354 ").await,
        ":irc.test 354 bob alice 0"
    );
    bob.send("WHOIS alice").await;
    let mut whois = Vec::new();
    loop {
        let line = bob.next_line().await.expect("WHOIS ends");
        if line.contains(" 318 ") {
            break;
        }
        whois.push(line);
    }
    assert!(!whois.iter().any(|l| l.contains(" 330 ")), "{whois:?}");
}

/// HMAC-SHA-256, for the client's side of SCRAM.
fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The base64 payload of the server's next `AUTHENTICATE` line, decoded.
async fn server_message(client: &mut Client) -> String {
    let line = client.next_line().await.expect("a SASL challenge");
    let payload = line
        .strip_prefix("AUTHENTICATE ")
        .unwrap_or_else(|| panic!("expected AUTHENTICATE, got {line:?}"));
    String::from_utf8(STANDARD.decode(payload).unwrap()).unwrap()
}

/// Runs SCRAM-SHA-256 as `account` with `password`, as a client would
/// (RFC 5802); returns the line that ended it and whether the server
/// proved it knows the password.
async fn scram(
    addr: std::net::SocketAddr,
    nick: &str,
    account: &str,
    password: &str,
) -> (String, bool) {
    use sha2::Digest;
    let mut client = Client::connect(addr).await;
    client.send("CAP REQ sasl").await;
    client.send(&format!("NICK {nick}")).await;
    client.send("USER s 0 * :s").await;
    client.expect_containing("ACK").await;
    client.send("AUTHENTICATE SCRAM-SHA-256").await;
    assert_eq!(client.next_line().await.as_deref(), Some("AUTHENTICATE +"));
    let client_first_bare = format!("n={account},r=rOprNGfwEbeRWgbNEkqO");
    let first = STANDARD.encode(format!("n,,{client_first_bare}"));
    client.send(&format!("AUTHENTICATE {first}")).await;
    let server_first = server_message(&mut client).await;
    let fields: std::collections::HashMap<&str, &str> = server_first
        .split(',')
        .filter_map(|field| field.split_once('='))
        .collect();
    let nonce = fields["r"];
    assert!(nonce.starts_with("rOprNGfwEbeRWgbNEkqO") && nonce.len() > 20);
    let salt = STANDARD.decode(fields["s"]).unwrap();
    let iterations: u32 = fields["i"].parse().unwrap();
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), &salt, iterations, &mut salted);
    let client_key = hmac(&salted, b"Client Key");
    let stored_key = sha2::Sha256::digest(&client_key);
    let without_proof = format!("c=biws,r={nonce}");
    let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
    let signature = hmac(&stored_key, auth_message.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(signature)
        .map(|(k, s)| k ^ s)
        .collect();
    let last = STANDARD.encode(format!("{without_proof},p={}", STANDARD.encode(proof)));
    client.send(&format!("AUTHENTICATE {last}")).await;
    let line = client.next_line().await.expect("an answer to the proof");
    let Some(payload) = line.strip_prefix("AUTHENTICATE ") else {
        return (line, false);
    };
    let server_final = String::from_utf8(STANDARD.decode(payload).unwrap()).unwrap();
    let server_key = hmac(&salted, b"Server Key");
    let expected = hmac(&server_key, auth_message.as_bytes());
    let proved = server_final == format!("v={}", STANDARD.encode(expected));
    client.send("AUTHENTICATE +").await;
    client.expect_containing(" 900 ").await;
    (client.next_line().await.unwrap(), proved)
}

#[tokio::test]
async fn scram_sha_256_logs_in_without_sending_the_password() {
    let dir = TempDir::new("accounts-scram");
    let server = start(&dir).await;
    let addr = server.local_addrs()[0];
    let mut alice = Client::with_account(addr, "alice", "hunter2").await;
    alice.send("QUIT").await;

    let (end, proved) = scram(addr, "alice1", "alice", "hunter2").await;
    assert_eq!(end, ":irc.test 903 alice1 :SASL authentication successful");
    assert!(
        proved,
        "the server signature proves the server knew the verifier"
    );

    let (end, _) = scram(addr, "alice2", "alice", "hunter3").await;
    assert_eq!(end, ":irc.test 904 alice2 :SASL authentication failed");
}
