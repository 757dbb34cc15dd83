//! TLS for `/tls/ws` (web PKI, as a browser sees it; unrelated to libp2p's `/tls/1.0.0`
//! security channel): rustls with the ring provider.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, ring};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

use crate::WsError;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

fn cert_error(e: impl std::fmt::Display) -> WsError {
    WsError::Certificate(e.to_string())
}

/// The TLS settings of a WebSocket transport: how dials check servers, and the certificate
/// listeners present.
///
/// By default dials trust the Mozilla root store (`webpki-roots`) and listeners have no
/// certificate (listening on `/tls/ws` fails until one is set).
#[derive(Clone)]
pub struct TlsConfig {
    /// The dialer's configuration, or why it could not be built (dials then fail with it).
    client: Result<Arc<ClientConfig>, String>,
    server: Option<Arc<ServerConfig>>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("server", &self.server.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        TlsConfig {
            client: client_config(roots).map_err(|e| e.to_string()),
            server: None,
        }
    }
}

fn client_config(roots: RootCertStore) -> Result<Arc<ClientConfig>, WsError> {
    Ok(Arc::new(
        ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(cert_error)?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

impl TlsConfig {
    /// Dials trust the Mozilla root store; no listener certificate.
    pub fn new() -> TlsConfig {
        TlsConfig::default()
    }

    /// Dials trust exactly these roots (for a private CA or a test certificate).
    pub fn with_roots(
        mut self,
        roots: impl IntoIterator<Item = CertificateDer<'static>>,
    ) -> Result<TlsConfig, WsError> {
        let mut store = RootCertStore::empty();
        for root in roots {
            store.add(root).map_err(cert_error)?;
        }
        self.client = Ok(client_config(store)?);
        Ok(self)
    }

    /// Dials accept any server certificate (still checking the handshake's signatures):
    /// for tests and self-signed listeners, the `--insecure-ws-cert` of `lp2p-node`. The
    /// libp2p security channel above still authenticates the peer.
    pub fn with_insecure_client(mut self) -> Result<TlsConfig, WsError> {
        self.client = Ok(Arc::new(
            ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(cert_error)?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate::new()))
                .with_no_client_auth(),
        ));
        Ok(self)
    }

    /// Listeners present this certificate chain and key.
    pub fn with_server_cert(
        mut self,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<TlsConfig, WsError> {
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(cert_error)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(cert_error)?;
        self.server = Some(Arc::new(config));
        Ok(self)
    }

    /// Listeners present the chain and key of these PEM texts (`--cert`, `--cert-key`).
    pub fn with_server_pem(self, chain_pem: &[u8], key_pem: &[u8]) -> Result<TlsConfig, WsError> {
        let chain = CertificateDer::pem_slice_iter(chain_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| cert_error(format!("certificate PEM: {e}")))?;
        if chain.is_empty() {
            return Err(cert_error("no certificate in the PEM text"));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| cert_error(format!("private key PEM: {e}")))?;
        self.with_server_cert(chain, key)
    }

    /// Listeners present a fresh self-signed certificate for these names (DNS names or IP
    /// addresses); returns it too, so a dialer can trust it with
    /// [`with_roots`](TlsConfig::with_roots).
    pub fn with_self_signed(
        self,
        names: &[&str],
    ) -> Result<(TlsConfig, CertificateDer<'static>), WsError> {
        let (cert, key) = self_signed(names)?;
        Ok((self.with_server_cert(vec![cert.clone()], key)?, cert))
    }

    /// Whether listeners have a certificate.
    pub fn has_server_cert(&self) -> bool {
        self.server.is_some()
    }

    pub(crate) fn client(&self) -> Result<Arc<ClientConfig>, WsError> {
        self.client.clone().map_err(WsError::Certificate)
    }

    pub(crate) fn server(&self) -> Option<Arc<ServerConfig>> {
        self.server.clone()
    }
}

/// A self-signed certificate (ECDSA P-256) for `names`, and its key.
pub fn self_signed(
    names: &[&str],
) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), WsError> {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let certified = rcgen::generate_simple_self_signed(names).map_err(cert_error)?;
    let key = PrivateKeyDer::try_from(certified.signing_key.serialize_der()).map_err(cert_error)?;
    Ok((certified.cert.der().clone(), key))
}

/// Accepts any certificate chain; handshake signatures are still verified, so the TLS
/// session is sound, only the server's name is not checked.
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl AcceptAnyCertificate {
    fn new() -> AcceptAnyCertificate {
        AcceptAnyCertificate {
            algorithms: ring::default_provider().signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_and_pem_round_trip() {
        let (cert, key) = self_signed(&["localhost", "127.0.0.1"]).unwrap();
        let cert_pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            base64_lines(cert.as_ref())
        );
        let PrivateKeyDer::Pkcs8(pkcs8) = key else {
            panic!("rcgen gives PKCS#8")
        };
        let key_pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64_lines(pkcs8.secret_pkcs8_der())
        );
        let config = TlsConfig::new()
            .with_server_pem(cert_pem.as_bytes(), key_pem.as_bytes())
            .unwrap();
        assert!(config.has_server_cert());
        assert!(TlsConfig::new().with_roots([cert]).is_ok());
    }

    #[test]
    fn bad_pem_is_named() {
        let err = TlsConfig::new()
            .with_server_pem(b"nothing", b"nothing")
            .unwrap_err();
        assert!(err.to_string().contains("no certificate"), "{err}");
    }

    fn base64_lines(der: &[u8]) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(der)
    }
}
