//! Each room's state in the network's key-value bucket, over a real NATS
//! cluster: a node that starts late shows a room's key, limit, bans and
//! topic to its first joiner; a room created on two nodes at once has
//! exactly one op; two ops on two nodes changing one room at once leave
//! both changes on every node (two quick ones from one of them too); a room left by its last member, or held by
//! a node that stops, is created anew by the next joiner; and a new room cannot be joined (437) while
//! the bucket cannot be reached.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::Client;
use common::nats::NatsCluster;
use common::network::{
    CONVERGE, NODE_TIMEOUT_MS, NODES, POLL, await_members, await_modes, await_user_on,
    register_everywhere, start_node, whois_server,
};
use rookery::ServerHandle;

/// How many times a fresh room is joined on two nodes at once.
const CREATE_RACES: usize = 50;

/// How many times two ops on two nodes change one room at once.
const CHANGE_RACES: usize = 10;

/// Every round connects anew from loopback.
const EXEMPT: &str = "limits.exempt_ips = [\"127.0.0.0/8\"]\n";

/// In-process nodes, each on its own server of a three-server NATS
/// cluster.
struct Network {
    nodes: Vec<ServerHandle>,
    /// Declared last: the NATS servers stop after the nodes.
    cluster: NatsCluster,
}

impl Network {
    /// Starts the first `count` of [`NODES`].
    async fn start(count: usize) -> Network {
        let mut network = Network {
            nodes: Vec::new(),
            cluster: NatsCluster::start(3),
        };
        for _ in 0..count {
            network.start_next().await;
        }
        network
    }

    /// Starts the next node of [`NODES`].
    async fn start_next(&mut self) {
        let i = self.nodes.len();
        let url = self.cluster.url(i);
        let node = start_node(NODES[i], &url, NODE_TIMEOUT_MS, EXEMPT).await;
        self.nodes.push(node);
    }

    fn addrs(&self) -> Vec<SocketAddr> {
        self.nodes
            .iter()
            .map(|node| node.local_addrs()[0])
            .collect()
    }

    async fn shutdown(self) {
        for node in self.nodes {
            node.shutdown().await;
        }
    }
}

/// The members NAMES lists for `room`, with their prefixes.
async fn names_with_prefixes(client: &mut Client, room: &str) -> Vec<String> {
    client.send(&format!("NAMES {room}")).await;
    let mut nicks = Vec::new();
    loop {
        let line = client.expect_containing("").await;
        if line.contains(" 353 ") {
            let (_, listed) = line.split_once(" :").expect("a 353 line has a list");
            nicks.extend(listed.split(' ').map(str::to_owned));
        } else if line.contains(" 366 ") {
            return nicks;
        }
    }
}

/// alice on a gives #vault a key, a limit, a ban and a topic while only a
/// and b run; c starts afterwards, and its first joiner sees all of them.
#[tokio::test]
async fn a_node_started_later_shows_a_rooms_state_to_its_first_joiner() {
    let mut network = Network::start(2).await;
    let mut users = register_everywhere(&network.addrs(), &[("alice", 0), ("bob", 1)]).await;
    let [alice, bob] = &mut users[..] else {
        unreachable!("two users were registered");
    };
    alice.send("JOIN #vault").await;
    alice.expect_containing(" 366 alice #vault ").await;
    alice.send("MODE #vault +kl sesame 10").await;
    alice.expect_containing(" MODE #vault +kl sesame 10").await;
    alice.send("MODE #vault +b troll!*@*").await;
    alice.expect_containing(" MODE #vault +b troll!*@*").await;
    alice.send("TOPIC #vault :kept in the bucket").await;
    alice.expect_containing(" TOPIC #vault ").await;
    // bob on b sees the room's state too, and waits for it before c starts.
    await_members(bob, "#vault", &["alice"]).await;
    await_modes(bob, "#vault", "kl").await;

    network.start_next().await;
    let c = network.addrs()[2];
    let mut carol = Client::register(c, "carol").await;
    await_user_on(&mut carol, "alice", "a.test").await;
    carol.send("JOIN #vault sesame").await;
    let topic = carol.expect_containing(" 332 carol #vault ").await;
    assert!(topic.ends_with(":kept in the bucket"), "{topic}");
    carol.expect_containing(" 366 carol #vault ").await;
    let modes = await_modes(&mut carol, "#vault", "kl").await;
    assert!(modes.ends_with(" sesame 10"), "{modes}");
    carol.send("TOPIC #vault").await;
    let topic = carol.expect_containing(" 332 ").await;
    assert!(topic.ends_with(":kept in the bucket"), "{topic}");
    carol.send("MODE #vault +b").await;
    let ban = carol.expect_containing(" 367 ").await;
    assert!(ban.contains(" #vault troll!*@* alice!"), "{ban}");
    carol.expect_containing(" 368 ").await;
    network.shutdown().await;
}

