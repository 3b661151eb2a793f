//! Nodes of one network over a real three-server NATS cluster: room lines
//! reach every node once, in order, with the origin's msgid and time;
//! private messages, WHOIS and nick changes cross nodes; a node killed
//! with SIGKILL splits off and frees its nicks; a NATS server no node
//! uses can go without the network noticing; and a node that cannot
//! reach NATS does not start.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::nats::NatsCluster;
use common::network::{
    self, CONVERGE, HEARTBEAT_MS, NODE_TIMEOUT_MS, POLL, await_members, await_modes, await_user_on,
    names, network_keys, whois_server,
};
use common::{Client, TempDir, test_config};
use rookery::ServerHandle;

/// The numbered lines each client sends to the room.
const LINES: usize = 50;

/// Starts node `node` with the usual timeout and nothing else added.
async fn start_node(node: &str, nats: &str) -> ServerHandle {
    network::start_node(node, nats, NODE_TIMEOUT_MS, "").await
}

/// One room line as a client received it.
#[derive(Clone, Debug, PartialEq)]
struct Received {
    sender: String,
    text: String,
    msgid: String,
    time: String,
}

/// Reads a tagged `PRIVMSG #room` line; `None` for any other line.
fn parse_room_line(line: &str) -> Option<Received> {
    let (tags, rest) = line.strip_prefix('@')?.split_once(' ')?;
    let (prefix, rest) = rest.strip_prefix(':')?.split_once(' ')?;
    let text = rest.strip_prefix("PRIVMSG #room :")?;
    let tag = |key: &str| {
        tags.split(';')
            .find_map(|tag| tag.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_owned)
    };
    Some(Received {
        sender: prefix.split('!').next()?.to_owned(),
        text: text.to_owned(),
        msgid: tag("msgid")?,
        time: tag("time")?,
    })
}

/// Reads room lines until every sender in `senders` has sent `end`;
/// returns each sender's numbered lines in the order received.
async fn receive_runs(client: &mut Client, senders: &[&str]) -> HashMap<String, Vec<Received>> {
    let mut runs: HashMap<String, Vec<Received>> = HashMap::new();
    let mut ended = 0;
    while ended < senders.len() {
        let line = client.expect_containing(" PRIVMSG #room :").await;
        let received = parse_room_line(&line)
            .unwrap_or_else(|| panic!("a room line without msgid or time: {line}"));
        if received.text == "end" {
            ended += 1;
        } else {
            runs.entry(received.sender.clone())
                .or_default()
                .push(received);
        }
    }
    runs
}

/// Three in-process nodes a, b and c, each on its own server of a
/// three-server NATS cluster.
struct Network {
    nodes: Vec<ServerHandle>,
    /// Declared last: the NATS servers stop after the nodes.
    cluster: NatsCluster,
}

