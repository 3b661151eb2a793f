//! Registration and ping timeouts, run in paused time: the runtime jumps to
//! the next timer whenever every task waits, so minutes pass instantly.

mod common;

use common::test_config;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::{Duration, Instant, timeout};

/// Longer than any timer under test, so a hang fails instead of blocking.
const VIRTUAL_LIMIT: Duration = Duration::from_secs(3600);

async fn read_line(reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Option<String> {
    let mut line = String::new();
    match timeout(VIRTUAL_LIMIT, reader.read_line(&mut line)).await {
        Ok(Ok(n)) if n > 0 => Some(line.trim_end().to_owned()),
        _ => None,
    }
}

#[tokio::test(start_paused = true)]
async fn a_client_that_never_registers_is_dropped_after_the_timeout() {
    let server = rookery::start(test_config("timeouts.registration = 30"))
        .await
        .unwrap();
    let stream = TcpStream::connect(server.local_addrs()[0]).await.unwrap();
    let (reader, _writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let started = Instant::now();
    let line = read_line(&mut reader).await;
    assert_eq!(
        line.as_deref(),
        Some("ERROR :Closing Link: 127.0.0.1 (Registration timed out)")
    );
    assert!(
        started.elapsed() >= Duration::from_secs(30),
        "closed after {:?}",
        started.elapsed()
    );
    assert_eq!(
        read_line(&mut reader).await,
        None,
        "the connection must be closed"
    );
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_silent_client_is_pinged_then_dropped() {
    let config = test_config("timeouts.ping_interval = 100\ntimeouts.ping_timeout = 20");
    let server = rookery::start(config).await.unwrap();
    let stream = TcpStream::connect(server.local_addrs()[0]).await.unwrap();
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    writer
        .write_all(b"NICK alice\r\nUSER alice 0 * :Alice\r\n")
        .await
        .unwrap();
    while let Some(line) = read_line(&mut reader).await {
        if line.contains(" 376 ") {
            break;
        }
    }
    let registered = Instant::now();
    assert_eq!(
        read_line(&mut reader).await.as_deref(),
        Some("PING :irc.test")
    );
    assert!(registered.elapsed() >= Duration::from_secs(100));
    writer.write_all(b"PONG :irc.test\r\n").await.unwrap();
    let answered = Instant::now();
    assert_eq!(
        read_line(&mut reader).await.as_deref(),
        Some("PING :irc.test"),
        "pinged again after an answer"
    );
    assert!(answered.elapsed() >= Duration::from_secs(100));
    let pinged = Instant::now();
    let line = read_line(&mut reader).await;
    assert_eq!(
        line.as_deref(),
        Some("ERROR :Closing Link: 127.0.0.1 (Ping timeout: 120 seconds)")
    );
    assert!(pinged.elapsed() >= Duration::from_secs(20));
    assert_eq!(read_line(&mut reader).await, None);
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_registered_client_is_not_dropped_by_the_registration_timeout() {
    let config = test_config("timeouts.registration = 10\ntimeouts.ping_interval = 50");
    let server = rookery::start(config).await.unwrap();
    let stream = TcpStream::connect(server.local_addrs()[0]).await.unwrap();
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    writer
        .write_all(b"NICK alice\r\nUSER alice 0 * :Alice\r\n")
        .await
        .unwrap();
    while let Some(line) = read_line(&mut reader).await {
        if line.contains(" 376 ") {
            break;
        }
    }
    // The first thing after registration is the ping at 50 s, not an ERROR at 10 s.
    assert_eq!(
        read_line(&mut reader).await.as_deref(),
        Some("PING :irc.test")
    );
    server.shutdown().await;
}
