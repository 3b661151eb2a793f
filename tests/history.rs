//! Room history through a running server: lines wait for their record to be
//! committed, and what was said survives a restart.

mod common;

use common::{Client, TempDir, test_config_with_history};
use rookery::history::{CommitPause, DiskFull, HistoryTarget, Hooks, Store};
use rookery::proto::Casemapping;

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

/// The hash of the operator password `hunter2`.
const OPER_HASH: &str = "$argon2id$v=19$m=8,t=1,p=1$cm9va2VyeS10ZXN0LXNhbHQ$yiaiaoZnKPZM0CWZ8NzJYpMiTnaZSktRUpf408FhNKA";

/// #room, as history keys it.
fn room_target() -> HistoryTarget {
    HistoryTarget::Room(Casemapping::Ascii.fold("#room"))
}

/// A server keeping history in `dir`, its writer driven by `hooks`.
async fn start_with_hooks(dir: &TempDir, extra_toml: &str, hooks: Hooks) -> rookery::ServerHandle {
    let config = test_config_with_history(&dir.join("history.db"), extra_toml);
    let options = rookery::server::Options {
        history_hooks: hooks,
        ..Default::default()
    };
    rookery::server::start_with(config, options).await.unwrap()
}

/// carol, with draft/chathistory, joins #room and finds no history in it:
/// CHATHISTORY LATEST and TARGETS both answer an empty batch.
async fn joins_and_reads_no_history(addr: std::net::SocketAddr, why: &str) -> Client {
    let caps = "draft/chathistory batch server-time";
    let mut carol = Client::with_caps(addr, "carol", caps).await;
    carol.send("JOIN #room").await;
    carol.expect_containing(" 366 ").await;
    carol.send("CHATHISTORY LATEST #room * 100").await;
    let lines = carol.lines_until("BATCH -").await;
    assert_eq!(lines.len(), 2, "{why}: {lines:?}");
    carol
        .send(
            "CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00Z timestamp=2100-01-01T00:00:00Z 10",
        )
        .await;
    let lines = carol.lines_until("BATCH -").await;
    assert_eq!(lines.len(), 2, "{why}: {lines:?}");
    carol
}

#[tokio::test]
async fn a_line_goes_out_once_in_the_journal_while_the_database_waits() {
    let dir = TempDir::new("gate");
    let pause = CommitPause::default();
    let hooks = Hooks {
        commit_pause: Some(pause.clone()),
        ..Hooks::default()
    };
    let server = start_with_hooks(&dir, "", hooks).await;
    let (mut alice, mut bob) = room(server.local_addrs()[0]).await;

    pause.pause();
    alice.send("PRIVMSG #room :in the journal first").await;
    bob.expect_containing(":in the journal first").await;
    // The database has not stored it; the journal beside it has.
    let store = Store::open_existing(&dir.join("history.db")).unwrap();
    let mut stored = 0;
    store
        .for_each(&room_target(), None, |record| {
            stored += usize::from(record.text == "in the journal first");
            Ok::<_, rookery::history::StoreError>(())
        })
        .unwrap();
    assert_eq!(stored, 0);
    drop(store);
    let [first, second] = rookery::history::journal::paths(&dir.join("history.db"));
    let journal = [
        std::fs::read(first).unwrap(),
        std::fs::read(second).unwrap(),
    ]
    .concat();
    let text = b"in the journal first";
    assert!(journal.windows(text.len()).any(|window| window == text));
    pause.resume();
    server.shutdown().await;
}

