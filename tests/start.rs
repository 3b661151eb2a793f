//! A server that cannot start says why, naming the file or address at fault.

mod common;

use common::{TempDir, test_config};
use rookery::config::{HttpListen, Listen, Tls};
use rookery::server::StartError;

#[tokio::test]
async fn a_bans_file_that_does_not_parse_is_named() {
    let dir = TempDir::new("start-bans");
    let bans = dir.join("bans.toml");
    std::fs::write(&bans, "kline = [ not toml").unwrap();
    let mut config = test_config("");
    config.server.bans_file = bans.clone();
    let error = rookery::start(config).await.err().expect("the start fails");
    assert!(matches!(error, StartError::Bans(_)), "{error:?}");
    assert!(
        error
            .to_string()
            .starts_with(&format!("{}: ", bans.display())),
        "{error}"
    );
}

#[tokio::test]
async fn a_certificate_that_is_not_pem_is_named() {
    let dir = TempDir::new("start-tls");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, "not a certificate").unwrap();
    std::fs::write(&key, "not a key").unwrap();
    let mut config = test_config("");
    config.listen = vec![Listen {
        address: "127.0.0.1:0".parse().unwrap(),
        tls: Some(Tls {
            cert: cert.clone(),
            key,
        }),
    }];
    let error = rookery::start(config).await.err().expect("the start fails");
    assert!(matches!(error, StartError::Certificate(_)), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!(
            "{}: cannot read the certificate: no PEM certificate found",
            cert.display()
        )
    );
}

#[tokio::test]
async fn an_address_in_use_is_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap();
    let mut config = test_config("");
    config.listen = vec![Listen { address, tls: None }];
    refused_for_address(config, address).await;
}

#[tokio::test]
async fn a_busy_address_of_the_implicit_http_listener_only_warns() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = test_config("");
    config.http = vec![HttpListen::plain(taken.local_addr().unwrap())];
    // As if the file did not mention `http`: the built-in default.
    config.http_implicit = true;
    let server = rookery::start(config).await.expect("the server starts");
    assert!(server.http_addrs().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn a_busy_address_of_an_explicit_http_listener_stops_the_start() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap();
    let mut config = test_config("");
    config.http = vec![HttpListen::plain(address)];
    assert!(!config.http_implicit, "the test file says `http = []`");
    refused_for_address(config, address).await;
}

/// Starts `config`, which must fail on `address` and name it.
async fn refused_for_address(config: rookery::config::Config, address: std::net::SocketAddr) {
    let error = rookery::start(config).await.err().expect("the start fails");
    assert!(matches!(error, StartError::Listen(_)), "{error:?}");
    assert!(
        error
            .to_string()
            .starts_with(&format!("cannot listen on {address}: ")),
        "{error}"
    );
}
