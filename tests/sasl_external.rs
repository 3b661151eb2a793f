//! SASL EXTERNAL over a real TLS connection: a client certificate made in
//! the test, registered with NickServ CERT ADD, logs in from a new
//! connection; another certificate does not.

mod common;

use std::sync::Arc;

use common::{Client, TempDir, test_config_with_history};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// The longest wait for a line that follows a password hash.
const HASHING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

type TlsClient = Client<tokio_rustls::client::TlsStream<TcpStream>>;

/// A self-signed certificate and its key.
struct Identity {
    certificate: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    pem: (String, String),
}

impl Identity {
    fn new(name: &str) -> Identity {
        let certified = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        Identity {
            certificate: certified.cert.der().clone(),
            key: PrivateKeyDer::try_from(certified.key_pair.serialize_der()).unwrap(),
            pem: (certified.cert.pem(), certified.key_pair.serialize_pem()),
        }
    }

    /// The certificate and a copy of its key, for one connection.
    fn credentials(&self) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        (self.certificate.clone(), self.key.clone_key())
    }
}

fn fingerprint(certificate: &CertificateDer<'_>) -> String {
    Sha256::digest(certificate.as_ref())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The server with history and one TLS listener using `server`.
async fn start(dir: &TempDir, server: &Identity) -> rookery::ServerHandle {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, &server.pem.0).unwrap();
    std::fs::write(&key, &server.pem.1).unwrap();
    let mut config = test_config_with_history(&dir.join("history.db"), "");
    config.listen[0].tls = Some(rookery::config::Tls { cert, key });
    rookery::start(config).await.unwrap()
}

/// Connects over TLS trusting `server`, presenting `client` if given.
async fn connect(
    addr: std::net::SocketAddr,
    server: &CertificateDer<'static>,
    client: Option<(CertificateDer<'static>, PrivateKeyDer<'static>)>,
) -> TlsClient {
    let mut roots = RootCertStore::empty();
    roots.add(server.clone()).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        Some((cert, key)) => builder.with_client_auth_cert(vec![cert], key).unwrap(),
        None => builder.with_no_client_auth(),
    };
    let stream = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let stream = TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .unwrap();
    let mut client = Client::over(stream);
    // Registering hashes a password, slow in a debug build on a busy machine.
    client.line_timeout = HASHING_TIMEOUT;
    client
}

/// Runs EXTERNAL while connecting as `nick`; returns the line that ended it.
async fn external(client: &mut TlsClient, nick: &str) -> String {
    let ls = client.cap_ls().await;
    assert!(ls.contains("sasl=PLAIN,SCRAM-SHA-256,EXTERNAL"), "{ls}");
    client.send("CAP REQ sasl").await;
    client.expect_containing("ACK").await;
    client.send(&format!("NICK {nick}")).await;
    client.send(&format!("USER {nick} 0 * :{nick}")).await;
    client.send("AUTHENTICATE EXTERNAL").await;
    client.expect_containing("AUTHENTICATE +").await;
    client.send("AUTHENTICATE +").await;
    loop {
        let line = client.next_line().await.expect("the exchange ends");
        if line.contains(" 903 ") || line.contains(" 904 ") {
            return line;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_certificate_logs_in_with_external_and_another_does_not() {
    let dir = TempDir::new("sasl-external");
    let server = Identity::new("localhost");
    let handle = start(&dir, &server).await;
    let addr = handle.local_addrs()[0];
    let alice_identity = Identity::new("alice");
    let expected = fingerprint(&alice_identity.certificate);

    let trusted = &server.certificate;
    let mut alice = connect(addr, trusted, Some(alice_identity.credentials())).await;
    alice.register_as("alice").await;
    alice.send("REGISTER * * hunter2").await;
    alice.expect_containing(" 900 ").await;
    alice.send("NS CERT ADD").await;
    alice.expect_containing("now logs in to your account").await;
    alice.send("WHOIS alice").await;
    let certfp = alice.expect_containing(" 276 ").await;
    assert_eq!(
        certfp,
        format!(":irc.test 276 alice alice :has client certificate fingerprint {expected}")
    );
    alice.send("QUIT").await;

    let mut again = connect(addr, trusted, Some(alice_identity.credentials())).await;
    let end = external(&mut again, "alice2").await;
    assert_eq!(end, ":irc.test 903 alice2 :SASL authentication successful");
    again.send("CAP END").await;
    again.send("WHOIS alice2").await;
    again
        .expect_containing(" 330 alice2 alice2 alice :is logged in as")
        .await;

    let mallory = Identity::new("mallory").credentials();
    let mut stranger = connect(addr, trusted, Some(mallory)).await;
    let end = external(&mut stranger, "mallory").await;
    assert_eq!(end, ":irc.test 904 mallory :SASL authentication failed");
}
