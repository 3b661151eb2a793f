//! Room history through a running server: lines wait for their record to be
//! committed, and what was said survives a restart.

mod common;

use std::time::Duration;

use common::{Client, TempDir, test_config_with_history};
use rookery::history::{CommitPause, Hooks, Store};

/// alice and bob in #room, with the join lines read.
async fn room(addr: std::net::SocketAddr) -> (Client, Client) {
    let mut alice = Client::register(addr, "alice").await;
    let mut bob = Client::register(addr, "bob").await;
    alice.send("JOIN #room").await;
    alice.expect_containing(" 366 ").await;
    bob.send("JOIN #room").await;
    bob.expect_containing(" 366 ").await;
    alice.expect_containing("JOIN #room").await;
    (alice, bob)
}

#[tokio::test]
async fn a_line_waits_for_its_record_while_the_core_keeps_answering() {
    let dir = TempDir::new("gate");
    let pause = CommitPause::default();
    let hooks = Hooks {
        commit_pause: Some(pause.clone()),
    };
    let config = test_config_with_history(&dir.join("history.db"), "");
    let options = rookery::server::Options {
        history_hooks: hooks,
        ..Default::default()
    };
    let server = rookery::server::start_with(config, options).await.unwrap();
    let (mut alice, mut bob) = room(server.local_addrs()[0]).await;

    pause.pause();
    alice.send("PRIVMSG #room :held until committed").await;
    // The core handled the PRIVMSG before this PING, and answers at once.
    alice.send("PING :alive").await;
    alice.expect_containing("PONG").await;
    // bob's PONG is queued behind the held line, so neither comes yet.
    bob.send("PING :behind").await;
    let early = bob.line_within(Duration::from_millis(300)).await;
    assert_eq!(early, None, "nothing may pass an uncommitted line");

    pause.resume();
    let line = bob.next_line().await.expect("the line after the commit");
    assert!(
        line.ends_with("PRIVMSG #room :held until committed"),
        "{line}"
    );
    let pong = bob.next_line().await.expect("the PONG after it");
    assert!(pong.contains("PONG") && pong.ends_with("behind"), "{pong}");
    server.shutdown().await;
}

#[tokio::test]
async fn messages_and_topics_survive_a_restart() {
    let dir = TempDir::new("restart");
    let db = dir.join("history.db");
    let server = rookery::start(test_config_with_history(&db, ""))
        .await
        .unwrap();
    let (mut alice, mut bob) = room(server.local_addrs()[0]).await;
    for n in 0..20 {
        alice.send(&format!("PRIVMSG #Room :line {n}")).await;
    }
    alice.send("NOTICE #room :a notice").await;
    alice.send("TOPIC #room :the topic").await;
    bob.expect_containing("TOPIC #room :the topic").await;
    server.shutdown().await;

    let store = Store::open_existing(&db).unwrap();
    let mut stored = Vec::new();
    store
        .for_each("#room", None, |record| {
            stored.push(record);
            Ok::<_, rookery::history::StoreError>(())
        })
        .unwrap();
    assert_eq!(stored.len(), 22);
    assert_eq!(stored[0].text, "line 0");
    assert_eq!(stored[0].sender, "alice!~alice@127.0.0.1");
    assert_eq!(stored[0].target_display, "#room");
    assert_eq!(stored[20].command, "NOTICE");
    assert_eq!(stored[21].command, "TOPIC");
    assert_eq!(stored[21].text, "the topic");
    assert!(stored.windows(2).all(|w| w[0].time_ms <= w[1].time_ms));
    drop(store);

    // A second run opens the same file and adds to it.
    let server = rookery::start(test_config_with_history(&db, ""))
        .await
        .unwrap();
    let (mut alice, mut bob) = room(server.local_addrs()[0]).await;
    alice.send("PRIVMSG #room :after the restart").await;
    bob.expect_containing("after the restart").await;
    server.shutdown().await;
    let store = Store::open_existing(&db).unwrap();
    assert_eq!(store.count("#room").unwrap(), 23);
}

#[tokio::test]
async fn statusmsg_is_delivered_but_not_stored() {
    let dir = TempDir::new("statusmsg");
    let db = dir.join("history.db");
    let server = rookery::start(test_config_with_history(&db, ""))
        .await
        .unwrap();
    let (mut alice, mut bob) = room(server.local_addrs()[0]).await;
    // bob is not an op; alice (the first to join) is.
    bob.send("PRIVMSG @#room :ops only").await;
    alice.expect_containing("PRIVMSG @#room :ops only").await;
    server.shutdown().await;
    let store = Store::open_existing(&db).unwrap();
    assert_eq!(store.count("#room").unwrap(), 0);
}
