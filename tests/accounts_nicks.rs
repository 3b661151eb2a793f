//! Nick ownership and the rest of logging in, over real sockets: a client
//! on a registered nick is renamed to a guest unless it logs in, PASS
//! logins, SASL re-authentication, NickServ SET PASSWORD and DROP.

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{Client, TempDir, test_config_with_history};

async fn start(dir: &TempDir, extra_toml: &str) -> rookery::ServerHandle {
    let config = test_config_with_history(&dir.join("history.db"), extra_toml);
    rookery::start(config).await.unwrap()
}

/// alice registers her account and leaves.
async fn alice_away(addr: std::net::SocketAddr) {
    let mut alice = Client::with_account(addr, "alice", "hunter2").await;
    alice.send("QUIT").await;
    assert!(alice.is_closed().await);
}

#[tokio::test]
async fn a_second_client_on_an_away_users_nick_is_renamed_to_a_guest() {
    let dir = TempDir::new("nicks-guest");
    let server = start(&dir, "accounts.guest_after = \"1s\"").await;
    let addr = server.local_addrs()[0];
    alice_away(addr).await;

    let mut mallory = Client::register(addr, "alice").await;
    let told = mallory.expect_containing("NickServ").await;
    assert!(
        told.contains("This nick is owned by the account alice."),
        "{told}"
    );
    let renamed = mallory.expect_containing(" NICK ").await;
    let guest = renamed
        .strip_prefix(":alice!~alice@127.0.0.1 NICK ")
        .unwrap_or_else(|| panic!("{renamed}"));
    assert!(guest.starts_with("Guest"), "{renamed}");
    mallory.expect_containing("did not log in in time").await;
    // The nick is free for its owner again.
    let mut alice = Client::register(addr, "alice_").await;
    alice.send("NICK alice").await;
    alice.expect_containing("NICK alice").await;
}

#[tokio::test]
async fn pass_logs_in_while_connecting_so_the_nick_is_kept() {
    let dir = TempDir::new("nicks-pass");
    let server = start(&dir, "accounts.guest_after = \"1s\"").await;
    let addr = server.local_addrs()[0];
    alice_away(addr).await;

    let mut alice = Client::connect(addr).await;
    alice.send("PASS alice:hunter2").await;
    alice.send("NICK alice").await;
    alice.send("USER alice 0 * :Alice").await;
    let logged_in = alice.expect_containing(" 900 ").await;
    assert!(logged_in.ends_with(" alice :You are now logged in as alice"));
    alice.expect_containing(" 001 alice ").await;
    let mode = alice.expect_containing(" MODE alice").await;
    assert_eq!(mode, ":alice!~alice@127.0.0.1 MODE alice +r");
    alice.send("MODE alice").await;
    assert_eq!(
        alice.expect_containing(" 221 ").await,
        ":irc.test 221 alice +r"
    );

    let mut wrong = Client::connect(addr).await;
    wrong.send("PASS alice:wrong").await;
    wrong.send("NICK other").await;
    wrong.send("USER other 0 * :Other").await;
    wrong
        .expect_containing("PASS: invalid account credentials")
        .await;
    wrong.expect_containing(" 001 other ").await;
}

#[tokio::test]
async fn sasl_authenticates_again_after_registration_as_another_account() {
    let dir = TempDir::new("nicks-reauth");
    let server = start(&dir, "").await;
    let addr = server.local_addrs()[0];
    Client::with_account(addr, "bob", "builder").await;

    let mut alice = Client::with_account(addr, "alice", "hunter2").await;
    alice.send("CAP REQ sasl").await;
    alice.expect_containing("ACK").await;
    alice.send("AUTHENTICATE PLAIN").await;
    alice.expect_containing("AUTHENTICATE +").await;
    let response = STANDARD.encode("bob\0bob\0builder");
    alice.send(&format!("AUTHENTICATE {response}")).await;
    let logged_in = alice.expect_containing(" 900 ").await;
    assert!(logged_in.ends_with(" bob :You are now logged in as bob"));
    alice.expect_containing(" 903 ").await;
    alice.send("WHOIS alice").await;
    alice
        .expect_containing(" 330 alice alice bob :is logged in as")
        .await;
}

#[tokio::test]
async fn set_password_then_identify_with_the_new_one() {
    let dir = TempDir::new("nicks-setpass");
    let server = start(&dir, "").await;
    let addr = server.local_addrs()[0];
    let mut alice = Client::with_account(addr, "alice", "hunter2").await;
    alice.send("NS SET PASSWORD correct-horse").await;
    alice
        .expect_containing("Your password has been changed.")
        .await;

    let mut other = Client::register(addr, "other").await;
    other.send("NS IDENTIFY alice hunter2").await;
    other.expect_containing("Invalid account credentials").await;
    other.send("NS IDENTIFY alice correct-horse").await;
    other.expect_containing(" 900 ").await;
}

#[tokio::test]
async fn drop_deletes_the_account_and_frees_its_name() {
    let dir = TempDir::new("nicks-drop");
    let server = start(&dir, "").await;
    let addr = server.local_addrs()[0];
    let mut alice = Client::with_account(addr, "alice", "hunter2").await;
    alice.send("NS DROP wrong").await;
    alice.expect_containing("Invalid account credentials").await;
    alice.send("NS DROP hunter2").await;
    alice.expect_containing(" 901 ").await;
    alice
        .expect_containing("The account alice has been dropped.")
        .await;
    alice.send("NS IDENTIFY hunter2").await;
    alice.expect_containing("Invalid account credentials").await;
    // The name is free: registering it again makes a new account.
    alice.send("NS REGISTER again").await;
    alice.expect_containing("created").await;
}

#[tokio::test]
async fn owned_nicks_are_known_again_after_a_restart() {
    let dir = TempDir::new("nicks-restart");
    let server = start(&dir, "").await;
    alice_away(server.local_addrs()[0]).await;
    server.shutdown().await;

    let server = start(&dir, "").await;
    let mut mallory = Client::register(server.local_addrs()[0], "alice").await;
    mallory
        .expect_containing("This nick is owned by the account alice.")
        .await;
}
