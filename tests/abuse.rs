//! Abuse from some sockets must not disturb anyone else: junk input, idle
//! and dribbling sockets, connect floods, connect-and-quit churn.

mod common;

use common::{Client, test_config};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::{Duration, Instant};

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
    // Other tests share the two cores, so the polls are paced, up to 10 s.
    let mut unknown = String::new();
    for _ in 0..1000 {
        alice.send("LUSERS").await;
        unknown = alice.expect_containing(" 253 ").await;
        if unknown.contains(" 2000 ") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(unknown.contains(" 2000 "), "{unknown}");
    drop(idle);
    server.shutdown().await;
}

/// Keeps a timer due every millisecond, for paused-time tests with real
/// sockets: whenever the runtime idles waiting on a socket, virtual time
/// jumps to the next timer. Without a near one, a few waits could jump to
/// a ping timeout or a test's own deadline; with it, thousands of waits
/// (500 connections closing) cost a few virtual seconds.
fn metronome() -> tokio::task::JoinHandle<()> {
    tokio::spawn(async {
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        loop {
            tick.tick().await;
        }
    })
}

/// The registration timeout the slowloris test runs under, in seconds.
const SLOWLORIS_TIMEOUT: u64 = 60;

/// Writes `NICK`, then a `USER` line that never ends, a byte a second, and
/// returns every line the server sent and how long after connecting the
/// connection closed. Stops writing once the server has spoken: a write to
/// a closed socket would only earn a reset.
async fn dribble(stream: TcpStream, n: usize) -> (Vec<String>, Duration) {
    let connected = Instant::now();
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let mut script = format!("NICK slow{n}\r\nUSER slow{n} 0 * :").into_bytes();
    script.extend(std::iter::repeat_n(b'x', 400));
    let mut bytes = script.into_iter();
    // Half a second off the whole seconds, so a byte never lands on the
    // very tick the timeout fires.
    let mut tick = tokio::time::interval_at(
        connected + Duration::from_millis(500),
        Duration::from_secs(1),
    );
    let mut lines = Vec::new();
    let mut writing = true;
    loop {
        let mut line = String::new();
        tokio::select! {
            biased;
            read = reader.read_line(&mut line) => match read {
                Ok(n) if n > 0 => {
                    writing = false;
                    lines.push(line.trim_end().to_owned());
                }
                _ => return (lines, connected.elapsed()),
            },
            _ = tick.tick(), if writing => {
                let Some(byte) = bytes.next() else { writing = false; continue };
                if writer.write_all(&[byte]).await.is_err() {
                    writing = false;
                }
            }
        }
    }
}

/// The lines of one LUSERS reply, up to 266.
async fn lusers(client: &mut Client) -> Vec<String> {
    client.send("LUSERS").await;
    let mut lines = Vec::new();
    loop {
        let line = client.expect_containing(":irc.test 2").await;
        let done = line.contains(" 266 ");
        lines.push(line);
        if done {
            return lines;
        }
    }
}

