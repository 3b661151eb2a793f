//! History kept in PostgreSQL (`[history] backend = "postgres"`): the same
//! answers as SQLite over real sockets, one row per line however many
//! nodes store it, playback on a node that never saw a room's lines, and a
//! clear refusal to start without the database.

mod common;

use common::nats::NatsCluster;
use common::network::{NODE_TIMEOUT_MS, await_members, network_keys};
use common::postgres::Postgres;
use common::{Client, TempDir, test_config_with_history};
use rookery::config::Config;
use rookery::history::{Backend, HistoryTarget, Record};
use rookery::proto::Casemapping;

/// The capabilities of a client that reads history itself.
const CAPS: &str =
    "draft/chathistory batch message-tags server-time echo-message draft/message-redaction";

/// The configuration keys of the postgres backend on `pg`.
fn postgres_keys(pg: &Postgres) -> String {
    format!(
        "history.backend = \"postgres\"\nhistory.postgres = \"{}\"\n",
        pg.url()
    )
}

/// A single server keeping history in `dir`, in PostgreSQL when `pg` is
/// given, else in SQLite.
fn single(dir: &TempDir, pg: Option<&Postgres>) -> Config {
    let keys = pg.map(postgres_keys).unwrap_or_default();
    test_config_with_history(&dir.join("history.db"), &keys)
}

/// The texts `client` is played on joining, oldest first.
async fn played_on_join(client: &mut Client) -> Vec<String> {
    client
        .lines_until("End of playback")
        .await
        .iter()
        .filter(|line| line.contains(" PRIVMSG "))
        .map(|line| line.rsplit("] ").next().unwrap_or_default().to_owned())
        .collect()
}

/// The msgid tag of `line`.
fn msgid(line: &str) -> String {
    let (_, rest) = line.split_once("msgid=").expect("a msgid");
    rest.split([';', ' ']).next().unwrap_or_default().to_owned()
}

/// The texts of a CHATHISTORY batch's lines, oldest first.
fn texts(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|line| line.contains(" PRIVMSG "))
        .map(|line| line.rsplit(" :").next().unwrap_or_default().to_owned())
        .collect()
}

/// Asks `client` a CHATHISTORY query and returns the texts answered.
async fn ask(client: &mut Client, query: &str) -> Vec<String> {
    client.send(&format!("CHATHISTORY {query}")).await;
    texts(&client.lines_until("BATCH -").await)
}

