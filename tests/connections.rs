//! Connections over real sockets: commands answered in the order sent
//! while a password is checked, loopback exempt from the per-IP limits by
//! default, and host cloaking.

mod common;

use common::{Client, TempDir, test_config};
use rookery::config;

/// argon2id of "hunter2" with cheap parameters; any parameters verify.
const HASH: &str = "$argon2id$v=19$m=8,t=1,p=1$cm9va2VyeS10ZXN0LXNhbHQ$yiaiaoZnKPZM0CWZ8NzJYpMiTnaZSktRUpf408FhNKA";

#[tokio::test]
async fn oper_is_answered_before_the_commands_sent_after_it() {
    let config = test_config(&format!(
        "oper = [{{ name = \"root\", password_hash = \"{HASH}\" }}]"
    ));
    let server = rookery::start(config).await.unwrap();
    let mut alice = Client::register(server.local_addrs()[0], "alice").await;
    // In one write, as irctest and scripted clients send them.
    alice
        .send_raw(b"OPER root hunter2\r\nPING first\r\nWHOIS alice\r\nPING last\r\n")
        .await;
    let lines = alice.lines_until("PONG irc.test :last").await;
    let position = |needle: &str| {
        lines
            .iter()
            .position(|line| line.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in {lines:#?}"))
    };
    assert!(position(" 381 alice ") < position("PONG irc.test :first"));
    assert!(position("PONG irc.test :first") < position(" 313 alice alice "));
    assert!(position(" 318 alice ") < position("PONG irc.test :last"));
    server.shutdown().await;
}

#[tokio::test]
async fn a_wrong_oper_password_is_answered_before_the_next_command() {
    let config = test_config(&format!(
        "oper = [{{ name = \"root\", password_hash = \"{HASH}\" }}]"
    ));
    let server = rookery::start(config).await.unwrap();
    let mut alice = Client::register(server.local_addrs()[0], "alice").await;
    alice.send_raw(b"OPER root wrong\r\nPING x\r\n").await;
    assert_eq!(
        alice.next_line().await.as_deref(),
        Some(":irc.test 464 alice :Password incorrect")
    );
    assert_eq!(
        alice.next_line().await.as_deref(),
        Some(":irc.test PONG irc.test :x")
    );
    server.shutdown().await;
}

/// The configuration as an admin writes it, without `exempt_ips`: the
/// defaults apply, and those exempt loopback.
fn default_limits_config(extra: &str) -> config::Config {
    let text = format!(
        "http = []\n[server]\nname = \"irc.test\"\nbans_file = \"\"\n\
         [limits]\nconnects_per_ip_per_minute = 2\nmax_clients_per_ip = 2\n{extra}\n\
         [flood]\nenabled = false\n[history]\nenabled = false\n\
         [cloaking]\nenabled = false\n\
         [[listen]]\naddress = \"127.0.0.1:0\"\n"
    );
    config::parse(&text, std::path::Path::new("test.toml")).expect("a valid configuration")
}

#[tokio::test]
async fn loopback_is_exempt_from_the_per_ip_limits_by_default() {
    let server = rookery::start(default_limits_config("")).await.unwrap();
    let addr = server.local_addrs()[0];
    let mut clients = Vec::new();
    for n in 0..6 {
        clients.push(Client::register(addr, &format!("local{n}")).await);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn an_exempt_list_of_ones_own_replaces_the_loopback_default() {
    let config = default_limits_config("exempt_ips = [\"10.0.0.0/8\"]");
    let server = rookery::start(config).await.unwrap();
    let addr = server.local_addrs()[0];
    let _first = Client::register(addr, "first").await;
    let _second = Client::register(addr, "second").await;
    let mut third = Client::connect(addr).await;
    let refused = third.expect_containing("ERROR").await;
    assert!(refused.contains("Too many connections"), "{refused}");
    server.shutdown().await;
}

/// A server with cloaking on and a fixed key.
async fn cloaked_server(extra: &str) -> rookery::ServerHandle {
    let config = test_config(&format!(
        "cloaking.enabled = true\ncloaking.secret = \"test key\"\n\
         oper = [{{ name = \"root\", password_hash = \"{HASH}\" }}]\n{extra}"
    ));
    rookery::start(config).await.unwrap()
}

/// The host part of a `nick!user@host` prefix.
fn host_of(line: &str) -> &str {
    let prefix = line.split(' ').next().unwrap_or_default();
    prefix.rsplit('@').next().unwrap_or_default()
}

/// The lines of `client`'s welcome, up to the end of the MOTD.
async fn welcome(client: &mut Client) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let line = client.next_line().await.expect("the welcome");
        let end = line.contains(" 376 ") || line.contains(" 422 ");
        lines.push(line);
        if end {
            return lines;
        }
    }
}

#[tokio::test]
async fn a_cloaked_user_is_told_its_visible_host_at_registration() {
    let server = cloaked_server("").await;
    let addr = server.local_addrs()[0];
    let mut alice = Client::connect(addr).await;
    alice.send("NICK alice").await;
    alice.send("USER alice 0 * :alice").await;
    let lines = welcome(&mut alice).await;
    let told: Vec<&String> = lines.iter().filter(|l| l.contains(" 396 ")).collect();
    assert_eq!(told.len(), 1, "{lines:?}");
    let cloak = told[0]
        .strip_prefix(":irc.test 396 alice ")
        .and_then(|rest| rest.strip_suffix(" :is now your visible host"))
        .unwrap_or_else(|| panic!("{}", told[0]));
    assert!(
        cloak.ends_with(".ip") && !cloak.contains("127.0.0.1"),
        "{cloak}"
    );
    // It is the host others see.
    let mut bob = Client::register(addr, "bob").await;
    bob.send("WHO alice").await;
    let who = bob.expect_containing(" 352 ").await;
    assert!(who.contains(&format!(" ~alice {cloak} ")), "{who}");
    server.shutdown().await;
}

#[tokio::test]
async fn without_cloaking_no_visible_host_is_announced() {
    let server = rookery::start(test_config("")).await.unwrap();
    let mut alice = Client::connect(server.local_addrs()[0]).await;
    alice.send("NICK alice").await;
    alice.send("USER alice 0 * :alice").await;
    let lines = welcome(&mut alice).await;
    assert!(lines.iter().all(|l| !l.contains(" 396 ")), "{lines:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn others_see_a_cloak_where_the_address_was() {
    let server = cloaked_server("").await;
    let addr = server.local_addrs()[0];
    let mut alice = Client::register(addr, "alice").await;
    let mut bob = Client::register(addr, "bob").await;
    alice.send("CAP REQ :userhost-in-names extended-join").await;
    alice.expect_containing("ACK").await;
    alice.send("JOIN #room").await;
    alice.expect_containing(" 366 ").await;
    bob.send("JOIN #room").await;
    let join = alice.expect_containing("JOIN #room").await;
    let cloak = host_of(&join).to_owned();
    assert!(cloak.ends_with(".ip"), "{join}");
    assert!(!join.contains("127.0.0.1"), "{join}");

    bob.send("PRIVMSG #room :hi").await;
    let message = alice.expect_containing("PRIVMSG #room :hi").await;
    assert_eq!(message, format!(":bob!~bob@{cloak} PRIVMSG #room :hi"));

    let mut seen = Vec::new();
    alice.send("NAMES #room").await;
    seen.extend(alice.lines_until(" 366 ").await);
    alice.send("WHO #room").await;
    seen.extend(alice.lines_until(" 315 ").await);
    alice.send("WHO #room %tnuhi,42").await;
    seen.extend(alice.lines_until(" 315 ").await);
    alice.send("USERHOST bob").await;
    seen.extend(alice.lines_until(" 302 ").await);
    alice.send("WHOIS bob").await;
    seen.extend(alice.lines_until(" 318 ").await);
    alice.send("MODE #room +b *!*@203.0.113.9").await;
    alice.send("MODE #room b").await;
    seen.extend(alice.lines_until(" 368 ").await);
    bob.send("QUIT :bye").await;
    alice.expect_containing("QUIT").await;
    alice.send("WHOWAS bob").await;
    seen.extend(alice.lines_until(" 369 ").await);
    // WHOX tells alice her own address; nothing tells her bob's.
    let leaks: Vec<&String> = seen
        .iter()
        .filter(|line| line.contains("127.0.0.1") && !line.contains(" ~alice 127.0.0.1 "))
        .collect();
    assert!(leaks.is_empty(), "the address leaked: {leaks:#?}");
    for (needle, what) in [
        (" 353 ", "NAMES"),
        (" 352 ", "WHO"),
        (" 311 ", "WHOIS"),
        (" 302 ", "USERHOST"),
        (" 314 ", "WHOWAS"),
    ] {
        assert!(
            seen.iter()
                .any(|line| line.contains(needle) && line.contains(&cloak)),
            "{what} shows the cloak: {seen:#?}"
        );
    }
    assert!(
        seen.iter()
            .any(|line| line.contains(" 354 ") && line.contains(" ~bob 255.255.255.255 ")),
        "WHOX hides the address: {seen:#?}"
    );
    assert!(
        !seen.iter().any(|line| line.contains(" 378 ")),
        "WHOIS of another shows no real host: {seen:#?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn the_user_itself_and_operators_see_the_real_address_in_whois() {
    let server = cloaked_server("").await;
    let addr = server.local_addrs()[0];
    let mut alice = Client::register(addr, "alice").await;
    let mut oper = Client::register(addr, "oper").await;
    alice.send("WHOIS alice").await;
    let own = alice.expect_containing(" 378 ").await;
    assert_eq!(
        own,
        ":irc.test 378 alice alice :is connecting from *@127.0.0.1 127.0.0.1"
    );
    oper.send("OPER root hunter2").await;
    oper.expect_containing(" 381 ").await;
    oper.send("WHOIS alice").await;
    let seen = oper.expect_containing(" 378 ").await;
    assert!(seen.contains("*@127.0.0.1 127.0.0.1"), "{seen}");
    server.shutdown().await;
}

#[tokio::test]
async fn bans_by_address_and_by_cloak_both_hold_a_cloaked_user_out() {
    let server = cloaked_server("").await;
    let addr = server.local_addrs()[0];
    let mut op = Client::register(addr, "op").await;
    let mut eve = Client::register(addr, "eve").await;
    op.send("JOIN #room").await;
    op.expect_containing(" 366 ").await;
    eve.send("WHOIS eve").await;
    let whois = eve.expect_containing(" 311 ").await;
    let cloak = whois.split(' ').nth(5).unwrap_or_default().to_owned();
    for mask in ["*!*@127.0.0.1".to_owned(), format!("*!*@{cloak}")] {
        op.send(&format!("MODE #room +b {mask}")).await;
        op.expect_containing(" MODE #room +b ").await;
        eve.send("JOIN #room").await;
        let refused = eve.expect_containing(" 474 ").await;
        assert!(refused.contains("#room"), "{refused}");
        op.send(&format!("MODE #room -b {mask}")).await;
        op.expect_containing(" MODE #room -b ").await;
    }
    eve.send("JOIN #room").await;
    eve.expect_containing(" 366 ").await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_k_line_on_the_real_address_removes_a_cloaked_user() {
    let server = cloaked_server("").await;
    let addr = server.local_addrs()[0];
    let mut oper = Client::register(addr, "oper").await;
    let mut eve = Client::register(addr, "eve").await;
    oper.send("OPER root hunter2").await;
    oper.expect_containing(" 381 ").await;
    oper.send("KLINE *@127.0.0.1 :go away").await;
    let error = eve.expect_containing("ERROR").await;
    assert!(error.contains("K-lined"), "{error}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_generated_cloak_key_is_kept_so_cloaks_survive_a_restart() {
    let dir = TempDir::new("cloak-key");
    let key_file = dir.join("cloak.key");
    let config = || {
        test_config(&format!(
            "cloaking.enabled = true\ncloaking.secret_file = {:?}",
            key_file.display().to_string()
        ))
    };
    let mut cloaks = Vec::new();
    for _ in 0..2 {
        let server = rookery::start(config()).await.unwrap();
        let mut alice = Client::register(server.local_addrs()[0], "alice").await;
        alice.send("WHOIS alice").await;
        let whois = alice.expect_containing(" 311 ").await;
        cloaks.push(whois.split(' ').nth(5).unwrap_or_default().to_owned());
        server.shutdown().await;
    }
    assert!(key_file.exists());
    assert!(cloaks[0].ends_with(".ip"), "{cloaks:?}");
    assert_eq!(cloaks[0], cloaks[1]);
}

#[test]
fn cloaking_is_on_without_a_configuration() {
    assert!(config::Config::default().cloaking.enabled);
}

/// The server's log as an admin reads it: connects, registrations, the
/// capabilities taken and quits at info, and no raw control byte from a
/// client in it.
#[test]
fn the_log_tells_who_came_and_went_with_client_text_escaped() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::{Command, Stdio};

    let dir = TempDir::new("log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rookery"))
        .current_dir(&dir.0)
        .args(["--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = BufReader::new(child.stderr.take().unwrap()).split(b'\n');
    let mut port = None;
    for line in log.by_ref() {
        port = common::listening_port(&String::from_utf8_lossy(&line.unwrap()));
        if port.is_some() {
            break;
        }
    }
    let port = port.expect("a 'listening on' line with the port");
    let log = std::thread::spawn(move || {
        log.map_while(Result::ok)
            .map(|line| String::from_utf8_lossy(&line).into_owned())
            .collect::<Vec<_>>()
    });
    let mut irc = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    irc.write_all(
        b"CAP LS 302\r\nCAP REQ :server-time\r\nCAP END\r\nNICK alice\r\nUSER alice 0 * :Alice\r\n",
    )
    .unwrap();
    let mut reader = BufReader::new(irc.try_clone().unwrap());
    let mut line = String::new();
    while !line.contains(" 376 ") {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "closed early");
    }
    irc.write_all(b"QUIT :bye\r2026-12-02T00:00:00Z INFO forged \x1b[31mRED\r\n")
        .unwrap();
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("ERROR"), "{rest}");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());
    let log = log.join().unwrap();
    let find = |needle: &str| {
        log.iter()
            .find(|line| line.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in the log: {log:#?}"))
    };
    let connects = find("client connects");
    assert!(connects.contains("INFO"), "{connects}");
    assert!(connects.contains("127.0.0.1:"), "{connects}");
    assert!(connects.contains("tls=false"), "{connects}");
    assert!(find("client registered").contains("alice"));
    assert!(find("capabilities taken").contains("server-time"));
    let leaves = find("client leaves");
    assert!(leaves.contains(r"bye\r2026"), "{leaves}");
    for line in &log {
        assert!(
            !line.contains(['\r', '\x1b']),
            "a raw control byte in the log: {line:?}"
        );
    }
}

#[tokio::test]
async fn a_mute_on_the_real_address_silences_a_cloaked_member() {
    let server = cloaked_server("").await;
    let addr = server.local_addrs()[0];
    let mut op = Client::register(addr, "op").await;
    let mut eve = Client::register(addr, "eve").await;
    op.send("JOIN #room").await;
    op.expect_containing(" 366 ").await;
    eve.send("JOIN #room").await;
    eve.expect_containing(" 366 ").await;
    op.send("MODE #room +b ~m:*!*@127.0.0.1").await;
    op.expect_containing(" MODE #room +b ").await;
    eve.send("PRIVMSG #room :can you hear me").await;
    let refused = eve.expect_containing(" 404 ").await;
    assert!(refused.contains("#room"), "{refused}");
    server.shutdown().await;
}
