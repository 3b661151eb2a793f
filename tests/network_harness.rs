//! The harness the network tests stand on: a real NATS cluster routes
//! messages between its servers, its JetStream key-value store lets one
//! of two racing creates win and keeps working with one server down, and
//! a throwaway PostgreSQL answers queries.

mod common;

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv};
use common::nats::{NatsCluster, create_kv_bucket};
use common::postgres::Postgres;
use futures_util::StreamExt;

/// How long a test waits for one expected message or state.
const WAIT: Duration = Duration::from_secs(10);

/// The payload of the messages sent until the subscriber's interest has
/// crossed the routes; skipped by the receiver.
const PROBE: &[u8] = b"probe";

/// The payload that ends a numbered run.
const END: &[u8] = b"end";

/// A client of the one server at `url`.
async fn connect(url: &str) -> async_nats::Client {
    match async_nats::connect(url).await {
        Ok(client) => client,
        Err(error) => panic!("connect to {url}: {error}"),
    }
}

/// A key-value bucket with three replicas, created through `url`.
async fn create_bucket(url: &str, bucket: &str) -> kv::Store {
    let jetstream = jetstream::new(connect(url).await);
    match create_kv_bucket(&jetstream, bucket, 3).await {
        Ok(store) => store,
        Err(error) => panic!("create bucket {bucket} through {url}: {error}"),
    }
}

/// The existing bucket, through a client of `url`.
async fn open_bucket(url: &str, bucket: &str) -> kv::Store {
    let jetstream = jetstream::new(connect(url).await);
    match jetstream.get_key_value(bucket).await {
        Ok(store) => store,
        Err(error) => panic!("open bucket {bucket} through {url}: {error}"),
    }
}

/// Subscribes to `subject` through `subscriber` and returns once a probe
/// published through `publisher` has arrived: the subscription's
/// interest has reached the publisher's server.
async fn subscribe_across(
    subscriber: &async_nats::Client,
    publisher: &async_nats::Client,
    subject: &str,
) -> async_nats::Subscriber {
    let mut subscription = subscriber
        .subscribe(subject.to_owned())
        .await
        .expect("subscribe");
    subscriber.flush().await.expect("flush the subscription");
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        publisher
            .publish(subject.to_owned(), PROBE.into())
            .await
            .expect("publish a probe");
        publisher.flush().await.expect("flush a probe");
        let arrived = tokio::time::timeout(Duration::from_millis(100), subscription.next()).await;
        if let Ok(Some(_)) = arrived {
            return subscription;
        }
    }
    panic!("no probe on {subject} crossed the routes in {WAIT:?}");
}

/// Publishes 0..`count` then [`END`] through `publisher` and checks that
/// `subscription` receives exactly those numbers, in order, once each.
async fn check_numbered_run(
    publisher: &async_nats::Client,
    subscription: &mut async_nats::Subscriber,
    subject: &str,
    count: usize,
) {
    for n in 0..count {
        publisher
            .publish(subject.to_owned(), n.to_string().into())
            .await
            .expect("publish");
    }
    publisher
        .publish(subject.to_owned(), END.into())
        .await
        .expect("publish the end");
    publisher.flush().await.expect("flush");
    let mut received = Vec::new();
    loop {
        let message = match tokio::time::timeout(WAIT, subscription.next()).await {
            Ok(Some(message)) => message,
            _ => panic!(
                "the run stopped after {} messages: {received:?}",
                received.len()
            ),
        };
        match &message.payload[..] {
            PROBE => continue,
            END => break,
            payload => received.push(String::from_utf8_lossy(payload).into_owned()),
        }
    }
    let expected: Vec<String> = (0..count).map(|n| n.to_string()).collect();
    assert_eq!(received, expected, "every message once, in order");
}

/// Reads `key` through `store` until it is there (a replica may answer
/// before it applied the write) and returns its value.
async fn read_when_present(store: &kv::Store, key: &str) -> Vec<u8> {
    let deadline = Instant::now() + WAIT;
    loop {
        match store.entry(key).await {
            Ok(Some(entry)) => return entry.value.to_vec(),
            Ok(None) | Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Ok(None) => panic!("{key} not readable in {WAIT:?}"),
            Err(error) => panic!("read {key}: {error}"),
        }
    }
}

