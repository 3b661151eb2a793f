//! draft/read-marker over real sockets: a marker kept by the account
//! across a restart, told on login and on JOIN.

mod common;

use std::net::SocketAddr;

use common::{Client, TempDir, test_config_with_history};

async fn start(dir: &TempDir) -> rookery::ServerHandle {
    let config = test_config_with_history(&dir.join("history.db"), "");
    rookery::start(config).await.unwrap()
}

const READ: &str = ":irc.test MARKREAD #room timestamp=2021-05-20T08:30:00.000Z";

/// `nick` connects with draft/read-marker and logs in with IDENTIFY.
async fn identified(addr: SocketAddr, nick: &str) -> Client {
    let mut client = Client::connect(addr).await;
    client.send("CAP REQ draft/read-marker").await;
    client.send(&format!("NICK {nick}")).await;
    client.send(&format!("USER {nick} 0 * :{nick}")).await;
    client.send("CAP END").await;
    client.expect_containing(" 376 ").await;
    client
        .send(&format!("PRIVMSG NickServ :IDENTIFY {nick} hunter2"))
        .await;
    client.expect_containing(" 900 ").await;
    client
}

#[tokio::test]
async fn an_accounts_marker_survives_a_restart_and_is_told_on_login_and_join() {
    let dir = TempDir::new("read-markers-restart");
    let server = start(&dir).await;
    let addr = server.local_addrs()[0];
    let mut alice = Client::with_account(addr, "alice", "hunter2").await;
    alice.send("CAP REQ draft/read-marker").await;
    alice.expect_containing(" ACK ").await;
    alice
        .send("MARKREAD #room timestamp=2021-05-20T08:30:00.000Z")
        .await;
    assert_eq!(alice.expect_containing("MARKREAD").await, READ);
    server.shutdown().await;

    let server = start(&dir).await;
    let addr = server.local_addrs()[0];
    let mut alice = identified(addr, "alice").await;
    assert_eq!(alice.expect_containing("MARKREAD").await, READ);
    alice.send("JOIN #room").await;
    assert_eq!(alice.expect_containing("MARKREAD").await, READ);
    alice.expect_containing(" 366 ").await;
    server.shutdown().await;
}
