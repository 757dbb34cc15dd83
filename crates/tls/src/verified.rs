//! A bounded memory of remote certificates that passed every check of
//! [`certificate::verify`](crate::certificate::verify), so a peer that connects again with the
//! same certificate skips its two signature checks.
//!
//! Every check of `verify` except the validity window is a pure function of the certificate's
//! bytes: the DER structure, the extensions, the key type, the self-signature, and the host
//! key's signature in the libp2p extension. A certificate seen and accepted once is accepted
//! again, so for the same bytes only the window is checked again (against the time of the new
//! handshake). The TLS handshake signature (CertificateVerify) covers each handshake's own
//! transcript and is always checked; it is what proves the remote holds the certificate key
//! now. Peers reuse their certificate across connections (the spec allows it; lp2p,
//! rust-libp2p and go-libp2p do), so reconnections and repeated dials hit.
//!
//! What a hit saves, measured on the 2-core build machine (perf, 1,000 QUIC connections to one
//! listener on loopback): the certificate's ECDSA P-256 self-signature, about 75 µs, and the
//! host key's Ed25519 signature, about 33 µs, on each side of every handshake, both on the
//! critical path of connection setup.
//!
//! Only accepted certificates enter, so a remote cannot fill the memory without completing a
//! verification for each entry, and an entry can never turn a failing certificate into an
//! accepted one.

use std::sync::atomic::{AtomicU64, Ordering};

use lp2p_core::{PeerId, ProvenBytes};
use rustls::pki_types::UnixTime;

use std::sync::Arc;

use crate::TlsError;
use crate::certificate::{self, HandshakeKey, check_validity};

/// Certificates remembered by default (per local certificate, so per host key).
///
/// A host that keeps reconnecting to a few hundred peers hits; an entry costs about 0.5 KiB
/// (the DER of a P-256 certificate with an Ed25519 host key is about 400 bytes), so the
/// memory stays under 256 × ([`MAX_REMEMBERED_CERTIFICATE_LEN`] + 100 bytes), about 0.5 MiB
/// at worst and 130 KiB for typical certificates.
pub const DEFAULT_VERIFIED_CERTIFICATES: usize = 256;

/// Certificates longer than this are verified every time and never remembered. Certificates
/// with an RSA host key are about 1 KiB; 2 KiB bounds what one entry may hold.
pub const MAX_REMEMBERED_CERTIFICATE_LEN: usize = 2048;

/// What an accepted certificate proved, kept for the next time its bytes are seen.
#[derive(Debug, Clone)]
struct Remembered {
    peer_id: PeerId,
    not_before: i64,
    not_after: i64,
    /// Its key, decoded, for the handshake signature of every handshake that presents it.
    handshake_key: Arc<HandshakeKey>,
}

