//! Support for the tests of a network of in-process nodes: their
//! configuration, and waiting until one node has heard of another's
//! users and rooms (a bounded poll of WHOIS or NAMES).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rookery::ServerHandle;

use super::{Client, test_config};

/// The nodes of the three-node tests; node `a`'s server is `a.test`.
pub const NODES: [&str; 3] = ["a", "b", "c"];

/// Registers one client per entry of `users` (nick, index in [`NODES`])
/// on the nodes listening at `addrs`, and waits until every node knows
/// every one of them.
pub async fn register_everywhere(addrs: &[SocketAddr], users: &[(&str, usize)]) -> Vec<Client> {
    let mut clients = Vec::new();
    for &(nick, node) in users {
        clients.push(Client::register(addrs[node], nick).await);
    }
    for (i, client) in clients.iter_mut().enumerate() {
        for (j, &(nick, node)) in users.iter().enumerate() {
            if i != j {
                await_user_on(client, nick, &format!("{}.test", NODES[node])).await;
            }
        }
    }
    clients
}

/// How often a node says it is alive, in milliseconds: small, so a split
/// is noticed quickly.
pub const HEARTBEAT_MS: u64 = 300;

/// How long a node may stay silent before the others split it off.
pub const NODE_TIMEOUT_MS: u64 = 1500;

/// How long the nodes may take to learn of each other's users and rooms.
pub const CONVERGE: Duration = Duration::from_secs(10);

/// The pause between two looks at a condition being waited for.
pub const POLL: Duration = Duration::from_millis(100);

/// The `[network]` part of a node's configuration, as dotted keys; the
/// others split it off after `timeout_ms` of silence.
pub fn network_keys(node: &str, nats: &str, timeout_ms: u64) -> String {
    format!(
        "network.node = \"{node}\"\nnetwork.nats = [\"{nats}\"]\n\
         network.heartbeat_ms = {HEARTBEAT_MS}\nnetwork.node_timeout_ms = {timeout_ms}\n"
    )
}

/// Starts an in-process node named `node`, its server called
/// `<node>.test`, connected to the NATS server at `nats` only, with the
/// dotted keys `extra` added.
pub async fn start_node(node: &str, nats: &str, timeout_ms: u64, extra: &str) -> ServerHandle {
    let config = test_config(&format!(
        "server.name = \"{node}.test\"\n{}{extra}\n",
        network_keys(node, nats, timeout_ms)
    ));
    match rookery::start(config).await {
        Ok(server) => server,
        Err(error) => panic!("node {node} did not start: {error}"),
    }
}

/// WHOIS `nick` as `client` sees it: its 312 line (the server it is on),
/// or `None` when the node does not know the nick; and its 319 line (the
/// rooms shown), if any.
pub async fn whois(client: &mut Client, nick: &str) -> (Option<String>, Option<String>) {
    client.send(&format!("WHOIS {nick}")).await;
    let (mut server, mut rooms) = (None, None);
    loop {
        let line = client.expect_containing("").await;
        if line.contains(" 312 ") {
            server = Some(line);
        } else if line.contains(" 319 ") {
            rooms = Some(line);
        } else if line.contains(" 318 ") {
            return (server, rooms);
        }
    }
}

/// The 312 line of WHOIS `nick` (the server it is on), or `None` when
/// `client`'s node does not know the nick.
pub async fn whois_server(client: &mut Client, nick: &str) -> Option<String> {
    whois(client, nick).await.0
}

/// Polls WHOIS until `client`'s node shows `nick` on `server`: the node
/// has heard of that user from the other node.
pub async fn await_user_on(client: &mut Client, nick: &str, server: &str) {
    let deadline = Instant::now() + CONVERGE;
    loop {
        let seen = whois_server(client, nick).await;
        if seen.as_deref().is_some_and(|line| line.contains(server)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{nick} on {server} never appeared; last WHOIS said {seen:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// The nicks NAMES lists for `room`, without their status prefixes.
pub async fn names(client: &mut Client, room: &str) -> Vec<String> {
    client.send(&format!("NAMES {room}")).await;
    let mut nicks = Vec::new();
    loop {
        let line = client.expect_containing("").await;
        if line.contains(" 353 ") {
            let (_, listed) = line.split_once(" :").expect("a 353 line has a list");
            nicks.extend(
                listed
                    .split(' ')
                    .map(|nick| nick.trim_start_matches(['@', '+']).to_owned()),
            );
        } else if line.contains(" 366 ") {
            return nicks;
        }
    }
}

/// Polls NAMES until `client`'s node lists every one of `nicks` in `room`.
pub async fn await_members(client: &mut Client, room: &str, nicks: &[&str]) {
    let deadline = Instant::now() + CONVERGE;
    loop {
        let listed = names(client, room).await;
        if nicks.iter().all(|nick| listed.iter().any(|n| n == nick)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "NAMES {room} never listed all of {nicks:?}; last {listed:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Asks for `room`'s modes until they include every one of `letters`, as
/// `client`'s node sees them (a room that node has not heard of yet
/// answers 403, and is asked again); the last 324.
pub async fn await_modes(client: &mut Client, room: &str, letters: &str) -> String {
    let deadline = Instant::now() + CONVERGE;
    loop {
        client.send(&format!("MODE {room}")).await;
        let answer = loop {
            let line = client.expect_containing(room).await;
            if line.contains(" 324 ") || line.contains(" 403 ") {
                break line;
            }
        };
        if answer.contains(" 324 ") {
            client.expect_containing(" 329 ").await;
            let field = answer.split(' ').nth(4).unwrap_or_default();
            if letters.chars().all(|letter| field.contains(letter)) {
                return answer;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{room} never showed +{letters}; last {answer}"
        );
        tokio::time::sleep(POLL).await;
    }
}
