//! rustls configurations for libp2p: TLS 1.3 only, on the ring provider, mutual
//! authentication with the libp2p certificate, no SNI, no session resumption, no early data.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use lp2p_core::{Keypair, PeerId};
use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, ServerConfig, SignatureScheme};

use crate::TlsError;
use crate::certificate::{self, CertificateKeyType};
use crate::verified::VerifiedCertificates;
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

/// The TLS 1.3 cipher suites we offer and accept, most preferred first (see
/// [`crypto_provider`]).
///
/// `TLS13_AES_128_GCM_SHA256` leads: it is the suite every TLS 1.3 stack must implement
/// (RFC 8446, section 9.1), and on CPUs with AES and SHA instructions it is the cheapest.
/// ring's default order puts `TLS13_AES_256_GCM_SHA384` first, whose SHA-384 key schedule
/// has no hardware support on x86: a profile of 1,000 QUIC connections on loopback had
/// SHA-512 blocks at 3.6 % of the dialer's CPU (about 45 µs per handshake, on the critical
/// path of both sides), SHA-256 at 0.3 %. ChaCha20-Poly1305 stays, last, for peers without
/// AES.
pub const CIPHER_SUITE_PREFERENCE: [rustls::CipherSuite; 3] = [
    rustls::CipherSuite::TLS13_AES_128_GCM_SHA256,
    rustls::CipherSuite::TLS13_AES_256_GCM_SHA384,
    rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
];

/// The ring crypto provider restricted to the TLS 1.3 cipher suites (the spec forbids
/// anything older), in the order of [`CIPHER_SUITE_PREFERENCE`]. As a client we offer them
/// in that order; as a server we follow the client's order (rustls' default), so a remote's
/// preference is honoured. Key exchange groups and signature algorithms are ring's
/// defaults, with X25519 (the first group) made ahead ([`X25519_AHEAD`](crate::X25519_AHEAD)).
pub fn crypto_provider() -> Arc<CryptoProvider> {
    // Built once: every dial builds a client configuration from it.
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| {
            let mut provider = rustls::crypto::ring::default_provider();
            for group in &mut provider.kx_groups {
                if group.name() == rustls::NamedGroup::X25519 {
                    *group = crate::X25519_AHEAD;
                }
            }
            provider
                .cipher_suites
                .retain(|suite| CIPHER_SUITE_PREFERENCE.contains(&suite.suite()));
            provider.cipher_suites.sort_by_key(|suite| {
                CIPHER_SUITE_PREFERENCE
                    .iter()
                    .position(|preferred| *preferred == suite.suite())
            });
            Arc::new(provider)
        })
        .clone()
}

/// Our certificates and their signing keys, ready for rustls: generated once per host key
/// and shared by every connection (the spec allows reusing them). It also carries the memory
/// of remote certificates its handshakes accepted ([`VerifiedCertificates`], by default
/// [`DEFAULT_VERIFIED_CERTIFICATES`](crate::DEFAULT_VERIFIED_CERTIFICATES) entries), shared
/// by its clones.
///
/// There are two certificates for the same host key: an Ed25519 one, presented to a peer
/// that offers the `ed25519` signature scheme (lp2p and rust-libp2p do: `interop/tests/quic.rs`
/// and `tls.rs` run with it), and an ECDSA P-256 one for every other peer. The spec asks for
/// a key the peer can verify and that is cheap to sign and check; Ed25519 is cheaper to
/// verify, and both checks sit on the handshake's critical path (D68 measures the first ping
/// with `lp2p-node conn-bench`).
#[derive(Clone)]
pub struct LocalCertificate {
    keys: Arc<CertificateChoice>,
    peer_id: PeerId,
    verified: Arc<VerifiedCertificates>,
}

impl LocalCertificate {
    /// Generates the certificates for `host_key` (see [`certificate::generate_with`]).
    pub fn generate(host_key: &Keypair) -> Result<LocalCertificate, TlsError> {
        let certified = |key_type| {
            let generated = certificate::generate_with(host_key, key_type)?;
            let signing_key: Arc<dyn rustls::sign::SigningKey> = match key_type {
                CertificateKeyType::Ed25519 => Arc::new(
                    crate::ed25519::Ed25519SigningKey::from_pkcs8(&generated.private_key)?,
                ),
                CertificateKeyType::EcdsaP256 => {
                    rustls::crypto::ring::sign::any_supported_type(&generated.private_key)
                        .map_err(|e| TlsError::Generation(e.to_string()))?
                }
            };
            Ok::<_, TlsError>(Arc::new(CertifiedKey::new(
                vec![generated.certificate],
                signing_key,
            )))
        };
        Ok(LocalCertificate {
            keys: Arc::new(CertificateChoice {
                ed25519: certified(CertificateKeyType::Ed25519)?,
                ecdsa_p256: certified(CertificateKeyType::EcdsaP256)?,
            }),
            peer_id: host_key.public().to_peer_id(),
            verified: Arc::new(VerifiedCertificates::default()),
        })
    }

