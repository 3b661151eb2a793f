//! Accounts in the PostgreSQL database a network shares: three nodes on a
//! NATS cluster and one database. An account registered on one node logs
//! in on another; a login on one node shows on the others; a registered
//! nick is reserved on every node; one name registered on two nodes at
//! once goes to one of them; a private conversation and a read marker
//! are the account's on every node; `rookery accounts` writes beside
//! running nodes; `rookery history migrate` brings a SQLite node's
//! accounts along; and the shared store answers as the SQLite one does.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::nats::NatsCluster;
use common::network::{
    self, CONVERGE, NODE_TIMEOUT_MS, NODES, POLL, await_members, await_user_on, whois_server,
};
use common::postgres::Postgres;
use common::{Client, TempDir, test_config_with_history};
use rookery::ServerHandle;
use rookery::accounts::{AccountError, Accounts, Credentials, Naming, PgAccounts, Place};
use rookery::proto::Casemapping;

/// The keys that put a node's history, and so its accounts, in `pg`,
/// with its journal in `dir`.
fn shared_keys(pg: &Postgres, dir: &TempDir, node: &str) -> String {
    format!(
        "history.enabled = true\nhistory.path = {:?}\nhistory.backend = \"postgres\"\n\
         history.postgres = \"{}\"\n",
        dir.join(&format!("{node}.db")).display().to_string(),
        pg.url()
    )
}

/// Three nodes (a, b, c) on one NATS cluster and one database.
struct Network {
    _nats: NatsCluster,
    _dir: TempDir,
    nodes: Vec<ServerHandle>,
}

impl Network {
    async fn start(pg: &Postgres, name: &str, extra: &str) -> Network {
        let nats = NatsCluster::start(3);
        let dir = TempDir::new(name);
        let mut nodes = Vec::new();
        for (i, node) in NODES.iter().enumerate() {
            let keys = format!("{}{extra}", shared_keys(pg, &dir, node));
            nodes.push(network::start_node(node, &nats.url(i), NODE_TIMEOUT_MS, &keys).await);
        }
        Network {
            _nats: nats,
            _dir: dir,
            nodes,
        }
    }

    fn addr(&self, node: usize) -> SocketAddr {
        self.nodes[node].local_addrs()[0]
    }

    async fn stop(self) {
        for node in self.nodes {
            node.shutdown().await;
        }
    }
}

