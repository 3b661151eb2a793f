//! What operators do across a network of three in-process nodes over a
//! real NATS cluster: MAP lists every node with its users, a K-line set on
//! one node holds on all of them (and reaches a node that starts later)
//! until it is lifted on any, and `REHASH *` makes every node reload its
//! own configuration file.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use common::nats::NatsCluster;
use common::network::{self, CONVERGE, NODE_TIMEOUT_MS, NODES, POLL, await_user_on, network_keys};
use common::{Client, TempDir};
use rookery::ServerHandle;
use rookery::config;

/// Every node's operator block: `root` with the password `hunter2`.
const OPER: &str = "oper = [{ name = \"root\", password_hash = \"$argon2id$v=19$m=8,t=1,p=1$cm9va2VyeS10ZXN0LXNhbHQ$yiaiaoZnKPZM0CWZ8NzJYpMiTnaZSktRUpf408FhNKA\" }]";

/// The message of the day every node starts with.
const FIRST_MOTD: &str = "Welcome to the first configuration";

/// A node's configuration file as an admin would write it: its server
/// `<node>.test`, its bans file beside it, and `motd`.
fn config_text(dir: &TempDir, node: &str, nats: &str, motd: &str) -> String {
    let bans = dir.join(&format!("bans-{node}.toml"));
    format!(
        "server.name = \"{node}.test\"\nserver.bans_file = {:?}\nserver.motd = {motd:?}\n\
         flood.enabled = false\nhistory.enabled = false\ncloaking.enabled = false\n\
         limits.exempt_ips = [\"127.0.0.0/8\"]\nhttp = []\n{}{OPER}\n\n\
         [[listen]]\naddress = \"127.0.0.1:0\"\n",
        bans.display().to_string(),
        network_keys(node, nats, NODE_TIMEOUT_MS),
    )
}

/// Three nodes a, b and c, each on its own server of a three-server NATS
/// cluster and started from its own configuration file, which REHASH
/// reloads.
struct Network {
    nodes: Vec<ServerHandle>,
    /// Each node's configuration file.
    files: Vec<PathBuf>,
    dir: TempDir,
    /// Declared last: the NATS servers stop after the nodes.
    cluster: NatsCluster,
}

impl Network {
    async fn start() -> Network {
        let mut network = Network {
            nodes: Vec::new(),
            files: Vec::new(),
            dir: TempDir::new("network-ops"),
            cluster: NatsCluster::start(3),
        };
        for (i, node) in NODES.into_iter().enumerate() {
            network.start_node(node, i).await;
        }
        network
    }

    /// Starts node `node` from a file of its own, on NATS server `nats`.
    async fn start_node(&mut self, node: &str, nats: usize) {
        let file = self.dir.join(&format!("{node}.toml"));
        let text = config_text(&self.dir, node, &self.cluster.url(nats), FIRST_MOTD);
        std::fs::write(&file, text).expect("write a node's configuration");
        let loaded = match config::load(&file) {
            Ok(loaded) => loaded,
            Err(error) => panic!("node {node}'s configuration: {error}"),
        };
        let options = rookery::server::Options {
            config_file: Some(file.clone()),
            ..Default::default()
        };
        let server = match rookery::start_with(loaded, options).await {
            Ok(server) => server,
            Err(error) => panic!("node {node} did not start: {error}"),
        };
        self.nodes.push(server);
        self.files.push(file);
    }

    fn addr(&self, i: usize) -> SocketAddr {
        self.nodes[i].local_addrs()[0]
    }

    async fn shutdown(self) {
        for node in self.nodes {
            node.shutdown().await;
        }
    }
}

/// Registers one client per entry of `users` (nick, node index) and waits
/// until every node knows every one of them.
async fn register_everywhere(network: &Network, users: &[(&str, usize)]) -> Vec<Client> {
    let addrs: Vec<SocketAddr> = (0..NODES.len()).map(|i| network.addr(i)).collect();
    network::register_everywhere(&addrs, users).await
}

async fn become_oper(client: &mut Client) {
    client.send("OPER root hunter2").await;
    client.expect_containing(" 381 ").await;
}