/// Remote certificates already verified, up to a capacity; shared by every handshake of a
/// [`LocalCertificate`](crate::LocalCertificate) (see the module docs for what is and is not
/// skipped).
///
/// ```
/// use lp2p_core::Keypair;
/// use lp2p_tls::certificate;
/// use lp2p_tls::VerifiedCertificates;
/// use lp2p_tls::rustls::pki_types::UnixTime;
///
/// let remote = certificate::generate(&Keypair::generate_ed25519()).unwrap();
/// let verified = VerifiedCertificates::new(16);
/// let first = verified.verify(remote.certificate.as_ref(), UnixTime::now()).unwrap();
/// let again = verified.verify(remote.certificate.as_ref(), UnixTime::now()).unwrap();
/// assert_eq!(first, again);
/// assert_eq!((verified.hits(), verified.misses()), (1, 1));
/// ```
#[derive(Debug)]
pub struct VerifiedCertificates {
    entries: ProvenBytes<Remembered>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl Default for VerifiedCertificates {
    fn default() -> Self {
        VerifiedCertificates::new(DEFAULT_VERIFIED_CERTIFICATES)
    }
}

impl VerifiedCertificates {
    /// Remembers up to `capacity` certificates; 0 remembers none (every handshake verifies
    /// in full).
    pub fn new(capacity: usize) -> VerifiedCertificates {
        VerifiedCertificates {
            entries: ProvenBytes::new(capacity),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Verifies `der` at time `now` by every rule of
    /// [`certificate::verify`](crate::certificate::verify), and returns the peer id it proves.
    /// A certificate accepted before is only checked against its validity window; one seen
    /// for the first time is verified in full and, if accepted, remembered.
    pub fn verify(&self, der: &[u8], now: UnixTime) -> Result<PeerId, TlsError> {
        if let Some(known) = self.entries.get(der) {
            check_validity(known.not_before, known.not_after, now)?;
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(known.peer_id);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let verified = certificate::verify(der, now)?;
        let (not_before, not_after) = verified.validity();
        self.remember(
            der,
            Remembered {
                peer_id: verified.peer_id(),
                not_before,
                not_after,
                handshake_key: Arc::new(verified.handshake_key().clone()),
            },
        );
        Ok(verified.peer_id())
    }

    /// The certificate key of `der`, decoded when it was verified, if `der` is remembered:
    /// what a handshake checks the remote's CertificateVerify with, without parsing the
    /// certificate again (D73). The key is a pure function of the bytes, so this holds
    /// whatever the clock says; [`verify`](Self::verify) is what checks the certificate.
    pub fn handshake_key(&self, der: &[u8]) -> Option<Arc<HandshakeKey>> {
        self.entries.get(der).map(|known| known.handshake_key)
    }

    /// Verifications answered from memory.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Verifications done in full (including failed ones).
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    /// Certificates remembered now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no certificate is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most certificates remembered at once.
    pub fn capacity(&self) -> usize {
        self.entries.capacity()
    }

    fn remember(&self, der: &[u8], remembered: Remembered) {
        if der.len() <= MAX_REMEMBERED_CERTIFICATE_LEN {
            self.entries.insert(der, remembered);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lp2p_core::Keypair;
    use std::time::Duration;

    fn fresh() -> Vec<u8> {
        certificate::generate(&Keypair::generate_ed25519())
            .unwrap()
            .certificate
            .as_ref()
            .to_vec()
    }

    #[test]
    fn a_certificate_seen_again_is_answered_from_memory() {
        let verified = VerifiedCertificates::new(4);
        let der = fresh();
        let now = UnixTime::now();
        let peer = verified.verify(&der, now).unwrap();
        assert_eq!(verified.verify(&der, now).unwrap(), peer);
        assert_eq!(certificate::verify(&der, now).unwrap().peer_id(), peer);
        assert_eq!(
            (verified.hits(), verified.misses(), verified.len()),
            (1, 1, 1)
        );
    }

    #[test]
    fn a_remembered_certificate_keeps_its_key_for_handshake_signatures() {
        use crate::certificate::CertificateKeyType;
        use rustls::SignatureScheme;
        let message = b"TLS 1.3, client CertificateVerify";
        for (key_type, scheme) in [
            (CertificateKeyType::Ed25519, SignatureScheme::ED25519),
            (
                CertificateKeyType::EcdsaP256,
                SignatureScheme::ECDSA_NISTP256_SHA256,
            ),
        ] {
            let generated =
                certificate::generate_with(&Keypair::generate_ed25519(), key_type).unwrap();
            let der = generated.certificate.as_ref();
            let signer = rustls::crypto::ring::sign::any_supported_type(&generated.private_key)
                .unwrap()
                .choose_scheme(&[scheme])
                .unwrap();
            let signature = signer.sign(message).unwrap();
            let verified = VerifiedCertificates::new(4);
            assert!(verified.handshake_key(der).is_none(), "not verified yet");
            verified.verify(der, UnixTime::now()).unwrap();
            let key = verified.handshake_key(der).expect("remembered");
            key.verify(scheme, message, &signature).unwrap();
            assert!(matches!(
                key.verify(scheme, b"another message", &signature),
                Err(TlsError::HandshakeSignatureInvalid)
            ));
        }
        let forgetful = VerifiedCertificates::new(0);
        let der = fresh();
        forgetful.verify(&der, UnixTime::now()).unwrap();
        assert!(forgetful.handshake_key(&der).is_none());
    }

    #[test]
    fn the_validity_window_is_checked_on_every_hit() {
        let verified = VerifiedCertificates::new(4);
        let der = fresh();
        verified.verify(&der, UnixTime::now()).unwrap();
        // Generated certificates are valid until 4096-01-01 and from 1975-01-01.
        let after = UnixTime::since_unix_epoch(Duration::from_secs(70_000_000_000));
        assert!(matches!(
            verified.verify(&der, after),
            Err(TlsError::Expired { .. })
        ));
        let before = UnixTime::since_unix_epoch(Duration::from_secs(1));
        assert!(matches!(
            verified.verify(&der, before),
            Err(TlsError::NotYetValid { .. })
        ));
        assert_eq!(verified.hits(), 0);
    }

    #[test]
    fn a_rejected_certificate_is_not_remembered() {
        let verified = VerifiedCertificates::new(4);
        let mut der = fresh();
        // Flip a bit of the self-signature (the DER ends with it).
        let last = der.len() - 1;
        der[last] ^= 1;
        for _ in 0..2 {
            assert!(verified.verify(&der, UnixTime::now()).is_err());
        }
        assert_eq!((verified.hits(), verified.misses()), (0, 2));
        assert!(verified.is_empty());
    }

    #[test]
    fn the_oldest_certificate_is_forgotten_at_capacity() {
        let verified = VerifiedCertificates::new(2);
        let (a, b, c) = (fresh(), fresh(), fresh());
        let now = UnixTime::now();
        for der in [&a, &b, &c] {
            verified.verify(der, now).unwrap();
        }
        assert_eq!(verified.len(), 2);
        verified.verify(&c, now).unwrap();
        verified.verify(&b, now).unwrap();
        assert_eq!(verified.hits(), 2);
        verified.verify(&a, now).unwrap(); // forgotten: verified in full again
        assert_eq!(
            (verified.hits(), verified.misses(), verified.len()),
            (2, 4, 2)
        );
    }

    #[test]
    fn capacity_zero_remembers_nothing() {
        let verified = VerifiedCertificates::new(0);
        let der = fresh();
        for _ in 0..3 {
            verified.verify(&der, UnixTime::now()).unwrap();
        }
        assert_eq!((verified.hits(), verified.misses()), (0, 3));
        assert!(verified.is_empty());
    }

    #[test]
    fn oversized_certificates_are_not_remembered() {
        let verified = VerifiedCertificates::new(4);
        let remembered = Remembered {
            peer_id: Keypair::generate_ed25519().public().to_peer_id(),
            not_before: 0,
            not_after: i64::MAX,
            handshake_key: Arc::new(certificate::handshake_key(&fresh()).unwrap()),
        };
        verified.remember(&[0; MAX_REMEMBERED_CERTIFICATE_LEN + 1], remembered.clone());
        assert!(verified.is_empty());
        verified.remember(&[0; MAX_REMEMBERED_CERTIFICATE_LEN], remembered);
        assert_eq!(verified.len(), 1);
    }
}
