//! TLS listeners beside plaintext ones, with a real TLS client.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::{Client, test_config};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// A self-signed certificate for `localhost`, written to a fresh folder.
fn certificate() -> (PathBuf, PathBuf, CertificateDer<'static>) {
    let dir = std::env::temp_dir().join(format!(
        "rookery-tls-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    (cert, key, certified.cert.der().clone())
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn tls_config(cert: &std::path::Path, key: &std::path::Path) -> rookery::config::Config {
    use rookery::config::{Listen, Tls};
    let mut config = test_config("");
    config.server.sts_port = Some(6697);
    let tls = Tls {
        cert: cert.to_owned(),
        key: key.to_owned(),
    };
    let any_port = "127.0.0.1:0".parse().unwrap();
    config.listen = vec![
        Listen {
            address: any_port,
            tls: None,
        },
        Listen {
            address: any_port,
            tls: Some(tls),
        },
    ];
    config
}

async fn connect_tls(
    addr: std::net::SocketAddr,
    trusted: CertificateDer<'static>,
) -> Client<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut roots = RootCertStore::empty();
    roots.add(trusted).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let stream = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let stream = TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .unwrap();
    Client::over(stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_plaintext_users_chat_in_one_room() {
    let (cert, key, der) = certificate();
    let server = rookery::start(tls_config(&cert, &key)).await.unwrap();
    let (plain_addr, tls_addr) = (server.local_addrs()[0], server.local_addrs()[1]);

    let mut alice = connect_tls(tls_addr, der).await;
    let ls = alice.cap_ls().await;
    assert!(ls.contains("sts=duration=2592000"), "{ls}");
    alice.send("CAP END").await;
    alice.register_as("alice").await;

    let mut bob = Client::over(TcpStream::connect(plain_addr).await.unwrap());
    let ls = bob.cap_ls().await;
    assert!(ls.contains("sts=port=6697"), "{ls}");
    bob.send("CAP REQ :sts").await;
    bob.expect_containing("CAP * NAK :sts").await;
    bob.send("CAP END").await;
    bob.register_as("bob").await;

    alice.send("JOIN #room").await;
    alice.expect_containing(" 366 ").await;
    bob.send("JOIN #room").await;
    bob.expect_containing(" 366 ").await;
    alice.send("PRIVMSG #room :over TLS").await;
    assert_eq!(
        bob.expect_containing("PRIVMSG").await,
        ":alice!~alice@127.0.0.1 PRIVMSG #room :over TLS"
    );
    bob.send("PRIVMSG #room :in plaintext").await;
    assert_eq!(
        alice.expect_containing("PRIVMSG").await,
        ":bob!~bob@127.0.0.1 PRIVMSG #room :in plaintext"
    );

    bob.send("WHOIS alice").await;
    let secure = bob.expect_containing(" 671 ").await;
    assert_eq!(
        secure,
        ":irc.test 671 bob alice :is using a secure connection"
    );
    bob.send("WHOIS bob").await;
    let end = bob.expect_containing(" 318 ").await;
    assert!(end.contains(" bob "), "{end}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_bad_certificate_stops_the_start_with_its_file_named() {
    let (cert, key, _) = certificate();
    std::fs::write(&cert, "not a certificate").unwrap();
    let error = rookery::start(tls_config(&cert, &key))
        .await
        .err()
        .expect("the start must fail");
    let message = error.to_string();
    assert!(message.contains("cert.pem"), "{message}");
    assert!(message.contains("certificate"), "{message}");
}

#[tokio::test]
async fn a_key_that_does_not_match_the_certificate_is_refused() {
    let (cert, _, _) = certificate();
    let (_, other_key, _) = certificate();
    let error = rookery::start(tls_config(&cert, &other_key))
        .await
        .err()
        .expect("the start must fail");
    assert!(error.to_string().contains("key.pem"), "{error}");
}