/// Five hundred sockets each dribble a registration a byte a second (in
/// paused time, so the minute costs nothing). Registered users are answered
/// throughout, and every dribbler is dropped at the registration timeout:
/// bytes arriving do not extend it.
#[tokio::test(start_paused = true)]
async fn slowloris_sockets_are_dropped_at_the_registration_timeout() {
    const SOCKETS: usize = 500;
    let config = test_config(&format!(
        "limits.exempt_ips = [\"127.0.0.1\"]\ntimeouts.registration = {SLOWLORIS_TIMEOUT}"
    ));
    let server = rookery::start(config).await.unwrap();
    let addr = server.local_addrs()[0];
    let metronome = metronome();
    let mut alice = Client::register(addr, "alice").await;
    let mut bob = Client::register(addr, "bob").await;
    // Waits for a line are counted in virtual time, which runs on while
    // sockets are waited for: give them room.
    alice.line_timeout = Duration::from_secs(3600);
    bob.line_timeout = Duration::from_secs(3600);

    let started = Instant::now();
    let mut dribblers = JoinSet::new();
    for n in 0..SOCKETS {
        let stream = TcpStream::connect(addr).await.unwrap();
        dribblers.spawn(dribble(stream, n));
    }
    let connecting = started.elapsed();
    let unknown = lusers(&mut alice)
        .await
        .into_iter()
        .find(|line| line.contains(" 253 "));
    assert!(
        started.elapsed() < Duration::from_secs(SLOWLORIS_TIMEOUT),
        "LUSERS was answered only after {:?}",
        started.elapsed()
    );
    assert_eq!(
        unknown.as_deref(),
        Some(":irc.test 253 alice 500 :unknown connection(s)"),
        "every dribbler is counted while it is open"
    );

    // Alice and Bob chat every five seconds while the dribblers are open.
    let mut rounds = 0;
    while started.elapsed() < Duration::from_secs(SLOWLORIS_TIMEOUT) {
        rounds += 1;
        alice.send(&format!("PING :round {rounds}")).await;
        alice
            .expect_containing(&format!("PONG irc.test :round {rounds}"))
            .await;
        alice.send(&format!("PRIVMSG bob :round {rounds}")).await;
        bob.expect_containing(&format!("PRIVMSG bob :round {rounds}"))
            .await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    assert!(
        rounds >= 2,
        "only {rounds} rounds while the dribblers were open"
    );

    let timeout = Duration::from_secs(SLOWLORIS_TIMEOUT);
    while let Some(result) = tokio::time::timeout(timeout, dribblers.join_next())
        .await
        .unwrap()
    {
        let (lines, open_for) = result.unwrap();
        assert_eq!(
            lines,
            ["ERROR :Closing Link: 127.0.0.1 (Registration timed out)"],
            "a dribbler was sent something else"
        );
        // Dropped at the timeout, not before, and not long after.
        assert!(
            open_for >= timeout && open_for <= timeout + connecting + Duration::from_secs(2),
            "a dribbler was dropped after {open_for:?}"
        );
    }

    // Nothing is left of them: LUSERS counts no unknown connection.
    let counts = lusers(&mut alice).await;
    assert!(
        !counts.iter().any(|line| line.contains(" 253 ")),
        "{counts:#?}"
    );
    assert!(
        counts.contains(&":irc.test 255 alice :I have 2 clients and 0 servers".to_owned()),
        "{counts:#?}"
    );
    alice.send("PRIVMSG bob :after").await;
    bob.expect_containing("PRIVMSG bob :after").await;
    server.shutdown().await;
    metronome.abort();
}

/// A burst of connects from one address, beyond the default rate of
/// `connects_per_ip_per_minute`, is refused with an ERROR that says why;
/// a registered client and an exempt address are not disturbed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_flood_is_refused_with_a_reason_and_disturbs_nobody() {
    const BURST: usize = 80;
    let config = test_config("limits.exempt_ips = [\"127.0.0.2\"]");
    let per_minute = config.limits.connects_per_ip_per_minute as usize;
    assert_eq!(per_minute, 30, "the test assumes the default rate");
    let server = rookery::start(config).await.unwrap();
    let addr = server.local_addrs()[0];
    let mut alice = Client::register(addr, "alice").await;

    let started = std::time::Instant::now();
    let mut flood = Vec::with_capacity(BURST);
    for n in 0..BURST {
        let mut client = Client::connect(addr).await;
        client.send(&format!("PING :probe {n}")).await;
        flood.push(client);
    }
    // Tokens come back at one per two seconds while the burst runs.
    let refilled = (started.elapsed().as_secs_f64() * per_minute as f64 / 60.0).ceil() as usize;
    alice.send("PING :during").await;
    alice.expect_containing("PONG irc.test :during").await;

    let mut admitted = 0;
    let mut refused = 0;
    for (n, client) in flood.iter_mut().enumerate() {
        let first = client
            .next_line()
            .await
            .expect("an answer to every connect");
        if first == format!(":irc.test PONG irc.test :probe {n}") {
            admitted += 1;
        } else {
            assert_eq!(
                first,
                "ERROR :Closing Link: 127.0.0.1 (Connecting too fast from your IP address; try again later)"
            );
            assert!(client.is_closed().await, "a refused connection stays open");
            refused += 1;
        }
    }
    // Alice's own connect took one token of the minute's thirty.
    assert!(
        admitted >= per_minute - 1 && admitted <= per_minute - 1 + refilled,
        "{admitted} admitted, {refused} refused"
    );
    assert_eq!(admitted + refused, BURST);
    eprintln!("connect burst of {BURST}: {admitted} admitted, {refused} refused");

    // The address is still refused; an exempt one is not.
    let mut late = Client::connect(addr).await;
    assert!(
        late.expect_containing("ERROR")
            .await
            .contains("Connecting too fast")
    );
    let exempt: std::net::IpAddr = "127.0.0.2".parse().unwrap();
    let mut carol = Client::connect_from(addr, exempt).await;
    carol.send("NICK carol").await;
    carol.send("USER carol 0 * :Carol").await;
    carol.expect_containing(" 376 ").await;
    alice.send("PRIVMSG carol :welcome").await;
    let welcome = carol.expect_containing("PRIVMSG").await;
    assert_eq!(welcome, ":alice!~alice@127.0.0.1 PRIVMSG carol :welcome");
    drop(flood);
    server.shutdown().await;
}