    /// Replaces the memory of accepted remote certificates with one of `capacity` entries
    /// (0: every handshake verifies the remote's certificate in full).
    #[must_use]
    pub fn remembering_verified(mut self, capacity: usize) -> LocalCertificate {
        self.verified = Arc::new(VerifiedCertificates::new(capacity));
        self
    }

    /// The remote certificates this certificate's handshakes accepted and remember.
    pub fn verified_certificates(&self) -> &Arc<VerifiedCertificates> {
        &self.verified
    }

    /// The peer id the certificate proves.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The certificate presented to a peer that offers `schemes` as its signature
    /// algorithms: the Ed25519 one if `schemes` has `ed25519`, else the ECDSA P-256 one.
    pub fn certificate_for(&self, schemes: &[SignatureScheme]) -> Option<&CertificateDer<'static>> {
        self.keys.choose(schemes).cert.first()
    }

    fn resolver(&self) -> Arc<CertificateChoice> {
        self.keys.clone()
    }
}

/// Picks the certificate for a handshake from the signature schemes the peer offers (its
/// ClientHello as a server, its CertificateRequest as a client).
#[derive(Debug)]
struct CertificateChoice {
    ed25519: Arc<CertifiedKey>,
    ecdsa_p256: Arc<CertifiedKey>,
}

impl CertificateChoice {
    fn choose(&self, schemes: &[SignatureScheme]) -> &Arc<CertifiedKey> {
        if schemes.contains(&SignatureScheme::ED25519) {
            &self.ed25519
        } else {
            &self.ecdsa_p256
        }
    }
}

impl ResolvesServerCert for CertificateChoice {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.choose(client_hello.signature_schemes()).clone())
    }
}

impl ResolvesClientCert for CertificateChoice {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        schemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.choose(schemes).clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

impl std::fmt::Debug for LocalCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCertificate")
            .field("peer_id", &self.peer_id)
            .field("verified", &self.verified.len())
            .finish_non_exhaustive()
    }
}

/// A rustls client configuration that presents `local` and checks the server with
/// `verifier`, offering `alpn` (which should end with [`ALPN_LIBP2P`]). A verifier without
/// its own memory of accepted certificates gets `local`'s.
///
/// SNI is off (the spec: clients MUST NOT send a server name), session resumption is off (a
/// resumed session would skip the certificate checks) and so is early data.
pub fn client_config(
    local: &LocalCertificate,
    verifier: Libp2pCertVerifier,
    alpn: Vec<Vec<u8>>,
) -> Result<ClientConfig, TlsError> {
    client_config_with(crypto_provider(), local, verifier, alpn)
}

fn client_config_with(
    provider: Arc<CryptoProvider>,
    local: &LocalCertificate,
    verifier: Libp2pCertVerifier,
    alpn: Vec<Vec<u8>>,
) -> Result<ClientConfig, TlsError> {
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(with_memory(verifier, local)))
        .with_client_cert_resolver(local.resolver());
    config.enable_sni = false;
    config.resumption = rustls::client::Resumption::disabled();
    config.enable_early_data = false;
    config.alpn_protocols = alpn;
    Ok(config)
}

/// A rustls server configuration that presents `local`, requires a client certificate
/// checked by `verifier`, and selects from `alpn` (see [`client_config`], also for the memory
/// of accepted certificates).
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
        .with_client_cert_verifier(Arc::new(with_memory(verifier, local)))
        .with_cert_resolver(local.resolver());
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    config.max_early_data_size = 0;
    config.alpn_protocols = alpn;
    Ok(config)
}