#[tokio::test]
async fn messages_and_topics_survive_a_restart() {
    let dir = TempDir::new("restart");
    let db = dir.join("history.db");
    // Joins are not what this counts.
    let messages_only = "history.events = false";
    let server = rookery::start(test_config_with_history(&db, messages_only))
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
        .for_each(&room_target(), None, |record| {
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
    let server = rookery::start(test_config_with_history(&db, messages_only))
        .await
        .unwrap();
    let (mut alice, mut bob) = room(server.local_addrs()[0]).await;
    alice.send("PRIVMSG #room :after the restart").await;
    bob.expect_containing("after the restart").await;
    server.shutdown().await;
    let store = Store::open_existing(&db).unwrap();
    assert_eq!(store.count(&room_target()).unwrap(), 23);
}

#[tokio::test]
async fn statusmsg_is_delivered_but_not_stored() {
    let dir = TempDir::new("statusmsg");
    let db = dir.join("history.db");
    let server = rookery::start(test_config_with_history(&db, "history.events = false"))
        .await
        .unwrap();
    let (mut alice, mut bob) = room(server.local_addrs()[0]).await;
    // bob is not an op; alice (the first to join) is.
    bob.send("PRIVMSG @#room :ops only").await;
    alice.expect_containing("PRIVMSG @#room :ops only").await;
    server.shutdown().await;
    let store = Store::open_existing(&db).unwrap();
    assert_eq!(store.count(&room_target()).unwrap(), 0);
}

/// `config` with a standing `[[room]]` called `name`.
fn with_standing_room(mut config: rookery::config::Config, name: &str) -> rookery::config::Config {
    config.room.push(rookery::config::Room {
        name: name.into(),
        topic: String::new(),
        modes: None,
        history: None,
    });
    config
}

/// `nick` registers, joins #room and reads its playback: the texts played,
/// oldest first, and every line up to the end of playback.
async fn joins_and_is_played(addr: std::net::SocketAddr, nick: &str) -> (Vec<String>, Vec<String>) {
    let mut client = Client::register(addr, nick).await;
    client.send("JOIN #room").await;
    let lines = client.lines_until("End of playback").await;
    let texts = lines
        .iter()
        .filter(|line| line.contains("PRIVMSG"))
        .map(|line| line.rsplit("] ").next().unwrap().to_owned())
        .collect();
    (texts, lines)
}

#[tokio::test]
async fn a_joiner_after_a_restart_sees_a_standing_rooms_last_lines_with_senders_and_times() {
    let dir = TempDir::new("playback-restart");
    let db = dir.join("history.db");
    let config = || {
        let config = test_config_with_history(&db, "history.playback_lines = 2");
        with_standing_room(config, "#room")
    };
    let server = rookery::start(config()).await.unwrap();
    let (mut alice, mut bob) = room(server.local_addrs()[0]).await;
    alice.send("PRIVMSG #room :first").await;
    bob.send("PRIVMSG #room :second").await;
    alice.send("PRIVMSG #room :third").await;
    bob.expect_containing(":third").await;
    server.shutdown().await;

    let server = rookery::start(config()).await.unwrap();
    let addr = server.local_addrs()[0];
    let mut carol = Client::with_caps(addr, "carol", "server-time message-tags").await;
    carol.send("JOIN #room").await;
    carol.expect_containing(" 366 ").await;
    carol
        .expect_containing("NOTICE #room :Playback of the last 2 lines")
        .await;
    let second = carol.next_line().await.unwrap();
    assert!(
        second.starts_with("@msgid=")
            && second.contains(";time=20")
            && second.ends_with(" :bob!~bob@127.0.0.1 PRIVMSG #room :second"),
        "{second}"
    );
    let third = carol.next_line().await.unwrap();
    assert!(third.ends_with("alice!~alice@127.0.0.1 PRIVMSG #room :third"));
    // A plain client gets the same lines, the time in the text.
    let mut dave = Client::register(addr, "dave").await;
    dave.send("JOIN #room").await;
    dave.expect_containing(" 366 ").await;
    dave.expect_containing("NOTICE #room :Playback of the last 2 lines")
        .await;
    let second = dave.next_line().await.unwrap();
    let (head, text) = second.split_once(" :[").unwrap();
    assert_eq!(head, ":bob!~bob@127.0.0.1 PRIVMSG #room");
    assert!(text.ends_with(" UTC] second") && text.len() == "HH:MM:SS UTC] second".len());
    server.shutdown().await;
}

#[tokio::test]
async fn a_room_created_after_a_restart_reads_nothing_of_an_earlier_one() {
    let dir = TempDir::new("incarnation-restart");
    let db = dir.join("history.db");
    let config = || test_config_with_history(&db, "history.visibility = \"all\"");
    let server = rookery::start(config()).await.unwrap();
    let (mut alice, mut bob) = room(server.local_addrs()[0]).await;
    alice.send("MODE #room +s").await;
    alice.send("PRIVMSG #room :secret room talk").await;
    bob.expect_containing(":secret room talk").await;
    server.shutdown().await;

    let server = rookery::start(config()).await.unwrap();
    let addr = server.local_addrs()[0];
    let mut mallory = Client::register(addr, "mallory").await;
    mallory.send("JOIN #room").await;
    mallory.expect_containing(" 366 ").await;
    let _carol = joins_and_reads_no_history(addr, "nothing of the earlier room").await;
    // mallory, who created the room, was played nothing of it.
    mallory.send("PING :done").await;
    let lines = mallory.lines_until("PONG").await;
    assert!(
        lines.iter().all(|line| !line.contains("PRIVMSG")),
        "{lines:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn chathistory_pages_by_msgid() {
    let dir = TempDir::new("chathistory-msgid");
    let db = dir.join("history.db");
    let since_join = test_config_with_history(&db, "history.visibility = \"since_join\"");
    let server = rookery::start(with_standing_room(since_join, "#room"))
        .await
        .unwrap();
    let addr = server.local_addrs()[0];
    let (mut alice, mut bob) = room(addr).await;
    for n in 0..6 {
        alice.send(&format!("PRIVMSG #room :m{n}")).await;
    }
    bob.expect_containing(":m5").await;
    drop(alice);
    let caps = "draft/chathistory batch message-tags server-time";
    let mut carol = Client::with_caps(addr, "carol", caps).await;
    let _ = &mut bob;
    carol.send("JOIN #room").await;
    carol.expect_containing(" 366 ").await;
    // Under since_join carol sees nothing from before; shared, she would.
    carol.send("CHATHISTORY LATEST #room * 10").await;
    let lines = carol.lines_until("BATCH -").await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    drop(carol);
    server.shutdown().await;

    let config = test_config_with_history(&db, "");
    let server = rookery::start(with_standing_room(config, "#room"))
        .await
        .unwrap();
    let addr = server.local_addrs()[0];
    let mut carol = Client::with_caps(addr, "carol", caps).await;
    carol.send("JOIN #room").await;
    carol.expect_containing(" 366 ").await;
    carol.send("CHATHISTORY LATEST #room * 10").await;
    let lines = carol.lines_until("BATCH -").await;
    let msgids: Vec<String> = lines[1..lines.len() - 1]
        .iter()
        .map(|line| {
            let start = line.find("msgid=").unwrap() + 6;
            let end = line[start..].find([';', ' ']).unwrap() + start;
            line[start..end].to_owned()
        })
        .collect();
    assert_eq!(msgids.len(), 6);
    let texts = |lines: &[String]| -> Vec<String> {
        lines[1..lines.len() - 1]
            .iter()
            .map(|line| line.rsplit(" :").next().unwrap().to_owned())
            .collect()
    };
    let ask = |sub: &str| format!("CHATHISTORY {sub}");
    carol
        .send(&ask(&format!("BEFORE #room msgid={} 2", msgids[3])))
        .await;
    assert_eq!(texts(&carol.lines_until("BATCH -").await), ["m1", "m2"]);
    carol
        .send(&ask(&format!("AFTER #room msgid={} 2", msgids[3])))
        .await;
    assert_eq!(texts(&carol.lines_until("BATCH -").await), ["m4", "m5"]);
    carol
        .send(&ask(&format!("AROUND #room msgid={} 3", msgids[3])))
        .await;
    assert_eq!(
        texts(&carol.lines_until("BATCH -").await),
        ["m2", "m3", "m4"]
    );
    carol
        .send(&ask(&format!(
            "BETWEEN #room msgid={} msgid={} 10",
            msgids[0], msgids[4]
        )))
        .await;
    assert_eq!(
        texts(&carol.lines_until("BATCH -").await),
        ["m1", "m2", "m3"]
    );
    carol
        .send(&ask(&format!("LATEST #room msgid={} 10", msgids[4])))
        .await;
    assert_eq!(texts(&carol.lines_until("BATCH -").await), ["m5"]);
    server.shutdown().await;
}

#[tokio::test]
async fn a_standing_room_and_its_history_survive_a_restart() {
    let dir = TempDir::new("standing-room");
    let db = dir.join("history.db");
    let config = || {
        let mut config = test_config_with_history(&db, "");
        config.room = vec![rookery::config::Room {
            name: "#lobby".into(),
            topic: "Welcome".into(),
            modes: None,
            history: None,
        }];
        config
    };
    let server = rookery::start(config()).await.unwrap();
    let mut alice = Client::register(server.local_addrs()[0], "alice").await;
    alice.send("JOIN #lobby").await;
    alice.expect_containing(" 366 ").await;
    alice.send("PRIVMSG #lobby :remember me").await;
    alice.send("PART #lobby").await;
    alice.expect_containing("PART #lobby").await;
    server.shutdown().await;

    let server = rookery::start(config()).await.unwrap();
    let mut bob = Client::register(server.local_addrs()[0], "bob").await;
    bob.send("LIST").await;
    let listed = bob.expect_containing(" 322 ").await;
    assert!(listed.ends_with("#lobby 0 :Welcome"), "{listed}");
    bob.send("JOIN #lobby").await;
    bob.expect_containing(" 332 bob #lobby :Welcome").await;
    bob.expect_containing(" 366 ").await;
    bob.expect_containing("NOTICE #lobby :Playback").await;
    let replayed = bob.next_line().await.unwrap();
    assert!(
        replayed.starts_with(":alice!~alice@127.0.0.1 PRIVMSG #lobby :[")
            && replayed.ends_with("] remember me"),
        "{replayed}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn chathistory_is_answered_while_the_writer_is_stalled() {
    let dir = TempDir::new("slow-writer");
    let pause = CommitPause::default();
    let hooks = Hooks {
        commit_pause: Some(pause.clone()),
        ..Hooks::default()
    };
    let server = start_with_hooks(&dir, "", hooks).await;
    let (mut alice, _bob) = room(server.local_addrs()[0]).await;
    pause.pause();
    alice.send("PRIVMSG #room :stuck behind the disk").await;
    // The query runs on the reader thread; neither it nor the core waits
    // for the stalled writer.
    alice.send("CHATHISTORY LATEST #room * 10").await;
    alice.send("PING :alive").await;
    alice.expect_containing("PONG").await;
    pause.resume();
    server.shutdown().await;
}

/// A configuration file with history on or off, and an operator who may
/// REHASH (password "hunter2").
fn rehash_config(history: bool, db: &std::path::Path) -> String {
    const HASH: &str = "$argon2id$v=19$m=8,t=1,p=1$cm9va2VyeS10ZXN0LXNhbHQ$yiaiaoZnKPZM0CWZ8NzJYpMiTnaZSktRUpf408FhNKA";
    format!(
        "http = []\n[server]\nname = \"irc.test\"\nbans_file = \"\"\n\n\
         [flood]\nenabled = false\n\n\
         [history]\nenabled = {history}\npath = \"{}\"\n\n\
         [cloaking]\nenabled = false\n\n\
         [[listen]]\naddress = \"127.0.0.1:0\"\n\n\
         [[oper]]\nname = \"root\"\npassword_hash = \"{HASH}\"\n",
        db.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rehash_keeps_advertising_the_history_that_runs() {
    let dir = TempDir::new("rehash-history");
    let file = dir.join("rookery.toml");
    let db = dir.join("history.db");
    std::fs::write(&file, rehash_config(false, &db)).unwrap();
    let options = rookery::server::Options {
        config_file: Some(file.clone()),
        ..Default::default()
    };
    let config = rookery::config::load(&file).unwrap();
    let server = rookery::server::start_with(config, options).await.unwrap();
    let addr = server.local_addrs()[0];
    let mut alice = Client::register(addr, "alice").await;
    alice.send("OPER root hunter2").await;
    alice.expect_containing(" 381 ").await;

    // Turning history on takes a restart: the server says so and goes on
    // advertising (and running) what it started with.
    std::fs::write(&file, rehash_config(true, &db)).unwrap();
    alice.send("REHASH").await;
    let done = alice.expect_containing("NOTICE alice :REHASH").await;
    assert!(
        done.contains("history.enabled take effect at a restart"),
        "{done}"
    );
    let mut bob = Client::connect(addr).await;
    let caps = bob.cap_ls().await;
    assert!(!caps.contains("draft/chathistory"), "{caps}");
    bob.send("NICK bob").await;
    bob.send("USER bob 0 * :bob").await;
    bob.send("CAP END").await;
    let welcome = bob.lines_until(" 376 ").await;
    assert!(welcome.iter().any(|line| line.contains(" 005 ")));
    assert!(
        welcome.iter().all(|line| !line.contains("CHATHISTORY=")),
        "{welcome:?}"
    );
    bob.send("CHATHISTORY LATEST #room * 10").await;
    bob.expect_containing(" 421 bob CHATHISTORY ").await;
    server.shutdown().await;
}

/// Returns once the writer has stored everything said in #room so far:
/// it commits in order, so once a line alice says now is in `db`, nothing
/// said before can fail along with what a test says next.
async fn writer_caught_up(alice: &mut Client, bob: &mut Client, db: &std::path::Path) {
    alice.send("PRIVMSG #room :before").await;
    bob.expect_containing(":before").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !stored_privmsgs(db).contains(&"before".to_owned()) {
        assert!(
            std::time::Instant::now() < deadline,
            "`before` never stored"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// The texts of #room's PRIVMSGs in the database, oldest first.
fn stored_privmsgs(db: &std::path::Path) -> Vec<String> {
    let store = Store::open_existing(db).unwrap();
    let mut stored = Vec::new();
    store
        .for_each(&room_target(), None, |record| {
            if record.command == "PRIVMSG" {
                stored.push(record.text);
            }
            Ok::<_, rookery::history::StoreError>(())
        })
        .unwrap();
    stored
}

#[tokio::test]
async fn a_full_disk_keeps_chat_flowing_and_its_lines_are_stored_once_it_frees() {
    let dir = TempDir::new("disk-full");
    let disk_full = DiskFull::default();
    let hooks = Hooks {
        disk_full: Some(disk_full.clone()),
        ..Hooks::default()
    };
    let oper = format!("[[oper]]\nname = \"root\"\npassword_hash = \"{OPER_HASH}\"");
    let server = start_with_hooks(&dir, &oper, hooks).await;
    let addr = server.local_addrs()[0];
    let (mut alice, mut bob) = room(addr).await;
    alice.send("OPER root hunter2").await;
    alice.expect_containing(" 381 ").await;
    let db = dir.join("history.db");
    writer_caught_up(&mut alice, &mut bob, &db).await;
    disk_full.set(true);
    for n in 0..3 {
        alice.send(&format!("PRIVMSG #room :not stored {n}")).await;
        bob.expect_containing(&format!(":not stored {n}")).await;
    }
    // The operator is told once the writer has given the lines up.
    alice
        .expect_containing("NOTICE alice :History cannot")
        .await;
    disk_full.set(false);
    alice.send("PRIVMSG #room :stored").await;
    bob.expect_containing(":stored").await;
    alice
        .expect_containing("NOTICE alice :History is written to")
        .await;

    let (texts, played) = joins_and_is_played(addr, "carol").await;
    // The lines whose commit failed were kept and stored with the first
    // commit that succeeded: the database has every line.
    let stored = stored_privmsgs(&db);
    for n in 0..3 {
        let line = format!("not stored {n}");
        assert!(stored.contains(&line), "{line} missing: {stored:?}");
    }
    assert!(stored.contains(&"stored".to_owned()), "{stored:?}");
    // Playback, from memory, dropped the lines reported lost, and never
    // shows a line the database lacks.
    assert!(!texts.contains(&"not stored 0".to_owned()), "{played:?}");
    assert_eq!(texts.last().map(String::as_str), Some("stored"));
    assert!(texts.iter().all(|text| stored.contains(text)), "{played:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_name_that_becomes_a_standing_room_reads_nothing_of_its_ad_hoc_past() {
    let dir = TempDir::new("becomes-standing");
    let db = dir.join("history.db");
    let ad_hoc = || test_config_with_history(&db, "");
    let standing = || with_standing_room(ad_hoc(), "#room");
    let server = rookery::start(ad_hoc()).await.unwrap();
    let (mut alice, mut bob) = room(server.local_addrs()[0]).await;
    alice.send("MODE #room +s").await;
    alice.send("PRIVMSG #room :ad-hoc secret").await;
    bob.expect_containing(":ad-hoc secret").await;
    server.shutdown().await;

    let server = rookery::start(standing()).await.unwrap();
    let addr = server.local_addrs()[0];
    let mut dave = Client::register(addr, "dave").await;
    dave.send("JOIN #room").await;
    dave.expect_containing(" 366 ").await;
    dave.send("PING :joined").await;
    let lines = dave.lines_until("PONG").await;
    assert!(lines.iter().all(|l| !l.contains("secret")), "{lines:?}");
    let mut carol = joins_and_reads_no_history(addr, "nothing of the ad-hoc room").await;
    dave.send("PRIVMSG #room :standing talk").await;
    carol.expect_containing(":standing talk").await;
    server.shutdown().await;

    // What the standing room said is its history across restarts.
    let server = rookery::start(standing()).await.unwrap();
    let addr = server.local_addrs()[0];
    let (texts, played) = joins_and_is_played(addr, "erin").await;
    assert_eq!(texts, ["standing talk"], "{played:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn operators_are_told_when_history_stops_and_resumes_being_written() {
    const HASH: &str = OPER_HASH;
    let dir = TempDir::new("disk-full-notice");
    let disk_full = DiskFull::default();
    let hooks = Hooks {
        disk_full: Some(disk_full.clone()),
        ..Hooks::default()
    };
    let oper = format!("[[oper]]\nname = \"root\"\npassword_hash = \"{HASH}\"");
    let server = start_with_hooks(&dir, &oper, hooks).await;
    let (mut alice, mut bob) = room(server.local_addrs()[0]).await;
    alice.send("OPER root hunter2").await;
    alice.expect_containing(" 381 ").await;
    let db = dir.join("history.db");
    writer_caught_up(&mut alice, &mut bob, &db).await;
    disk_full.set(true);
    bob.send("PRIVMSG #room :not stored").await;
    let notice = alice
        .expect_containing("NOTICE alice :History cannot")
        .await;
    assert!(notice.contains("history.db"), "{notice}");
    disk_full.set(false);
    bob.send("PRIVMSG #room :stored").await;
    alice
        .expect_containing("NOTICE alice :History is written to")
        .await;
    // bob, no operator, was told nothing.
    bob.send("PING :done").await;
    let lines = bob.lines_until("PONG").await;
    assert!(lines.iter().all(|l| !l.contains("History")), "{lines:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rehash_resizes_playback() {
    let dir = TempDir::new("rehash-playback");
    let file = dir.join("rookery.toml");
    let db = dir.join("history.db");
    let config_text = |lines: usize| {
        let playback = format!("[history]\nplayback_lines = {lines}\n");
        rehash_config(true, &db).replacen("[history]\n", &playback, 1)
    };
    std::fs::write(&file, config_text(2)).unwrap();
    let options = rookery::server::Options {
        config_file: Some(file.clone()),
        ..Default::default()
    };
    let config = rookery::config::load(&file).unwrap();
    let server = rookery::server::start_with(config, options).await.unwrap();
    let addr = server.local_addrs()[0];
    let (mut alice, mut bob) = room(addr).await;
    alice.send("OPER root hunter2").await;
    alice.expect_containing(" 381 ").await;

    std::fs::write(&file, config_text(3)).unwrap();
    alice.send("REHASH").await;
    alice.expect_containing("NOTICE alice :REHASH").await;
    for n in 1..=4 {
        alice.send(&format!("PRIVMSG #room :line {n}")).await;
        bob.expect_containing(&format!(":line {n}")).await;
    }
    let (texts, _) = joins_and_is_played(addr, "carol").await;
    assert_eq!(texts, ["line 2", "line 3", "line 4"]);

    std::fs::write(&file, config_text(1)).unwrap();
    alice.send("REHASH").await;
    alice.expect_containing("NOTICE alice :REHASH").await;
    let (texts, _) = joins_and_is_played(addr, "dave").await;
    assert_eq!(texts, ["line 4"]);
    server.shutdown().await;
}

#[tokio::test]
async fn with_cloaking_on_history_stored_with_addresses_shows_cloaks() {
    let dir = TempDir::new("cloaked-history");
    let db = dir.join("history.db");
    let config = |cloaking: bool| {
        let mut config = with_standing_room(test_config_with_history(&db, ""), "#room");
        config.cloaking.enabled = cloaking;
        config.cloaking.secret = "a fixed test key".into();
        config
    };
    // Stored while cloaking was off: the senders carry 127.0.0.1.
    let server = rookery::start(config(false)).await.unwrap();
    let (mut alice, mut bob) = room(server.local_addrs()[0]).await;
    alice.send("PRIVMSG #room :said uncloaked").await;
    bob.expect_containing(":said uncloaked").await;
    server.shutdown().await;

    let server = rookery::start(config(true)).await.unwrap();
    let addr = server.local_addrs()[0];
    let mut carol = Client::register(addr, "carol").await;
    carol.send("JOIN #room").await;
    let played = carol.lines_until("End of playback").await;
    let line = played
        .iter()
        .find(|line| line.contains("said uncloaked"))
        .expect("played back");
    assert!(
        line.starts_with(":alice!~alice@")
            && line.contains(".ip PRIVMSG")
            && !line.contains("127.0.0.1"),
        "{line}"
    );
    let mut dave = Client::with_caps(addr, "dave", "draft/chathistory batch").await;
    dave.send("JOIN #room").await;
    dave.expect_containing(" 366 ").await;
    dave.send("CHATHISTORY LATEST #room * 10").await;
    let lines = dave.lines_until("BATCH -").await;
    let line = lines
        .iter()
        .find(|line| line.contains("said uncloaked"))
        .expect("returned");
    assert!(
        !line.contains("127.0.0.1") && line.contains(".ip PRIVMSG"),
        "{line}"
    );
    server.shutdown().await;
}

/// alice in #room with history kept and two lines said there (and
/// committed: their echo waits for that), asking with `caps`.
async fn asker_in_a_room_with_history(
    dir: &TempDir,
    caps: &str,
) -> (rookery::ServerHandle, Client) {
    let config = test_config_with_history(&dir.join("history.db"), "");
    let server = rookery::start(config).await.unwrap();
    let addr = server.local_addrs()[0];
    let mut alice = Client::with_caps(addr, "alice", caps).await;
    alice.send("JOIN #room").await;
    alice.expect_containing(" 366 ").await;
    alice.send("PRIVMSG #room :one").await;
    alice.send("PRIVMSG #room :two").await;
    alice.expect_containing("PRIVMSG #room :two").await;
    (server, alice)
}

#[tokio::test]
async fn a_command_after_chathistory_is_answered_after_it() {
    let dir = TempDir::new("chathistory-order");
    let caps = "draft/chathistory batch echo-message message-tags server-time";
    let (server, mut alice) = asker_in_a_room_with_history(&dir, caps).await;
    // Both lines in one write, so the PING reaches the core while the
    // query is still on the reader thread.
    alice
        .send_raw(b"CHATHISTORY LATEST #room * 10\r\nPING :after\r\n")
        .await;
    let lines = alice.lines_until("PONG").await;
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert!(lines[0].contains(" BATCH +"), "{lines:?}");
    assert!(lines[1].ends_with("PRIVMSG #room :one"), "{lines:?}");
    assert!(lines[2].ends_with("PRIVMSG #room :two"), "{lines:?}");
    assert!(lines[3].contains(" BATCH -"), "{lines:?}");
    assert!(lines[4].ends_with("PONG irc.test :after"), "{lines:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_labeled_chathistory_keeps_its_label_and_its_place() {
    let dir = TempDir::new("chathistory-label");
    let caps = "draft/chathistory batch echo-message labeled-response message-tags server-time";
    let (server, mut alice) = asker_in_a_room_with_history(&dir, caps).await;
    alice
        .send_raw(b"@label=h1 CHATHISTORY LATEST #room * 10\r\n@label=p2 PING :after\r\n")
        .await;
    let lines = alice.lines_until("PONG").await;
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert!(
        lines[0].starts_with("@label=h1 :irc.test BATCH +")
            && lines[0].ends_with(" chathistory #room"),
        "{lines:?}"
    );
    assert!(lines[1].ends_with("PRIVMSG #room :one"), "{lines:?}");
    assert!(lines[2].ends_with("PRIVMSG #room :two"), "{lines:?}");
    assert!(lines[3].starts_with(":irc.test BATCH -"), "{lines:?}");
    assert_eq!(lines[4], "@label=p2 :irc.test PONG irc.test :after");
    server.shutdown().await;
}
