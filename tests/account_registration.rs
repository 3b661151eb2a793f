//! `draft/account-registration` over real sockets: REGISTER before and
//! after the welcome, the account usable from another connection, and the
//! email address kept with it.

mod common;

use common::{Client, TempDir, test_config_with_history};

/// The longest wait for a line that follows a password hash, slow in a
/// debug build on a busy machine.
const HASHING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

async fn start(dir: &TempDir, extra: &str) -> rookery::ServerHandle {
    let config = test_config_with_history(&dir.join("history.db"), extra);
    rookery::start(config).await.unwrap()
}

#[tokio::test]
async fn register_before_connect_logs_in_and_the_account_works_elsewhere() {
    let dir = TempDir::new("register-before-connect");
    let server = start(&dir, "").await;
    let addr = server.local_addrs()[0];
    let mut bar = Client::connect(addr).await;
    bar.line_timeout = HASHING_TIMEOUT;
    bar.send("CAP LS 302").await;
    bar.expect_containing("draft/account-registration=before-connect")
        .await;
    bar.send("NICK bar").await;
    bar.send("USER bar 0 * :bar").await;
    bar.send("REGISTER * * hunter2").await;
    assert_eq!(
        bar.expect_containing("REGISTER").await,
        ":irc.test REGISTER SUCCESS bar :Account successfully registered"
    );
    bar.expect_containing(" 900 bar bar!~bar@127.0.0.1 bar ")
        .await;
    bar.send("CAP END").await;
    bar.expect_containing(" 001 bar ").await;
    bar.send("QUIT").await;

    let mut other = Client::register(addr, "other").await;
    other.line_timeout = HASHING_TIMEOUT;
    other.send("REGISTER bar * hunter3").await;
    other
        .expect_containing("FAIL REGISTER ACCOUNT_NAME_MUST_BE_NICK bar ")
        .await;
    other.send("NS IDENTIFY bar hunter2").await;
    other.expect_containing(" 900 other ").await;
}

#[tokio::test]
async fn a_taken_name_and_a_bad_address_are_refused_by_code() {
    let dir = TempDir::new("register-refused");
    let server = start(&dir, "accounts.custom_account_names = true").await;
    let addr = server.local_addrs()[0];
    let mut alice = Client::register(addr, "alice").await;
    alice.line_timeout = HASHING_TIMEOUT;
    alice
        .send("REGISTER Shared alice@example.org hunter2")
        .await;
    alice.expect_containing("REGISTER SUCCESS Shared :").await;
    let mut bob = Client::register(addr, "bob").await;
    bob.line_timeout = HASHING_TIMEOUT;
    bob.send("REGISTER shared * hunter2").await;
    bob.expect_containing("FAIL REGISTER ACCOUNT_EXISTS shared :")
        .await;
    bob.send("REGISTER bob not-an-address hunter2").await;
    bob.expect_containing("FAIL REGISTER INVALID_EMAIL bob :")
        .await;
}