/// The text of every 006 line MAP sends `client`, up to its 007.
async fn map(client: &mut Client) -> Vec<String> {
    client.send("MAP").await;
    let mut rows = Vec::new();
    loop {
        let line = client.expect_containing("").await;
        if line.contains(" 006 ") {
            let (_, text) = line.split_once(" :").expect("a 006 line has a text");
            rows.push(text.to_owned());
        } else if line.contains(" 007 ") {
            return rows;
        }
    }
}

/// Polls MAP until it lists three servers (a node's server name arrives
/// with its heartbeat), and returns that map.
async fn full_map(client: &mut Client) -> Vec<String> {
    let deadline = Instant::now() + CONVERGE;
    loop {
        let rows = map(client).await;
        if rows.len() == NODES.len() {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "MAP never listed three servers; last {rows:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// MAP on a lists a first, then b and c, each with its users; an operator
/// also sees each server's node name.
#[tokio::test]
async fn map_lists_every_node_with_its_users() {
    let network = Network::start().await;
    let mut users = register_everywhere(
        &network,
        &[("alice", 0), ("bob", 1), ("carol", 2), ("dave", 2)],
    )
    .await;
    let alice = &mut users[0];
    assert_eq!(
        full_map(alice).await,
        ["a.test    (1)", "|-b.test  (1)", "`-c.test  (2)"]
    );
    become_oper(alice).await;
    assert_eq!(
        map(alice).await,
        [
            "a.test    (1) [node a]",
            "|-b.test  (1) [node b]",
            "`-c.test  (2) [node c]"
        ]
    );
    network.shutdown().await;
}

/// Whether a client registering on `addr` as `nick` with the user name
/// `evil` is refused with 465 (true) or welcomed (false).
async fn refused_as_evil(addr: SocketAddr, nick: &str) -> bool {
    let mut client = Client::connect(addr).await;
    client.send(&format!("NICK {nick}")).await;
    client.send("USER evil 0 * :evil").await;
    loop {
        let line = client.expect_containing("").await;
        if line.contains(" 465 ") {
            return true;
        }
        if line.contains(" 001 ") {
            return false;
        }
    }
}

/// Everyone in `clients` joins `room`, and each sees the last one join.
async fn all_join(clients: &mut [Client], nicks: &[&str], room: &str) {
    for (client, nick) in clients.iter_mut().zip(nicks) {
        client.send(&format!("JOIN {room}")).await;
        client
            .expect_containing(&format!(" 366 {nick} {room}"))
            .await;
    }
    let last = nicks.last().copied().unwrap_or_default();
    let joined = format!(":{last}!~{last}@127.0.0.1 JOIN {room}");
    let others = clients.len().saturating_sub(1);
    for client in &mut clients[..others] {
        client.expect_containing(&joined).await;
    }
}

/// Sends `NICK new` as `changer` and waits until each of `watchers` saw
/// it: the events the changer's node sent before have reached their nodes
/// (one node's events arrive in the order it sent them).
async fn nick_seen(changer: &mut Client, old: &str, new: &str, watchers: &mut [&mut Client]) {
    changer.send(&format!("NICK {new}")).await;
    let change = format!(":{old}!~{old}@127.0.0.1 NICK {new}");
    changer.expect_containing(&change).await;
    for watcher in watchers {
        watcher.expect_containing(&change).await;
    }
}

/// Registers `nick` on `addr` with the user name `evil`.
async fn register_evil(addr: SocketAddr, nick: &str) -> Client {
    let mut client = Client::connect(addr).await;
    client.send(&format!("NICK {nick}")).await;
    client.send("USER evil 0 * :evil").await;
    client.expect_containing(" 376 ").await;
    client
}

/// A K-line set by an oper on a disconnects the matching user of c and
/// refuses a matching newcomer on b; UNKLINE by an oper on b lets such a
/// user in again on every node.
#[tokio::test]
async fn a_kline_set_on_one_node_holds_on_every_node_until_lifted_on_another() {
    let network = Network::start().await;
    let mut users = register_everywhere(&network, &[("alice", 0), ("bob", 1), ("carol", 2)]).await;
    let mut evil = register_evil(network.addr(2), "evil").await;
    all_join(&mut users, &["alice", "bob", "carol"], "#ops").await;
    let [alice, bob, carol] = &mut users[..] else {
        unreachable!("three users were registered");
    };
    become_oper(alice).await;
    become_oper(bob).await;

    alice.send("KLINE *evil@* :spamming").await;
    alice
        .expect_containing("NOTICE alice :Added K-line for *evil@* (permanent): spamming")
        .await;
    let banned = evil.expect_containing(" 465 ").await;
    assert!(
        banned.ends_with(":You are banned from this server: spamming"),
        "{banned}"
    );
    assert!(evil.is_closed().await, "evil's connection was closed");
    nick_seen(alice, "alice", "alice2", &mut [&mut *bob]).await;
    assert!(
        refused_as_evil(network.addr(1), "evil_b").await,
        "b let a K-lined user in"
    );

    bob.send("UNKLINE *evil@*").await;
    bob.expect_containing("NOTICE bob :Removed K-line for *evil@*")
        .await;
    nick_seen(bob, "bob", "bob2", &mut [&mut *alice, &mut *carol]).await;
    for (i, nick) in ["evil_a", "evil_b", "evil_c"].into_iter().enumerate() {
        assert!(
            !refused_as_evil(network.addr(i), nick).await,
            "{} still refuses a K-lined user after UNKLINE",
            NODES[i]
        );
    }
    network.shutdown().await;
}

/// A node that starts after a K-line was set gets it in the burst of the
/// node that set it: a matching user is refused there too.
#[tokio::test]
async fn a_node_that_starts_later_gets_the_klines_in_the_burst() {
    let mut network = Network::start().await;
    let mut alice = Client::register(network.addr(0), "alice").await;
    become_oper(&mut alice).await;
    alice.send("KLINE *evil@* :spamming").await;
    alice.expect_containing("NOTICE alice :Added K-line").await;

    network.start_node("d", 0).await;
    let mut watcher = Client::register(network.addr(3), "watcher").await;
    // a sends d its users, then its K-lines, in that order.
    await_user_on(&mut watcher, "alice", "a.test").await;
    assert!(
        refused_as_evil(network.addr(3), "evil_d").await,
        "the late node let a K-lined user in"
    );
    network.shutdown().await;
}

/// The 376-terminated MOTD `client` is sent, without the `- ` of each line.
async fn motd(client: &mut Client) -> Vec<String> {
    client.send("MOTD").await;
    let mut lines = Vec::new();
    loop {
        let line = client.expect_containing("").await;
        if line.contains(" 372 ") {
            let (_, text) = line.split_once(" :- ").expect("a 372 line has a text");
            lines.push(text.to_owned());
        } else if line.contains(" 376 ") {
            return lines;
        }
    }
}

/// `REHASH *` by an oper on a: every node reloads its own file, b and c
/// answer, and c shows its new MOTD.
#[tokio::test]
async fn rehash_star_makes_every_node_reload_its_own_configuration() {
    let network = Network::start().await;
    let mut users = register_everywhere(&network, &[("alice", 0), ("carol", 2)]).await;
    let [alice, carol] = &mut users[..] else {
        unreachable!("two users were registered");
    };
    assert_eq!(motd(carol).await, [FIRST_MOTD]);
    let changed = config_text(
        &network.dir,
        "c",
        &network.cluster.url(2),
        "Welcome to the second configuration",
    );
    std::fs::write(&network.files[2], changed).expect("rewrite c's configuration");
    // Every node must be known to a before it can be asked.
    full_map(alice).await;
    become_oper(alice).await;

    alice.send("REHASH *").await;
    alice.expect_containing(" 382 alice ").await;
    alice
        .expect_containing(
            "NOTICE alice :REHASH: asked 2 other nodes to reload their configuration",
        )
        .await;
    let mut answered = Vec::new();
    while answered.len() < 2 {
        let line = alice.expect_containing("NOTICE alice :REHASH on ").await;
        answered.push(line);
    }
    answered.sort();
    assert_eq!(
        answered,
        [
            ":a.test NOTICE alice :REHASH on b.test: configuration reloaded",
            ":a.test NOTICE alice :REHASH on c.test: configuration reloaded",
        ]
    );
    assert_eq!(motd(carol).await, ["Welcome to the second configuration"]);
    network.shutdown().await;
}
