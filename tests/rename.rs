//! RENAME over real sockets: a registered room's registration and
//! history follow it across a restart, and its old name is free.

mod common;

use common::{Client, TempDir, test_config_with_history};

async fn start(dir: &TempDir) -> rookery::ServerHandle {
    let config = test_config_with_history(&dir.join("history.db"), "");
    rookery::start(config).await.unwrap()
}

#[tokio::test]
async fn a_registered_room_keeps_its_registration_and_history_under_its_new_name() {
    let dir = TempDir::new("rename-registered");
    let server = start(&dir).await;
    let addr = server.local_addrs()[0];
    let mut alice = Client::with_account(addr, "alice", "hunter2").await;
    alice.send("JOIN #old").await;
    alice.expect_containing(" 366 ").await;
    alice.send("CS REGISTER #old").await;
    alice.expect_containing("is now registered").await;
    alice.send("PRIVMSG #old :said before the rename").await;
    alice.send("RENAME #old #new :moving").await;
    alice.expect_containing(" JOIN #new").await;
    server.shutdown().await;

    let server = start(&dir).await;
    let addr = server.local_addrs()[0];
    let mut alice = Client::register(addr, "alice").await;
    alice.send("PRIVMSG NickServ :IDENTIFY alice hunter2").await;
    alice.expect_containing(" 900 ").await;
    alice.send("CS INFO #new").await;
    alice.expect_containing(":Room: #new").await;
    alice.expect_containing(":Founder: alice").await;
    alice.send("CS INFO #old").await;
    alice.expect_containing(":#old is not registered.").await;
    alice.send("JOIN #new").await;
    alice.expect_containing(" 366 ").await;
    alice.send("CHATHISTORY LATEST #new * 10").await;
    let said = alice.expect_containing("said before the rename").await;
    assert!(said.contains(" PRIVMSG #new :"), "{said}");
    alice.send("JOIN #old").await;
    let joined = alice.expect_containing(" 353 ").await;
    assert!(
        joined.ends_with(":@alice"),
        "a new, unregistered #old: {joined}"
    );
    server.shutdown().await;
}
