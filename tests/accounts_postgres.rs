//! Accounts in the PostgreSQL database a network shares: three nodes on a
//! NATS cluster and one database. An account registered on one node logs
//! in on another; a login on one node shows on the others; a registered
//! nick is reserved on every node; one name registered on two nodes at
//! once goes to one of them; and `rookery history migrate` brings a
//! SQLite node's accounts along.

mod common;

use std::net::SocketAddr;
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::nats::NatsCluster;
use common::network::{self, CONVERGE, NODE_TIMEOUT_MS, NODES, POLL, await_user_on};
use common::postgres::Postgres;
use common::{Client, TempDir, test_config_with_history};
use rookery::ServerHandle;

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

/// Connects as `nick` and runs SASL PLAIN for `account`, with `caps`
/// asked for too; returns the client, registered, and the line that ended
/// the exchange (903 or 904).
async fn sasl_plain(
    addr: SocketAddr,
    nick: &str,
    account: &str,
    password: &str,
) -> (Client, Vec<String>) {
    let mut client = Client::connect(addr).await;
    client.send("CAP LS 302").await;
    client.expect_containing("sasl").await;
    client.send("CAP REQ sasl").await;
    client.expect_containing("ACK").await;
    client.send(&format!("NICK {nick}")).await;
    client.send(&format!("USER {nick} 0 * :{nick}")).await;
    client.send("AUTHENTICATE PLAIN").await;
    assert_eq!(client.next_line().await.as_deref(), Some("AUTHENTICATE +"));
    let response = STANDARD.encode(format!("{account}\0{account}\0{password}"));
    client.send(&format!("AUTHENTICATE {response}")).await;
    let mut exchange = Vec::new();
    loop {
        let line = client.next_line().await.expect("the exchange ends");
        let end = line.contains(" 903 ") || line.contains(" 904 ");
        exchange.push(line);
        if end {
            break;
        }
    }
    client.send("CAP END").await;
    client.expect_containing(" 376 ").await;
    (client, exchange)
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

    let (_, wrong) = sasl_plain(network.addr(2), "alice1", "alice", "wrong").await;
    assert!(wrong.last().is_some_and(|line| line.contains(" 904 ")), "{wrong:?}");

    let (mut on_c, exchange) = sasl_plain(network.addr(2), "alice2", "ALICE", "hunter2").await;
    assert!(
        exchange.iter().any(|line| line.contains(" 900 alice2 ")
            && line.ends_with(" alice :You are now logged in as alice")),
        "{exchange:?}"
    );
    assert!(exchange.last().is_some_and(|line| line.contains(" 903 ")), "{exchange:?}");

    await_user_on(&mut watcher, "alice2", "c.test").await;
    await_logged_in(&mut watcher, "alice2", "alice").await;

    // A login after introduction travels too, with account-notify.
    let mut late = Client::register(network.addr(2), "late").await;
    await_user_on(&mut watcher, "late", "c.test").await;
    watcher.send("MONITOR + late").await;
    late.send("NS IDENTIFY alice hunter2").await;
    late.expect_containing(" 900 ").await;
    await_logged_in(&mut watcher, "late", "alice").await;
    on_c.send("QUIT").await;
    network.stop().await;
}