impl Network {
    /// Node `i` connects to NATS server `nats[i]`.
    async fn start(nats: [usize; 3]) -> Network {
        let cluster = NatsCluster::start(3);
        let mut nodes = Vec::new();
        for (node, server) in ["a", "b", "c"].into_iter().zip(nats) {
            nodes.push(start_node(node, &cluster.url(server)).await);
        }
        Network { nodes, cluster }
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

/// Registers alice on a, bob on b and carol on c (with `caps`), waits
/// until every node knows all three, and puts them in #room, seen there
/// by every node.
async fn three_in_a_room(network: &Network, caps: &str) -> [Client; 3] {
    let nicks = ["alice", "bob", "carol"];
    let mut clients = Vec::new();
    for (i, nick) in nicks.iter().enumerate() {
        clients.push(Client::with_caps(network.addr(i), nick, caps).await);
    }
    for (i, client) in clients.iter_mut().enumerate() {
        for (j, nick) in nicks.iter().enumerate() {
            if i != j {
                let server = format!("{}.test", ["a", "b", "c"][j]);
                await_user_on(client, nick, &server).await;
            }
        }
    }
    for client in &mut clients {
        client.send("JOIN #room").await;
        client.expect_containing(" 366 ").await;
    }
    for client in &mut clients {
        await_members(client, "#room", &nicks).await;
    }
    match clients.try_into() {
        Ok(clients) => clients,
        Err(_) => unreachable!("three clients were registered"),
    }
}

/// Every client sends 50 numbered lines and an end mark at once; every
/// client (its own lines echoed) receives each sender's lines exactly
/// once and in order, and each line carries the same msgid and time on
/// every node.
#[tokio::test]
async fn room_lines_reach_every_node_once_in_order_with_the_same_tags() {
    let network = Network::start([0, 1, 2]).await;
    let mut clients = three_in_a_room(&network, "message-tags server-time echo-message").await;
    let senders = ["alice", "bob", "carol"];
    for client in &mut clients {
        let mut burst = String::new();
        for n in 0..LINES {
            burst.push_str(&format!("PRIVMSG #room :{n}\r\n"));
        }
        burst.push_str("PRIVMSG #room :end\r\n");
        client.send_raw(burst.as_bytes()).await;
    }
    let [alice, bob, carol] = &mut clients;
    let (on_a, on_b, on_c) = tokio::join!(
        receive_runs(alice, &senders),
        receive_runs(bob, &senders),
        receive_runs(carol, &senders),
    );

    let expected: Vec<String> = (0..LINES).map(|n| n.to_string()).collect();
    for (node, runs) in [("a", &on_a), ("b", &on_b), ("c", &on_c)] {
        for sender in senders {
            let texts: Vec<&String> = runs
                .get(sender)
                .map(|run| run.iter().map(|line| &line.text).collect())
                .unwrap_or_default();
            assert_eq!(
                texts,
                expected.iter().collect::<Vec<_>>(),
                "{sender}'s lines as received on node {node}"
            );
        }
    }
    for sender in senders {
        assert_eq!(on_a[sender], on_b[sender], "{sender}'s lines on a and b");
        assert_eq!(on_a[sender], on_c[sender], "{sender}'s lines on a and c");
    }
    let mut msgids: Vec<&String> = on_a.values().flatten().map(|line| &line.msgid).collect();
    msgids.sort();
    msgids.dedup();
    assert_eq!(msgids.len(), 3 * LINES, "every line has its own msgid");
    network.shutdown().await;
}

/// The tags of a line, from its leading `@…` to the first space.
fn tags_of(line: &str) -> &str {
    line.strip_prefix('@')
        .and_then(|tagged| tagged.split_once(' '))
        .map_or("", |(tags, _)| tags)
}

/// A TAGMSG with a client-only tag reaches the room's members on the
/// other nodes with that tag and the same msgid.
#[tokio::test]
async fn a_tagmsg_reaches_every_node_with_its_client_tags() {
    let network = Network::start([0, 1, 2]).await;
    let [mut alice, mut bob, mut carol] =
        three_in_a_room(&network, "message-tags server-time echo-message").await;
    alice.send("@+draft/react=hug TAGMSG #room").await;
    let echoed = alice.expect_containing(" TAGMSG #room").await;
    let on_b = bob.expect_containing(" TAGMSG #room").await;
    let on_c = carol.expect_containing(" TAGMSG #room").await;
    for line in [&on_b, &on_c] {
        assert!(line.contains(" :alice!"), "{line}");
        assert!(
            tags_of(line)
                .split(';')
                .any(|tag| tag == "+draft/react=hug"),
            "{line}"
        );
        assert_eq!(
            tags_of(line),
            tags_of(&echoed),
            "tags on b or c and at the origin"
        );
    }
    network.shutdown().await;
}

/// A PART and a QUIT on one node reach the room's members on the others
/// as a member of the same node would see them, and the user who quit is
/// gone from WHOIS everywhere.
#[tokio::test]
async fn parts_and_quits_reach_the_other_nodes() {
    let network = Network::start([0, 1, 2]).await;
    let [mut alice, mut bob, mut carol] = three_in_a_room(&network, "multi-prefix").await;

    bob.send("PART #room :later").await;
    let own = bob.expect_containing(" PART #room").await;
    assert_eq!(own, ":bob!~bob@127.0.0.1 PART #room :later");
    for client in [&mut alice, &mut carol] {
        let seen = client.expect_containing(" PART #room").await;
        assert_eq!(seen, own);
    }

    carol.send("QUIT :bye").await;
    let seen = alice.expect_containing(" QUIT ").await;
    assert_eq!(seen, ":carol!~carol@127.0.0.1 QUIT :Quit: bye");
    assert_eq!(whois_server(&mut alice, "carol").await, None);
    assert_eq!(names(&mut alice, "#room").await, ["alice"]);
    // Bob, out of the room, sees no QUIT: his node forgets carol in time.
    let deadline = Instant::now() + CONVERGE;
    while whois_server(&mut bob, "carol").await.is_some() {
        assert!(Instant::now() < deadline, "b still knows carol");
        tokio::time::sleep(POLL).await;
    }
    network.shutdown().await;
}

/// Private messages cross nodes both ways, WHOIS names a remote user's
/// server, and a nick change on a is seen on c.
#[tokio::test]
async fn private_messages_whois_and_nick_changes_cross_nodes() {
    let network = Network::start([0, 1, 2]).await;
    let [mut alice, mut bob, mut carol] = three_in_a_room(&network, "multi-prefix").await;

    alice.send("PRIVMSG bob :hello from a").await;
    let heard = bob.expect_containing("PRIVMSG bob :hello from a").await;
    assert!(heard.starts_with(":alice!"), "{heard}");
    bob.send("PRIVMSG alice :hello from b").await;
    let heard = alice.expect_containing("PRIVMSG alice :hello from b").await;
    assert!(heard.starts_with(":bob!"), "{heard}");
    carol.send("NOTICE alice :notice from c").await;
    let heard = alice.expect_containing("NOTICE alice :notice from c").await;
    assert!(heard.starts_with(":carol!"), "{heard}");

    let whois = whois_server(&mut alice, "bob").await;
    assert!(
        whois
            .as_deref()
            .is_some_and(|line| line.contains(" 312 alice bob b.test ")),
        "{whois:?}"
    );
    let whois = whois_server(&mut bob, "carol").await;
    assert!(
        whois
            .as_deref()
            .is_some_and(|line| line.contains(" 312 bob carol c.test ")),
        "{whois:?}"
    );

    alice.send("NICK alicia").await;
    alice.expect_containing("NICK").await;
    let renamed = carol.expect_containing(" NICK ").await;
    assert!(
        renamed.starts_with(":alice!") && renamed.ends_with("alicia"),
        "{renamed}"
    );
    let whois = whois_server(&mut carol, "alicia").await;
    assert!(
        whois
            .as_deref()
            .is_some_and(|line| line.contains(" 312 carol alicia a.test ")),
        "{whois:?}"
    );
    network.shutdown().await;
}

/// An op's INVITE to a +i room crosses nodes: the invitee is told on its
/// own node and may join there, and an op of a third node who asked for
/// invite-notify hears of it.
#[tokio::test]
async fn an_invite_lets_a_user_of_another_node_into_an_invite_only_room() {
    let network = Network::start([0, 1, 2]).await;
    let [mut alice, mut bob, mut carol] = three_in_a_room(&network, "invite-notify").await;
    alice.send("MODE #room +o carol").await;
    carol.expect_containing("MODE #room +o carol").await;
    bob.send("PART #room").await;
    carol.expect_containing(" PART #room").await;
    alice.send("MODE #room +i").await;
    carol.expect_containing("MODE #room +i").await;
    await_modes(&mut bob, "#room", "i").await;
    bob.send("JOIN #room").await;
    bob.expect_containing(" 473 bob #room ").await;

    alice.send("INVITE bob #room").await;
    alice.expect_containing(" 341 alice bob #room").await;
    let invited = bob.expect_containing(" INVITE bob #room").await;
    assert!(invited.starts_with(":alice!"), "{invited}");
    let notified = carol.expect_containing(" INVITE bob #room").await;
    assert!(notified.starts_with(":alice!"), "{notified}");
    bob.send("JOIN #room").await;
    bob.expect_containing(" 366 bob #room ").await;
    let joined = alice.expect_containing(" JOIN").await;
    assert!(joined.starts_with(":bob!"), "{joined}");
    network.shutdown().await;
}

/// The real binary as node c, its configuration written to `dir`.
fn spawn_binary_node(
    dir: &TempDir,
    nats: &str,
) -> (
    std::process::Child,
    u16,
    std::thread::JoinHandle<Vec<String>>,
) {
    let config = dir.join("rookery.toml");
    let text = format!(
        "http = []\n\
         [server]\nname = \"c.test\"\nbans_file = \"\"\n\
         [flood]\nenabled = false\n[history]\nenabled = false\n\
         [cloaking]\nenabled = false\n\
         [network]\nnode = \"c\"\nnats = [\"{nats}\"]\n\
         heartbeat_ms = {HEARTBEAT_MS}\nnode_timeout_ms = {NODE_TIMEOUT_MS}\n"
    );
    std::fs::write(&config, text).expect("write the node's configuration");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_rookery"));
    command.current_dir(&dir.0).arg("--config").arg(&config);
    common::spawn_listening(command)
}

/// Waits for `client` to see `nick` quit with the netsplit reason.
async fn await_split(client: &mut Client, nick: &str) -> String {
    loop {
        let line = client.expect_containing(" QUIT ").await;
        // After its tags, if the client asked for any.
        let untagged = match line.strip_prefix('@') {
            Some(tagged) => tagged.split_once(' ').map_or("", |(_, rest)| rest),
            None => &line,
        };
        if untagged.starts_with(&format!(":{nick}!")) {
            return line;
        }
    }
}

/// Node c, the real binary, is killed with SIGKILL: the users of a and b
/// see its user quit with `*.net *.split` within the node timeout and a
/// tick, its nick is free for a user of b, and what its user said before
/// is in a's history.
#[tokio::test]
async fn a_node_killed_with_sigkill_splits_off_and_frees_its_nicks() {
    let cluster = NatsCluster::start(3);
    let dir = TempDir::new("network-kill");
    let history = format!(
        "history.enabled = true
history.path = {:?}
",
        dir.join("a.db").display().to_string()
    );
    let a = network::start_node("a", &cluster.url(0), NODE_TIMEOUT_MS, &history).await;
    let b = start_node("b", &cluster.url(1)).await;
    let (mut child, port, log) = spawn_binary_node(&dir, &cluster.url(2));
    let c_addr = SocketAddr::from(([127, 0, 0, 1], port));

    let caps = "draft/chathistory batch server-time message-tags";
    let mut alice = Client::with_caps(a.local_addrs()[0], "alice", caps).await;
    let mut bob = Client::register(b.local_addrs()[0], "bob").await;
    let mut victim = Client::register(c_addr, "victim").await;
    await_user_on(&mut alice, "victim", "c.test").await;
    await_user_on(&mut bob, "victim", "c.test").await;
    await_user_on(&mut victim, "alice", "a.test").await;
    for client in [&mut alice, &mut bob, &mut victim] {
        client.send("JOIN #room").await;
        client.expect_containing(" 366 ").await;
    }
    let everyone = ["alice", "bob", "victim"];
    await_members(&mut alice, "#room", &everyone).await;
    await_members(&mut bob, "#room", &everyone).await;
    for n in 1..=3 {
        victim.send(&format!("PRIVMSG #room :last words {n}")).await;
    }
    for n in 1..=3 {
        alice.expect_containing(&format!(":last words {n}")).await;
    }

    child.kill().expect("SIGKILL the node");
    let killed = Instant::now();
    let _ = child.wait();
    let bound = Duration::from_millis(NODE_TIMEOUT_MS) + Duration::from_secs(2);
    alice.line_timeout = bound;
    let quit = await_split(&mut alice, "victim").await;
    let delay = killed.elapsed();
    eprintln!("a showed the split {delay:?} after the kill");
    assert!(quit.ends_with("QUIT :*.net *.split"), "{quit}");
    assert!(delay <= bound, "the split took {delay:?}, over {bound:?}");
    bob.line_timeout = bound;
    let quit = await_split(&mut bob, "victim").await;
    assert!(quit.ends_with("QUIT :*.net *.split"), "{quit}");
    let _ = log.join();

    let _again = Client::register(b.local_addrs()[0], "victim").await;
    await_user_on(&mut alice, "victim", "b.test").await;

    alice.send("CHATHISTORY LATEST #room * 10").await;
    let stored: Vec<String> = alice
        .lines_until("BATCH -")
        .await
        .iter()
        .filter(|line| line.contains(" PRIVMSG #room :"))
        .filter_map(|line| line.rsplit(" :").next().map(str::to_owned))
        .collect();
    assert_eq!(stored, ["last words 1", "last words 2", "last words 3"]);
    a.shutdown().await;
    b.shutdown().await;
}

/// Each of the three clients says `text`; each hears the other two.
async fn everyone_hears_everyone(clients: &mut [Client; 3], text: &str) {
    let nicks = ["alice", "bob", "carol"];
    for (i, client) in clients.iter_mut().enumerate() {
        client
            .send(&format!("PRIVMSG #room :{text} from {}", nicks[i]))
            .await;
    }
    for (i, client) in clients.iter_mut().enumerate() {
        // Lines of different senders may come in either order.
        let mut awaited: Vec<String> = nicks
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != i)
            .map(|(_, nick)| format!(":{nick}!~{nick}@127.0.0.1 PRIVMSG #room :{text} from {nick}"))
            .collect();
        while !awaited.is_empty() {
            let line = client.expect_containing(" PRIVMSG #room :").await;
            awaited.retain(|expected| *expected != line);
        }
    }
}

/// With a and c on NATS server 0 and b on server 1, server 2 is killed:
/// the nodes go on chatting, and no node is split off after the node
/// timeout has passed.
#[tokio::test]
async fn the_network_outlives_a_nats_server_no_node_uses() {
    let mut network = Network::start([0, 1, 0]).await;
    let mut clients = three_in_a_room(&network, "multi-prefix").await;
    everyone_hears_everyone(&mut clients, "before").await;

    network.cluster.stop(2);
    everyone_hears_everyone(&mut clients, "after").await;
    // Past the node timeout, a silent node would have been split off.
    let quiet = Duration::from_millis(NODE_TIMEOUT_MS) + Duration::from_secs(1);
    let [alice, bob, carol] = &mut clients;
    let unexpected = tokio::join!(
        alice.line_within(quiet),
        bob.line_within(quiet),
        carol.line_within(quiet),
    );
    assert_eq!(
        unexpected,
        (None, None, None),
        "a line came while all was quiet"
    );
    everyone_hears_everyone(&mut clients, "later").await;
    network.shutdown().await;
}

/// `rookery::start` with an unreachable NATS server fails, naming it.
#[tokio::test]
async fn a_node_that_cannot_reach_nats_does_not_start() {
    // A port just bound and released: nothing listens on it.
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let address = free.local_addr().expect("its address");
    drop(free);
    let nats = format!("nats://{address}");
    let config = test_config(&network_keys("lonely", &nats, NODE_TIMEOUT_MS));
    let started = tokio::time::timeout(CONVERGE, rookery::start(config))
        .await
        .expect("start gave up within the bound");
    match started {
        Ok(server) => {
            server.shutdown().await;
            panic!("a node started without NATS at {nats}");
        }
        Err(error) => {
            let message = error.to_string();
            assert!(message.contains(&address.to_string()), "{message}");
        }
    }
}
