//! Listening on IPv4 and IPv6 at once, on the same port.

mod common;

use common::{Client, test_config};
use rookery::config::Listen;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv4_and_ipv6_listeners_share_a_port() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback here; nothing to check");
        return;
    }
    // A port that was free a moment ago, for both address families.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = test_config("");
    config.listen = vec![
        Listen {
            address: format!("127.0.0.1:{port}").parse().unwrap(),
            tls: None,
        },
        Listen {
            address: format!("[::1]:{port}").parse().unwrap(),
            tls: None,
        },
    ];
    let server = rookery::start(config).await.expect("both listeners bind");
    let mut over_v4 = Client::register(server.local_addrs()[0], "four").await;
    let mut over_v6 = Client::register(server.local_addrs()[1], "six").await;
    over_v6.send("WHOIS six").await;
    let whois = over_v6.expect_containing(" 311 ").await;
    assert_eq!(whois, ":irc.test 311 six six ~six 0::1 * :six");
    over_v4.send("PRIVMSG six :hello across families").await;
    let line = over_v6.expect_containing("PRIVMSG").await;
    assert_eq!(
        line,
        ":four!~four@127.0.0.1 PRIVMSG six :hello across families"
    );
    server.shutdown().await;
}