/// One scenario run against a server: twelve lines said in #room, read
/// back by every kind of CHATHISTORY query, TARGETS, a redaction, and a
/// plain client's playback on join. Returns each step's label and what it
/// answered; msgids and times differ between runs, the texts do not.
async fn scenario(config: Config) -> Vec<(String, Vec<String>)> {
    let server = rookery::start(config).await.expect("the server starts");
    let addr = server.local_addrs()[0];
    let mut alice = Client::with_caps(addr, "alice", CAPS).await;
    alice.send("JOIN #room").await;
    alice.expect_containing(" 366 ").await;
    let mut ids = Vec::new();
    for n in 0..12 {
        alice.send(&format!("PRIVMSG #room :m{n}")).await;
    }
    for n in 0..12 {
        let echo = alice
            .expect_containing(&format!(" PRIVMSG #room :m{n}"))
            .await;
        ids.push(msgid(&echo));
    }
    let mut carol = Client::with_caps(addr, "carol", CAPS).await;
    carol.send("JOIN #room").await;
    carol.expect_containing(" 366 ").await;
    let mut steps = Vec::new();
    let queries = [
        "LATEST #room * 5".to_owned(),
        format!("LATEST #room msgid={} 10", ids[8]),
        format!("BEFORE #room msgid={} 3", ids[6]),
        format!("AFTER #room msgid={} 4", ids[3]),
        format!("AROUND #room msgid={} 5", ids[6]),
        format!("BETWEEN #room msgid={} msgid={} 20", ids[2], ids[9]),
        format!("BETWEEN #room msgid={} msgid={} 3", ids[9], ids[2]),
        "AFTER #room msgid=unknown 5".to_owned(),
    ];
    for (i, query) in queries.iter().enumerate() {
        let kind = query.split(' ').next().unwrap_or_default();
        let answer = ask(&mut carol, query).await;
        steps.push((format!("{kind} [{i}]"), answer));
    }
    // Private conversations are not kept (private_messages is off by
    // default): TARGETS lists the room alone.
    alice.send("PRIVMSG carol :psst").await;
    carol.expect_containing("PRIVMSG carol :psst").await;
    carol
        .send(
            "CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00Z timestamp=2100-01-01T00:00:00Z 10",
        )
        .await;
    let targets: Vec<String> = carol
        .lines_until("BATCH -")
        .await
        .iter()
        .filter_map(|line| line.split_once("CHATHISTORY TARGETS "))
        .filter_map(|(_, rest)| rest.split(' ').next().map(str::to_owned))
        .collect();
    steps.push(("TARGETS".to_owned(), targets));

    alice.send(&format!("REDACT #room {} :oops", ids[4])).await;
    alice.expect_containing(" REDACT ").await;
    steps.push((
        "LATEST after REDACT".to_owned(),
        ask(&mut carol, "LATEST #room * 20").await,
    ));

    let mut dave = Client::register(addr, "dave").await;
    dave.send("JOIN #room").await;
    let played = dave.lines_until("End of playback").await;
    let played = played
        .iter()
        .filter(|line| line.contains(" PRIVMSG "))
        .map(|line| line.rsplit("] ").next().unwrap_or_default().to_owned())
        .collect();
    steps.push(("playback".to_owned(), played));
    server.shutdown().await;
    steps
}

fn strings(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|text| (*text).to_owned()).collect()
}

#[tokio::test]
async fn postgres_answers_every_query_as_sqlite_does() {
    let pg = Postgres::start();
    let sqlite_dir = TempDir::new("pg-compare-sqlite");
    let pg_dir = TempDir::new("pg-compare-postgres");
    let on_sqlite = scenario(single(&sqlite_dir, None)).await;
    let on_postgres = scenario(single(&pg_dir, Some(&pg))).await;
    assert_eq!(on_postgres, on_sqlite);
    // And the answers are the ones CHATHISTORY defines, not merely equal.
    let answer = |i: usize| on_sqlite[i].1.clone();
    assert_eq!(answer(0), strings(&["m7", "m8", "m9", "m10", "m11"]));
    assert_eq!(answer(1), strings(&["m9", "m10", "m11"]));
    assert_eq!(answer(2), strings(&["m3", "m4", "m5"]));
    assert_eq!(answer(3), strings(&["m4", "m5", "m6", "m7"]));
    assert_eq!(answer(4), strings(&["m4", "m5", "m6", "m7", "m8"]));
    assert_eq!(answer(5), strings(&["m3", "m4", "m5", "m6", "m7", "m8"]));
    assert_eq!(answer(6), strings(&["m6", "m7", "m8"]));
    assert!(answer(7).is_empty());
    assert_eq!(answer(8), strings(&["#room"]));
    let after_redact = answer(9);
    assert_eq!(after_redact.len(), 11);
    assert!(!after_redact.contains(&"m4".to_owned()));
    let played = answer(10);
    assert!(!played.is_empty() && !played.contains(&"m4".to_owned()));
    assert_eq!(played.last().map(String::as_str), Some("m11"));
    // Every line is one row in PostgreSQL.
    assert_eq!(
        pg.psql("SELECT count(*) FROM events WHERE target = '#room' AND command = 'PRIVMSG'"),
        "11"
    );
}

/// A room line as a node records it.
fn line(msgid: &str, time_ms: i64) -> Record {
    Record {
        msgid: msgid.to_owned(),
        time_ms,
        target: HistoryTarget::Room(Casemapping::Ascii.fold("#room")),
        target_display: "#room".to_owned(),
        sender: "alice!a@host".to_owned(),
        account: None,
        command: "PRIVMSG".to_owned(),
        text: format!("said as {msgid}"),
        tags: String::new(),
    }
}

