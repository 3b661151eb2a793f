//! History by account over real sockets: a private conversation between
//! two logged-in people is their accounts', read from any connection
//! logged in to them and by nobody who merely takes a nick.

mod common;

use std::time::Duration;

use common::{Client, TempDir, test_config_with_history};

/// How long a password check may take: argon2 in a debug build, on a
/// machine busy with other builds, takes seconds.
const PASSWORD_CHECK: Duration = Duration::from_secs(120);

const ALL_TIME: &str = "timestamp=2000-01-01T00:00:00.000Z timestamp=2100-01-01T00:00:00.000Z";

async fn start(dir: &TempDir) -> rookery::ServerHandle {
    let db = dir.join("history.db");
    let config = test_config_with_history(&db, "history.private_messages = true");
    rookery::start(config).await.unwrap()
}

/// The private lines among `lines`.
fn private(lines: &[String]) -> Vec<&String> {
    lines.iter().filter(|line| line.contains(" only")).collect()
}

#[tokio::test]
async fn a_nick_taken_while_its_account_is_away_reads_none_of_its_private_history() {
    let dir = TempDir::new("history-accounts-stolen");
    let server = start(&dir).await;
    let addr = server.local_addrs()[0];
    let mut alice = Client::with_account(addr, "alice", "alice-pw").await;
    let mut bob = Client::with_account(addr, "bob", "bob-pw").await;
    alice.send("PRIVMSG bob :for bob only").await;
    bob.expect_containing("for bob only").await;
    bob.send("PRIVMSG alice :for alice only").await;
    alice.expect_containing("for alice only").await;
    alice.send("QUIT :bye").await;
    assert!(alice.is_closed().await);

    let mut mallory = Client::register(addr, "alice").await;
    let latest = mallory.answer("CHATHISTORY LATEST bob * 10").await;
    assert!(private(&latest).is_empty(), "{latest:#?}");
    let targets = mallory
        .answer(&format!("CHATHISTORY TARGETS {ALL_TIME} 10"))
        .await;
    assert!(
        !targets.iter().any(|line| line.contains("TARGETS bob")),
        "{targets:#?}"
    );
    // Talking to bob as "alice" now is another conversation.
    mallory.send("PRIVMSG bob :hello, it is me").await;
    bob.expect_containing("hello, it is me").await;

    let mut phone = Client::register(addr, "alice-phone").await;
    phone.line_timeout = PASSWORD_CHECK;
    phone
        .send("PRIVMSG NickServ :IDENTIFY alice alice-pw")
        .await;
    phone.expect_containing(" 900 ").await;
    let latest = phone.answer("CHATHISTORY LATEST bob * 10").await;
    let texts: Vec<&str> = private(&latest)
        .iter()
        .filter_map(|line| line.split_once(" :").map(|(_, text)| text))
        .collect();
    assert_eq!(texts.len(), 2, "{latest:#?}");
    assert!(texts[0].ends_with("for bob only"), "{latest:#?}");
    assert!(texts[1].ends_with("for alice only"), "{latest:#?}");
    assert!(!latest.iter().any(|line| line.contains("it is me")));
    let targets = phone
        .answer(&format!("CHATHISTORY TARGETS {ALL_TIME} 10"))
        .await;
    assert!(
        targets
            .iter()
            .any(|line| line.contains("CHATHISTORY TARGETS bob ")),
        "{targets:#?}"
    );
}

/// Joins `room` and returns the room's lines played back, up to the end
/// of playback.
async fn join_and_playback(client: &mut Client, room: &str) -> Vec<String> {
    client.send(&format!("JOIN {room}")).await;
    client.expect_containing(" 366 ").await;
    let mut played = Vec::new();
    loop {
        let line = client.next_line().await.expect("playback ends");
        if line.contains("End of playback") {
            return played;
        }
        if line.contains(" PRIVMSG ") {
            played.push(line);
        }
    }
}