/// With the connect rate off, a thousand connect, register and quit cycles
/// (eight at a time) all complete and leave the client count where it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_connect_register_quit_cycles_leave_no_trace() {
    const CYCLES: usize = 1000;
    const AT_ONCE: usize = 8;
    let config = test_config("limits.connects_per_ip_per_minute = 0");
    let server = rookery::start(config).await.unwrap();
    let addr = server.local_addrs()[0];
    let mut alice = Client::register(addr, "alice").await;
    let baseline = lusers(&mut alice).await;

    let started = std::time::Instant::now();
    let mut workers = JoinSet::new();
    for worker in 0..AT_ONCE {
        workers.spawn(async move {
            for cycle in (worker..CYCLES).step_by(AT_ONCE) {
                let nick = format!("cycle{cycle}");
                let mut client = Client::register(addr, &nick).await;
                client.send("QUIT :done").await;
                let error = client.expect_containing("ERROR").await;
                assert_eq!(error, "ERROR :Closing Link: 127.0.0.1 (Quit: done)");
                assert!(client.is_closed().await, "{nick} stays open after QUIT");
            }
        });
    }
    while let Some(worker) = workers.join_next().await {
        worker.unwrap();
    }
    eprintln!("{CYCLES} cycles in {:?}", started.elapsed());

    let after = lusers(&mut alice).await;
    let counts = |lines: &[String]| -> Vec<String> {
        lines
            .iter()
            .filter(|line| {
                [" 251 ", " 253 ", " 254 ", " 255 "]
                    .iter()
                    .any(|n| line.contains(n))
            })
            .cloned()
            .collect()
    };
    assert_eq!(counts(&after), counts(&baseline));
    server.shutdown().await;
}

/// A client for paused-time tests, split so one task can write while
/// another reads.
async fn raw_register(
    addr: std::net::SocketAddr,
    nick: &str,
    rooms: &str,
) -> (
    BufReader<tokio::net::tcp::OwnedReadHalf>,
    tokio::net::tcp::OwnedWriteHalf,
) {
    let (reader, mut writer) = TcpStream::connect(addr).await.unwrap().into_split();
    let mut reader = BufReader::new(reader);
    writer
        .write_all(format!("NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\nJOIN {rooms}\r\n").as_bytes())
        .await
        .unwrap();
    let last_room = rooms.rsplit(',').next().unwrap();
    let end_of_names = format!(" 366 {nick} {last_room} ");
    loop {
        let line = virtual_line(&mut reader)
            .await
            .unwrap_or_else(|| panic!("{nick} was closed while joining"));
        if line.contains(&end_of_names) {
            return (reader, writer);
        }
    }
}

