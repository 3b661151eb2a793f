//! Junk from one socket must not disturb anyone else.

mod common;

use common::{Client, test_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_on_one_socket_leaves_the_server_serving_others() {
    let server = rookery::start(test_config("")).await.unwrap();
    let addr = server.local_addrs()[0];
    let mut alice = Client::register(addr, "alice").await;

    let mut junk = Client::connect(addr).await;
    let binary: Vec<u8> = (0..=255u8).cycle().take(64 * 1024).collect();
    junk.send_raw(&binary).await;
    junk.send_raw(&vec![b'a'; 1 << 20]).await;
    junk.send_raw(b"\r\n").await;
    junk.send_raw(&b"\r\n".repeat(10_000)).await;
    junk.send_raw(b"NICK a\0b\r\n").await;
    junk.send_raw(b"PING :after-the-junk\r\n").await;

    let too_long = junk.expect_containing(" 417 ").await;
    assert!(too_long.ends_with(":Input line was too long"), "{too_long}");
    let erroneous = junk.expect_containing(" 432 ").await;
    assert!(erroneous.contains(":Erroneous nickname"), "{erroneous}");
    junk.expect_containing("PONG irc.test :after-the-junk")
        .await;

    alice.send("PING :still-served").await;
    alice.expect_containing("PONG irc.test :still-served").await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_is_replaced_not_fatal() {
    let server = rookery::start(test_config("")).await.unwrap();
    let addr = server.local_addrs()[0];
    let mut alice = Client::register(addr, "alice").await;
    alice.send_raw(b"PING :caf\xe9\r\n").await;
    let pong = alice.expect_containing("PONG").await;
    assert_eq!(pong, ":irc.test PONG irc.test :caf\u{fffd}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_says_goodbye_to_every_client() {
    let server = rookery::start(test_config("")).await.unwrap();
    let addr = server.local_addrs()[0];
    let mut alice = Client::register(addr, "alice").await;
    let mut early = Client::connect(addr).await;
    early.send("NICK early").await;
    early.send("PING :sync").await;
    early.expect_containing("PONG").await;
    server.shutdown().await;
    alice.expect_containing("ERROR :Server shutting down").await;
    early.expect_containing("ERROR :Server shutting down").await;
    assert!(alice.is_closed().await);
}

/// Two thousand sockets that connect and never register cost registered
/// users nothing: a message still crosses the server at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_unregistered_sockets_do_not_slow_registered_users() {
    let config = test_config(
        "limits.max_clients = 3000\nlimits.exempt_ips = [\"127.0.0.1\"]\ntimeouts.registration = 60",
    );
    let server = rookery::start(config).await.unwrap();
    let addr = server.local_addrs()[0];
    let mut alice = Client::register(addr, "alice").await;
    let mut bob = Client::register(addr, "bob").await;

    let started = std::time::Instant::now();
    let connecting = tokio::spawn(async move {
        let mut idle = Vec::with_capacity(2000);
        for _ in 0..2000 {
            idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        idle
    });
    let mut worst = std::time::Duration::ZERO;
    let mut rounds = 0;
    while !connecting.is_finished() || rounds < 5 {
        rounds += 1;
        let sent = std::time::Instant::now();
        alice.send(&format!("PRIVMSG bob :round {rounds}")).await;
        bob.expect_containing(&format!(":round {rounds}")).await;
        worst = worst.max(sent.elapsed());
    }
    let idle = connecting.await.unwrap();
    eprintln!(
        "2000 idle sockets connected in {:?}; {rounds} messages meanwhile, slowest {:?}",
        started.elapsed(),
        worst
    );
    // The idle sockets are admitted and held open, not refused: wait until
    // the server has accepted them all (each LUSERS is answered in turn).
    let mut unknown = String::new();
    for _ in 0..500 {
        alice.send("LUSERS").await;
        unknown = alice.expect_containing(" 253 ").await;
        if unknown.contains(" 2000 ") {
            break;
        }
    }
    assert!(unknown.contains(" 2000 "), "{unknown}");
    drop(idle);
    server.shutdown().await;
}
