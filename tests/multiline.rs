//! draft/multiline through a running server with history: the message is
//! one stored record, and none of its lines reaches anyone before that
//! record is committed.

mod common;

use common::{Client, TempDir, test_config_with_history};
use rookery::history::{CommitPause, HistoryTarget, Hooks, Store};
use rookery::proto::Casemapping;

#[tokio::test]
async fn a_multiline_message_is_one_record_and_its_lines_go_out_before_the_database_commits() {
    let dir = TempDir::new("multiline");
    let db = dir.join("history.db");
    let pause = CommitPause::default();
    let options = rookery::server::Options {
        history_hooks: Hooks {
            commit_pause: Some(pause.clone()),
            ..Hooks::default()
        },
        ..Default::default()
    };
    // Joins are stored too; this counts the message alone.
    let config = test_config_with_history(&db, "history.events = false");
    let server = rookery::server::start_with(config, options).await.unwrap();
    let addr = server.local_addrs()[0];
    let mut alice = Client::register(addr, "alice").await;
    alice.send("CAP REQ :batch draft/multiline").await;
    alice.expect_containing(" ACK ").await;
    alice.send("JOIN #room").await;
    alice.expect_containing(" 366 ").await;
    let mut bob = Client::register(addr, "bob").await;
    bob.send("JOIN #room").await;
    bob.expect_containing(" 366 ").await;

    pause.pause();
    alice.send("BATCH +r1 draft/multiline #room").await;
    alice.send("@batch=r1 PRIVMSG #room hello").await;
    alice.send("@batch=r1 PRIVMSG #room :how is ").await;
    alice
        .send("@batch=r1;draft/multiline-concat PRIVMSG #room :everyone?")
        .await;
    alice.send("BATCH -r1").await;
    // The journal holds the record: the lines need no database commit.
    for text in ["hello", "how is ", "everyone?"] {
        let line = bob
            .next_line()
            .await
            .expect("a line while the commit waits");
        assert!(line.ends_with(&format!("PRIVMSG #room :{text}")), "{line}");
    }
    pause.resume();
    server.shutdown().await;

    let store = Store::open_existing(&db).unwrap();
    let room = HistoryTarget::Room(Casemapping::Ascii.fold("#room"));
    assert_eq!(store.count(&room).unwrap(), 1, "one message, one record");
}
