//! TLS listeners: certificates loaded from PEM files, swappable at run time
//! so REHASH can pick up a renewed certificate without a restart. A client
//! may present a certificate of its own (asked for, never required): its
//! SHA-256 fingerprint is what SASL EXTERNAL logs in with. HTTP listeners
//! do not ask for one.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use sha2::{Digest, Sha256};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::client::danger::HandshakeSignatureValid;
use tokio_rustls::rustls::crypto::{
    WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature,
};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use tokio_rustls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio_rustls::rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig};
use tokio_rustls::rustls::{Error as RustlsError, SignatureScheme};

/// A certificate or key that could not be used, with the file and why.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: cannot read the certificate: {reason}")]
    Certificate { path: PathBuf, reason: String },
    #[error("{path}: cannot read the private key: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("{cert} and {key}: {reason}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

/// Builds a TLS server configuration from a PEM certificate chain and key.
pub fn load(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let certificate_error = |reason: String| TlsError::Certificate {
        path: cert.to_owned(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|error| certificate_error(error.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| certificate_error(error.to_string()))?;
    if chain.is_empty() {
        return Err(certificate_error("no PEM certificate found".to_owned()));
    }
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|error| TlsError::Key {
        path: key.to_owned(),
        reason: error.to_string(),
    })?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let client_certificates = Arc::new(AnyClientCertificate {
        algorithms: provider.signature_verification_algorithms,
    });
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| {
            builder
                .with_client_cert_verifier(client_certificates)
                .with_single_cert(chain, private_key)
        })
        .map_err(|error| TlsError::Mismatch {
            cert: cert.to_owned(),
            key: key.to_owned(),
            reason: error.to_string(),
        })?;
    Ok(Arc::new(config))
}

/// Asks every client for a certificate and accepts any, signed by anyone
/// or by itself: the certificate is an identity to be matched against the
/// fingerprints accounts registered, not a proof from an authority. The
/// handshake's signature is still checked, so a client must hold the
/// certificate's private key to present it.
#[derive(Debug)]
struct AnyClientCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCertificate {
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, RustlsError> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, RustlsError> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, RustlsError> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The SHA-256 fingerprint, in lowercase hex, of the certificate a client
/// presented in its handshake, if it presented one.
pub fn client_fingerprint(connection: &tokio_rustls::rustls::ServerConnection) -> Option<String> {
    let certificate = connection.peer_certificates()?.first()?;
    let digest = Sha256::digest(certificate.as_ref());
    Some(digest.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// What a TLS listener serves, which decides what its handshake asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Served {
    /// IRC: a client certificate is asked for, as an identity.
    Irc,
    /// HTTP: no client certificate (a browser would show a picker for a
    /// certificate nothing uses), and ALPN says HTTP/1.1.
    Http,
}

/// The protocol an HTTP listener names in ALPN: the one hyper serves here.
const HTTP_ALPN: &[u8] = b"http/1.1";

/// `config` (as [`load`] builds it) made fit for an HTTP listener: the same
/// certificate, no client authentication, ALPN `http/1.1`.
fn for_http(config: &ServerConfig) -> Arc<ServerConfig> {
    let provider = Arc::clone(config.crypto_provider());
    let mut http =
        match ServerConfig::builder_with_provider(provider).with_safe_default_protocol_versions() {
            Ok(builder) => builder
                .with_no_client_auth()
                .with_cert_resolver(Arc::clone(&config.cert_resolver)),
            // Cannot happen: `config` was built from the same provider and
            // versions. Serving with it still beats serving nothing.
            Err(error) => {
                tracing::warn!(%error, "an HTTP listener's TLS asks for client certificates");
                config.clone()
            }
        };
    http.alpn_protocols = vec![HTTP_ALPN.to_vec()];
    Arc::new(http)
}

/// The acceptor of one TLS listener; REHASH replaces what is inside.
pub struct ReloadableTls {
    acceptor: RwLock<TlsAcceptor>,
    served: Served,
}

impl ReloadableTls {
    /// An IRC listener's acceptor.
    pub fn new(config: Arc<ServerConfig>) -> Arc<ReloadableTls> {
        Arc::new(ReloadableTls {
            acceptor: RwLock::new(TlsAcceptor::from(config)),
            served: Served::Irc,
        })
    }

    /// An HTTP listener's acceptor, from a configuration [`load`] built; so
    /// is every replacement, which is made fit for HTTP the same way.
    pub fn new_http(config: &ServerConfig) -> Arc<ReloadableTls> {
        Arc::new(ReloadableTls {
            acceptor: RwLock::new(TlsAcceptor::from(for_http(config))),
            served: Served::Http,
        })
    }

    /// The acceptor for the next handshake.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Uses `config` for every handshake from now on.
    pub fn replace(&self, config: Arc<ServerConfig>) {
        let config = match self.served {
            Served::Irc => config,
            Served::Http => for_http(&config),
        };
        *self
            .acceptor
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = TlsAcceptor::from(config);
    }
}