#[test]
fn the_same_line_stored_by_two_nodes_is_one_row() {
    let pg = Postgres::start();
    let dir = TempDir::new("pg-twice");
    let mut config = single(&dir, Some(&pg)).history;
    config.enabled = true;
    let mut first = Backend::open(&config, "a").expect("node a opens the database");
    let mut second = Backend::open(&config, "b").expect("node b opens the database");
    let shared = line("shared-1", 1000);
    assert_eq!(
        first
            .insert_batch([&shared, &line("only-a", 1001)])
            .unwrap(),
        2
    );
    assert_eq!(
        second
            .insert_batch([&line("only-b", 999), &shared])
            .unwrap(),
        1
    );
    assert_eq!(
        pg.psql("SELECT count(*) FROM events WHERE msgid = 'shared-1'"),
        "1"
    );
    assert_eq!(pg.psql("SELECT count(*) FROM events"), "3");
}

/// A redaction, and a dropped account's conversations, stay gone when
/// another node stores its late copy of the lines (a batch kept through
/// an outage, a journal replayed at its start).
#[test]
fn a_late_insert_brings_back_no_redacted_line_nor_forgotten_conversation() {
    use rookery::history::Party;
    let pg = Postgres::start();
    let dir = TempDir::new("pg-tombstones");
    let mut config = single(&dir, Some(&pg)).history;
    config.enabled = true;
    let mut a = Backend::open(&config, "a").expect("node a opens the database");
    let mut b = Backend::open(&config, "b").expect("node b opens the database");
    let fold = |name: &str| Casemapping::Ascii.fold(name);

    let said = line("said", 1000);
    assert_eq!(a.insert_batch([&said]).unwrap(), 1);
    assert!(a.redact("said").unwrap());
    assert_eq!(b.insert_batch([&said]).unwrap(), 0, "b's late copy");
    assert_eq!(pg.psql("SELECT count(*) FROM events"), "0");

    let private = |msgid: &str, time_ms: i64| Record {
        target: HistoryTarget::private(Party::Account(fold("alice")), Party::Nick(fold("bob"))),
        ..line(msgid, time_ms)
    };
    let before = private("before", 2000);
    assert_eq!(a.insert_batch([&before]).unwrap(), 1);
    a.forget_party(&Party::Account(fold("alice"))).unwrap();
    assert_eq!(b.insert_batch([&before]).unwrap(), 0, "b's late copy");
    // A conversation the name has after it was forgotten is kept.
    let later = rookery::history::millis(std::time::SystemTime::now()) + 60_000;
    assert_eq!(b.insert_batch([&private("after", later)]).unwrap(), 1);
    assert_eq!(
        pg.psql("SELECT string_agg(msgid, ',') FROM events"),
        "after"
    );
    // A room line of the same sender is no conversation of the party.
    assert_eq!(b.insert_batch([&line("room", 1500)]).unwrap(), 1);
}

/// Once the schema is there, a node may run as a role that can read and
/// write the tables but create none.
#[test]
fn a_role_that_cannot_create_tables_runs_a_node_on_a_current_schema() {
    let pg = Postgres::start();
    let dir = TempDir::new("pg-role");
    let mut config = single(&dir, Some(&pg)).history;
    config.enabled = true;
    drop(Backend::open(&config, "a").expect("the owner makes the schema"));
    pg.psql(
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC;
         CREATE ROLE writer LOGIN;
         GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO writer;
         GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO writer;",
    );
    assert_eq!(
        pg.psql("SELECT has_schema_privilege('writer', 'public', 'CREATE')"),
        "f"
    );
    config.postgres = pg.url().replacen("rookery@", "writer@", 1);
    let mut node = Backend::open(&config, "b").expect("opens without creating anything");
    assert_eq!(node.insert_batch([&line("by-writer", 1000)]).unwrap(), 1);
}

