//! rustls configurations for libp2p: TLS 1.3 only, on the ring provider, mutual
//! authentication with the libp2p certificate, no SNI, no session resumption, no early data.

use std::sync::Arc;
use std::time::Duration;

use lp2p_core::{Keypair, PeerId};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{ClientConfig, ServerConfig};

use crate::TlsError;
use crate::certificate;
use crate::verifier::Libp2pCertVerifier;

/// The ALPN protocol id of libp2p over TLS; always the last entry of the list we offer.
pub const ALPN_LIBP2P: &[u8] = b"libp2p";

/// Default handshake timeout for `/tls/1.0.0`. TLS 1.3 needs two round trips on a byte
/// stream (one after multistream-select); 10 s is ample on a slow link and, like noise's,
/// short enough that a stalled remote does not hold a connection slot for long.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of the `/tls/1.0.0` security channel.
///
/// ```
/// use std::time::Duration;
/// use lp2p_tls::TlsConfig;
///
/// let config = TlsConfig::default().handshake_timeout(Duration::from_secs(5));
/// assert_eq!(config.get_handshake_timeout(), Duration::from_secs(5));
/// ```
#[derive(Debug, Clone)]
pub struct TlsConfig {
    handshake_timeout: Duration,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }
}

impl TlsConfig {
    /// How long the whole handshake may take (default [`DEFAULT_HANDSHAKE_TIMEOUT`]).
    #[must_use]
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The handshake timeout.
    pub fn get_handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }
}

/// The ring crypto provider restricted to TLS 1.3 cipher suites (the spec forbids anything
/// older). Key exchange groups and signature algorithms are ring's defaults.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider
        .cipher_suites
        .retain(|suite| suite.tls13().is_some());
    Arc::new(provider)
}

/// Our certificate and its signing key, ready for rustls: generated once per host key and
/// shared by every connection (the spec allows reusing it).
#[derive(Clone)]
pub struct LocalCertificate {
    key: Arc<CertifiedKey>,
    peer_id: PeerId,
}

impl LocalCertificate {
    /// Generates a certificate for `host_key` (see [`certificate::generate`]).
    pub fn generate(host_key: &Keypair) -> Result<LocalCertificate, TlsError> {
        let generated = certificate::generate(host_key)?;
        let signing_key = rustls::crypto::ring::sign::any_ecdsa_type(&generated.private_key)
            .map_err(|e| TlsError::Generation(e.to_string()))?;
        Ok(LocalCertificate {
            key: Arc::new(CertifiedKey::new(vec![generated.certificate], signing_key)),
            peer_id: host_key.public().to_peer_id(),
        })
    }

    /// The peer id the certificate proves.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The certificate, DER.
    pub fn certificate(&self) -> Option<&CertificateDer<'static>> {
        self.key.cert.first()
    }

    fn resolver(&self) -> Arc<SingleCertAndKey> {
        Arc::new(SingleCertAndKey::from(self.key.clone()))
    }
}

impl std::fmt::Debug for LocalCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCertificate")
            .field("peer_id", &self.peer_id)
            .finish_non_exhaustive()
    }
}

/// A rustls client configuration that presents `local` and checks the server with
/// `verifier`, offering `alpn` (which should end with [`ALPN_LIBP2P`]).
///
/// SNI is off (the spec: clients MUST NOT send a server name), session resumption is off (a
/// resumed session would skip the certificate checks) and so is early data.
pub fn client_config(
    local: &LocalCertificate,
    verifier: Libp2pCertVerifier,
    alpn: Vec<Vec<u8>>,
) -> Result<ClientConfig, TlsError> {
    let mut config = ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_cert_resolver(local.resolver());
    config.enable_sni = false;
    config.resumption = rustls::client::Resumption::disabled();
    config.enable_early_data = false;
    config.alpn_protocols = alpn;
    Ok(config)
}

/// A rustls server configuration that presents `local`, requires a client certificate
/// checked by `verifier`, and selects from `alpn` (see [`client_config`]).
///
/// No session tickets or session cache (resumption would skip the certificate checks) and no
/// early data.
pub fn server_config(
    local: &LocalCertificate,
    verifier: Libp2pCertVerifier,
    alpn: Vec<Vec<u8>>,
) -> Result<ServerConfig, TlsError> {
    let mut config = ServerConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_cert_resolver(local.resolver());
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    config.max_early_data_size = 0;
    config.alpn_protocols = alpn;
    Ok(config)
}