#[tokio::test]
async fn a_reconnect_of_an_account_is_played_only_what_it_has_not_seen() {
    let dir = TempDir::new("history-accounts-playback");
    let server = start(&dir).await;
    let addr = server.local_addrs()[0];
    let mut bob = Client::register(addr, "bob").await;
    let mut carol = Client::register(addr, "carol").await;
    for client in [&mut bob, &mut carol] {
        client.send("JOIN #room").await;
        client.expect_containing(" 366 ").await;
    }
    // carol receives each line once it is stored: then it can be played.
    let say = |text: &'static str| format!("PRIVMSG #room :{text}");
    bob.send(&say("one")).await;
    carol.expect_containing(":one").await;
    let mut alice = Client::with_account(addr, "alice", "alice-pw").await;
    let played = join_and_playback(&mut alice, "#room").await;
    assert!(
        played.iter().any(|line| line.ends_with(" one")),
        "{played:#?}"
    );
    bob.send(&say("two")).await;
    alice.expect_containing(":two").await;
    alice.send("QUIT :bye").await;
    assert!(alice.is_closed().await);
    bob.send(&say("three")).await;
    carol.expect_containing(":three").await;

    let mut phone = Client::register(addr, "alice-phone").await;
    phone.line_timeout = PASSWORD_CHECK;
    phone
        .send("PRIVMSG NickServ :IDENTIFY alice alice-pw")
        .await;
    phone.expect_containing(" 900 ").await;
    let played = join_and_playback(&mut phone, "#room").await;
    assert_eq!(played.len(), 1, "{played:#?}");
    assert!(played[0].ends_with(" three"), "{played:#?}");
    // Someone not logged in is played all three.
    let mut dave = Client::register(addr, "dave").await;
    assert_eq!(join_and_playback(&mut dave, "#room").await.len(), 3);
}

#[tokio::test]
async fn a_new_account_under_a_dropped_ones_name_reads_none_of_its_conversations() {
    let dir = TempDir::new("history-accounts-dropped");
    let server = start(&dir).await;
    let addr = server.local_addrs()[0];
    let mut alice = Client::with_account(addr, "alice", "alice-pw").await;
    let mut bob = Client::with_account(addr, "bob", "bob-pw").await;
    alice.send("PRIVMSG bob :for bob only").await;
    bob.expect_containing("for bob only").await;
    bob.send("PRIVMSG alice :for alice only").await;
    alice.expect_containing("for alice only").await;

    // The answer to DROP comes once the conversations are deleted.
    alice.send("PRIVMSG NickServ :DROP alice-pw").await;
    alice.expect_containing(" 901 ").await;
    alice.expect_containing("has been dropped").await;
    alice.send("PRIVMSG NickServ :REGISTER another-pw").await;
    alice.expect_containing(" 900 ").await;
    let latest = alice.answer("CHATHISTORY LATEST bob * 10").await;
    assert!(private(&latest).is_empty(), "{latest:#?}");
    let targets = alice
        .answer(&format!("CHATHISTORY TARGETS {ALL_TIME} 10"))
        .await;
    assert!(
        !targets.iter().any(|line| line.contains("TARGETS bob")),
        "{targets:#?}"
    );

    // The conversation is gone for bob too: it was one history of both.
    let latest = bob.answer("CHATHISTORY LATEST alice * 10").await;
    assert!(private(&latest).is_empty(), "{latest:#?}");
    let targets = bob
        .answer(&format!("CHATHISTORY TARGETS {ALL_TIME} 10"))
        .await;
    assert!(
        !targets.iter().any(|line| line.contains("TARGETS alice")),
        "{targets:#?}"
    );

    // The new account's own conversation with bob is kept.
    alice.send("PRIVMSG bob :from the new alice only").await;
    bob.expect_containing("from the new alice only").await;
    let latest = bob.answer("CHATHISTORY LATEST alice * 10").await;
    assert_eq!(private(&latest).len(), 1, "{latest:#?}");
    server.shutdown().await;
}