#[tokio::test]
async fn an_unreachable_database_stops_the_start_naming_the_key() {
    // A port nothing listens on: taken, then let go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port");
    let dir = TempDir::new("pg-unreachable");
    let keys = format!(
        "history.backend = \"postgres\"\nhistory.postgres = \"postgres://rookery:secret@127.0.0.1:{port}/postgres\"\n"
    );
    let config = test_config_with_history(&dir.join("history.db"), &keys);
    let Err(error) = rookery::start(config).await else {
        panic!("a server without its database must not start");
    };
    let message = error.to_string();
    assert!(message.contains("[history] postgres"), "{message}");
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(
        !message.contains("secret"),
        "the password stays out: {message}"
    );
}

/// What the database server said is in the message, not just "db error".
#[tokio::test]
async fn a_database_that_refuses_the_session_says_why() {
    let pg = Postgres::start();
    let dir = TempDir::new("pg-refused");
    let url = pg.url().replace("/postgres", "/nowhere");
    let keys = format!("history.backend = \"postgres\"\nhistory.postgres = \"{url}\"\n");
    let config = test_config_with_history(&dir.join("history.db"), &keys);
    let Err(error) = rookery::start(config).await else {
        panic!("a server whose database does not exist must not start");
    };
    let message = error.to_string();
    assert!(
        message.contains("database \"nowhere\" does not exist"),
        "{message}"
    );
}

#[test]
fn a_url_asking_for_tls_is_refused_when_the_configuration_loads() {
    let text = "history.backend = \"postgres\"\n\
                history.postgres = \"postgres://u@db.example/x?sslmode=require\"\n\
                [[listen]]\naddress = \"127.0.0.1:0\"\n";
    let Err(error) = rookery::config::parse(text, std::path::Path::new("rookery.toml")) else {
        panic!("sslmode=require is refused");
    };
    let message = error.to_string();
    assert!(message.contains("`postgres` in [history]"), "{message}");
    assert!(message.contains("TLS"), "{message}");
    let missing = "history.backend = \"postgres\"\n[[listen]]\naddress = \"127.0.0.1:0\"\n";
    let Err(error) = rookery::config::parse(missing, std::path::Path::new("rookery.toml")) else {
        panic!("the postgres backend needs its URL");
    };
    assert!(
        error.to_string().contains("`postgres` in [history]"),
        "{error}"
    );
}

/// Node `node` of a network on `nats`, its history in `pg`, its own
/// journal and SQLite file in `dir`.
async fn start_node(node: &str, nats: &str, pg: &Postgres, dir: &TempDir) -> rookery::ServerHandle {
    let text = format!(
        "server.name = \"{node}.test\"\nflood.enabled = false\ncloaking.enabled = false\n\
         http = []\nhistory.enabled = true\nhistory.path = {:?}\n{}{}\n\
         [[listen]]\naddress = \"127.0.0.1:0\"\n",
        dir.join(&format!("{node}.db")).display().to_string(),
        network_keys(node, nats, NODE_TIMEOUT_MS),
        postgres_keys(pg)
    );
    let config = match rookery::config::parse(&text, std::path::Path::new("test.toml")) {
        Ok(config) => config,
        Err(error) => panic!("bad test configuration: {error}"),
    };
    match rookery::start(config).await {
        Ok(server) => server,
        Err(error) => panic!("node {node} did not start: {error}"),
    }
}