fn with_memory(verifier: Libp2pCertVerifier, local: &LocalCertificate) -> Libp2pCertVerifier {
    if verifier.verified_certificates().is_some() {
        verifier
    } else {
        verifier.remembering(local.verified.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::{ClientConnection, Connection, ServerConnection};

    /// Runs a handshake between two in-memory rustls endpoints; returns the suite both agreed.
    pub(super) fn handshake(client: ClientConfig, server: ServerConfig) -> rustls::CipherSuite {
        try_handshake(client, server).unwrap()
    }

    /// Runs a handshake between two in-memory rustls endpoints: the agreed suite or the first
    /// error either side met.
    pub(super) fn try_handshake(
        client: ClientConfig,
        server: ServerConfig,
    ) -> Result<rustls::CipherSuite, rustls::Error> {
        try_handshake_inner(client, server).map(|(suite, _, _)| suite)
    }

    /// Runs a handshake; returns the certificate each side received (the client's view of
    /// the server's first, then the server's view of the client's).
    pub(super) fn handshake_with_certificates(
        client: ClientConfig,
        server: ServerConfig,
    ) -> (CertificateDer<'static>, CertificateDer<'static>) {
        let (_, seen_by_client, seen_by_server) = try_handshake_inner(client, server).unwrap();
        (seen_by_client, seen_by_server)
    }

    type Handshaken = (
        rustls::CipherSuite,
        CertificateDer<'static>,
        CertificateDer<'static>,
    );

    fn try_handshake_inner(
        client: ClientConfig,
        server: ServerConfig,
    ) -> Result<Handshaken, rustls::Error> {
        let name = rustls::pki_types::ServerName::try_from("libp2p").unwrap();
        let mut client = Connection::from(ClientConnection::new(Arc::new(client), name)?);
        let mut server = Connection::from(ServerConnection::new(Arc::new(server))?);
        for _ in 0..10 {
            let mut wire = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut wire).unwrap();
            }
            server.read_tls(&mut &wire[..]).unwrap();
            server.process_new_packets()?;
            let mut wire = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut wire).unwrap();
            }
            client.read_tls(&mut &wire[..]).unwrap();
            client.process_new_packets()?;
            if !client.is_handshaking() && !server.is_handshaking() {
                let agreed = client.negotiated_cipher_suite().unwrap().suite();
                assert_eq!(
                    Some(agreed),
                    server.negotiated_cipher_suite().map(|s| s.suite())
                );
                let seen_by_client = client.peer_certificates().unwrap()[0].clone();
                let seen_by_server = server.peer_certificates().unwrap()[0].clone();
                return Ok((agreed, seen_by_client, seen_by_server));
            }
        }
        panic!("the in-memory handshake did not finish");
    }

    fn configs() -> (ClientConfig, ServerConfig) {
        let client_cert = LocalCertificate::generate(&Keypair::generate_ed25519()).unwrap();
        let server_cert = LocalCertificate::generate(&Keypair::generate_ed25519()).unwrap();
        let alpn = vec![ALPN_LIBP2P.to_vec()];
        let client = client_config(
            &client_cert,
            Libp2pCertVerifier::expecting(Some(server_cert.peer_id())),
            alpn.clone(),
        )
        .unwrap();
        let server = server_config(&server_cert, Libp2pCertVerifier::new(), alpn).unwrap();
        (client, server)
    }

    #[test]
    fn the_provider_offers_tls13_suites_in_preference_order() {
        let offered: Vec<_> = crypto_provider()
            .cipher_suites
            .iter()
            .map(rustls::SupportedCipherSuite::suite)
            .collect();
        assert_eq!(offered, CIPHER_SUITE_PREFERENCE.to_vec());
    }

    #[test]
    fn two_lp2p_endpoints_agree_on_aes_128_gcm() {
        let (client, server) = configs();
        assert_eq!(
            handshake(client, server),
            rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
        );
    }

    #[test]
    fn the_server_follows_the_client_order() {
        // A client that prefers ChaCha20-Poly1305 (as rust-libp2p's does) gets it.
        let (client, server) = configs();
        let mut chacha_first = (*crypto_provider()).clone();
        chacha_first.cipher_suites.reverse();
        let client_cert = LocalCertificate::generate(&Keypair::generate_ed25519()).unwrap();
        let client = client_config_with(
            Arc::new(chacha_first),
            &client_cert,
            Libp2pCertVerifier::new(),
            client.alpn_protocols,
        )
        .unwrap();
        assert_eq!(
            handshake(client, server),
            rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256
        );
    }
}

#[cfg(test)]
mod choice_tests {
    use super::tests::handshake_with_certificates;
    use super::*;
    use rustls::DigitallySignedStruct;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::pki_types::{ServerName, UnixTime};

    /// Our verifier, offering only ECDSA P-256 in the ClientHello: a peer without Ed25519.
    #[derive(Debug)]
    struct P256Only(Libp2pCertVerifier);

