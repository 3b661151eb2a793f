//! The figures `/metrics` shows move with what happens on the wire:
//! connections, messages and their deliveries, failed OPER and SASL, a
//! flooder and a client whose send queue overflowed. Read through
//! `ServerHandle::metrics`, the same set the HTTP listener renders.
//!
//! The tests run on one thread: the core finishes an event, counting
//! included, before any connection task writes what it queued, so a
//! figure is up to date once a client has read the line it caused.

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{Client, TempDir, test_config, test_config_with_history};
use rookery::ServerHandle;

/// The value of the sample named exactly `series` (name and labels) in
/// the server's rendered metrics.
fn value(server: &ServerHandle, series: &str) -> f64 {
    let text = server.metrics().render();
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
        .parse()
        .unwrap_or_else(|_| panic!("{series} is not a number"))
}

/// The open-connections series of the server's first listener.
fn clients_series(server: &ServerHandle) -> String {
    let listener = server.local_addrs()[0];
    format!("rookery_clients{{listener=\"{listener}\",tls=\"false\",websocket=\"false\"}}")
}

/// Lets the connection tasks that are finishing run to their end: a
/// closed connection leaves the gauge when its task ends, which no line
/// announces. Bounded, and no waiting on the clock.
async fn until_clients(server: &ServerHandle, open: f64) {
    let series = clients_series(server);
    for _ in 0..10_000 {
        if value(server, &series) == open {
            return;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(value(server, &series), open, "{series}");
}

#[tokio::test]
async fn a_room_message_counts_once_and_one_delivery_per_member_who_hears_it() {
    let server = rookery::start(test_config("")).await.unwrap();
    let addr = server.local_addrs()[0];
    let nicks = ["alice", "bob", "carol", "dave"];
    let mut clients = Vec::new();
    for nick in nicks {
        clients.push(Client::register_in(addr, nick, "#room").await);
    }
    // Everyone has seen everyone join.
    for client in &mut clients[..3] {
        client.expect_containing(":dave!").await;
    }
    assert_eq!(value(&server, &clients_series(&server)), 4.0);
    assert_eq!(value(&server, "rookery_registered_clients"), 4.0);
    assert_eq!(value(&server, "rookery_connections_total"), 4.0);
    assert_eq!(value(&server, "rookery_rooms"), 1.0);
    let messages = value(&server, "rookery_messages_received_total");
    let deliveries = value(&server, "rookery_deliveries_total");
    let lines = value(&server, "rookery_lines_received_total");

    clients[0].send("PRIVMSG #room :hello all").await;
    for client in &mut clients[1..] {
        client.expect_containing("PRIVMSG #room :hello all").await;
    }
    assert_eq!(
        value(&server, "rookery_messages_received_total"),
        messages + 1.0
    );
    assert_eq!(value(&server, "rookery_deliveries_total"), deliveries + 3.0);
    assert_eq!(value(&server, "rookery_lines_received_total"), lines + 1.0);

    // One command to two targets is one message, three deliveries.
    clients[0].send("PRIVMSG bob,#room :twice").await;
    clients[3].expect_containing("PRIVMSG #room :twice").await;
    clients[1].expect_containing("PRIVMSG #room :twice").await;
    assert_eq!(
        value(&server, "rookery_messages_received_total"),
        messages + 2.0
    );
    assert_eq!(value(&server, "rookery_deliveries_total"), deliveries + 7.0);

    let mut dave = clients.pop().unwrap();
    dave.send("QUIT :bye").await;
    assert!(dave.is_closed().await);
    clients[0]
        .expect_containing(":dave!~dave@127.0.0.1 QUIT")
        .await;
    assert_eq!(value(&server, "rookery_registered_clients"), 3.0);
    until_clients(&server, 3.0).await;
    server.shutdown().await;
}

#[tokio::test]
async fn failed_oper_and_sasl_attempts_and_a_d_lined_address_are_counted() {
    let dir = TempDir::new("metrics-failures");
    const HASH: &str = "$argon2id$v=19$m=8,t=1,p=1$cm9va2VyeS10ZXN0LXNhbHQ$yiaiaoZnKPZM0CWZ8NzJYpMiTnaZSktRUpf408FhNKA";
    // Bans in memory: the D-line below must not write a file.
    let oper =
        format!("server.bans_file = \"\"\n[[oper]]\nname = \"root\"\npassword_hash = \"{HASH}\"\n");
    let config = test_config_with_history(&dir.join("history.db"), &oper);
    let server = rookery::start(config).await.unwrap();
    let addr = server.local_addrs()[0];
    let mut alice = Client::with_account(addr, "alice", "hunter2").await;

    alice.send("OPER nobody secret").await;
    alice.expect_containing(" 491 alice ").await;
    alice.send("OPER root wrong").await;
    alice.expect_containing(" 464 alice ").await;
    assert_eq!(value(&server, "rookery_oper_failures_total"), 2.0);
    alice.send("OPER root hunter2").await;
    alice.expect_containing(" 381 alice ").await;
    assert_eq!(value(&server, "rookery_oper_failures_total"), 2.0);

    alice.send("DLINE 127.0.0.2 :spam").await;
    alice.expect_containing("Added D-line").await;
    let mut mallory = Client::connect_from(addr, [127, 0, 0, 2].into()).await;
    mallory.expect_containing(" 465 ").await;
    let dline = "rookery_connections_refused_total{reason=\"dline\"}";
    assert_eq!(value(&server, dline), 1.0);

    assert_eq!(value(&server, "rookery_sasl_failures_total"), 0.0);
    let mut bob = Client::connect(addr).await;
    bob.send("CAP REQ sasl").await;
    bob.expect_containing("ACK").await;
    bob.send("AUTHENTICATE X-UNKNOWN").await;
    bob.expect_containing(" 904 ").await;
    bob.send("AUTHENTICATE PLAIN").await;
    bob.expect_containing("AUTHENTICATE +").await;
    let response = STANDARD.encode("alice\0alice\0wrong");
    bob.send(&format!("AUTHENTICATE {response}")).await;
    bob.expect_containing(" 904 ").await;
    assert_eq!(value(&server, "rookery_sasl_failures_total"), 2.0);
    bob.send("AUTHENTICATE PLAIN").await;
    bob.expect_containing("AUTHENTICATE +").await;
    let response = STANDARD.encode("alice\0alice\0hunter2");
    bob.send(&format!("AUTHENTICATE {response}")).await;
    bob.expect_containing(" 903 ").await;
    assert_eq!(value(&server, "rookery_sasl_failures_total"), 2.0);
    server.shutdown().await;
}

#[tokio::test]
async fn a_flooder_is_counted_as_a_flood_disconnect() {
    let mut config = test_config("");
    config.flood.enabled = true;
    config.flood.lines_per_second = 2.0;
    config.flood.burst = 5;
    config.flood.max_backlog = 10;
    let server = rookery::start(config).await.unwrap();
    let mut mallory = Client::register(server.local_addrs()[0], "mallory").await;
    assert_eq!(value(&server, "rookery_flood_disconnects_total"), 0.0);
    let flood: String = (0..200).map(|n| format!("PING :{n}\r\n")).collect();
    mallory.send_raw(flood.as_bytes()).await;
    mallory.expect_containing("(Excess Flood)").await;
    assert_eq!(value(&server, "rookery_flood_disconnects_total"), 1.0);
    assert_eq!(value(&server, "rookery_sendq_exceeded_total"), 0.0);
    server.shutdown().await;
}

#[tokio::test]
async fn a_send_queue_overflow_is_counted() {
    let mut config = test_config("");
    // A message of the day larger than the whole send queue, queued in
    // one go at registration: the queue overflows before a byte is written.
    config.limits.sendq_bytes = 4096;
    let motd: Vec<String> = (0..40)
        .map(|n| format!("{n} {}", "m".repeat(200)))
        .collect();
    config.server.motd = Some(motd.join("\n"));
    let server = rookery::start(config).await.unwrap();
    let mut sloth = Client::connect(server.local_addrs()[0]).await;
    sloth.send("NICK sloth").await;
    sloth.send("USER sloth 0 * :Sloth").await;
    assert!(sloth.is_closed().await);
    assert_eq!(value(&server, "rookery_sendq_exceeded_total"), 1.0);
    assert_eq!(value(&server, "rookery_registered_clients"), 0.0);
    assert_eq!(value(&server, "rookery_flood_disconnects_total"), 0.0);
    server.shutdown().await;
}

#[tokio::test]
async fn refused_connections_are_counted_by_reason() {
    let mut config = test_config("");
    config.limits.max_clients = 1;
    let server = rookery::start(config).await.unwrap();
    let addr = server.local_addrs()[0];
    let _alice = Client::register(addr, "alice").await;
    let mut refused = Client::connect(addr).await;
    refused.expect_containing("Server is full").await;
    let series = "rookery_connections_refused_total{reason=\"max_clients\"}";
    assert_eq!(value(&server, series), 1.0);
    assert_eq!(value(&server, "rookery_connections_total"), 1.0);
    server.shutdown().await;
}

#[tokio::test]
async fn history_commits_are_timed_and_the_queue_drains() {
    let dir = TempDir::new("metrics-history");
    let config = test_config_with_history(&dir.join("history.db"), "");
    let server = rookery::start(config).await.unwrap();
    let addr = server.local_addrs()[0];
    let mut alice = Client::register_in(addr, "alice", "#room").await;
    let mut bob = Client::register_in(addr, "bob", "#room").await;
    let commits = value(&server, "rookery_history_commit_seconds_count");
    alice.send("PRIVMSG #room :kept").await;
    bob.expect_containing("PRIVMSG #room :kept").await;
    // A CHATHISTORY query is answered once the database holds what was
    // said before it.
    let mut carol = Client::connect(addr).await;
    carol.send("CAP REQ :draft/chathistory batch").await;
    carol.send("CAP END").await;
    carol.register_as("carol").await;
    carol.send("JOIN #room").await;
    carol.expect_containing(" 366 ").await;
    carol.send("CHATHISTORY LATEST #room * 10").await;
    carol.expect_containing("] kept").await;
    let after = value(&server, "rookery_history_commit_seconds_count");
    assert!(after > commits, "{commits} commits before, {after} after");
    let inf = "rookery_history_commit_seconds_bucket{le=\"+Inf\"}";
    assert_eq!(value(&server, inf), after);
    assert!(value(&server, "rookery_history_commit_seconds_sum") >= 0.0);
    assert_eq!(value(&server, "rookery_history_queue_depth"), 0.0);
    assert_eq!(value(&server, "rookery_history_write_failures_total"), 0.0);
    server.shutdown().await;
}
