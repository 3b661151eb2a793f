//! The state nodes of one network share, over a real NATS cluster: nick
//! claims (a race between two nodes has one winner, a change is claimed,
//! a released nick can be taken), room changes made on one node holding
//! on the others (MODE, TOPIC, KICK), KILL across nodes, a stopping node's
//! goodbye, fencing of a node cut off from NATS, and LINKS and LUSERS.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::Client;
use common::nats::NatsCluster;
use common::network::{
    self, CONVERGE, NODE_TIMEOUT_MS, NODES, POLL, await_members, await_user_on, names, start_node,
    whois,
};
use rookery::ServerHandle;

/// How many times two nodes are asked for the same fresh nick at once.
const RACE_ROUNDS: usize = 100;

/// The operator block of node a: `root` with the password `hunter2`.
const OPER: &str = "oper = [{ name = \"root\", password_hash = \"$argon2id$v=19$m=8,t=1,p=1$cm9va2VyeS10ZXN0LXNhbHQ$yiaiaoZnKPZM0CWZ8NzJYpMiTnaZSktRUpf408FhNKA\" }]";

/// Three in-process nodes a, b and c, each on its own server of a
/// three-server NATS cluster; a has the operator `root`.
struct Network {
    nodes: Vec<Option<ServerHandle>>,
    /// Declared last: the NATS servers stop after the nodes.
    _cluster: NatsCluster,
}

impl Network {
    /// The nodes split each other off after `timeout_ms` of silence.
    async fn start_with_timeout(timeout_ms: u64) -> Network {
        let cluster = NatsCluster::start(3);
        let mut nodes = Vec::new();
        for (i, node) in NODES.into_iter().enumerate() {
            // Every round of the nick race connects anew from loopback.
            let mut extra = "limits.exempt_ips = [\"127.0.0.0/8\"]\n".to_owned();
            if node == "a" {
                extra.push_str(OPER);
            }
            let server = start_node(node, &cluster.url(i), timeout_ms, &extra).await;
            nodes.push(Some(server));
        }
        Network {
            nodes,
            _cluster: cluster,
        }
    }

    async fn start() -> Network {
        Network::start_with_timeout(NODE_TIMEOUT_MS).await
    }

    fn addr(&self, i: usize) -> SocketAddr {
        match &self.nodes[i] {
            Some(node) => node.local_addrs()[0],
            None => panic!("node {} was stopped", NODES[i]),
        }
    }

    /// Stops node `i` the way an admin does.
    async fn stop(&mut self, i: usize) {
        if let Some(node) = self.nodes[i].take() {
            node.shutdown().await;
        }
    }

    async fn shutdown(self) {
        for node in self.nodes.into_iter().flatten() {
            node.shutdown().await;
        }
    }
}

/// Sends `command` and gathers word `field` (0 is the source) of each
/// `item` numeric until the `end` numeric.
async fn gather(
    client: &mut Client,
    command: &str,
    item: &str,
    end: &str,
    field: usize,
) -> Vec<String> {
    client.send(command).await;
    let (item, end) = (format!(" {item} "), format!(" {end} "));
    let mut found = Vec::new();
    loop {
        let line = client.expect_containing("").await;
        if line.contains(&item) {
            if let Some(word) = line.split(' ').nth(field) {
                found.push(word.to_owned());
            }
        } else if line.contains(&end) {
            return found;
        }
    }
}

/// The rooms LIST shows `client`.
async fn listed_rooms(client: &mut Client) -> Vec<String> {
    gather(client, "LIST", "322", "323", 3).await
}

/// Registers one client per entry of `users` (nick, node index) and waits
/// until every node knows every one of them.
async fn register_everywhere(network: &Network, users: &[(&str, usize)]) -> Vec<Client> {
    let addrs: Vec<SocketAddr> = (0..NODES.len()).map(|i| network.addr(i)).collect();
    network::register_everywhere(&addrs, users).await
}

