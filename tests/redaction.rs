//! REDACT over real sockets: a private message deleted from another
//! connection of the sender's account, then gone from the other side's
//! history, also after a restart.

mod common;

use common::{Client, TempDir, test_config_with_history};

const CAPS: &str =
    "CAP REQ :message-tags echo-message batch draft/chathistory draft/message-redaction";

fn config(dir: &TempDir) -> rookery::config::Config {
    test_config_with_history(&dir.join("history.db"), "history.private_messages = true")
}

/// The msgid tag of `line`.
fn msgid(line: &str) -> String {
    let (_, rest) = line.split_once("msgid=").expect("a msgid");
    rest.split([';', ' ']).next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn another_connection_of_the_senders_account_redacts_a_private_message() {
    let dir = TempDir::new("redaction-private");
    let server = rookery::start(config(&dir)).await.unwrap();
    let addr = server.local_addrs()[0];
    let mut alice = Client::with_account(addr, "alice", "hunter2").await;
    let mut bob = Client::with_account(addr, "bob", "sesame").await;
    for client in [&mut alice, &mut bob] {
        client.send(CAPS).await;
        client.expect_containing(" ACK ").await;
    }
    alice.send("PRIVMSG bob :psst").await;
    let echo = alice.expect_containing("PRIVMSG bob :psst").await;
    let id = msgid(&echo);
    bob.expect_containing("PRIVMSG bob :psst").await;

    // alice's second connection: another nick, the same account.
    let mut phone = Client::register(addr, "alice_phone").await;
    phone.send(CAPS).await;
    phone.expect_containing(" ACK ").await;
    phone.send("PRIVMSG NickServ :IDENTIFY alice hunter2").await;
    phone.expect_containing(" 900 ").await;
    phone.send(&format!("REDACT bob {id} :wrong window")).await;
    let told = phone.expect_containing(" REDACT ").await;
    assert!(
        told.ends_with(&format!(" REDACT bob {id} :wrong window")),
        "{told}"
    );
    let told = bob.expect_containing(" REDACT ").await;
    assert!(told.contains(":alice_phone!"), "{told}");

    bob.send("CHATHISTORY LATEST alice * 10").await;
    bob.expect_containing("BATCH +").await;
    let end = bob.next_line().await.expect("the batch ends");
    assert!(end.contains("BATCH -"), "nothing is left: {end}");
    drop(server);
}

#[tokio::test]
async fn a_redaction_is_on_disk_once_it_is_told() {
    let dir = TempDir::new("redaction-durable");
    let server = rookery::start(config(&dir)).await.unwrap();
    let addr = server.local_addrs()[0];
    let mut alice = Client::register(addr, "alice").await;
    alice.send(CAPS).await;
    alice.expect_containing(" ACK ").await;
    alice.send("JOIN #room").await;
    alice.expect_containing(" 366 ").await;
    alice.send("PRIVMSG #room :gone").await;
    let id = msgid(&alice.expect_containing("PRIVMSG #room :gone").await);
    alice.send(&format!("REDACT #room {id}")).await;
    alice.expect_containing(" REDACT ").await;
    // The REDACT waits for the deletion's commit: the file no longer has it.
    let store = rookery::history::Store::open_existing(&dir.join("history.db")).unwrap();
    let mut found = Vec::new();
    let room =
        rookery::history::HistoryTarget::Room(rookery::proto::Casemapping::Ascii.fold("#room"));
    store
        .for_each(&room, None, |record| {
            found.push(record.msgid);
            Ok::<(), rookery::history::StoreError>(())
        })
        .unwrap();
    assert!(!found.contains(&id), "{found:?}");
    drop(server);
}