/// Round after round, a user on a and one on b join the same fresh room
/// at the same instant: both get in, and each node shows exactly one op.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_joined_on_two_nodes_at_once_has_exactly_one_op() {
    let network = Network::start(2).await;
    let mut users = register_everywhere(&network.addrs(), &[("left", 0), ("right", 1)]).await;
    let [left, right] = &mut users[..] else {
        unreachable!("two users were registered");
    };
    let started = Instant::now();
    for round in 0..CREATE_RACES {
        let room = format!("#race{round}");
        left.send(&format!("JOIN {room}")).await;
        right.send(&format!("JOIN {room}")).await;
        left.expect_containing(&format!(" 366 left {room} ")).await;
        right
            .expect_containing(&format!(" 366 right {room} "))
            .await;
        for client in [&mut *left, &mut *right] {
            await_members(client, &room, &["left", "right"]).await;
            let listed = names_with_prefixes(client, &room).await;
            let ops = listed.iter().filter(|nick| nick.starts_with('@')).count();
            assert_eq!(ops, 1, "round {round}: {listed:?}");
        }
    }
    eprintln!("{CREATE_RACES} creation races took {:?}", started.elapsed());
    network.shutdown().await;
}

/// alice on a and bob on b, both ops, set different modes on one room at
/// the same instant, round after round: every node, c too, ends with both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_ops_changing_one_room_at_once_both_hold_everywhere() {
    let network = Network::start(3).await;
    let mut users =
        register_everywhere(&network.addrs(), &[("alice", 0), ("bob", 1), ("carol", 2)]).await;
    let [alice, bob, carol] = &mut users[..] else {
        unreachable!("three users were registered");
    };
    alice.send("JOIN #both").await;
    alice.expect_containing(" 366 alice #both ").await;
    for (client, nick) in [(&mut *bob, "bob"), (&mut *carol, "carol")] {
        await_members(client, "#both", &["alice"]).await;
        client.send("JOIN #both").await;
        client
            .expect_containing(&format!(" 366 {nick} #both "))
            .await;
    }
    await_members(alice, "#both", &["alice", "bob", "carol"]).await;
    alice.send("MODE #both +o bob").await;
    bob.expect_containing(" MODE #both +o bob").await;

    for round in 0..CHANGE_RACES {
        let (sign, unsign) = if round % 2 == 0 {
            ('+', '-')
        } else {
            ('-', '+')
        };
        alice.send(&format!("MODE #both {sign}i")).await;
        bob.send(&format!("MODE #both {sign}m")).await;
        for client in [&mut *alice, &mut *bob, &mut *carol] {
            let deadline = Instant::now() + CONVERGE;
            loop {
                client.send("MODE #both").await;
                let shown = client.expect_containing(" 324 ").await;
                client.expect_containing(" 329 ").await;
                let field = shown.split(' ').nth(4).unwrap_or_default().to_owned();
                let has = |letter| field.contains(letter);
                let settled = if sign == '+' {
                    has('i') && has('m')
                } else {
                    !has('i') && !has('m')
                };
                if settled {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "round {round}: {sign}i and {sign}m never both held (not {unsign}); last {shown}"
                );
                tokio::time::sleep(POLL).await;
            }
        }
    }
    network.shutdown().await;
}

