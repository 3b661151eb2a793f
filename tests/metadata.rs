//! IRCv3 metadata over real sockets: a logged-in user's keys are kept with
//! its account, across connections and across a restart.

mod common;

use common::{Client, TempDir, test_config_with_history};

async fn start(dir: &TempDir) -> rookery::ServerHandle {
    let config = test_config_with_history(&dir.join("history.db"), "");
    rookery::start(config).await.unwrap()
}

/// Connects as `nick` with the metadata capability and batch, subscribed
/// to nothing, and logs in to `account` with IDENTIFY.
async fn identify_with_metadata(addr: std::net::SocketAddr, nick: &str, password: &str) -> Client {
    let mut client = Client::connect(addr).await;
    client.send("CAP REQ :draft/metadata-3 batch").await;
    client.expect_containing("ACK").await;
    client.send("CAP END").await;
    client.register_as(nick).await;
    client
        .send(&format!("PRIVMSG NickServ :IDENTIFY alice {password}"))
        .await;
    client.expect_containing(" 900 ").await;
    client
}

#[tokio::test]
async fn an_accounts_keys_come_back_at_its_next_login() {
    let dir = TempDir::new("metadata-login");
    let server = start(&dir).await;
    let addr = server.local_addrs()[0];
    let mut alice = Client::with_account(addr, "alice", "hunter2").await;
    alice.send("METADATA * SET display-name :Alice L").await;
    alice
        .expect_containing(" 761 alice alice display-name")
        .await;
    alice.send("QUIT").await;

    let mut again = identify_with_metadata(addr, "alice2", "hunter2").await;
    let line = again.expect_containing(" 761 ").await;
    assert!(
        line.ends_with(" 761 alice2 alice2 display-name * :Alice L"),
        "{line}"
    );
    again.send("METADATA * GET display-name").await;
    again
        .expect_containing(" 761 alice2 alice2 display-name * :Alice L")
        .await;
}

#[tokio::test]
async fn a_removed_key_stays_removed_across_a_restart() {
    let dir = TempDir::new("metadata-restart");
    let server = start(&dir).await;
    let addr = server.local_addrs()[0];
    let mut alice = Client::with_account(addr, "alice", "hunter2").await;
    alice.send("METADATA * SET pronouns :she/her").await;
    alice.send("METADATA * SET color :red").await;
    alice.send("METADATA * SET color").await;
    alice.expect_containing(" 766 alice alice color").await;
    server.shutdown().await;

    let server = start(&dir).await;
    let addr = server.local_addrs()[0];
    let mut again = identify_with_metadata(addr, "alice", "hunter2").await;
    let line = again.expect_containing(" 761 ").await;
    assert!(
        line.ends_with(" 761 alice alice pronouns * :she/her"),
        "{line}"
    );
    again.send("METADATA * GET color").await;
    again.expect_containing(" 766 alice alice color").await;
}

#[tokio::test]
async fn without_an_account_the_keys_go_with_the_connection() {
    let dir = TempDir::new("metadata-guest");
    let server = start(&dir).await;
    let addr = server.local_addrs()[0];
    let mut guest = Client::register(addr, "guest").await;
    guest
        .send("METADATA * SET avatar :https://example.com/g.png")
        .await;
    guest.expect_containing(" 761 guest guest avatar").await;
    guest.send("QUIT").await;

    let mut guest = Client::register(addr, "guest").await;
    guest.send("METADATA * GET avatar").await;
    guest.expect_containing(" 766 guest guest avatar").await;
}