    impl ServerCertVerifier for P256Only {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            server_name: &ServerName<'_>,
            ocsp: &[u8],
            now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            self.0
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            ServerCertVerifier::verify_tls12_signature(&self.0, message, cert, dss)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            ServerCertVerifier::verify_tls13_signature(&self.0, message, cert, dss)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            vec![SignatureScheme::ECDSA_NISTP256_SHA256]
        }
    }

    #[test]
    fn lp2p_peers_present_their_ed25519_certificates() {
        let client_cert = LocalCertificate::generate(&Keypair::generate_ed25519()).unwrap();
        let server_cert = LocalCertificate::generate(&Keypair::generate_ed25519()).unwrap();
        let alpn = vec![ALPN_LIBP2P.to_vec()];
        let client = client_config(&client_cert, Libp2pCertVerifier::new(), alpn.clone());
        let server = server_config(&server_cert, Libp2pCertVerifier::new(), alpn).unwrap();
        let (seen_by_client, seen_by_server) = handshake_with_certificates(client.unwrap(), server);
        let ed25519 = [SignatureScheme::ED25519];
        assert_eq!(Some(&seen_by_client), server_cert.certificate_for(&ed25519));
        assert_eq!(Some(&seen_by_server), client_cert.certificate_for(&ed25519));
        let p256 = [SignatureScheme::ECDSA_NISTP256_SHA256];
        assert_ne!(Some(&seen_by_client), server_cert.certificate_for(&p256));
    }

    #[test]
    fn a_peer_without_ed25519_gets_the_p256_certificate() {
        let client_cert = LocalCertificate::generate(&Keypair::generate_ed25519()).unwrap();
        let server_cert = LocalCertificate::generate(&Keypair::generate_ed25519()).unwrap();
        let alpn = vec![ALPN_LIBP2P.to_vec()];
        let mut client =
            client_config(&client_cert, Libp2pCertVerifier::new(), alpn.clone()).unwrap();
        client
            .dangerous()
            .set_certificate_verifier(Arc::new(P256Only(with_memory(
                Libp2pCertVerifier::new(),
                &client_cert,
            ))));
        let server = server_config(&server_cert, Libp2pCertVerifier::new(), alpn).unwrap();
        let (seen_by_client, _) = handshake_with_certificates(client, server);
        let p256 = [SignatureScheme::ECDSA_NISTP256_SHA256];
        assert_eq!(Some(&seen_by_client), server_cert.certificate_for(&p256));
    }

    #[test]
    fn the_choice_follows_the_offered_schemes() {
        let local = LocalCertificate::generate(&Keypair::generate_ed25519()).unwrap();
        let ed25519 = local.certificate_for(&[SignatureScheme::ED25519]);
        let p256 = local.certificate_for(&[SignatureScheme::ECDSA_NISTP256_SHA256]);
        assert_ne!(ed25519, p256);
        let both = [
            SignatureScheme::ECDSA_NISTP256_SHA256,
            SignatureScheme::ED25519,
        ];
        assert_eq!(local.certificate_for(&both), ed25519);
        assert_eq!(local.certificate_for(&[]), p256);
        // Each certificate proves the same host key.
        let now = UnixTime::now();
        for cert in [ed25519, p256] {
            let verified = certificate::verify(cert.unwrap(), now).unwrap();
            assert_eq!(verified.peer_id(), local.peer_id());
        }
    }
}

#[cfg(test)]
mod memory_tests {
    use super::tests::{handshake, try_handshake};
    use super::*;

    #[test]
    fn a_second_handshake_between_the_same_peers_skips_the_certificate_signatures() {
        let client_cert = LocalCertificate::generate(&Keypair::generate_ed25519()).unwrap();
        let server_cert = LocalCertificate::generate(&Keypair::generate_ed25519()).unwrap();
        let alpn = vec![ALPN_LIBP2P.to_vec()];
        for _ in 0..2 {
            let client = client_config(
                &client_cert,
                Libp2pCertVerifier::expecting(Some(server_cert.peer_id())),
                alpn.clone(),
            )
            .unwrap();
            let server = server_config(&server_cert, Libp2pCertVerifier::new(), alpn.clone());
            handshake(client, server.unwrap());
        }
        for side in [&client_cert, &server_cert] {
            let verified = side.verified_certificates();
            assert_eq!((verified.misses(), verified.hits()), (1, 1));
        }
        // A dial expecting another peer still fails, from memory too.
        let other = Keypair::generate_ed25519().public().to_peer_id();
        let client = client_config(
            &client_cert,
            Libp2pCertVerifier::expecting(Some(other)),
            alpn.clone(),
        );
        let server = server_config(&server_cert, Libp2pCertVerifier::new(), alpn).unwrap();
        let failed = try_handshake(client.unwrap(), server).unwrap_err();
        let failed = TlsError::from_rustls(&failed);
        assert!(
            matches!(failed, Some(TlsError::PeerIdMismatch { .. })),
            "{failed:?}"
        );
        assert_eq!(client_cert.verified_certificates().hits(), 2);
    }
}
