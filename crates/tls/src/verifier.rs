//! rustls certificate verifiers that apply the libp2p rules instead of the web PKI's.

use std::fmt;
use std::sync::Arc;

use lp2p_core::PeerId;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::TlsError;
use crate::certificate::{self, SUPPORTED_SCHEMES};
use crate::verified::VerifiedCertificates;

/// Called with every certificate a verifier rejects, before the handshake fails: transports
/// count and log refusals here, or keep the precise error of one handshake (QUIC, where the
/// rustls error only survives as text).
pub type FailureHook = Arc<dyn Fn(&Arc<TlsError>) + Send + Sync>;

/// Verifies the remote's certificate by the libp2p rules (see
/// [`certificate::verify`](crate::certificate::verify)), as a server verifier (we dial) and as
/// a client verifier (we accept; client authentication is mandatory).
///
/// Exactly one certificate is accepted. As a server verifier with an expected peer, a remote
/// that proves another peer id fails the handshake with [`TlsError::PeerIdMismatch`], so the
/// TLS alert goes out before any application data. Handshake signatures are checked with the
/// certificate key for the TLS 1.3 schemes in
/// [`SUPPORTED_SCHEMES`](crate::certificate::SUPPORTED_SCHEMES); TLS 1.2 is never negotiated.
///
/// With [`remembering`](Libp2pCertVerifier::remembering), a certificate accepted before is
/// not verified again (see [`VerifiedCertificates`]); [`client_config`](crate::client_config)
/// and [`server_config`](crate::server_config) give every verifier its local certificate's
/// memory.
///
/// Failures travel inside the rustls error and come back out with
/// [`TlsError::from_rustls`].
#[derive(Clone, Default)]
pub struct Libp2pCertVerifier {
    expected_peer: Option<PeerId>,
    on_failure: Option<FailureHook>,
    verified: Option<Arc<VerifiedCertificates>>,
}

impl Libp2pCertVerifier {
    /// A verifier that accepts any peer that proves its identity.
    pub fn new() -> Libp2pCertVerifier {
        Libp2pCertVerifier::default()
    }

    /// A verifier that also requires the remote to be `peer` (when dialing it).
    pub fn expecting(peer: Option<PeerId>) -> Libp2pCertVerifier {
        Libp2pCertVerifier {
            expected_peer: peer,
            on_failure: None,
            verified: None,
        }
    }

    /// Answers certificates accepted before from `verified`, and remembers new ones there.
    #[must_use]
    pub fn remembering(mut self, verified: Arc<VerifiedCertificates>) -> Libp2pCertVerifier {
        self.verified = Some(verified);
        self
    }

    /// The memory of accepted certificates this verifier uses, if any.
    pub fn verified_certificates(&self) -> Option<&Arc<VerifiedCertificates>> {
        self.verified.as_ref()
    }

    /// Calls `hook` with each rejected certificate's error.
    #[must_use]
    pub fn on_failure(mut self, hook: FailureHook) -> Libp2pCertVerifier {
        self.on_failure = Some(hook);
        self
    }

    /// The peer the remote must be, if any.
    pub fn expected_peer(&self) -> Option<PeerId> {
        self.expected_peer
    }

    fn check_chain(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
        check_expected: bool,
    ) -> Result<PeerId, rustls::Error> {
        let result = self
            .verify_chain(end_entity, intermediates, now)
            .and_then(|peer| match self.expected_peer {
                Some(expected) if check_expected && expected != peer => {
                    Err(TlsError::peer_id_mismatch(expected, peer))
                }
                _ => Ok(peer),
            });
        result.map_err(|err| self.fail(err))
    }

    fn fail(&self, err: TlsError) -> rustls::Error {
        tracing::debug!(error = %err, "refusing the remote's TLS certificate");
        let err = Arc::new(err);
        if let Some(hook) = &self.on_failure {
            hook(&err);
        }
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(err)))
    }

    fn check_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let remembered = self
            .verified
            .as_ref()
            .and_then(|verified| verified.handshake_key(cert.as_ref()));
        remembered
            .map_or_else(
                || certificate::handshake_key(cert.as_ref()).map(Arc::new),
                Ok,
            )
            .and_then(|key| key.verify(dss.scheme, message, dss.signature()))
            .map(|()| HandshakeSignatureValid::assertion())
            .map_err(|err| self.fail(err))
    }

    fn verify_chain(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<PeerId, TlsError> {
        if !intermediates.is_empty() {
            return Err(TlsError::TooManyCertificates {
                count: intermediates.len().saturating_add(1),
            });
        }
        match &self.verified {
            Some(verified) => verified.verify(end_entity.as_ref(), now),
            None => certificate::verify(end_entity.as_ref(), now).map(|v| v.peer_id()),
        }
    }
}

impl fmt::Debug for Libp2pCertVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Libp2pCertVerifier")
            .field("expected_peer", &self.expected_peer)
            .field("on_failure", &self.on_failure.is_some())
            .field("verified", &self.verified)
            .finish()
    }
}

fn tls12_refused() -> rustls::Error {
    rustls::Error::PeerIncompatible(rustls::PeerIncompatible::Tls13RequiredForQuic)
}

impl ServerCertVerifier for Libp2pCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check_chain(end_entity, intermediates, now, true)
            .map(|_| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.check_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        SUPPORTED_SCHEMES.to_vec()
    }
}

impl ClientCertVerifier for Libp2pCertVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // The expected peer is a dialer's notion; the server side accepts whoever proves
        // an identity (the swarm checks it against its limits afterwards).
        self.check_chain(end_entity, intermediates, now, false)
            .map(|_| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.check_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        SUPPORTED_SCHEMES.to_vec()
    }
}
