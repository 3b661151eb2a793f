//! Hostile input over real sockets: tags outside the message-tags grammar,
//! control characters in tags, nicks and channel names, and names made to
//! pass for someone else's.

mod common;

use common::{Client, test_config};

/// Registers `nick` with message-tags, so client-only tags reach it.
async fn register_with_tags(addr: std::net::SocketAddr, nick: &str) -> Client {
    let mut client = Client::connect(addr).await;
    client.send("CAP REQ :message-tags").await;
    client.send(&format!("NICK {nick}")).await;
    client.send(&format!("USER {nick} 0 * :{nick}")).await;
    client.send("CAP END").await;
    client.expect_containing(" 376 ").await;
    client
}

/// The tag section of a received line, without its `@`.
fn tags_of(line: &str) -> &str {
    line.strip_prefix('@')
        .and_then(|tagged| tagged.split(' ').next())
        .unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_off_the_grammar_or_with_control_bytes_are_not_relayed() {
    let server = rookery::start(test_config("")).await.unwrap();
    let addr = server.local_addrs()[0];
    let mut bob = register_with_tags(addr, "bob").await;
    let mut mallory = register_with_tags(addr, "mallory").await;
    bob.send("JOIN #t").await;
    bob.expect_containing(" 366 ").await;
    mallory.send("JOIN #t").await;
    mallory.expect_containing(" 366 ").await;
    bob.expect_containing("JOIN #t").await;

    // A raw CR in a key would let a CR-splitting client read a second line
    // whose tags the sender wrote, server-only `account=` first.
    mallory
        .send_raw(b"@+x\r@account=admin;+y PRIVMSG #t :I am the admin\r\n")
        .await;
    mallory
        .send_raw(b"@+a\rPING=x;+nul=a\x00b;+ok=1 TAGMSG #t\r\n")
        .await;
    mallory
        .send_raw(b"@+k\x01\x1b[31m=v;+\xff\xfe=1;+=2;+esc=\x1b[2J;+draft/reply=1 TAGMSG #t\r\n")
        .await;

    let admin = bob.expect_containing("PRIVMSG #t :I am the admin").await;
    let first = bob.expect_containing("TAGMSG #t").await;
    let second = bob.expect_containing("TAGMSG #t").await;
    for line in [&admin, &first, &second] {
        assert!(
            !line.contains(|c: char| c.is_control()),
            "a control character reached bob: {line:?}"
        );
        assert!(!line.contains("account="), "{line:?}");
    }
    let relayed = |line: &str| -> Vec<String> {
        tags_of(line)
            .split(';')
            .filter(|tag| tag.starts_with('+'))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(relayed(&admin), ["+y"]);
    assert_eq!(relayed(&first), ["+ok=1"]);
    assert_eq!(relayed(&second), ["+draft/reply=1"]);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nicks_that_pass_for_someone_else_are_erroneous() {
    let server = rookery::start(test_config("")).await.unwrap();
    let addr = server.local_addrs()[0];
    let mut client = Client::connect(addr).await;
    for nick in [
        "+voice",
        "@op",
        "%half",
        "~owner",
        "\u{200b}",
        "ali\u{200b}ce",
        "\u{202e}ecila",
        "\u{0430}lice",
        "alice\u{00a0}",
        "\u{feff}",
    ] {
        client.send(&format!("NICK {nick}")).await;
        let reply = client.expect_containing(" 432 ").await;
        assert!(reply.ends_with(":Erroneous nickname"), "{nick:?}: {reply}");
    }
    client.send("NICK alice").await;
    client.send("USER alice 0 * :alice").await;
    client.expect_containing(" 001 alice ").await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_names_with_control_or_invisible_characters_are_refused() {
    let server = rookery::start(test_config("")).await.unwrap();
    let addr = server.local_addrs()[0];
    let mut alice = Client::register(addr, "alice").await;
    for sent in [
        &b"JOIN #ctl\x01\x1b[2J\r\n"[..],
        b"JOIN #del\x7f\r\n",
        b"JOIN #a:b\r\n",
        "JOIN #zero\u{200b}width\r\n".as_bytes(),
        "JOIN #\u{202e}moc\r\n".as_bytes(),
    ] {
        alice.send_raw(sent).await;
        let reply = alice.expect_containing(" 476 alice ").await;
        assert!(reply.ends_with(":Bad Channel Mask"), "{reply:?}");
    }
    alice.send("JOIN #fine").await;
    alice.expect_containing(" 366 alice #fine ").await;
    alice.send("LIST").await;
    let listed = alice.expect_containing(" 322 ").await;
    assert!(listed.contains(" #fine "), "{listed}");
    alice.expect_containing(" 323 ").await;
    server.shutdown().await;
}
