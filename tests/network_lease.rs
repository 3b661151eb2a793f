//! A node's lease in JetStream, over a real three-server NATS cluster: a
//! node that keeps its link to its own NATS server while that server has
//! lost the other two (no quorum, so the lease cannot be renewed) fences
//! its users as if its link were down, and takes users again once the
//! quorum is back.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::Client;
use common::nats::NatsCluster;
use common::network::{CONVERGE, NODE_TIMEOUT_MS, POLL, start_node};

/// How long the cluster may take to have its quorum and stream leaders
/// back after two servers restart: JetStream elections take seconds on a
/// loaded machine, and a claim sent meanwhile waits for its own timeout.
const RECOVERY: Duration = Duration::from_secs(40);

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