/// Everyone in `clients` joins `room`: the first creates it, and is its
/// only operator once every node has seen its JOIN; then the others, and
/// every one of them sees all of them there.
async fn all_join(clients: &mut [Client], nicks: &[&str], room: &str) {
    let Some((first, others)) = clients.split_first_mut() else {
        return;
    };
    first.send(&format!("JOIN {room}")).await;
    first
        .expect_containing(&format!(" 366 {} {room}", nicks[0]))
        .await;
    for client in others.iter_mut() {
        await_members(client, room, &nicks[..1]).await;
    }
    for (client, nick) in others.iter_mut().zip(&nicks[1..]) {
        client.send(&format!("JOIN {room}")).await;
        client
            .expect_containing(&format!(" 366 {nick} {room}"))
            .await;
    }
    for client in clients.iter_mut() {
        await_members(client, room, nicks).await;
    }
}

/// Reads until the answer to a registration: `true` for the welcome
/// (001), `false` for 433; panics on anything else that ends it.
async fn welcomed(client: &mut Client) -> bool {
    loop {
        let line = client.expect_containing(" ").await;
        if line.contains(" 001 ") {
            return true;
        }
        if line.contains(" 433 ") {
            return false;
        }
        assert!(!line.starts_with("ERROR"), "{line}");
    }
}

/// Reads until the answer to `NICK wanted` from the registered `old`:
/// `Ok(())` for its own NICK line, `Err(numeric)` for 433 or 437.
async fn nick_answer(client: &mut Client, old: &str, wanted: &str) -> Result<(), String> {
    loop {
        let line = client.expect_containing(" ").await;
        if line.starts_with(&format!(":{old}!")) && line.contains(" NICK ") {
            assert!(line.ends_with(wanted), "{line}");
            return Ok(());
        }
        for numeric in [" 433 ", " 437 "] {
            if line.contains(&format!("{numeric}{old} {wanted} ")) {
                return Err(numeric.trim().to_owned());
            }
        }
    }
}