/// The next line, or `None` at EOF or after an hour of virtual time.
async fn virtual_line(reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Option<String> {
    let mut line = String::new();
    match tokio::time::timeout(Duration::from_secs(3600), reader.read_line(&mut line)).await {
        Ok(Ok(n)) if n > 0 => Some(line.trim_end().to_owned()),
        _ => None,
    }
}

/// Three clients flood PRIVMSGs at rooms and nicks, several targets a line,
/// while four others chat within the rate, with default flood settings (in
/// paused time). The flooders are cut off with "Excess Flood"; every line
/// the others sent arrives exactly once.
#[tokio::test(start_paused = true)]
async fn privmsg_flooders_are_cut_off_and_every_other_message_arrives_once() {
    const CHATTERS: usize = 4;
    const FLOODERS: usize = 3;
    const ROUNDS: usize = 15;
    const ROOMS: &str = "#r0,#r1,#r2,#r3";
    let config = test_config("flood.enabled = true\nlimits.exempt_ips = [\"127.0.0.1\"]");
    let burst = config.flood.burst as usize;
    let server = rookery::start(config).await.unwrap();
    let addr = server.local_addrs()[0];
    let metronome = metronome();

    let mut chatters = Vec::new();
    for n in 0..CHATTERS {
        chatters.push(raw_register(addr, &format!("c{n}"), ROOMS).await);
    }
    let mut flooders = Vec::new();
    for n in 0..FLOODERS {
        flooders.push(raw_register(addr, &format!("f{n}"), ROOMS).await);
    }
    // Let every bucket refill after registering and joining.
    tokio::time::sleep(Duration::from_secs(30)).await;

    let mut tasks = JoinSet::new();
    for (n, (mut reader, mut writer)) in flooders.into_iter().enumerate() {
        tasks.spawn(async move {
            // Five lines every tenth of a second, far over the rate, until cut off.
            for batch in 0..60 {
                let flood: String = (batch * 5..batch * 5 + 5)
                    .map(|i| match i % 3 {
                        0 => format!(
                            "PRIVMSG #r{},c{},c{} :flood f{n} {i}\r\n",
                            i % 4,
                            i % 4,
                            (i + 1) % 4
                        ),
                        1 => format!("PRIVMSG c{} :flood f{n} {i}\r\n", i % 4),
                        _ => format!("PRIVMSG #r0,#r1,#r2,#r3 :flood f{n} {i}\r\n"),
                    })
                    .collect();
                if writer.write_all(flood.as_bytes()).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let mut last = None;
            while let Some(line) = virtual_line(&mut reader).await {
                last = Some(line);
            }
            assert_eq!(
                last.as_deref(),
                Some("ERROR :Closing Link: 127.0.0.1 (Excess Flood)"),
                "f{n} was not cut off"
            );
            None
        });
    }
    for (n, (mut reader, mut writer)) in chatters.into_iter().enumerate() {
        tasks.spawn(async move {
            let mut script = String::new();
            for round in 0..ROUNDS {
                script.clear();
                script.push_str(&format!("PRIVMSG #r{} :chat c{n} {round}\r\n", round % 4));
                script.push_str(&format!(
                    "PRIVMSG c{} :dm c{n} {round}\r\n",
                    (n + 1) % CHATTERS
                ));
                writer.write_all(script.as_bytes()).await.unwrap();
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            writer
                .write_all(format!("PRIVMSG #r0 :end c{n}\r\n").as_bytes())
                .await
                .unwrap();
            // Read until every other chatter has finished and every flooder left.
            let mut received = Vec::new();
            let (mut ends, mut quits) = (0, 0);
            while ends < CHATTERS - 1 || quits < FLOODERS {
                let line = virtual_line(&mut reader)
                    .await
                    .unwrap_or_else(|| panic!("c{n} lost its connection"));
                if line.contains(" :end c") {
                    ends += 1;
                } else if line.ends_with(" QUIT :Excess Flood") {
                    quits += 1;
                }
                received.push(line);
            }
            // Keep the writer open until the reading is done.
            drop(writer);
            Some((n, received))
        });
    }

    let mut per_chatter = Vec::new();
    while let Some(task) = tasks.join_next().await {
        per_chatter.extend(task.unwrap());
    }
    assert_eq!(per_chatter.len(), CHATTERS);
    for (me, lines) in &per_chatter {
        let (me, nick) = (*me, format!("c{me}"));
        let mut expected = std::collections::HashMap::new();
        for other in (0..CHATTERS).filter(|&other| other != me) {
            for round in 0..ROUNDS {
                let room = format!(
                    ":c{other}!~c{other}@127.0.0.1 PRIVMSG #r{} :chat c{other} {round}",
                    round % 4
                );
                expected.insert(room, 1);
            }
            if (other + 1) % CHATTERS == me {
                for round in 0..ROUNDS {
                    let dm = format!(
                        ":c{other}!~c{other}@127.0.0.1 PRIVMSG {nick} :dm c{other} {round}"
                    );
                    expected.insert(dm, 1);
                }
            }
        }
        let mut counted = std::collections::HashMap::new();
        for line in lines
            .iter()
            .filter(|line| line.contains(" :chat c") || line.contains(" :dm c"))
        {
            *counted.entry(line.clone()).or_insert(0) += 1;
        }
        assert_eq!(counted, expected, "what {nick} received");
        let floods = lines
            .iter()
            .filter(|line| line.contains(" :flood f"))
            .count();
        eprintln!("{nick}: {} lines, {floods} flood lines", lines.len());
        assert!(
            floods <= FLOODERS * burst,
            "{nick} received {floods} flood lines"
        );
    }
    server.shutdown().await;
    metronome.abort();
}
