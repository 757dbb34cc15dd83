//! The crate's one error type.

use std::time::Duration;

use lp2p_core::PeerId;
use lp2p_core::identity::SigningError;

use crate::PROTOCOL_ID;

/// Everything that can go wrong in the libp2p TLS handshake, from certificate generation to
/// the certificate checks the spec asks for.
///
/// Certificate failures are precise: each spec rule that a remote certificate can break has
/// its own variant, so logs and tests say which rule it was. At the
/// [`SecurityUpgrader`](lp2p_core::SecurityUpgrader) boundary a `TlsError` becomes
/// [`lp2p_core::Error::Security`] with protocol `/tls/1.0.0` (reach it with
/// [`std::error::Error::source`] and `downcast_ref`), except [`TlsError::PeerIdMismatch`],
/// which becomes [`lp2p_core::Error::PeerIdMismatch`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The remote sent no certificate.
    #[error("the remote sent no certificate")]
    NoCertificate,
    /// The remote sent a chain of more than one certificate (the spec allows exactly one).
    #[error("the remote sent {count} certificates; the spec allows exactly one")]
    TooManyCertificates {
        /// How many it sent.
        count: usize,
    },
    /// The certificate is not a well-formed DER X.509 certificate.
    #[error("the certificate is not a valid DER X.509 certificate: {reason}")]
    Malformed {
        /// What the parser rejected.
        reason: String,
    },
    /// Bytes follow the certificate's outer DER sequence.
    #[error("{0} bytes follow the certificate")]
    TrailingData(usize),
    /// The certificate carries the deprecated `issuerUniqueID` or `subjectUniqueID`.
    #[error("the certificate carries a deprecated issuer or subject unique id")]
    UniqueIdPresent,
    /// The certificate has no libp2p public key extension (OID 1.3.6.1.4.1.53594.1.1).
    #[error("the certificate has no libp2p public key extension (1.3.6.1.4.1.53594.1.1)")]
    MissingExtension,
    /// The libp2p public key extension appears more than once.
    #[error("the libp2p public key extension appears more than once")]
    DuplicateExtension,
    /// The libp2p extension's value is not a DER `SignedKey` sequence of two octet strings.
    #[error("the libp2p extension is not a valid SignedKey: {0}")]
    MalformedExtension(&'static str),
    /// The host key in the libp2p extension is not a valid libp2p public key, or of a type
    /// this build does not enable (see the crate features).
    #[error("the host key in the libp2p extension is invalid: {reason}")]
    InvalidHostKey {
        /// Why the key was rejected (the identity crate's decoding error).
        reason: String,
    },
    /// The host key's signature over `"libp2p-tls-handshake:" ‖ certificate key` does not
    /// verify: the host key did not sign this certificate's key (a forged or mismatched
    /// extension).
    #[error("the libp2p extension's signature by {peer} does not verify over the certificate key")]
    ExtensionSignatureInvalid {
        /// The peer id the extension claims.
        peer: Box<PeerId>,
    },
    /// The certificate carries a critical extension we do not understand.
    #[error("the certificate carries an unknown critical extension {oid}")]
    UnknownCriticalExtension {
        /// The extension's OID, dotted.
        oid: String,
    },
    /// The certificate's outer and inner signature algorithms differ.
    #[error("the certificate's signature algorithm differs from the one in its body")]
    SignatureAlgorithmMismatch,
    /// The certificate is signed with an algorithm we do not support.
    #[error("the certificate is signed with an unsupported algorithm {oid}")]
    UnsupportedSignatureAlgorithm {
        /// The algorithm's OID, dotted.
        oid: String,
    },
    /// The certificate's key is of a type we cannot verify signatures with.
    #[error("the certificate key has an unsupported type {oid}")]
    UnsupportedCertificateKey {
        /// The key algorithm's OID (and curve), dotted.
        oid: String,
    },
    /// The certificate's self-signature does not verify with its own key.
    #[error("the certificate's self-signature does not verify")]
    SelfSignatureInvalid,
    /// The certificate is not valid yet (`notBefore` is in the future).
    #[error("the certificate is not valid before {not_before} (unix time), now is {now}")]
    NotYetValid {
        /// `notBefore`, seconds since the Unix epoch.
        not_before: i64,
        /// The time of the check.
        now: i64,
    },
    /// The certificate has expired (`notAfter` is in the past).
    #[error("the certificate expired at {not_after} (unix time), now is {now}")]
    Expired {
        /// `notAfter`, seconds since the Unix epoch.
        not_after: i64,
        /// The time of the check.
        now: i64,
    },
    /// The TLS handshake signature uses a scheme that does not fit the certificate's key (or
    /// one TLS 1.3 forbids).
    #[error("handshake signature scheme {0:?} does not fit the certificate key")]
    UnsupportedSignatureScheme(rustls::SignatureScheme),
    /// The TLS handshake signature (CertificateVerify) does not verify with the certificate key.
    #[error("the handshake signature does not verify with the certificate key")]
    HandshakeSignatureInvalid,
    /// The remote proved another identity than the one we dialed.
    #[error("peer id mismatch: expected {expected}, the remote is {actual}")]
    PeerIdMismatch {
        /// The peer we meant to reach.
        expected: Box<PeerId>,
        /// The peer the remote proved to be.
        actual: Box<PeerId>,
    },
    /// The TLS protocol failed (an alert, a decryption failure, no common ALPN protocol, a
    /// certificate rejected by the remote, ...).
    #[error("TLS error: {0}")]
    Tls(#[source] rustls::Error),
    /// Reading or writing the underlying connection failed during the handshake.
    #[error("I/O error during the handshake: {0}")]
    Io(#[source] std::io::Error),
    /// The remote closed the connection before the handshake finished.
    #[error("the remote closed the connection during the handshake")]
    UnexpectedEof,
    /// The handshake did not finish within the configured timeout.
    #[error("the handshake did not finish within {0:?}")]
    Timeout(Duration),
    /// Signing the certificate key with the host key failed.
    #[error("signing the certificate key with the host key failed: {0}")]
    Signing(#[source] SigningError),
    /// Generating the certificate failed (a local problem, not the remote's).
    #[error("generating the certificate failed: {0}")]
    Generation(String),
    /// Building the rustls configuration failed (a local problem, not the remote's).
    #[error("building the TLS configuration failed: {0}")]
    Config(String),
}

impl TlsError {
    /// A [`TlsError::PeerIdMismatch`] for these two peers.
    pub fn peer_id_mismatch(expected: PeerId, actual: PeerId) -> TlsError {
        TlsError::PeerIdMismatch {
            expected: Box::new(expected),
            actual: Box::new(actual),
        }
    }

    /// Whether this is a certificate the remote sent that broke a rule of the spec (as opposed
    /// to an I/O, timeout or local failure).
    pub fn is_bad_certificate(&self) -> bool {
        !matches!(
            self,
            TlsError::PeerIdMismatch { .. }
                | TlsError::Tls(_)
                | TlsError::Io(_)
                | TlsError::UnexpectedEof
                | TlsError::Timeout(_)
                | TlsError::Signing(_)
                | TlsError::Generation(_)
                | TlsError::Config(_)
        )
    }

    /// The `TlsError` a certificate verifier put inside a rustls error, if any.
    ///
    /// The verifiers of this crate report their failures as
    /// `rustls::Error::InvalidCertificate(CertificateError::Other(..))` wrapping a `TlsError`;
    /// this reaches it again, so a failed handshake reports the precise rule that was broken.
    pub fn from_rustls(err: &rustls::Error) -> Option<&TlsError> {
        match err {
            rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => {
                other.0.downcast_ref::<TlsError>()
            }
            _ => None,
        }
    }

    /// Turns a handshake I/O error from futures-rustls into the most precise `TlsError`: the
    /// verifier's own error when a certificate was rejected, the rustls error otherwise.
    pub(crate) fn from_handshake_io(err: std::io::Error) -> TlsError {
        if err.kind() == std::io::ErrorKind::UnexpectedEof {
            return TlsError::UnexpectedEof;
        }
        let Some(rustls_err) = err
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        else {
            return TlsError::Io(err);
        };
        match TlsError::from_rustls(rustls_err) {
            Some(ours) => ours.clone_rule(),
            None => TlsError::Tls(rustls_err.clone()),
        }
    }

    /// A copy of a certificate rule failure (the variants a verifier produces). `Io` and
    /// `Signing`, which hold non-cloneable sources and which no verifier produces, become
    /// their message in `Malformed`.
    #[must_use]
    pub fn clone_rule(&self) -> TlsError {
        match self {
            TlsError::NoCertificate => TlsError::NoCertificate,
            TlsError::TooManyCertificates { count } => {
                TlsError::TooManyCertificates { count: *count }
            }
            TlsError::Malformed { reason } => TlsError::Malformed {
                reason: reason.clone(),
            },
            TlsError::TrailingData(n) => TlsError::TrailingData(*n),
            TlsError::UniqueIdPresent => TlsError::UniqueIdPresent,
            TlsError::MissingExtension => TlsError::MissingExtension,
            TlsError::DuplicateExtension => TlsError::DuplicateExtension,
            TlsError::MalformedExtension(what) => TlsError::MalformedExtension(what),
            TlsError::InvalidHostKey { reason } => TlsError::InvalidHostKey {
                reason: reason.clone(),
            },
            TlsError::ExtensionSignatureInvalid { peer } => {
                TlsError::ExtensionSignatureInvalid { peer: peer.clone() }
            }
            TlsError::UnknownCriticalExtension { oid } => {
                TlsError::UnknownCriticalExtension { oid: oid.clone() }
            }
            TlsError::SignatureAlgorithmMismatch => TlsError::SignatureAlgorithmMismatch,
            TlsError::UnsupportedSignatureAlgorithm { oid } => {
                TlsError::UnsupportedSignatureAlgorithm { oid: oid.clone() }
            }
            TlsError::UnsupportedCertificateKey { oid } => {
                TlsError::UnsupportedCertificateKey { oid: oid.clone() }
            }
            TlsError::SelfSignatureInvalid => TlsError::SelfSignatureInvalid,
            TlsError::NotYetValid { not_before, now } => TlsError::NotYetValid {
                not_before: *not_before,
                now: *now,
            },
            TlsError::Expired { not_after, now } => TlsError::Expired {
                not_after: *not_after,
                now: *now,
            },
            TlsError::UnsupportedSignatureScheme(s) => TlsError::UnsupportedSignatureScheme(*s),
            TlsError::HandshakeSignatureInvalid => TlsError::HandshakeSignatureInvalid,
            TlsError::PeerIdMismatch { expected, actual } => TlsError::PeerIdMismatch {
                expected: expected.clone(),
                actual: actual.clone(),
            },
            TlsError::Tls(e) => TlsError::Tls(e.clone()),
            TlsError::UnexpectedEof => TlsError::UnexpectedEof,
            TlsError::Timeout(d) => TlsError::Timeout(*d),
            TlsError::Generation(s) => TlsError::Generation(s.clone()),
            TlsError::Config(s) => TlsError::Config(s.clone()),
            TlsError::Io(_) | TlsError::Signing(_) => TlsError::Malformed {
                reason: self.to_string(),
            },
        }
    }
}

impl From<TlsError> for lp2p_core::Error {
    fn from(err: TlsError) -> Self {
        match err {
            TlsError::PeerIdMismatch { expected, actual } => {
                lp2p_core::Error::peer_id_mismatch(*expected, *actual)
            }
            other => lp2p_core::Error::Security {
                protocol: PROTOCOL_ID,
                source: Box::new(other),
            },
        }
    }
}