/// Polls WHOIS on `client`'s node until it shows `nick` logged in as
/// `account` (330).
async fn await_logged_in(client: &mut Client, nick: &str, account: &str) {
    let deadline = Instant::now() + CONVERGE;
    loop {
        client.send(&format!("WHOIS {nick}")).await;
        let lines = client.lines_until(" 318 ").await;
        let wanted = format!(" 330 {} {nick} {account} ", own_nick(&lines));
        if lines.iter().any(|line| line.contains(&wanted)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{nick} never showed as logged in as {account}: {lines:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// The nick a reply is addressed to: the third word of a numeric.
fn own_nick(lines: &[String]) -> String {
    lines
        .last()
        .and_then(|line| line.split(' ').nth(2))
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn an_account_registered_on_one_node_logs_in_on_another_and_shows_on_a_third() {
    let pg = Postgres::start();
    let network = Network::start(&pg, "pgacct-login", "").await;
    let mut watcher = Client::with_caps(network.addr(0), "watcher", "account-notify").await;
    let mut alice = Client::with_account(network.addr(1), "alice", "hunter2").await;
    alice.send("QUIT").await;

    let (_, wrong) = Client::sasl_plain(network.addr(2), "alice1", "alice", "wrong").await;
    assert!(
        wrong.last().is_some_and(|line| line.contains(" 904 ")),
        "{wrong:?}"
    );

    let (mut on_c, exchange) =
        Client::sasl_plain(network.addr(2), "alice2", "ALICE", "hunter2").await;
    assert!(
        exchange.iter().any(|line| line.contains(" 900 alice2 ")
            && line.ends_with(" alice :You are now logged in as alice")),
        "{exchange:?}"
    );
    assert!(
        exchange.last().is_some_and(|line| line.contains(" 903 ")),
        "{exchange:?}"
    );

    await_user_on(&mut watcher, "alice2", "c.test").await;
    await_logged_in(&mut watcher, "alice2", "alice").await;

    // A login after the user was introduced travels too: account-notify
    // to those sharing a room, and WHOIS.
    let mut late = Client::register_in(network.addr(2), "late", "#room").await;
    watcher.send("JOIN #room").await;
    await_members(&mut watcher, "#room", &["late", "watcher"]).await;
    late.send("NS IDENTIFY alice hunter2").await;
    late.expect_containing(" 900 ").await;
    let notified = watcher.expect_containing(" ACCOUNT ").await;
    assert!(notified.ends_with(" ACCOUNT alice"), "{notified}");
    await_logged_in(&mut watcher, "late", "alice").await;
    late.send("NS LOGOUT").await;
    let notified = watcher.expect_containing(" ACCOUNT ").await;
    assert!(notified.ends_with(" ACCOUNT *"), "{notified}");
    on_c.send("QUIT").await;
    network.stop().await;
}

/// Polls WHOIS until `client`'s node no longer knows `nick`.
async fn await_gone(client: &mut Client, nick: &str) {
    let deadline = Instant::now() + CONVERGE;
    while whois_server(client, nick).await.is_some() {
        assert!(Instant::now() < deadline, "{nick} never left");
        tokio::time::sleep(POLL).await;
    }
}

#[tokio::test]
async fn a_nick_registered_on_one_node_is_reserved_on_another() {
    let pg = Postgres::start();
    let network = Network::start(&pg, "pgacct-reserved", "accounts.guest_after = \"1s\"\n").await;
    let mut watcher = Client::register(network.addr(0), "watcher").await;
    let mut carol = Client::with_account(network.addr(1), "carol", "hunter2").await;
    await_user_on(&mut watcher, "carol", "b.test").await;
    carol.send("QUIT").await;
    assert!(carol.is_closed().await);
    // Node b said so before carol's QUIT, and a node hears another in order.
    await_gone(&mut watcher, "carol").await;

    let mut mallory = Client::register(network.addr(0), "carol").await;
    let told = mallory.expect_containing("NickServ").await;
    assert!(
        told.contains("This nick is owned by the account carol."),
        "{told}"
    );
    let renamed = mallory.expect_containing(" NICK ").await;
    assert!(renamed.contains(" NICK Guest"), "{renamed}");
    network.stop().await;
}

/// How long a registration may take: argon2 on two busy cores.
const HASHING_TIMEOUT: Duration = Duration::from_secs(30);

/// Any account name, and as many registrations from loopback as the
/// rounds need.
const RACE_KEYS: &str = "accounts.custom_account_names = true\n\
                         accounts.registrations_per_address_per_hour = 100\n";

#[tokio::test]
async fn one_name_registered_on_two_nodes_at_once_goes_to_one() {
    let pg = Postgres::start();
    let network = Network::start(&pg, "pgacct-race", RACE_KEYS).await;
    let mut on_a =
        Client::with_caps(network.addr(0), "racer_a", "draft/account-registration").await;
    let mut on_b =
        Client::with_caps(network.addr(1), "racer_b", "draft/account-registration").await;
    on_a.line_timeout = HASHING_TIMEOUT;
    on_b.line_timeout = HASHING_TIMEOUT;
    for round in 0..4 {
        let name = format!("race{round}");
        on_a.send(&format!("REGISTER {name} * hunter2")).await;
        on_b.send(&format!("REGISTER {name} * hunter2")).await;
        let answers = [
            on_a.expect_containing(" REGISTER ").await,
            on_b.expect_containing(" REGISTER ").await,
        ];
        let won = answers
            .iter()
            .filter(|a| a.contains("REGISTER SUCCESS"))
            .count();
        let lost = answers
            .iter()
            .filter(|a| a.contains("FAIL REGISTER ACCOUNT_EXISTS"))
            .count();
        assert_eq!((won, lost), (1, 1), "{answers:?}");
        // The winner is logged in: log it out for the next round.
        for (client, answer) in [(&mut on_a, &answers[0]), (&mut on_b, &answers[1])] {
            if answer.contains("SUCCESS") {
                client.send("NS LOGOUT").await;
                client.expect_containing(" 901 ").await;
            }
        }
    }
    assert_eq!(
        pg.psql("SELECT count(*) FROM accounts WHERE name LIKE 'race%'"),
        "4"
    );
    network.stop().await;
}

fn naming() -> Naming {
    Naming {
        casemapping: Casemapping::Ascii,
        max_len: 30,
    }
}

#[test]
fn two_stores_creating_one_name_at_the_same_instant_make_one_account() {
    let pg = Postgres::start();
    let credentials = Credentials::derive("hunter2").expect("a password hashes");
    // Both connections made first, so the two creations meet in the
    // database, not in the connecting.
    PgAccounts::open(&pg.url(), naming()).expect("the tables are made");
    for round in 0..8 {
        let start = Arc::new(Barrier::new(2));
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let (url, start, credentials) = (pg.url(), Arc::clone(&start), credentials.clone());
                std::thread::spawn(move || {
                    let mut store = PgAccounts::open(&url, naming()).expect("connects");
                    start.wait();
                    store.create(&format!("Dave{round}"), &credentials, None, 1)
                })
            })
            .collect();
        let outcomes: Vec<_> = racers
            .into_iter()
            .map(|r| r.join().expect("no panic"))
            .collect();
        let won = outcomes.iter().filter(|o| o.is_ok()).count();
        let taken = outcomes
            .iter()
            .filter(|o| matches!(o, Err(AccountError::NameTaken(_))))
            .count();
        assert_eq!((won, taken), (1, 1), "{outcomes:?}");
    }
}

#[tokio::test]
async fn history_migrate_brings_a_nodes_accounts_along() {
    let dir = TempDir::new("pgacct-migrate");
    let database = dir.join("node.db");
    // Two accounts on a node with its own SQLite file, each with a
    // private conversation.
    let file = database.clone();
    tokio::task::spawn_blocking(move || {
        let mut store = rookery::accounts::Store::open(&file, naming()).expect("opens");
        let ours = Credentials::derive("ours").expect("a password hashes");
        store
            .create("frank", &ours, None, 6)
            .expect("frank is made here");
    })
    .await
    .expect("the account is made");
    let alone = rookery::start(test_config_with_history(
        &database,
        "history.private_messages = true\n",
    ))
    .await
    .unwrap();
    let addr = alone.local_addrs()[0];
    let mut erin = Client::with_account(addr, "erin", "hunter2").await;
    let mut frank = Client::register(addr, "frank").await;
    frank.send("NS IDENTIFY frank ours").await;
    frank.expect_containing(" 900 ").await;
    let mut gus = Client::register(addr, "gus").await;
    frank.send("PRIVMSG erin :frank-secret").await;
    erin.expect_containing("frank-secret").await;
    erin.send("PRIVMSG gus :erin-line").await;
    gus.expect_containing("erin-line").await;
    for mut client in [erin, frank, gus] {
        client.send("QUIT").await;
        assert!(client.is_closed().await);
    }
    alone.shutdown().await;

    let pg = Postgres::start();
    // A namesake another node registered first is not overwritten. (The
    // blocking client starts a runtime of its own: off this one.)
    let url = pg.url();
    tokio::task::spawn_blocking(move || {
        let mut other = PgAccounts::open(&url, naming()).expect("the tables are made");
        let theirs = Credentials::derive("theirs").expect("a password hashes");
        other
            .create("Frank", &theirs, None, 5)
            .expect("frank is made");
    })
    .await
    .expect("the accounts are made");

    let config = dir.join("rookery.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nname = \"irc.test\"\n\n[history]\npath = {:?}\n",
            database.display().to_string()
        ),
    )
    .expect("the configuration is written");
    let migrate = || {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_rookery"))
            .arg("-c")
            .arg(&config)
            .args(["history", "migrate", "--to", &pg.url()])
            .output()
            .expect("rookery runs");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    };
    let first = migrate();
    assert!(
        first.contains("copied 1 of 2 accounts (0 were there already)"),
        "{first}"
    );
    assert!(
        first.contains("not copied: the account frank exists already as another account"),
        "{first}"
    );
    // The network's Frank does not read this node's frank's conversation;
    // erin's is copied.
    assert!(
        first.contains("not copied: 1 private lines of the accounts not copied"),
        "{first}"
    );
    assert_eq!(
        pg.psql("SELECT count(*) FROM events WHERE text = 'frank-secret'"),
        "0"
    );
    assert_eq!(
        pg.psql("SELECT count(*) FROM events WHERE text = 'erin-line'"),
        "1"
    );
    let second = migrate();
    assert!(
        second.contains("copied 0 of 2 accounts (1 were there already)"),
        "{second}"
    );
    assert_eq!(pg.psql("SELECT count(*) FROM accounts"), "2");
    assert_eq!(
        pg.psql("SELECT name FROM accounts WHERE name_key = 'frank'"),
        "Frank"
    );

    // erin logs in through a server on the shared database.
    let shared = TempDir::new("pgacct-migrate-shared");
    let keys = shared_keys(&pg, &shared, "a");
    let server = rookery::start(common::test_config(&keys)).await.unwrap();
    let (_, exchange) =
        Client::sasl_plain(server.local_addrs()[0], "erin", "erin", "hunter2").await;
    assert!(
        exchange.last().is_some_and(|line| line.contains(" 903 ")),
        "{exchange:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_private_conversation_is_the_accounts_on_every_node() {
    let pg = Postgres::start();
    let network = Network::start(&pg, "pgacct-private", "history.private_messages = true\n").await;
    let mut alice = Client::with_account(network.addr(0), "alice", "alice-pw").await;
    let mut bob = Client::with_account(network.addr(1), "bob", "bob-pw").await;
    await_user_on(&mut alice, "bob", "b.test").await;
    // Node a keys the conversation by bob's account once it heard of his
    // login.
    await_logged_in(&mut alice, "bob", "bob").await;
    alice.send("PRIVMSG bob :for bob only").await;
    bob.expect_containing("for bob only").await;
    alice.send("QUIT").await;
    assert!(alice.is_closed().await);

    // Alice's account on a third node reads the conversation; a nick of
    // hers without the account does not.
    let mut phone = Client::register(network.addr(2), "alice-phone").await;
    phone.send("NS IDENTIFY alice alice-pw").await;
    phone.expect_containing(" 900 ").await;
    let deadline = Instant::now() + CONVERGE;
    loop {
        let latest = phone.answer("CHATHISTORY LATEST bob * 10").await;
        if latest.iter().any(|line| line.contains("for bob only")) {
            break;
        }
        assert!(Instant::now() < deadline, "never stored: {latest:#?}");
        tokio::time::sleep(POLL).await;
    }
    let mut mallory = Client::register(network.addr(2), "alice").await;
    let latest = mallory.answer("CHATHISTORY LATEST bob * 10").await;
    assert!(
        !latest.iter().any(|line| line.contains("for bob only")),
        "{latest:#?}"
    );
    network.stop().await;
}

/// Everything a store answers after the same changes, for comparing the
/// two backends.
fn exercise(store: &mut Accounts) -> Vec<String> {
    use rookery::accounts::{
        AccessLevel, ListRecord, MetadataChange, ReadMarkerRecord, RoomRecord, Suspension,
        TopicRecord,
    };
    let credentials = Credentials::derive("pw").expect("a password hashes");
    let mut seen = Vec::new();
    let mut note = |what: String| seen.push(what);
    note(format!(
        "{:?}",
        store
            .create("Gina", &credentials, Some("g@x"), 10)
            .map(|a| a.name)
    ));
    note(format!(
        "{:?}",
        store.create("gina", &credentials, None, 11).map(|a| a.name)
    ));
    note(format!(
        "{:?}",
        store.create("Hal", &credentials, None, 12).map(|a| a.name)
    ));
    note(format!("{:?}", store.add_nick("gina", "gigi", 13)));
    note(format!("{:?}", store.add_nick("hal", "GIGI", 14)));
    note(format!("{:?}", store.add_nick("hal", "gina", 14)));
    let fingerprint = "ab".repeat(32);
    note(format!("{:?}", store.add_certificate("gina", &fingerprint)));
    note(format!(
        "{:?}",
        store.add_certificate("hal", &fingerprint.to_uppercase())
    ));
    note(format!("{:?}", store.certificate_owner(&fingerprint)));
    note(format!("{:?}", store.set_enforce("GINA", true)));
    let mut owners = store.nick_owners().expect("owners");
    owners.sort_by(|a, b| a.nick_key.cmp(&b.nick_key));
    note(format!("{owners:?}"));
    let suspension = Suspension {
        reason: "spam".into(),
        by: "console".into(),
        at_ms: 20,
    };
    note(format!("{:?}", store.suspend("hal", &suspension)));
    note(format!(
        "{:?}",
        store.find("HAL").map(|a| a.map(|a| a.suspended))
    ));
    note(format!(
        "{:?}",
        store.list(Some("gina"), 10).map(|l| l.len())
    ));
    let changes = [
        MetadataChange::Set {
            key: "avatar".into(),
            value: Some("https://x/a.png".into()),
        },
        MetadataChange::Set {
            key: "display-name".into(),
            value: Some("G".into()),
        },
        MetadataChange::Set {
            key: "avatar".into(),
            value: None,
        },
    ];
    note(format!("{:?}", store.change_metadata("gina", &changes)));
    note(format!("{:?}", store.metadata("Gina")));
    let room = RoomRecord {
        name: "#Garden".into(),
        founder: "gina".into(),
        access: vec![
            ("hal".into(), AccessLevel::Voice),
            ("nobody".into(), AccessLevel::Op),
        ],
        registered_ms: 30,
        history_floor_ms: 31,
        topic: Some(TopicRecord {
            text: "flowers".into(),
            set_by: "gina!g@x".into(),
            set_ms: 32,
        }),
        modes: "ntR".into(),
        key: Some("k".into()),
        limit: Some(9),
        lists: vec![ListRecord {
            mode: 'b',
            mask: "*!*@spam".into(),
            set_by: "gina".into(),
            set_ms: 33,
        }],
        metadata: vec![("url".into(), "https://garden".into())],
    };
    note(format!("{:?}", store.save_room(&room)));
    let mut again = room.clone();
    again.registered_ms = 40;
    note(format!("{:?}", store.save_room(&again)));
    note(format!("{:?}", store.rename_room("#garden", "#Park")));
    note(format!("{:?}", store.rooms()));
    for (target, read_ms) in [("#Park", 50), ("#park", 40), ("hal", 45)] {
        let marker = ReadMarkerRecord {
            account: "gina".into(),
            target: target.into(),
            read_ms,
            renamed_from: None,
        };
        note(format!("{:?}", store.save_read_marker(&marker)));
    }
    note(format!("{:?}", store.read_markers()));
    note(format!("{:?}", store.delete("gina")));
    note(format!("{:?}", store.rooms().map(|r| r.len())));
    note(format!("{:?}", store.nick_owner("gigi")));
    note(format!("{:?}", store.schema_version().map(|v| v > 0)));
    seen
}

#[test]
fn the_shared_store_answers_as_the_sqlite_one_does() {
    let dir = TempDir::new("pgacct-parity");
    let mut sqlite =
        Accounts::open(&Place::Sqlite(dir.join("accounts.db")), naming()).expect("the file opens");
    let pg = Postgres::start();
    let mut postgres = Accounts::open(&Place::Postgres(pg.url()), naming()).expect("connects");
    let on_sqlite = exercise(&mut sqlite);
    let on_postgres = exercise(&mut postgres);
    for (sqlite, postgres) in on_sqlite.iter().zip(&on_postgres) {
        assert_eq!(sqlite, postgres);
    }
    assert_eq!(on_sqlite.len(), on_postgres.len());
    // The scenario did what it says: one refusal of each kind at least.
    for refusal in ["NameTaken", "NickTaken", "CertificateTaken", "RoomTaken"] {
        assert!(
            on_sqlite.iter().any(|seen| seen.contains(refusal)),
            "{on_sqlite:#?}"
        );
    }
}

/// Connects with draft/read-marker and logs in to `account` with
/// NickServ IDENTIFY.
async fn marking(addr: SocketAddr, nick: &str, account: &str, password: &str) -> Client {
    let mut client = Client::with_caps(addr, nick, "draft/read-marker").await;
    client
        .send(&format!("NS IDENTIFY {account} {password}"))
        .await;
    client.expect_containing(" 900 ").await;
    client
}

#[tokio::test]
async fn a_read_marker_moved_on_one_node_reaches_the_accounts_clients_on_another() {
    let pg = Postgres::start();
    let network = Network::start(&pg, "pgacct-markers", "").await;
    let mut laptop = Client::with_account(network.addr(0), "ivy", "ivy-pw").await;
    laptop.send("QUIT").await;
    assert!(laptop.is_closed().await);
    let mut laptop = marking(network.addr(0), "ivy_laptop", "ivy", "ivy-pw").await;
    let mut phone = marking(network.addr(2), "ivy_phone", "ivy", "ivy-pw").await;
    // Node c heard of the laptop's login, so it heard of ivy's account.
    await_logged_in(&mut phone, "ivy_laptop", "ivy").await;

    laptop
        .send("MARKREAD #garden timestamp=2021-05-20T08:30:00.000Z")
        .await;
    let read = ":a.test MARKREAD #garden timestamp=2021-05-20T08:30:00.000Z";
    assert_eq!(laptop.expect_containing("MARKREAD").await, read);
    let told = phone.expect_containing("MARKREAD #garden").await;
    assert_eq!(
        told,
        ":c.test MARKREAD #garden timestamp=2021-05-20T08:30:00.000Z"
    );
    // An older marker from the phone does not move it back, anywhere.
    phone
        .send("MARKREAD #garden timestamp=2021-05-20T08:00:00.000Z")
        .await;
    assert_eq!(phone.expect_containing("MARKREAD").await, told);
    network.stop().await;
}

#[tokio::test]
async fn the_accounts_command_writes_a_shared_database_while_a_node_runs() {
    let pg = Postgres::start();
    let dir = TempDir::new("pgacct-cli");
    let server = rookery::start(common::test_config(&shared_keys(&pg, &dir, "a")))
        .await
        .unwrap();
    let config = dir.join("rookery.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nname = \"irc.test\"\n\n[history]\n{}",
            shared_keys(&pg, &dir, "a").replace("history.", "")
        ),
    )
    .expect("the configuration is written");
    let accounts = |args: &[&str], stdin: &str| {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rookery"))
            .arg("-c")
            .arg(&config)
            .arg("accounts")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("rookery runs");
        use std::io::Write;
        let _ = child
            .stdin
            .take()
            .expect("a pipe")
            .write_all(stdin.as_bytes());
        child.wait_with_output().expect("rookery ends")
    };
    let created = accounts(&["create", "kim"], "kim-pw\n");
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let listed = accounts(&["list"], "");
    assert!(
        String::from_utf8_lossy(&listed.stdout).starts_with("kim\t"),
        "{listed:?}"
    );
    // The running node logs kim in at once.
    let (_, exchange) = Client::sasl_plain(server.local_addrs()[0], "kim", "kim", "kim-pw").await;
    assert!(
        exchange.last().is_some_and(|line| line.contains(" 903 ")),
        "{exchange:?}"
    );
    server.shutdown().await;
}

#[test]
fn a_migration_skips_a_name_another_account_has_as_a_nick_and_knows_its_own_earlier_copy() {
    let dir = TempDir::new("pgacct-transfer");
    let pg = Postgres::start();
    let credentials = Credentials::derive("pw").expect("a password hashes");
    let mut shared = PgAccounts::open(&pg.url(), naming()).expect("the tables are made");
    shared
        .create("Olga", &credentials, None, 1)
        .expect("olga is made");
    shared
        .add_nick("olga", "Paul", 2)
        .expect("olga takes the nick paul");
    let mut node = rookery::accounts::Store::open(&dir.join("node.db"), naming()).expect("opens");
    node.create("paul", &credentials, None, 3)
        .expect("paul is made here");
    node.create("quinn", &credentials, None, 4)
        .expect("quinn is made here");

    let first = rookery::accounts::transfer::copy_accounts(&node, &mut shared).expect("copies");
    assert_eq!(first.copied, 1, "{first:?}");
    assert_eq!(first.conflicts, ["paul"], "{first:?}");
    assert_eq!(first.name_nicks_taken, ["paul"], "{first:?}");
    assert!(shared.find("paul").expect("reads").is_none());
    assert_eq!(
        shared.nick_owner("paul").expect("reads").as_deref(),
        Some("Olga")
    );

    // quinn changed its password on the network: still the copy made.
    let changed = Credentials::derive("new").expect("a password hashes");
    shared
        .set_password("quinn", &changed)
        .expect("the password changes");
    let second = rookery::accounts::transfer::copy_accounts(&node, &mut shared).expect("copies");
    assert_eq!((second.copied, second.already), (0, 1), "{second:?}");
    assert_eq!(second.conflicts, ["paul"], "{second:?}");
}

/// Runs `create(name)` while another session holds `hold` (an insert of a
/// row of that name) uncommitted: the create passes its reads, waits on
/// the unique index, and meets the other's row only when it commits.
fn create_against_an_uncommitted_insert(
    pg: &Postgres,
    hold: &str,
    name: &str,
) -> Result<rookery::accounts::Account, AccountError> {
    let mut other = postgres::Client::connect(&pg.url(), postgres::NoTls).expect("connects");
    let mut holding = other.transaction().expect("a transaction starts");
    holding.batch_execute(hold).expect("the row is inserted");
    let (url, name) = (pg.url(), name.to_owned());
    let creating = std::thread::spawn(move || {
        let credentials = Credentials::derive("pw").expect("a password hashes");
        let mut store = PgAccounts::open(&url, naming()).expect("connects");
        store.create(&name, &credentials, None, 7)
    });
    // The create waits on the index once a session waits for a lock.
    let deadline = Instant::now() + HASHING_TIMEOUT;
    while pg.psql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'") != "1" {
        assert!(Instant::now() < deadline, "the create never waited");
        std::thread::sleep(Duration::from_millis(10));
    }
    holding.commit().expect("the other row commits");
    creating.join().expect("no panic")
}

/// The columns of an account row for an insert made by hand.
const ROW: &str = "password_hash, scram_salt, scram_iterations, scram_stored_key, \
                   scram_server_key, created_ms) VALUES";
const ROW_VALUES: &str =
    "'x', '\\x00', 1, decode(repeat('00', 32), 'hex'), decode(repeat('00', 32), 'hex'), 1";

#[test]
fn a_create_that_meets_an_uncommitted_account_of_its_name_is_name_taken() {
    let pg = Postgres::start();
    PgAccounts::open(&pg.url(), naming()).expect("the tables are made");
    let hold =
        format!("INSERT INTO accounts (name, name_key, {ROW} ('Nora', 'nora', {ROW_VALUES})");
    let outcome = create_against_an_uncommitted_insert(&pg, &hold, "nora");
    assert!(
        matches!(outcome, Err(AccountError::NameTaken(ref name)) if name == "nora"),
        "{outcome:?}"
    );
}

#[test]
fn a_create_that_meets_an_uncommitted_nick_of_its_name_is_nick_taken() {
    let pg = Postgres::start();
    let mut store = PgAccounts::open(&pg.url(), naming()).expect("the tables are made");
    let credentials = Credentials::derive("pw").expect("a password hashes");
    store
        .create("Pat", &credentials, None, 1)
        .expect("pat is made");
    let hold = "INSERT INTO account_nicks (nick_key, nick, account, since_ms) \
                SELECT 'olive', 'Olive', id, 2 FROM accounts WHERE name_key = 'pat'";
    let outcome = create_against_an_uncommitted_insert(&pg, hold, "olive");
    assert!(
        matches!(outcome, Err(AccountError::NickTaken(ref name)) if name == "olive"),
        "{outcome:?}"
    );
    assert!(store.find("olive").expect("reads").is_none());
}
