//! Administration across the wire: REHASH from a file on disk, SIGHUP's
//! path, K-lines that survive a restart, a slow reader cut off by its
//! sendq, and flood exemption for operators.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Client, test_config};
use rookery::config;

/// argon2id of "hunter2" with cheap parameters; any parameters verify.
const HASH: &str = "$argon2id$v=19$m=8,t=1,p=1$cm9va2VyeS10ZXN0LXNhbHQ$yiaiaoZnKPZM0CWZ8NzJYpMiTnaZSktRUpf408FhNKA";

/// A scratch directory unique to one test.
/// Start options that name the configuration file, as `rookery -c` does.
fn options(file: &Path) -> rookery::server::Options {
    rookery::server::Options {
        config_file: Some(file.to_owned()),
        ..Default::default()
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rookery-admin-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

/// A configuration file as an admin would write it, with one changeable limit.
fn config_text(channels_per_client: usize, bans_file: &Path) -> String {
    format!(
        "http = []\n[server]\nname = \"irc.test\"\nbans_file = \"{}\"\n\n\
         [limits]\nchannels_per_client = {channels_per_client}\n\n\
         [flood]\nenabled = false\n\n[history]\nenabled = false\n\n\
         [cloaking]\nenabled = false\n\n\
         [[listen]]\naddress = \"127.0.0.1:0\"\n\n\
         [[oper]]\nname = \"root\"\npassword_hash = \"{HASH}\"\n",
        bans_file.display()
    )
}

async fn become_oper(client: &mut Client) {
    client.send("OPER root hunter2").await;
    client.expect_containing(" 381 ").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rehash_applies_a_lowered_limit_at_once_and_advertises_it() {
    let dir = scratch("rehash");
    let file = dir.join("rookery.toml");
    std::fs::write(&file, config_text(3, &dir.join("bans.toml"))).unwrap();
    let server = rookery::start_with(config::load(&file).unwrap(), options(&file))
        .await
        .unwrap();
    let addr = server.local_addrs()[0];
    let mut alice = Client::register(addr, "alice").await;
    become_oper(&mut alice).await;
    alice.send("JOIN #one").await;
    alice.expect_containing(" 366 alice #one").await;

    std::fs::write(&file, config_text(1, &dir.join("bans.toml"))).unwrap();
    alice.send("REHASH").await;
    let rehashing = alice.expect_containing(" 382 ").await;
    assert_eq!(
        rehashing,
        format!(":irc.test 382 alice {} :Rehashing", file.display())
    );
    let done = alice.expect_containing("NOTICE").await;
    assert_eq!(
        done,
        ":irc.test NOTICE alice :REHASH: configuration reloaded"
    );

    alice.send("JOIN #two").await;
    let refused = alice.expect_containing(" 405 ").await;
    assert!(
        refused.starts_with(":irc.test 405 alice #two :"),
        "{refused}"
    );

    let mut bob = Client::connect(addr).await;
    bob.send("NICK bob").await;
    bob.send("USER bob 0 * :Bob").await;
    let isupport = bob.expect_containing("CHANLIMIT=").await;
    assert!(isupport.contains(" CHANLIMIT=#&:1 "), "{isupport}");
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rehash_keeps_the_casemapping_that_runs_and_says_so() {
    let dir = scratch("rehash-restart-only");
    let file = dir.join("rookery.toml");
    let text = config_text(3, &dir.join("bans.toml"));
    std::fs::write(&file, &text).unwrap();
    let server = rookery::start_with(config::load(&file).unwrap(), options(&file))
        .await
        .unwrap();
    let addr = server.local_addrs()[0];
    let mut alice = Client::register(addr, "alice").await;
    become_oper(&mut alice).await;

    let changed = text.replace("[server]\n", "[server]\ncasemapping = \"rfc1459\"\n");
    std::fs::write(&file, changed).unwrap();
    alice.send("REHASH").await;
    let done = alice.expect_containing("NOTICE alice :REHASH").await;
    assert_eq!(
        done,
        ":irc.test NOTICE alice :REHASH: configuration reloaded, but server.casemapping take effect at a restart; the running values are kept"
    );
    let mut bob = Client::register(addr, "bob").await;
    bob.send("VERSION").await;
    let isupport = bob.expect_containing("CASEMAPPING=").await;
    assert!(isupport.contains(" CASEMAPPING=ascii "), "{isupport}");
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_file_on_rehash_leaves_the_running_configuration() {
    let dir = scratch("broken");
    let file = dir.join("rookery.toml");
    std::fs::write(&file, config_text(2, &dir.join("bans.toml"))).unwrap();
    let server = rookery::start_with(config::load(&file).unwrap(), options(&file))
        .await
        .unwrap();
    let addr = server.local_addrs()[0];
    let mut alice = Client::register(addr, "alice").await;
    become_oper(&mut alice).await;

    let broken = config_text(1, &dir.join("bans.toml")).replace("[flood]", "[flood");
    std::fs::write(&file, broken).unwrap();
    alice.send("REHASH").await;
    alice.expect_containing(" 382 ").await;
    let failed = alice.expect_containing("NOTICE").await;
    let prefix = format!(
        ":irc.test NOTICE alice :REHASH failed, the running configuration is unchanged: {}:",
        file.display()
    );
    assert!(failed.starts_with(&prefix), "{failed}");

    // The old limit of two still holds.
    alice.send("JOIN #one,#two").await;
    alice.expect_containing(" 366 alice #two").await;
    alice.send("JOIN #three").await;
    alice.expect_containing(" 405 alice #three").await;
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_through_the_same_path() {
    let dir = scratch("sighup");
    let file = dir.join("rookery.toml");
    std::fs::write(&file, config_text(5, &dir.join("bans.toml"))).unwrap();
    let server = rookery::start_with(config::load(&file).unwrap(), options(&file))
        .await
        .unwrap();
    let addr = server.local_addrs()[0];
    std::fs::write(&file, config_text(1, &dir.join("bans.toml"))).unwrap();
    server.rehash().await;
    // The reload is asynchronous: wait until a new client is told the new limit.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut probe = Client::connect(addr).await;
        probe.send("NICK probe").await;
        probe.send("USER probe 0 * :Probe").await;
        let isupport = probe.expect_containing("CHANLIMIT=").await;
        if isupport.contains(" CHANLIMIT=#&:1 ") {
            break;
        }
        assert!(Instant::now() < deadline, "still {isupport}");
        probe.send("QUIT").await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn k_lines_survive_a_restart() {
    let dir = scratch("bans");
    let bans = dir.join("bans.toml");
    let file = dir.join("rookery.toml");
    std::fs::write(&file, config_text(5, &bans)).unwrap();

    let server = rookery::start_with(config::load(&file).unwrap(), options(&file))
        .await
        .unwrap();
    let mut alice = Client::register(server.local_addrs()[0], "alice").await;
    become_oper(&mut alice).await;
    alice.send("KLINE ~mallory@* :spam").await;
    alice.expect_containing("Added K-line").await;
    // The write happens off the core; shutdown waits for it.
    server.shutdown().await;
    let written = std::fs::read_to_string(&bans).unwrap();
    assert!(written.contains("~mallory@*"), "{written}");

    let server = rookery::start_with(config::load(&file).unwrap(), options(&file))
        .await
        .unwrap();
    let mut mallory = Client::connect(server.local_addrs()[0]).await;
    mallory.send("NICK mallory").await;
    mallory.send("USER mallory 0 * :M").await;
    let refused = mallory.expect_containing(" 465 ").await;
    assert_eq!(
        refused,
        ":irc.test 465 mallory :You are banned from this server: spam"
    );
    assert!(mallory.is_closed().await);
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_never_reads_is_cut_off_while_others_keep_receiving() {
    let server = rookery::start(test_config("limits.sendq_bytes = 65536"))
        .await
        .unwrap();
    let addr = server.local_addrs()[0];
    let mut alice = Client::register_in(addr, "alice", "#room").await;
    let mut bob = Client::register_in(addr, "bob", "#room").await;
    // Sloth registers and joins, then never reads. A small receive buffer
    // keeps the kernel from hiding megabytes before the sendq fills.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut sloth = socket.connect(addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(
        &mut sloth,
        b"NICK sloth\r\nUSER sloth 0 * :Sloth\r\nJOIN #room\r\n",
    )
    .await
    .unwrap();
    bob.expect_containing(":sloth!~sloth@127.0.0.1 JOIN #room")
        .await;
    alice.expect_containing(":sloth!").await;

    // Sloth stops reading. Alice talks, at most a window ahead of bob, who
    // reads everything as it comes: about 5 MB, far past sloth's sendq and
    // socket buffers.
    let text = "x".repeat(400);
    let lines: usize = 12_000;
    let window = 50;
    let (progress, mut bob_has) = tokio::sync::watch::channel(0);
    let talker = tokio::spawn(async move {
        for n in 0..lines {
            if n % window == 0 {
                let behind = n.saturating_sub(window);
                let _ = bob_has.wait_for(|received| *received >= behind).await;
            }
            alice.send(&format!("PRIVMSG #room :{n} {text}")).await;
        }
        alice
    });
    let started = Instant::now();
    let mut quit = None;
    let mut received = 0;
    while received < lines {
        let line = bob.next_line().await.expect("bob keeps receiving");
        if line.contains(" QUIT ") {
            eprintln!("sloth cut off after {received} lines");
            quit = Some(line);
        } else if line.contains("PRIVMSG #room") {
            received += 1;
            progress.send_replace(received);
        }
    }
    eprintln!(
        "bob received {received} lines of 400 bytes in {:?} while sloth was cut off",
        started.elapsed()
    );
    let quit = quit.expect("sloth was cut off");
    assert_eq!(quit, ":sloth!~sloth@127.0.0.1 QUIT :SendQ exceeded");
    let mut alice = talker.await.unwrap();
    alice.send("PING :done").await;
    alice.expect_containing("PONG").await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exempt_operator_is_not_flood_limited() {
    let mut config = test_config(&format!(
        "oper = [{{ name = \"root\", password_hash = \"{HASH}\" }}]"
    ));
    config.flood.enabled = true;
    config.flood.lines_per_second = 1.0;
    config.flood.burst = 5;
    config.flood.max_backlog = 5;
    let server = rookery::start(config).await.unwrap();
    let mut alice = Client::register(server.local_addrs()[0], "alice").await;
    become_oper(&mut alice).await;
    let burst: String = (0..50).map(|n| format!("PING :{n}\r\n")).collect();
    alice.send_raw(burst.as_bytes()).await;
    // Without the exemption the backlog of 5 would end in Excess Flood.
    alice.expect_containing("PONG irc.test :49").await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_broken_before_rehash_is_named() {
    let dir = scratch("certificate");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    // A second address for the TLS listener: a port that was free a moment ago.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let file = dir.join("rookery.toml");
    let text = format!(
        "{}\n[[listen]]\naddress = \"127.0.0.1:{port}\"\ntls = {{ cert = \"{}\", key = \"{}\" }}\n",
        config_text(2, &dir.join("bans.toml")),
        cert.display(),
        key.display()
    );
    std::fs::write(&file, text).unwrap();
    let server = rookery::start_with(config::load(&file).unwrap(), options(&file))
        .await
        .unwrap();
    let mut alice = Client::register(server.local_addrs()[0], "alice").await;
    become_oper(&mut alice).await;

    std::fs::write(&cert, "not a certificate").unwrap();
    alice.send("REHASH").await;
    alice.expect_containing(" 382 ").await;
    let failed = alice.expect_containing("NOTICE").await;
    assert_eq!(
        failed,
        format!(
            ":irc.test NOTICE alice :REHASH failed, the running configuration is unchanged: \
             {}: cannot read the certificate: no PEM certificate found",
            cert.display()
        )
    );
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