#[tokio::test]
async fn a_node_that_never_saw_a_rooms_lines_plays_them_back_from_postgres() {
    let pg = Postgres::start();
    let cluster = NatsCluster::start(3);
    let dir = TempDir::new("pg-network");
    let mut nodes = Vec::new();
    for (i, node) in ["a", "b", "c"].into_iter().enumerate() {
        nodes.push(start_node(node, &cluster.url(i), &pg, &dir).await);
    }
    let addr = |i: usize| nodes[i].local_addrs()[0];
    let mut alice = Client::register(addr(0), "alice").await;
    alice.send("JOIN #room").await;
    alice.expect_containing(" 366 ").await;
    let mut bob = Client::register(addr(1), "bob").await;
    bob.send("JOIN #room").await;
    bob.expect_containing(" 366 ").await;
    // c must know the room (and when it began) before anything is said.
    let mut watcher = Client::register(addr(2), "watcher").await;
    await_members(&mut watcher, "#room", &["alice", "bob"]).await;
    alice.expect_containing("JOIN #room").await;

    let said = ["a1", "b1", "a2", "b2", "a3"];
    for text in said {
        let speaker = if text.starts_with('a') {
            &mut alice
        } else {
            &mut bob
        };
        speaker.send(&format!("PRIVMSG #room :{text}")).await;
        // Each line reaches the other node before the next is said, so
        // the order is the same everywhere.
        let listener = if text.starts_with('a') {
            &mut bob
        } else {
            &mut alice
        };
        listener
            .expect_containing(&format!("PRIVMSG #room :{text}"))
            .await;
    }

    // Nodes a and b commit to the shared database a few milliseconds
    // after they deliver; a joiner on c reads what is committed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while pg.psql("SELECT count(DISTINCT msgid) FROM events WHERE command = 'PRIVMSG'") != "5" {
        assert!(
            std::time::Instant::now() < deadline,
            "the lines never reached PostgreSQL"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut carol = Client::register(addr(2), "carol").await;
    carol.send("JOIN #room").await;
    let played = played_on_join(&mut carol).await;
    assert_eq!(played, strings(&said));

    // A later joiner on c is played the same, from c's ring now.
    let mut dave = Client::register(addr(2), "dave").await;
    dave.send("JOIN #room").await;
    let played = played_on_join(&mut dave).await;
    assert_eq!(played, strings(&said));

    let mut erin = Client::with_caps(addr(2), "erin", CAPS).await;
    erin.send("JOIN #room").await;
    erin.expect_containing(" 366 ").await;
    assert_eq!(ask(&mut erin, "LATEST #room * 10").await, strings(&said));

    // A shutdown commits what each node queued.
    for node in nodes {
        node.shutdown().await;
    }
    // Both a and b stored every line (each committed its records: its own
    // checkpoint moved), and each line is one row.
    assert_eq!(
        pg.psql("SELECT count(*) FROM events WHERE command = 'PRIVMSG'"),
        "5"
    );
    let stored = pg.psql("SELECT node FROM journal_checkpoint WHERE seq >= 5 ORDER BY node");
    assert!(stored.starts_with("a\nb"), "{stored}");
    let nodes = pg.psql("SELECT node FROM journal_checkpoint ORDER BY node");
    assert_eq!(nodes, "a\nb\nc");
}

/// Every query kind over a room whose lines share milliseconds, asked of
/// one backend: the msgids each answers, in order.
fn store_answers(store: &mut Backend) -> Vec<Vec<String>> {
    use rookery::history::{Bound, Query, QueryKind, RoomRename};
    let room = Casemapping::Ascii.fold("#room");
    let times = [1000, 1000, 1000, 2000, 2000, 3000, 4000, 4000, 4000, 5000];
    let lines: Vec<Record> = times
        .iter()
        .enumerate()
        .map(|(i, &time)| line(&format!("r{i}"), time))
        .collect();
    store.insert_batch(&lines).expect("insert");
    // A repeated msgid is skipped, not a second row.
    assert_eq!(store.insert_batch([&lines[3]]).expect("insert again"), 0);
    let id = |n: usize| Bound::MsgId(format!("r{n}"));
    let kinds = [
        (QueryKind::Latest { after: None }, 4),
        (QueryKind::Latest { after: Some(id(2)) }, 20),
        (
            QueryKind::Latest {
                after: Some(Bound::Time(4000)),
            },
            20,
        ),
        (QueryKind::Before { bound: id(4) }, 3),
        (
            QueryKind::Before {
                bound: Bound::Time(4000),
            },
            20,
        ),
        (QueryKind::After { bound: id(1) }, 3),
        (
            QueryKind::After {
                bound: Bound::Time(1000),
            },
            2,
        ),
        (QueryKind::Around { bound: id(5) }, 4),
        (
            QueryKind::Around {
                bound: Bound::Time(2000),
            },
            3,
        ),
        (
            QueryKind::Between {
                start: id(1),
                end: id(8),
            },
            20,
        ),
        (
            QueryKind::Between {
                start: id(8),
                end: id(1),
            },
            3,
        ),
        (
            QueryKind::Between {
                start: Bound::Time(1000),
                end: Bound::Time(4000),
            },
            20,
        ),
        (QueryKind::After { bound: id(99) }, 5),
    ];
    let mut answers = Vec::new();
    for (kind, limit) in kinds {
        let query = Query {
            target: HistoryTarget::Room(room.clone()),
            also: None,
            kind,
            limit,
            not_before_ms: None,
            events: false,
        };
        let records = store.query(&query).expect("query");
        answers.push(records.into_iter().map(|record| record.msgid).collect());
    }
    assert!(store.redact("r5").expect("redact"));
    let found = store.find("r6").expect("find").map(|record| record.msgid);
    answers.push(found.into_iter().collect());
    let rename = RoomRename {
        old: room.clone(),
        new: Casemapping::Ascii.fold("#new"),
        display: "#New".to_owned(),
        floor_ms: 0,
    };
    store.rename_room(&rename).expect("rename");
    let mut exported = Vec::new();
    store
        .for_each(
            &HistoryTarget::Room(rename.new.clone()),
            Some(2000),
            |record| {
                exported.push(format!("{} {}", record.msgid, record.target_display));
                Ok::<_, rookery::history::StoreError>(())
            },
        )
        .expect("for_each");
    answers.push(exported);
    let mut pruner = rookery::history::retention::Pruner::new(3, 0);
    for _ in 0..4 {
        pruner
            .step(store, std::time::Instant::now())
            .expect("prune");
    }
    let kept = store
        .count(&HistoryTarget::Room(rename.new))
        .expect("count");
    answers.push(vec![kept.to_string()]);
    answers
}

#[test]
fn the_postgres_store_answers_what_the_sqlite_store_answers() {
    let pg = Postgres::start();
    let dir = TempDir::new("pg-store");
    let sqlite = single(&dir, None).history;
    let mut on_sqlite = Backend::open(&sqlite, "").expect("sqlite opens");
    let postgres = single(&dir, Some(&pg)).history;
    let mut on_postgres = Backend::open(&postgres, "").expect("postgres opens");
    let expected = store_answers(&mut on_sqlite);
    assert_eq!(store_answers(&mut on_postgres), expected);
    // Lines of one millisecond keep the order they were stored in.
    assert_eq!(expected[0], ["r6", "r7", "r8", "r9"]);
    assert_eq!(expected[3], ["r1", "r2", "r3"]);
    assert_eq!(expected[10], ["r5", "r6", "r7"]);
    assert_eq!(expected[expected.len() - 1], ["3"]);
}

#[tokio::test]
async fn lines_are_stored_again_once_the_database_ends_the_session() {
    let pg = Postgres::start();
    let dir = TempDir::new("pg-terminated");
    let server = rookery::start(single(&dir, Some(&pg)))
        .await
        .expect("starts");
    let addr = server.local_addrs()[0];
    let mut alice = Client::with_caps(addr, "alice", CAPS).await;
    alice.send("JOIN #room").await;
    alice.expect_containing(" 366 ").await;
    alice.send("PRIVMSG #room :before").await;
    alice.expect_containing(":before").await;
    assert_eq!(
        ask(&mut alice, "LATEST #room * 10").await,
        strings(&["before"])
    );
    // Every session of the server ends, as in a database restart.
    let ended = pg.psql(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'rookery'",
    );
    assert_eq!(ended, "2", "the writer's and the reader's sessions");
    alice.send("PRIVMSG #room :after").await;
    alice.expect_containing(":after").await;
    assert_eq!(
        ask(&mut alice, "LATEST #room * 10").await,
        strings(&["before", "after"])
    );
    server.shutdown().await;
    assert_eq!(
        pg.psql("SELECT count(*) FROM events WHERE command = 'PRIVMSG'"),
        "2"
    );
}

#[test]
fn history_migrate_copies_a_sqlite_history_into_postgres_once() {
    use rookery::config::HistorySync;
    use rookery::history::Store;
    let pg = Postgres::start();
    let dir = TempDir::new("pg-migrate");
    let db = dir.join("history.db");
    let mut store = Store::open(&db, HistorySync::Normal).expect("a SQLite history");
    let lines = [line("m1", 1000), line("m2", 1000), line("m3", 2000)];
    store.insert_batch(&lines).expect("insert");
    drop(store);
    let config = dir.join("rookery.toml");
    std::fs::write(
        &config,
        format!("[history]\npath = {:?}\n", db.display().to_string()),
    )
    .expect("write the configuration");
    let migrate = || {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_rookery"))
            .args(["history", "migrate", "--to", &pg.url()])
            .args(["--config", config.to_str().expect("a UTF-8 path")])
            .output()
            .expect("run rookery");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let first = migrate();
    assert!(first.starts_with("copied 3 of 3 lines"), "{first}");
    let again = migrate();
    assert!(again.starts_with("copied 0 of 3 lines"), "{again}");
    assert_eq!(
        pg.psql("SELECT string_agg(msgid, ',' ORDER BY time_ms, id) FROM events"),
        "m1,m2,m3"
    );
}

/// An operator's password, "hunter2", hashed cheaply for tests.
const OPER_HASH: &str = "$argon2id$v=19$m=8,t=1,p=1$cm9va2VyeS10ZXN0LXNhbHQ$yiaiaoZnKPZM0CWZ8NzJYpMiTnaZSktRUpf408FhNKA";

#[tokio::test]
async fn lines_said_while_the_database_fails_are_stored_once_it_works_again() {
    let pg = Postgres::start();
    let dir = TempDir::new("pg-outage");
    let keys = format!(
        "{}\n[[oper]]\nname = \"root\"\npassword_hash = \"{OPER_HASH}\"",
        postgres_keys(&pg)
    );
    let config = test_config_with_history(&dir.join("history.db"), &keys);
    let server = rookery::start(config).await.expect("starts");
    let addr = server.local_addrs()[0];
    let mut alice = Client::with_caps(addr, "alice", CAPS).await;
    alice.send("OPER root hunter2").await;
    alice.expect_containing(" 381 ").await;
    alice.send("JOIN #room").await;
    alice.expect_containing(" 366 ").await;
    alice.send("PRIVMSG #room :before").await;
    alice.expect_containing(":before").await;
    assert_eq!(
        ask(&mut alice, "LATEST #room * 10").await,
        strings(&["before"])
    );

    // Every insert fails at once while the table is away.
    pg.psql("ALTER TABLE events RENAME TO events_away");
    for n in 1..=3 {
        alice.send(&format!("PRIVMSG #room :during {n}")).await;
        alice.expect_containing(&format!(":during {n}")).await;
    }
    alice
        .expect_containing("NOTICE alice :History cannot")
        .await;
    pg.psql("ALTER TABLE events_away RENAME TO events");
    alice.send("PRIVMSG #room :after").await;
    alice.expect_containing(":after").await;
    alice
        .expect_containing("NOTICE alice :History is written to")
        .await;
    assert_eq!(
        ask(&mut alice, "LATEST #room * 10").await,
        strings(&["before", "during 1", "during 2", "during 3", "after"])
    );
    server.shutdown().await;
}
