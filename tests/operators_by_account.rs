//! Operators by account over real sockets: an `[[oper]]` block naming an
//! account is granted by logging in, and its operator suspends and
//! unsuspends an account with NickServ.

mod common;

use std::time::Duration;

use common::{Client, TempDir, test_config_with_history};

/// The longest wait for a line that follows a password hash, slow in a
/// debug build on a busy machine.
const HASHING_TIMEOUT: Duration = Duration::from_secs(30);

async fn connect(addr: std::net::SocketAddr, nick: &str) -> Client {
    let mut client = Client::register(addr, nick).await;
    client.line_timeout = HASHING_TIMEOUT;
    client
}

#[tokio::test]
async fn the_blocks_account_is_an_operator_who_can_suspend_an_account() {
    let dir = TempDir::new("operators-by-account");
    // The operator's account cannot be registered from IRC while a block
    // names it: alice registers before the block exists.
    let config = test_config_with_history(&dir.join("history.db"), "");
    let server = rookery::start(config).await.unwrap();
    let mut alice = connect(server.local_addrs()[0], "alice").await;
    alice.send("REGISTER * * hunter2").await;
    alice.expect_containing(" 900 ").await;
    server.shutdown().await;

    let extra = "[[oper]]\nname = \"boss\"\naccount = \"alice\"\nprivileges = [\"accounts\"]\n";
    let config = test_config_with_history(&dir.join("history.db"), extra);
    let server = rookery::start(config).await.unwrap();
    let addr = server.local_addrs()[0];

    let mut alice = connect(addr, "alice").await;
    alice.send("NS IDENTIFY hunter2").await;
    alice.expect_containing(" 900 ").await;
    alice.expect_containing("MODE alice +o").await;
    alice
        .expect_containing(" 381 alice :You are now an IRC operator")
        .await;

    let mut bob = connect(addr, "bob").await;
    bob.send("REGISTER * * hunter2").await;
    bob.expect_containing(" 900 ").await;
    alice.send("NS SUSPEND bob spam").await;
    alice
        .expect_containing("NOTICE alice :*** Accounts: alice suspended the account bob")
        .await;
    bob.expect_containing(" 901 bob ").await;
    bob.expect_containing("Your account has been suspended.")
        .await;
    bob.send("NS IDENTIFY hunter2").await;
    bob.expect_containing("That account is suspended.").await;

    alice.send("NS UNSUSPEND bob").await;
    alice
        .expect_containing("*** Accounts: alice unsuspended the account bob")
        .await;
    bob.send("NS IDENTIFY hunter2").await;
    bob.expect_containing(" 900 bob ").await;
}

#[tokio::test]
async fn nobody_registers_the_operators_account_from_irc() {
    let dir = TempDir::new("operators-account-reserved");
    let extra = "[[oper]]\nname = \"boss\"\naccount = \"admin\"\nprivileges = [\"accounts\"]\n";
    let config = test_config_with_history(&dir.join("history.db"), extra);
    let server = rookery::start(config).await.unwrap();
    let mut mallory = connect(server.local_addrs()[0], "admin").await;
    mallory.send("NS REGISTER hunter2").await;
    mallory
        .expect_containing("That name is reserved; it cannot be registered.")
        .await;
    mallory.send("REGISTER * * hunter2").await;
    mallory
        .expect_containing("FAIL REGISTER BAD_ACCOUNT_NAME admin ")
        .await;
}