/// Asks for `wanted` until it is granted (a release travels through NATS):
/// a bounded poll; panics with the last refusal when it never is.
async fn take_nick_when_free(client: &mut Client, old: &str, wanted: &str) {
    let deadline = Instant::now() + CONVERGE;
    loop {
        client.send(&format!("NICK {wanted}")).await;
        let answer = nick_answer(client, old, wanted).await;
        if answer.is_ok() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{wanted} never became free for {old}; last {answer:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Round after round, two clients on a and b ask the same fresh nick at
/// the same instant: exactly one is welcomed, the other gets 433. Then
/// two registered users do the same with a nick change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_nick_asked_on_two_nodes_at_once_goes_to_exactly_one() {
    let network = Network::start().await;
    let (a, b) = (network.addr(0), network.addr(1));
    let started = Instant::now();
    for round in 0..RACE_ROUNDS {
        let nick = format!("race{round}");
        let ask = move |addr: SocketAddr, nick: String| async move {
            let mut client = Client::connect(addr).await;
            client.send(&format!("USER u 0 * :u\r\nNICK {nick}")).await;
            let won = welcomed(&mut client).await;
            (won, client)
        };
        let on_a = tokio::spawn(ask(a, nick.clone()));
        let on_b = tokio::spawn(ask(b, nick.clone()));
        let (won_a, _client_a) = on_a.await.expect("the client on a");
        let (won_b, _client_b) = on_b.await.expect("the client on b");
        assert!(
            won_a != won_b,
            "round {round}: {nick} welcomed on a: {won_a}, on b: {won_b}"
        );
    }
    eprintln!(
        "{RACE_ROUNDS} registration races took {:?}",
        started.elapsed()
    );

    let mut users = register_everywhere(&network, &[("left", 0), ("right", 1)]).await;
    let [left, right] = &mut users[..] else {
        unreachable!("two users were registered");
    };
    let (mut left_nick, mut right_nick) = ("left".to_owned(), "right".to_owned());
    for round in 0..RACE_ROUNDS / 5 {
        let wanted = format!("change{round}");
        left.send(&format!("NICK {wanted}")).await;
        right.send(&format!("NICK {wanted}")).await;
        let (on_left, on_right) = tokio::join!(
            nick_answer(left, &left_nick, &wanted),
            nick_answer(right, &right_nick, &wanted),
        );
        match (&on_left, &on_right) {
            (Ok(()), Err(numeric)) if numeric == "433" => left_nick = wanted,
            (Err(numeric), Ok(())) if numeric == "433" => right_nick = wanted,
            _ => panic!("round {round}: {wanted}: left {on_left:?}, right {on_right:?}"),
        }
    }
    network.shutdown().await;
}

/// A nick held by a user of another node is refused on change (433);
/// once freed by a nick change, a QUIT, or its node stopping, it can be
/// taken on another node.
#[tokio::test]
async fn a_released_nick_can_be_taken_on_another_node() {
    let mut network = Network::start().await;
    let mut users = register_everywhere(&network, &[("alice", 0), ("bob", 1), ("carol", 2)]).await;
    let [alice, bob, carol] = &mut users[..] else {
        unreachable!("three users were registered");
    };

    bob.send("NICK alice").await;
    assert_eq!(
        nick_answer(bob, "bob", "alice").await,
        Err("433".to_owned())
    );

    alice.send("NICK alicia").await;
    nick_answer(alice, "alice", "alicia")
        .await
        .expect("a free nick");
    take_nick_when_free(bob, "bob", "alice").await;
    await_user_on(carol, "alice", "b.test").await;

    carol.send("QUIT :gone").await;
    assert!(carol.is_closed().await, "QUIT closes the connection");
    take_nick_when_free(alice, "alicia", "carol").await;

    // Node b (bob, now called alice) stops; its nick goes free.
    network.stop(1).await;
    take_nick_when_free(alice, "carol", "alice").await;
    network.shutdown().await;
}

/// `+s` set by an op on a hides the room from outsiders on b and c: LIST,
/// NAMES and WHOIS show it to them before and not after.
#[tokio::test]
async fn a_secret_room_is_hidden_from_outsiders_on_every_node() {
    let network = Network::start().await;
    let mut users = register_everywhere(
        &network,
        &[
            ("alice", 0),
            ("bob", 1),
            ("carol", 2),
            ("dave", 1),
            ("erin", 2),
        ],
    )
    .await;
    let (members, outsiders) = users.split_at_mut(3);
    all_join(members, &["alice", "bob", "carol"], "#hideout").await;
    for outsider in outsiders.iter_mut() {
        assert!(
            listed_rooms(outsider)
                .await
                .contains(&"#hideout".to_owned())
        );
        await_members(outsider, "#hideout", &["alice", "bob", "carol"]).await;
        let (_, rooms) = whois(outsider, "alice").await;
        assert!(rooms.is_some_and(|line| line.contains("#hideout")));
    }

    members[0].send("MODE #hideout +s").await;
    // A member on b and on c seeing the MODE: their nodes applied it.
    for member in members.iter_mut() {
        let mode = member.expect_containing(" MODE #hideout ").await;
        assert!(
            mode.starts_with(":alice!") && mode.ends_with("+s"),
            "{mode}"
        );
    }
    for outsider in outsiders.iter_mut() {
        assert!(
            !listed_rooms(outsider)
                .await
                .contains(&"#hideout".to_owned())
        );
        assert_eq!(names(outsider, "#hideout").await, Vec::<String>::new());
        for nick in ["alice", "bob", "carol"] {
            let (_, rooms) = whois(outsider, nick).await;
            assert!(
                !rooms
                    .as_deref()
                    .is_some_and(|line| line.contains("#hideout")),
                "{rooms:?}"
            );
        }
    }
    network.shutdown().await;
}

/// Reads until the answer to `JOIN room` from `nick`: the end of NAMES
/// (`Ok`) or the numeric that refused it.
async fn join_answer(client: &mut Client, nick: &str, room: &str) -> Result<(), String> {
    loop {
        let line = client.expect_containing(&format!(" {room}")).await;
        if line.contains(&format!(" 366 {nick} {room} ")) {
            return Ok(());
        }
        for numeric in ["471", "473", "474", "475"] {
            if line.contains(&format!(" {numeric} {nick} {room} ")) {
                return Err(numeric.to_owned());
            }
        }
    }
}

/// `+k`, `+l`, `+i` and a ban set by an op on a refuse joiners on b and c
/// (475, 471, 473, 474); the key lets one in.
#[tokio::test]
async fn key_limit_invite_only_and_bans_hold_for_joiners_on_other_nodes() {
    let network = Network::start().await;
    let mut users = register_everywhere(
        &network,
        &[
            ("alice", 0),
            ("bob", 1),
            ("carol", 2),
            ("dave", 1),
            ("erin", 2),
        ],
    )
    .await;
    let (members, joiners) = users.split_at_mut(3);
    let room = "#gate";
    all_join(members, &["alice", "bob", "carol"], room).await;

    let steps = [
        ("+k sesame", "475"),
        ("-k+l sesame 3", "471"),
        ("-l+i", "473"),
        ("-i+b *!*@127.0.0.1", "474"),
    ];
    for (change, refusal) in steps {
        members[0].send(&format!("MODE {room} {change}")).await;
        for member in members.iter_mut() {
            member.expect_containing(&format!(" MODE {room} ")).await;
        }
        for (joiner, nick) in joiners.iter_mut().zip(["dave", "erin"]) {
            joiner.send(&format!("JOIN {room}")).await;
            assert_eq!(
                join_answer(joiner, nick, room).await,
                Err(refusal.to_owned()),
                "{nick} joining after {change}"
            );
            if change.starts_with("+k") {
                joiner.send(&format!("JOIN {room} sesame")).await;
                assert_eq!(join_answer(joiner, nick, room).await, Ok(()));
                joiner.send(&format!("PART {room}")).await;
                joiner.expect_containing(&format!(" PART {room}")).await;
            }
        }
    }
    network.shutdown().await;
}

/// `+o` given on a lets bob on b set the topic (refused before) and kick
/// carol of c; alice on a kicks bob of b: each KICK removes its victim on
/// every node.
#[tokio::test]
async fn an_op_given_on_one_node_acts_on_the_others_and_kicks_hold_everywhere() {
    let network = Network::start().await;
    let mut users = register_everywhere(&network, &[("alice", 0), ("bob", 1), ("carol", 2)]).await;
    let room = "#ops";
    all_join(&mut users, &["alice", "bob", "carol"], room).await;
    let [alice, bob, carol] = &mut users[..] else {
        unreachable!("three users were registered");
    };

    bob.send(&format!("TOPIC {room} :not yet")).await;
    bob.expect_containing(&format!(" 482 bob {room} ")).await;

    alice.send(&format!("MODE {room} +o bob")).await;
    for client in [&mut *alice, &mut *bob, &mut *carol] {
        let mode = client.expect_containing(&format!(" MODE {room} ")).await;
        assert!(mode.ends_with("+o bob"), "{mode}");
    }
    bob.send(&format!("TOPIC {room} :set on b")).await;
    for client in [&mut *alice, &mut *bob, &mut *carol] {
        let topic = client.expect_containing(&format!(" TOPIC {room} ")).await;
        assert!(
            topic.starts_with(":bob!") && topic.ends_with(":set on b"),
            "{topic}"
        );
    }

    bob.send(&format!("KICK {room} carol :out")).await;
    for client in [&mut *alice, &mut *bob, &mut *carol] {
        let kick = client.expect_containing(&format!(" KICK {room} ")).await;
        assert!(
            kick.starts_with(":bob!") && kick.ends_with(" carol :out"),
            "{kick}"
        );
    }
    alice.send(&format!("KICK {room} bob :you too")).await;
    for client in [&mut *alice, &mut *bob] {
        let kick = client.expect_containing(&format!(" KICK {room} ")).await;
        assert!(
            kick.starts_with(":alice!") && kick.ends_with(" bob :you too"),
            "{kick}"
        );
    }
    // a and b applied the KICK before alice and bob got it; c, with no
    // member left to tell, is polled.
    for client in [&mut *alice, &mut *bob] {
        assert_eq!(names(client, room).await, ["alice"]);
    }
    let deadline = Instant::now() + CONVERGE;
    loop {
        let listed = names(carol, room).await;
        if listed == ["alice"] {
            break;
        }
        assert!(Instant::now() < deadline, "c still lists {listed:?}");
        tokio::time::sleep(POLL).await;
    }
    network.shutdown().await;
}

/// An oper on a kills bob of b: bob gets the KILL and an ERROR and is
/// disconnected, and alice and carol (on c) see his QUIT `Killed (...)`.
#[tokio::test]
async fn kill_of_a_user_of_another_node_disconnects_it_there() {
    let network = Network::start().await;
    let mut users = register_everywhere(&network, &[("alice", 0), ("bob", 1), ("carol", 2)]).await;
    let room = "#kill";
    all_join(&mut users, &["alice", "bob", "carol"], room).await;
    let [alice, bob, carol] = &mut users[..] else {
        unreachable!("three users were registered");
    };
    alice.send("OPER root hunter2").await;
    alice.expect_containing(" 381 ").await;

    alice.send("KILL bob :spamming").await;
    let kill = bob.expect_containing(" KILL bob ").await;
    assert!(
        kill.starts_with(":alice!") && kill.ends_with(":spamming"),
        "{kill}"
    );
    let error = bob.expect_containing("ERROR").await;
    assert!(error.contains("Killed (alice (spamming))"), "{error}");
    assert!(bob.is_closed().await, "bob's connection was closed");
    for client in [&mut *alice, &mut *carol] {
        let quit = client.expect_containing(" QUIT ").await;
        assert_eq!(quit, ":bob!~bob@127.0.0.1 QUIT :Killed (alice (spamming))");
    }
    assert_eq!(whois(carol, "bob").await.0, None);
    network.shutdown().await;
}

/// Node c stops: the others see carol QUIT with `*.net *.split` well
/// before a silent node would be split off.
#[tokio::test]
async fn a_stopping_node_says_goodbye_and_its_users_split_off_at_once() {
    // A long node timeout, so the split of a silent node cannot pass.
    let timeout = Duration::from_secs(6);
    let bound = timeout / 2;
    let millis = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    let mut network = Network::start_with_timeout(millis).await;
    let mut users = register_everywhere(&network, &[("alice", 0), ("bob", 1), ("carol", 2)]).await;
    let room = "#bye";
    all_join(&mut users, &["alice", "bob", "carol"], room).await;

    let stopped = Instant::now();
    network.stop(2).await;
    for client in &mut users[..2] {
        client.line_timeout = timeout * 2;
        let quit = client.expect_containing(" QUIT ").await;
        let delay = stopped.elapsed();
        assert_eq!(quit, ":carol!~carol@127.0.0.1 QUIT :*.net *.split");
        assert!(delay < bound, "the split took {delay:?}, over {bound:?}");
    }
    network.shutdown().await;
}

/// The servers LINKS lists, sorted.
async fn links(client: &mut Client) -> Vec<String> {
    let mut servers = gather(client, "LINKS", "364", "365", 3).await;
    servers.sort();
    servers
}

/// LINKS on a lists a, b and c once the others were heard; LUSERS says
/// there are three servers.
#[tokio::test]
async fn links_and_lusers_show_the_other_nodes() {
    let network = Network::start().await;
    let mut users = register_everywhere(&network, &[("alice", 0), ("bob", 1), ("carol", 2)]).await;
    let alice = &mut users[0];
    let expected = ["a.test", "b.test", "c.test"];
    let deadline = Instant::now() + CONVERGE;
    loop {
        let servers = links(alice).await;
        if servers == expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "LINKS never listed {expected:?}; last {servers:?}"
        );
        tokio::time::sleep(POLL).await;
    }
    alice.send("LUSERS").await;
    let lusers = alice.expect_containing(" 251 ").await;
    assert!(lusers.ends_with(" on 3 servers"), "{lusers}");
    network.shutdown().await;
}

/// Whether a newcomer to `addr` is refused its nick with 437 within a
/// moment: a claim sent before the node noticed the link was gone waits
/// for NATS, so one that gets no answer soon is given up.
async fn newcomer_refused(addr: SocketAddr) -> bool {
    let mut newcomer = Client::connect(addr).await;
    newcomer.send("USER n 0 * :n\r\nNICK newcomer").await;
    while let Some(line) = newcomer.line_within(POLL * 5).await {
        if line.contains(" 437 * newcomer ") {
            return true;
        }
        assert!(!line.contains(" 001 "), "welcomed without NATS: {line}");
    }
    false
}

/// Node a alone on a NATS server that is killed: once the link is seen
/// down, NICK gets 437, and after the node timeout its users are
/// disconnected with `Lost the link to the network`; newcomers still
/// cannot register.
#[tokio::test]
async fn a_node_cut_off_from_nats_refuses_nicks_and_fences_its_users() {
    // Long enough for the 437s to be asked before the fencing.
    let timeout = Duration::from_secs(4);
    let millis = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    let mut cluster = NatsCluster::start(1);
    let node = start_node("a", &cluster.url(0), millis, "network.claim_replicas = 1").await;
    let addr = node.local_addrs()[0];
    let mut alice = Client::register(addr, "alice").await;

    cluster.stop(0);
    let cut = Instant::now();
    let deadline = cut + timeout;
    while !newcomer_refused(addr).await {
        assert!(Instant::now() < deadline, "no 437 while NATS was gone");
    }
    alice.send("NICK alicia").await;
    assert_eq!(
        nick_answer(&mut alice, "alice", "alicia").await,
        Err("437".to_owned())
    );

    alice.line_timeout = timeout + CONVERGE;
    let error = alice.expect_containing("ERROR").await;
    eprintln!(
        "fenced {:?} after the NATS server was killed",
        cut.elapsed()
    );
    assert!(error.contains("Lost the link to the network"), "{error}");
    assert!(alice.is_closed().await, "the fenced user was disconnected");
    assert!(newcomer_refused(addr).await, "a newcomer after the fencing");
    node.shutdown().await;
}

/// AWAY and SETNAME on one node reach away-notify and setname clients on
/// the others, and WHOIS there shows them; a user who sets +i is invisible
/// to WHO on the other nodes too.
#[tokio::test]
async fn away_setname_and_invisible_reach_the_other_nodes() {
    let network = Network::start().await;
    let mut carol = Client::connect(network.addr(2)).await;
    carol.send("CAP REQ :away-notify setname").await;
    carol.expect_containing(" ACK ").await;
    carol.send("CAP END").await;
    carol.register_as("carol").await;
    let mut users = register_everywhere(&network, &[("alice", 0), ("bob", 1)]).await;
    let (alice, bob) = users.split_at_mut(1);
    let (alice, bob) = (&mut alice[0], &mut bob[0]);
    bob.send("MODE bob +i").await;
    bob.expect_containing(" MODE bob +i").await;
    for client in [&mut *alice, &mut *bob, &mut carol] {
        client.send("JOIN #room").await;
        client.expect_containing(" 366 ").await;
    }
    await_members(&mut carol, "#room", &["alice", "bob", "carol"]).await;

    alice.send("AWAY :lunch").await;
    alice.expect_containing(" 306 ").await;
    let away = carol.expect_containing(" AWAY ").await;
    assert!(
        away.starts_with(":alice!") && away.ends_with(" AWAY :lunch"),
        "{away}"
    );
    carol.send("WHOIS alice").await;
    let reply = carol.expect_containing(" 301 carol alice ").await;
    assert!(reply.ends_with(":lunch"), "{reply}");

    alice.send("SETNAME :Alice Liddell").await;
    let setname = carol.expect_containing(" SETNAME ").await;
    assert!(setname.ends_with(" SETNAME :Alice Liddell"), "{setname}");

    // bob set +i on b: WHO of a mask on c lists alice (visible) and not
    // bob, as for a local user who shares no room with the asker.
    let mut dave = Client::register(network.addr(2), "dave").await;
    let listed = gather(&mut dave, "WHO *", "352", "315", 7).await;
    assert!(listed.contains(&"alice".to_owned()), "{listed:?}");
    assert!(!listed.contains(&"bob".to_owned()), "{listed:?}");
    network.shutdown().await;
}