/// Until `room`'s modes shown to `client` have every one of `letters` (or,
/// `adding` false, none of them), within [`CONVERGE`].
async fn await_flags(client: &mut Client, room: &str, adding: bool, letters: &str, round: usize) {
    let deadline = Instant::now() + CONVERGE;
    loop {
        client.send(&format!("MODE {room}")).await;
        let shown = client.expect_containing(" 324 ").await;
        client.expect_containing(" 329 ").await;
        let field = shown.split(' ').nth(4).unwrap_or_default().to_owned();
        if letters
            .chars()
            .all(|letter| field.contains(letter) == adding)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "round {round}: {letters} never all {} on {room}; last {shown}",
            if adding { "set" } else { "unset" }
        );
        tokio::time::sleep(POLL).await;
    }
}

/// alice on a sends two MODEs in a row while bob on b sends one, round
/// after round: alice's second change is written on top of the value her
/// first landed in, bob's change included, so all three hold everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_quick_changes_racing_another_nodes_keep_all_three() {
    let network = Network::start(3).await;
    let mut users =
        register_everywhere(&network.addrs(), &[("alice", 0), ("bob", 1), ("carol", 2)]).await;
    let [alice, bob, carol] = &mut users[..] else {
        unreachable!("three users were registered");
    };
    alice.send("JOIN #quick").await;
    alice.expect_containing(" 366 alice #quick ").await;
    for (client, nick) in [(&mut *bob, "bob"), (&mut *carol, "carol")] {
        await_members(client, "#quick", &["alice"]).await;
        client.send("JOIN #quick").await;
        client
            .expect_containing(&format!(" 366 {nick} #quick "))
            .await;
    }
    await_members(alice, "#quick", &["alice", "bob", "carol"]).await;
    alice.send("MODE #quick +o bob").await;
    bob.expect_containing(" MODE #quick +o bob").await;

    for round in 0..CHANGE_RACES {
        let (adding, sign) = if round % 2 == 0 {
            (true, '+')
        } else {
            (false, '-')
        };
        alice
            .send(&format!("MODE #quick {sign}i\r\nMODE #quick {sign}s"))
            .await;
        bob.send(&format!("MODE #quick {sign}m")).await;
        for client in [&mut *alice, &mut *bob, &mut *carol] {
            await_flags(client, "#quick", adding, "ism", round).await;
        }
    }
    network.shutdown().await;
}

/// alice creates #passing on a and leaves it, its last member: bob then
/// creates it anew on b, and is its op.
#[tokio::test]
async fn a_room_left_by_its_last_member_is_created_anew_by_the_next_joiner() {
    let network = Network::start(2).await;
    let mut users = register_everywhere(&network.addrs(), &[("alice", 0), ("bob", 1)]).await;
    let [alice, bob] = &mut users[..] else {
        unreachable!("two users were registered");
    };
    for round in 0..5 {
        let room = format!("#passing{round}");
        alice.send(&format!("JOIN {room}")).await;
        let names = alice
            .expect_containing(&format!(" 353 alice = {room} "))
            .await;
        assert!(names.ends_with(":@alice"), "{names}");
        alice.send(&format!("MODE {room} +k once")).await;
        alice
            .expect_containing(&format!(" MODE {room} +k once"))
            .await;
        await_members(bob, &room, &["alice"]).await;
        await_modes(bob, &room, "k").await;
        alice.send(&format!("PART {room}")).await;
        alice.expect_containing(&format!(" PART {room}")).await;
        let deadline = Instant::now() + CONVERGE;
        loop {
            bob.send(&format!("JOIN {room}")).await;
            let answer = bob.expect_containing(&format!(" {room} ")).await;
            if answer.contains(" 353 ") && answer.ends_with(":@bob") {
                bob.expect_containing(&format!(" 366 bob {room} ")).await;
                break;
            }
            // alice's PART had not reached b yet: the key still held.
            assert!(
                answer.contains(" 475 ") && Instant::now() < deadline,
                "round {round}: {answer}"
            );
            tokio::time::sleep(POLL).await;
        }
        bob.send(&format!("MODE {room}")).await;
        let shown = bob.expect_containing(" 324 ").await;
        assert!(
            !shown.contains('k'),
            "round {round}: the old key came back: {shown}"
        );
    }
    network.shutdown().await;
}

