//! What each way of keeping a room's state across nodes costs, measured on
//! a running NATS cluster: the figures behind docs/DESIGN.md's choice of
//! compare-and-set on a key per room over a home node per room.
//!
//!   room-state nats://127.0.0.1:24221,nats://127.0.0.1:24222,nats://127.0.0.1:24223 [ROUNDS]
//!
//! Three clients, one per server (nodes A, B and C). A home node is a
//! request from A answered by B, then B's publish seen on C; a key per
//! room is a JetStream key-value bucket with three replicas: a create
//! (the room's creation), an update at a revision (a mode change), the
//! update on A seen by a watch on C, and a read on C (a node that starts
//! later). Each is ROUNDS (default 500) sequential operations; the table
//! gives p50, p90 and p99 in milliseconds. The bucket is deleted at the end.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv, stream};
use futures_util::StreamExt;

type Error = Box<dyn std::error::Error + Send + Sync>;

const BUCKET: &str = "rookery_bench_rooms";
const SUBJECT: &str = "rookery.bench.home";

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let urls: Vec<String> = args
        .next()
        .ok_or("usage: room-state NATS_URL_A,NATS_URL_B,NATS_URL_C [ROUNDS]")?
        .split(',')
        .map(str::to_owned)
        .collect();
    let rounds: usize = args.next().map_or(Ok(500), |n| n.parse())?;
    let [a, b, c] = urls.as_slice() else {
        return Err("three NATS URLs, one per node".into());
    };
    let (a, b, c) = (
        async_nats::connect(a).await?,
        async_nats::connect(b).await?,
        async_nats::connect(c).await?,
    );
    println!("| operation ({rounds} in a row) | p50 ms | p90 ms | p99 ms |");
    println!("| --- | ---: | ---: | ---: |");
    home_node(&a, &b, &c, rounds).await?;
    let result = key_per_room(&a, &c, rounds).await;
    jetstream::new(a.clone())
        .delete_stream(format!("KV_{BUCKET}"))
        .await?;
    result
}

/// A change sent to the room's home node (B) and answered, then the
/// home node's event seen by another node (C).
async fn home_node(
    a: &async_nats::Client,
    b: &async_nats::Client,
    c: &async_nats::Client,
    rounds: usize,
) -> Result<(), Error> {
    let mut requests = b.subscribe(SUBJECT).await?;
    let home = b.clone();
    tokio::spawn(async move {
        while let Some(request) = requests.next().await {
            if let Some(reply) = request.reply {
                let _ = home.publish(reply, request.payload).await;
            }
        }
    });
    b.flush().await?;
    // B's interest reaches A's server through the cluster's routes.
    let ready = Instant::now() + Duration::from_secs(10);
    while a.request(SUBJECT, "probe".into()).await.is_err() {
        if Instant::now() > ready {
            return Err("the home node's subscription never reached A".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        a.request(SUBJECT, "MODE #room +l 10".into()).await?;
        times.push(start.elapsed());
    }
    row("home node: request from A, answer from B", times);
    let events = format!("{SUBJECT}.events");
    let mut seen = c.subscribe(events.clone()).await?;
    c.flush().await?;
    loop {
        b.publish(events.clone(), "probe".into()).await?;
        if tokio::time::timeout(Duration::from_millis(100), seen.next())
            .await
            .is_ok()
        {
            break;
        }
    }
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        b.publish(events.clone(), "MODE #room +l 10".into()).await?;
        seen.next().await.ok_or("C's subscription ended")?;
        times.push(start.elapsed());
    }
    row("home node: B's event seen on C", times);
    Ok(())
}

/// A key per room in a bucket with three replicas, changed by
/// compare-and-set.
async fn key_per_room(
    a: &async_nats::Client,
    c: &async_nats::Client,
    rounds: usize,
) -> Result<(), Error> {
    let context = jetstream::new(a.clone());
    let config = stream::Config {
        name: format!("KV_{BUCKET}"),
        subjects: vec![format!("$KV.{BUCKET}.>")],
        max_messages_per_subject: 1,
        discard: stream::DiscardPolicy::New,
        num_replicas: 3,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        ..Default::default()
    };
    // Made as the server makes its claims bucket (async-nats's own
    // create_key_value reads fields nats-server 2.9 does not send).
    let ready = Instant::now() + Duration::from_secs(20);
    while let Err(error) = context.create_stream(config.clone()).await {
        if Instant::now() > ready {
            return Err(format!("no JetStream: {error}").into());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let rooms: kv::Store = context.get_key_value(BUCKET).await?;
    let mut times = Vec::with_capacity(rounds);
    for n in 0..rounds {
        let start = Instant::now();
        rooms.create(format!("room{n}"), "modes +nt".into()).await?;
        times.push(start.elapsed());
    }
    row("key per room: create (the room's creation)", times);
    let mut revision = rooms.create("room", "modes +nt".into()).await?;
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        revision = rooms
            .update("room", "modes +ntl 10".into(), revision)
            .await?;
        times.push(start.elapsed());
    }
    row("key per room: update at its revision", times);
    let on_c = jetstream::new(c.clone()).get_key_value(BUCKET).await?;
    let mut watch = on_c.watch("room").await?;
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        revision = rooms
            .update("room", "modes +ntl 11".into(), revision)
            .await?;
        loop {
            let entry = watch.next().await.ok_or("C's watch ended")??;
            if entry.revision == revision {
                break;
            }
        }
        times.push(start.elapsed());
    }
    row("key per room: update on A seen by C's watch", times);
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        on_c.entry("room").await?;
        times.push(start.elapsed());
    }
    row("key per room: read on C (a node starting)", times);
    Ok(())
}

/// One table row: the operation's p50, p90 and p99.
fn row(operation: &str, mut times: Vec<Duration>) {
    times.sort();
    let at = |q: f64| {
        let i = ((times.len() - 1) as f64 * q).round() as usize;
        times[i].as_secs_f64() * 1000.0
    };
    println!(
        "| {operation} | {:.2} | {:.2} | {:.2} |",
        at(0.5),
        at(0.9),
        at(0.99)
    );
}
