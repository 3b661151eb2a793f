//! Flood control, in paused time: lines over the rate wait (fake lag), a
//! flooder whose backlog passes the bound is cut off, and nobody else waits.

mod common;

use common::test_config;
use rookery::ServerHandle;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::{Duration, Instant, timeout};

/// Longer than any lag under test, so a hang fails instead of blocking.
const VIRTUAL_LIMIT: Duration = Duration::from_secs(3600);

struct Raw {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Raw {
    async fn register(server: &ServerHandle, nick: &str) -> Raw {
        let stream = TcpStream::connect(server.local_addrs()[0]).await.unwrap();
        let (reader, writer) = stream.into_split();
        let mut raw = Raw {
            reader: BufReader::new(reader),
            writer,
        };
        raw.send(&format!("NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n"))
            .await;
        raw.skip_to(" 376 ").await;
        raw
    }

    async fn send(&mut self, text: &str) {
        self.writer.write_all(text.as_bytes()).await.unwrap();
    }

    async fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        match timeout(VIRTUAL_LIMIT, self.reader.read_line(&mut line)).await {
            Ok(Ok(n)) if n > 0 => Some(line.trim_end().to_owned()),
            _ => None,
        }
    }

    async fn skip_to(&mut self, needle: &str) -> String {
        loop {
            match self.line().await {
                Some(line) if line.contains(needle) => return line,
                Some(_) => {}
                None => panic!("the connection ended before a line with {needle:?}"),
            }
        }
    }
}

fn flood_config(rate: f64, burst: u32, backlog: u32) -> rookery::config::Config {
    let mut config = test_config("");
    config.flood.enabled = true;
    config.flood.lines_per_second = rate;
    config.flood.burst = burst;
    config.flood.max_backlog = backlog;
    config
}

#[tokio::test(start_paused = true)]
async fn lines_over_the_rate_wait_instead_of_being_dropped() {
    let server = rookery::start(flood_config(1.0, 2, 10)).await.unwrap();
    let mut alice = Raw::register(&server, "alice").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let sent = Instant::now();
    alice
        .send(
            &(1..=6)
                .map(|n| format!("PING :{n}\r\n"))
                .collect::<String>(),
        )
        .await;
    let mut arrivals = Vec::new();
    for n in 1..=6 {
        let pong = alice.skip_to("PONG").await;
        assert!(pong.ends_with(&format!(":{n}")), "{pong}");
        arrivals.push(sent.elapsed().as_secs_f64().round() as u64);
    }
    // Two from the burst at once, then one a second: lagged, none dropped.
    assert_eq!(arrivals, [0, 0, 1, 2, 3, 4]);
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_message_to_several_targets_costs_a_token_per_target() {
    let server = rookery::start(flood_config(1.0, 4, 10)).await.unwrap();
    let mut alice = Raw::register(&server, "alice").await;
    let _b = Raw::register(&server, "b").await;
    let _c = Raw::register(&server, "c").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let sent = Instant::now();
    alice.send("PRIVMSG b,c,b,c :hi\r\nPING :after\r\n").await;
    alice.skip_to("PONG").await;
    assert_eq!(sent.elapsed().as_secs_f64().round() as u64, 1);
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_flooder_is_cut_off_while_others_keep_chatting() {
    let server = rookery::start(flood_config(2.0, 5, 10)).await.unwrap();
    let mut alice = Raw::register(&server, "alice").await;
    let mut bob = Raw::register(&server, "bob").await;
    let mut mallory = Raw::register(&server, "mallory").await;
    for (client, nick) in [
        (&mut alice, "alice"),
        (&mut bob, "bob"),
        (&mut mallory, "mallory"),
    ] {
        client.send("JOIN #room\r\n").await;
        client.skip_to(&format!(":{nick}!")).await;
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    let flood: String = (0..200)
        .map(|n| format!("PRIVMSG #room :flood {n}\r\n"))
        .collect();
    mallory.send(&flood).await;
    let error = mallory.skip_to("ERROR").await;
    assert_eq!(error, "ERROR :Closing Link: 127.0.0.1 (Excess Flood)");

    // Alice saw the burst at most, then the flooder leave.
    let mut floods_seen = 0;
    loop {
        let line = alice.line().await.expect("alice stays connected");
        if line.contains("PRIVMSG #room :flood") {
            floods_seen += 1;
        } else if line.contains("QUIT") {
            assert_eq!(line, ":mallory!~mallory@127.0.0.1 QUIT :Excess Flood");
            break;
        }
    }
    assert!(floods_seen <= 5, "{floods_seen} flood lines got through");

    // Bob's message reaches alice without delay.
    let sent = Instant::now();
    bob.send("PRIVMSG #room :still here\r\n").await;
    let line = alice.skip_to("still here").await;
    assert_eq!(line, ":bob!~bob@127.0.0.1 PRIVMSG #room :still here");
    assert!(
        sent.elapsed() < Duration::from_millis(10),
        "{:?}",
        sent.elapsed()
    );
    server.shutdown().await;
}
