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
                history: None,
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

/// Members of the big room. Building it is quadratic (each join goes to
/// every member so far, and each joiner gets the member list): 5,000 take
/// about 10 s on two cores in a release build and over a minute in a debug
/// build, which runs 1,000 (about 2 s). `ROOKERY_BIG_ROOM=n` picks a size.
fn members() -> usize {
    std::env::var("ROOKERY_BIG_ROOM")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) { 1_000 } else { 5_000 })
}

/// Raises the soft limit on open files to `wanted`, if the hard limit
/// allows; says why not otherwise.
fn raise_open_files_limit(wanted: u64) -> Result<(), String> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    if limit.rlim_cur >= wanted {
        return Ok(());
    }
    if limit.rlim_max < wanted {
        return Err(format!(
            "the hard limit on open files is {}, under {wanted}",
            limit.rlim_max
        ));
    }
    limit.rlim_cur = wanted;
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    Ok(())
}

/// A room of thousands of registered members: NAMES from a member lists
/// every nick in 353 lines of at most 512 bytes, then 366, while a client
/// outside the room is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_of_a_room_of_thousands_lists_everyone_while_others_are_answered() {
    let room_size = members();
    // Both ends of every connection are in this process, beside the other tests'.
    let wanted = (room_size as u64) * 2 + 1024;
    if let Err(why) = raise_open_files_limit(wanted) {
        eprintln!("skipped: {room_size} members need {wanted} open files: {why}");
        return;
    }
    let config = test_config(&format!(
        "limits.max_clients = {}\nlimits.exempt_ips = [\"127.0.0.1\"]",
        room_size + 10
    ));
    let server = rookery::start(config).await.unwrap();
    let addr = server.local_addrs()[0];
    let mut bob = Client::register(addr, "bob").await;
    // The room is an auditorium while it fills, so the joins are not each
    // sent to everyone already in: thousands of joins each broadcast to
    // thousands are a benchmark of their own, and they would queue the
    // registrations here behind millions of lines.
    bob.send("JOIN #big").await;
    bob.expect_containing(" 366 bob #big ").await;
    bob.send("MODE #big +u").await;
    bob.expect_containing(" MODE #big +u").await;

    // Everyone but bob and the asker registers and joins, 32 at a time.
    let started = std::time::Instant::now();
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(32));
    let mut joining = tokio::task::JoinSet::new();
    for n in 2..room_size {
        let gate = std::sync::Arc::clone(&gate);
        joining.spawn(async move {
            let _permit = gate.acquire_owned().await.unwrap();
            let mut member = Client::register(addr, &format!("member{n:04}")).await;
            member.send("JOIN #big").await;
            member
        });
    }
    let mut members = Vec::with_capacity(room_size);
    while let Some(member) = timeout(REPLY_LIMIT, joining.join_next())
        .await
        .expect("registering hung")
    {
        members.push(member.unwrap());
    }
    let registered = started.elapsed();
    // The joins are in; wait until the core has handled them all.
    let in_the_room = format!(" 322 bob #big {} ", room_size - 1);
    let mut polls = 0;
    loop {
        polls += 1;
        bob.send("LIST #big").await;
        if bob
            .expect_containing(" 322 bob #big ")
            .await
            .contains(&in_the_room)
        {
            break;
        }
        assert!(
            polls < 10_000,
            "the room never filled: {:?}",
            bob.received.last()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let joined = started.elapsed();
    bob.send("MODE #big -u").await;
    bob.expect_containing(" MODE #big -u").await;

    let mut asker = Client::register(addr, "asker").await;
    asker.send("JOIN #big").await;
    asker.expect_containing(" 366 asker #big ").await;
    asker.send("NAMES #big").await;
    bob.send("PING :during the names").await;
    bob.expect_containing("PONG irc.test :during the names")
        .await;
    let mut nicks = Vec::new();
    let mut lines = 0;
    loop {
        let line = asker
            .next_line()
            .await
            .expect("the NAMES reply ended early");
        assert!(line.len() + 2 <= 512, "{} bytes: {line}", line.len() + 2);
        if line.starts_with(":irc.test 366 asker #big ") {
            break;
        }
        let (head, names) = line.split_once(" :").unwrap();
        assert_eq!(head, ":irc.test 353 asker = #big", "{line}");
        nicks.extend(
            names
                .split(' ')
                .map(|nick| nick.trim_start_matches('@').to_owned()),
        );
        lines += 1;
    }
    eprintln!(
        "{room_size} members: registered in {registered:?}, joined by {joined:?}; NAMES in {lines} lines"
    );
    nicks.sort();
    let mut expected: Vec<String> = (2..room_size).map(|n| format!("member{n:04}")).collect();
    expected.extend(["asker".to_owned(), "bob".to_owned()]);
    expected.sort();
    assert_eq!(nicks, expected);
    server.shutdown().await;
    drop(members);
}