/// alice creates #mine on a and locks it with a key; node a stops: its
/// rooms go from the bucket with it, so bob on b creates #mine anew, with
/// ops and no key, as soon as a's users are gone from b.
#[tokio::test]
async fn a_stopping_node_removes_the_rooms_only_its_users_were_in() {
    let mut network = Network::start(2).await;
    let mut users = register_everywhere(&network.addrs(), &[("alice", 0), ("bob", 1)]).await;
    let [alice, bob] = &mut users[..] else {
        unreachable!("two users were registered");
    };
    alice.send("JOIN #mine").await;
    alice.expect_containing(" 366 alice #mine ").await;
    alice.send("MODE #mine +k locked").await;
    alice.expect_containing(" MODE #mine +k locked").await;
    await_modes(bob, "#mine", "k").await;

    let a = network.nodes.remove(0);
    a.shutdown().await;
    let deadline = Instant::now() + CONVERGE;
    while whois_server(bob, "alice").await.is_some() {
        assert!(Instant::now() < deadline, "alice never left b");
        tokio::time::sleep(POLL).await;
    }
    bob.send("JOIN #mine").await;
    let names = bob.expect_containing(" 353 bob = #mine ").await;
    assert!(names.ends_with(":@bob"), "{names}");
    bob.expect_containing(" 366 bob #mine ").await;
    bob.send("MODE #mine").await;
    let shown = bob.expect_containing(" 324 ").await;
    assert!(!shown.contains('k'), "the key outlived its room: {shown}");
    network.shutdown().await;
}

/// Whether a newcomer to `addr` is refused its nick with 437 within a
/// moment: the node knows its link is down.
async fn newcomer_refused(addr: SocketAddr) -> bool {
    let mut newcomer = Client::connect(addr).await;
    newcomer.send("USER n 0 * :n\r\nNICK newcomer").await;
    while let Some(line) = newcomer.line_within(POLL * 5).await {
        if line.contains(" 437 * newcomer ") {
            return true;
        }
    }
    false
}

/// Node a alone on a NATS server that is killed: once it sees the link
/// gone, the JOIN of a new room gets 437.
#[tokio::test]
async fn a_new_room_cannot_be_joined_while_the_bucket_is_unreachable() {
    let mut cluster = NatsCluster::start(1);
    let timeout = Duration::from_secs(4);
    let millis = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    let node = start_node("a", &cluster.url(0), millis, "network.claim_replicas = 1").await;
    let mut alice = Client::register(node.local_addrs()[0], "alice").await;
    alice.send("JOIN #before").await;
    alice.expect_containing(" 366 alice #before ").await;

    cluster.stop(0);
    // A newcomer's nick refused with 437 shows the node saw NATS go.
    let deadline = Instant::now() + timeout;
    while !newcomer_refused(node.local_addrs()[0]).await {
        assert!(Instant::now() < deadline, "the node never saw NATS go");
    }
    alice.send("JOIN #after").await;
    let answer = alice.expect_containing(" #after ").await;
    assert!(
        answer.ends_with(" 437 alice #after :Nick/channel is temporarily unavailable"),
        "{answer}"
    );
    node.shutdown().await;
}
