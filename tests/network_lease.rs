//! A node's lease in JetStream, over a real three-server NATS cluster: a
//! node that keeps its link to its own NATS server while that server has
//! lost the other two (no quorum, so the lease cannot be renewed) fences
//! its users as if its link were down, and takes users again once the
//! quorum is back; nodes that still hear each other do not fence while
//! the leases elect a new leader.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::Client;
use common::nats::NatsCluster;
use common::network::{CONVERGE, NODE_TIMEOUT_MS, POLL, await_user_on, start_node};
use rookery::network::lease;

/// How long the cluster may take to have its quorum and stream leaders
/// back after two servers restart: JetStream elections take seconds on a
/// loaded machine, and a claim sent meanwhile waits for its own timeout.
const RECOVERY: Duration = Duration::from_secs(40);

/// How long one write to the leases may wait while a leader is elected.
const ATTEMPT: Duration = Duration::from_secs(1);

/// How a newcomer's registration as `nick` on `addr` is answered.
#[derive(Debug, PartialEq)]
enum Answer {
    Welcomed,
    /// 437: the network cannot be reached.
    Unavailable,
    /// The connection closed, or nothing decisive came in time.
    Nothing,
}

/// Registers a newcomer as `nick` and reads until the welcome, a 437 or
/// the end of its patience (`wait` per line).
async fn newcomer(addr: SocketAddr, nick: &str, wait: Duration) -> Answer {
    let mut client = Client::connect(addr).await;
    client
        .send(&format!("USER {nick} 0 * :{nick}\r\nNICK {nick}"))
        .await;
    while let Some(line) = client.line_within(wait).await {
        if line.contains(" 001 ") {
            return Answer::Welcomed;
        }
        if line.contains(&format!(" 437 * {nick} ")) {
            return Answer::Unavailable;
        }
    }
    Answer::Nothing
}

/// Node a is on NATS server 0 only. Servers 1 and 2 are killed: a keeps
/// its TCP link, but no lease renewal can be written, so after the node
/// timeout alice is disconnected with the fencing reason and a newcomer's
/// NICK gets 437. Servers 1 and 2 come back: a newcomer is welcomed again.
#[tokio::test]
async fn a_node_whose_nats_server_lost_the_quorum_fences_until_it_is_back() {
    let mut cluster = NatsCluster::start(3);
    let node = start_node("a", &cluster.url(0), NODE_TIMEOUT_MS, "").await;
    let addr = node.local_addrs()[0];
    let mut alice = Client::register(addr, "alice").await;

    cluster.stop(1);
    cluster.stop(2);
    let cut = Instant::now();
    alice.line_timeout = Duration::from_millis(NODE_TIMEOUT_MS) + CONVERGE;
    let error = alice.expect_containing("ERROR").await;
    eprintln!("fenced {:?} after the quorum was lost", cut.elapsed());
    assert!(error.contains("Lost the link to the network"), "{error}");
    assert!(alice.is_closed().await, "the fenced user was disconnected");
    assert_eq!(
        newcomer(addr, "newcomer", CONVERGE).await,
        Answer::Unavailable,
        "a newcomer while the quorum is lost"
    );

    cluster.restart(1);
    cluster.restart(2);
    let back = Instant::now();
    let deadline = back + RECOVERY;
    loop {
        let answer = newcomer(addr, "returner", CONVERGE).await;
        if answer == Answer::Welcomed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no newcomer welcomed {RECOVERY:?} after the quorum came back; last {answer:?}"
        );
        tokio::time::sleep(POLL).await;
    }
    eprintln!("welcomed {:?} after the quorum came back", back.elapsed());
    node.shutdown().await;
}

/// The NATS server (`n0`, `n1`, …) leading the leases' stream, asked
/// through `jetstream`; `None` while there is none.
async fn leases_leader(jetstream: &async_nats::jetstream::Context) -> Option<String> {
    let mut stream = jetstream
        .get_stream(format!("KV_{}", lease::BUCKET))
        .await
        .ok()?;
    let info = stream.info().await.ok()?;
    info.cluster.as_ref()?.leader.clone()
}

/// Moves the leases' leadership off NATS server 0 (stepping the leader
/// down until another is elected) and returns the index of the leader.
async fn leader_off_server_0(cluster: &NatsCluster) -> usize {
    let client = async_nats::connect(cluster.url(0))
        .await
        .expect("connect to NATS server 0");
    let jetstream = async_nats::jetstream::new(client.clone());
    let deadline = Instant::now() + RECOVERY;
    loop {
        let leader = leases_leader(&jetstream).await;
        if let Some(i) = (1..3).find(|&i| leader.as_deref() == Some(cluster.server_name(i))) {
            return i;
        }
        assert!(
            Instant::now() < deadline,
            "the leases never had a leader off server 0; last {leader:?}"
        );
        if leader.as_deref() == Some(cluster.server_name(0)) {
            let stepdown = format!("$JS.API.STREAM.LEADER.STEPDOWN.KV_{}", lease::BUCKET);
            let _ = client.request(stepdown, "".into()).await;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The leases' bucket, opened through NATS server 0.
async fn leases_on_server_0(cluster: &NatsCluster) -> async_nats::jetstream::kv::Store {
    let client = async_nats::connect(cluster.url(0))
        .await
        .expect("connect to NATS server 0");
    let jetstream = async_nats::jetstream::new(client);
    match jetstream.get_key_value(lease::BUCKET).await {
        Ok(leases) => leases,
        Err(error) => panic!("the leases bucket: {error}"),
    }
}

/// Waits until a value can be written to `leases` again: the election
/// after the leader died is over.
async fn await_leases_writable(leases: &async_nats::jetstream::kv::Store) {
    let deadline = Instant::now() + RECOVERY;
    loop {
        let put = leases.put("probe", "x".into());
        if let Ok(Ok(_)) = tokio::time::timeout(ATTEMPT, put).await {
            return;
        }
        assert!(Instant::now() < deadline, "the leases never came back");
        tokio::time::sleep(POLL).await;
    }
}

/// Nodes a and b on NATS server 0, which hear each other: the server
/// leading the leases dies, and while the other two elect a new leader
/// (seconds, longer than the node timeout) no renewal is written, yet
/// neither node fences, since each still hears the other.
#[tokio::test]
async fn nodes_that_hear_each_other_do_not_fence_while_the_leases_elect_a_leader() {
    let mut cluster = NatsCluster::start(3);
    let a = start_node("a", &cluster.url(0), NODE_TIMEOUT_MS, "").await;
    let b = start_node("b", &cluster.url(0), NODE_TIMEOUT_MS, "").await;
    let mut alice = Client::register(a.local_addrs()[0], "alice").await;
    let mut bob = Client::register(b.local_addrs()[0], "bob").await;
    await_user_on(&mut alice, "bob", "b.test").await;
    await_user_on(&mut bob, "alice", "a.test").await;

    let leader = leader_off_server_0(&cluster).await;
    let leases = leases_on_server_0(&cluster).await;
    cluster.stop(leader);
    let killed = Instant::now();
    await_leases_writable(&leases).await;
    eprintln!("the leases were written again {:?} later", killed.elapsed());
    // Past one more node timeout, a fence would have come.
    let quiet = Duration::from_millis(NODE_TIMEOUT_MS * 2);
    let unexpected = tokio::join!(alice.line_within(quiet), bob.line_within(quiet));
    assert_eq!(unexpected, (None, None), "a line came while all was quiet");
    a.shutdown().await;
    b.shutdown().await;
}
