//! Big answers while others wait: LIST of 10,000 rooms and NAMES of a room
//! of thousands, each while another client keeps getting answers.

mod common;

use common::{Client, test_config};
use rookery::config::{Config, Room};
use tokio::time::{Duration, timeout};

/// How long a whole big reply may take before the test fails as hung.
const REPLY_LIMIT: Duration = Duration::from_secs(60);

/// `count` standing rooms, each with a topic of `topic_length` bytes.
fn with_rooms(mut config: Config, count: usize, topic_length: usize) -> Config {
    config.room = (0..count)
        .map(|n| {
            let mut topic = format!("Room {n:05} ");
            while topic.len() < topic_length {
                topic.push('.');
            }
            Room {
                name: format!("#room{n:05}"),
                topic,
                modes: None,
            }
        })
        .collect();
    config
}

/// Reads a LIST reply to its 323 and returns the rooms listed, in order,
/// and the numeric that came before the 323 when it was not a 322.
async fn read_list(client: &mut Client) -> (Vec<String>, Option<String>) {
    client.expect_containing(" 321 ").await;
    let mut rooms = Vec::new();
    let mut other = None;
    loop {
        let line = client.next_line().await.unwrap_or_else(|| {
            panic!(
                "the LIST reply ended after {} rooms: {:?}",
                rooms.len(),
                client.received.last()
            )
        });
        let mut words = line.split(' ');
        match words.nth(1) {
            Some("323") => return (rooms, other),
            Some("322") => rooms.push(words.nth(1).unwrap().to_owned()),
            _ => other = Some(line),
        }
    }
}

/// Starts a server with 10,000 standing rooms, has alice LIST them while
/// bob pings, and returns what alice read and how many bytes it was.
async fn list_while_pinging(topic_length: usize) -> (Vec<String>, Option<String>, usize) {
    let config = with_rooms(test_config(""), ROOMS, topic_length);
    let server = rookery::start(config).await.unwrap();
    let addr = server.local_addrs()[0];
    let mut alice = Client::register(addr, "alice").await;
    let mut bob = Client::register(addr, "bob").await;
    let welcome = alice.received.len();
    alice.send("LIST").await;
    bob.send("PING :during the list").await;
    bob.expect_containing("PONG irc.test :during the list")
        .await;
    let (rooms, other) = timeout(REPLY_LIMIT, read_list(&mut alice))
        .await
        .expect("the LIST reply hung");
    let bytes = alice.received[welcome..].iter().map(|l| l.len() + 2).sum();
    // Alice is still connected and answered.
    alice.send("PING :after the list").await;
    alice
        .expect_containing("PONG irc.test :after the list")
        .await;
    server.shutdown().await;
    (rooms, other, bytes)
}

const ROOMS: usize = 10_000;

/// 10,000 rooms with short topics (about 650 KB of 322s) fit in the
/// default sendq: the list arrives whole, in order, and bob is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_of_ten_thousand_rooms_arrives_whole_while_others_are_answered() {
    let (rooms, other, bytes) = list_while_pinging(30).await;
    eprintln!("LIST: {} rooms in {bytes} bytes", rooms.len());
    assert_eq!(other, None);
    let expected: Vec<String> = (0..ROOMS).map(|n| format!("#room{n:05}")).collect();
    assert_eq!(rooms, expected);
}

/// With 200-byte topics the list (2.3 MB) is more than the default sendq
/// holds. It used to cost alice her connection ("SendQ exceeded", unsent);
/// now the rows stop short of the sendq and 416 says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_larger_than_the_sendq_is_cut_short_and_the_asker_stays() {
    let (rooms, other, bytes) = list_while_pinging(200).await;
    eprintln!("LIST: {} rooms in {bytes} bytes", rooms.len());
    assert_eq!(
        other.as_deref(),
        Some(":irc.test 416 alice LIST :Output too large, truncated")
    );
    assert!(bytes < 1 << 20, "{bytes} bytes");
    assert!(rooms.len() > ROOMS / 4, "only {} rooms", rooms.len());
    let expected: Vec<String> = (0..rooms.len()).map(|n| format!("#room{n:05}")).collect();
    assert_eq!(rooms, expected);
}