/// The server name of the stream's leader behind `store`, once one is
/// elected that is not `not`: asked until it answers, since a stream
/// whose leader died answers nothing until the election.
async fn stream_leader(store: &kv::Store, not: Option<&str>) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = None;
    while Instant::now() < deadline {
        match store.stream.get_info().await {
            Ok(info) => {
                let leader = info.cluster.and_then(|cluster| cluster.leader);
                match leader {
                    Some(leader) if Some(leader.as_str()) != not => return leader,
                    other => last = Some(format!("leader {other:?}")),
                }
            }
            Err(error) => last = Some(error.to_string()),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no stream leader other than {not:?} elected; last: {last:?}");
}

/// The index of the server named `name`.
fn index_of(cluster: &NatsCluster, name: &str) -> usize {
    match (0..3).find(|&i| cluster.server_name(i) == name) {
        Some(i) => i,
        None => panic!("no server named {name}"),
    }
}

/// A server that holds a replica of `store`'s stream but does not lead it.
async fn follower_of(cluster: &NatsCluster, store: &kv::Store) -> usize {
    let leader = index_of(cluster, &stream_leader(store, None).await);
    (leader + 1) % 3
}

/// The two servers of three other than `i`.
fn others(i: usize) -> (usize, usize) {
    ((i + 1) % 3, (i + 2) % 3)
}

/// Races `create(key)` through two stores: exactly one wins, the other is
/// told the key exists. Returns the winner's value.
async fn race_create(first: &kv::Store, second: &kv::Store, key: &str) -> Vec<u8> {
    let (a, b) = tokio::join!(
        first.create(key, "first".into()),
        second.create(key, "second".into())
    );
    let (winner, loser) = match (a, b) {
        (Ok(_), Err(loser)) => ("first", loser),
        (Err(loser), Ok(_)) => ("second", loser),
        (a, b) => panic!("exactly one create of {key} must win: {a:?} {b:?}"),
    };
    assert_eq!(
        loser.kind(),
        kv::CreateErrorKind::AlreadyExists,
        "the losing create of {key}: {loser}"
    );
    winner.as_bytes().to_vec()
}

#[tokio::test]
async fn a_subscriber_on_one_server_receives_every_message_published_on_another_in_order() {
    let cluster = NatsCluster::start(3);
    let subscriber = connect(&cluster.url(0)).await;
    let publisher = connect(&cluster.url(2)).await;

    let mut subscription = subscribe_across(&subscriber, &publisher, "harness.routes").await;

    check_numbered_run(&publisher, &mut subscription, "harness.routes", 1000).await;
}

#[tokio::test]
async fn of_two_racing_creates_on_different_servers_exactly_one_wins_and_a_third_reads_it() {
    let cluster = NatsCluster::start(3);
    let first = create_bucket(&cluster.url(0), "race").await;
    let second = open_bucket(&cluster.url(1), "race").await;
    let third = open_bucket(&cluster.url(2), "race").await;

    // Several keys, so that a race lost only now and then shows.
    for n in 0..10 {
        let key = format!("nick{n}");
        let winner = race_create(&first, &second, &key).await;
        assert_eq!(read_when_present(&third, &key).await, winner, "{key}");
    }
}

#[tokio::test]
async fn with_a_follower_down_the_other_two_servers_still_route_and_create_keys() {
    let mut cluster = NatsCluster::start(3);
    let first = create_bucket(&cluster.url(0), "quorum").await;
    // The stream's leader stays up: this is about quorum, not failover.
    let down = follower_of(&cluster, &first).await;
    let (a, b) = others(down);
    let first = open_bucket(&cluster.url(a), "quorum").await;
    let second = open_bucket(&cluster.url(b), "quorum").await;
    let subscriber = connect(&cluster.url(a)).await;
    let publisher = connect(&cluster.url(b)).await;

    cluster.stop(down);

    let mut subscription = subscribe_across(&subscriber, &publisher, "harness.quorum").await;
    check_numbered_run(&publisher, &mut subscription, "harness.quorum", 100).await;
    first
        .create("alice", "first".into())
        .await
        .expect("a create with two of three replicas up");
    let again = second.create("alice", "second".into()).await;
    assert_eq!(
        again.map_err(|error| error.kind()),
        Err(kv::CreateErrorKind::AlreadyExists)
    );
}

#[tokio::test]
async fn when_the_streams_leader_is_killed_another_takes_over_and_creates_succeed() {
    let mut cluster = NatsCluster::start(3);
    let store = create_bucket(&cluster.url(0), "failover").await;
    let leader = stream_leader(&store, None).await;
    let down = index_of(&cluster, &leader);
    let (a, _) = others(down);
    // Short requests, so the wait for the new leader is not counted in
    // whole default timeouts.
    let mut jetstream = jetstream::new(connect(&cluster.url(a)).await);
    jetstream.set_timeout(Duration::from_millis(500));
    let store = jetstream.get_key_value("failover").await.expect("open");

    cluster.stop(down);
    let started = Instant::now();
    let new_leader = stream_leader(&store, Some(&leader)).await;
    eprintln!(
        "{new_leader} took over from {leader} in {:?}",
        started.elapsed()
    );

    store
        .create("dave", "after failover".into())
        .await
        .expect("a create once a new leader is elected");
}

#[tokio::test]
async fn a_restarted_server_comes_back_on_its_port_and_reads_what_was_written_meanwhile() {
    let mut cluster = NatsCluster::start(3);
    let store = create_bucket(&cluster.url(0), "restart").await;
    let down = follower_of(&cluster, &store).await;
    let (a, _) = others(down);
    let store = open_bucket(&cluster.url(a), "restart").await;
    let url = cluster.url(down);

    cluster.stop(down);
    store
        .create("bob", "while down".into())
        .await
        .expect("a create with two of three replicas up");
    cluster.restart(down);

    assert_eq!(cluster.url(down), url, "the same client port");
    let rejoined = open_bucket(&url, "restart").await;
    assert_eq!(read_when_present(&rejoined, "bob").await, b"while down");
}

#[test]
fn postgres_starts_answers_a_query_through_psql_and_stops() {
    let postgres = Postgres::start();
    let port = postgres.port();
    assert!(
        postgres
            .url()
            .ends_with(&format!("@127.0.0.1:{port}/postgres")),
        "{}",
        postgres.url()
    );

    assert_eq!(postgres.psql("select 1"), "1");

    drop(postgres);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    assert!(
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
        "nothing listens on {port} once it is dropped"
    );
}

#[tokio::test]
async fn a_lone_nats_server_has_a_key_value_store() {
    let cluster = NatsCluster::start(1);
    assert_eq!(cluster.urls(), vec![cluster.url(0)]);
    let jetstream = jetstream::new(connect(&cluster.url(0)).await);
    let store = create_kv_bucket(&jetstream, "lone", 1)
        .await
        .expect("a bucket with one replica");

    store.create("carol", "here".into()).await.expect("create");

    assert_eq!(read_when_present(&store, "carol").await, b"here");
}
