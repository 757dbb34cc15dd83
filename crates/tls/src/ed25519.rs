//! The Ed25519 certificate key's side of the handshake: signing our CertificateVerify and
//! checking the peer's, with ed25519-dalek instead of ring (decision D70).
//!
//! Both sit on the critical path of every handshake with an lp2p or rust-libp2p peer (they
//! get the Ed25519 certificate, D68): the server signs before its first flight, the client
//! checks that signature and signs its own before answering, the server checks the client's
//! before the connection is up. ed25519-dalek signs with precomputed base-point tables and
//! checks with its AVX2 backend where the CPU has it; ring's check runs in portable C. The
//! saving per handshake is in D70, measured with `lp2p-node conn-bench`. A certificate's key
//! is decoded (a point decompression) once per certificate (`HandshakeKey`), and the
//! certificates a host remembers keep their decoded key (D73).
//!
//! The semantics of a check are ring's: the cofactorless equation, a canonical `S`, a public
//! key that decodes to a curve point. ed25519-dalek's `verify` (not `verify_strict`) is that
//! check; `checks_agree_with_ring_on_altered_signatures_and_keys` compares the two on
//! altered signatures and keys.

use std::fmt;
use std::sync::Arc;

use ed25519_dalek::Signer as _;
use rustls::pki_types::PrivateKeyDer;
use rustls::sign::{Signer, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};

use crate::TlsError;

/// The DER of an Ed25519 PKCS#8 private key up to the 32-byte seed, after the outer
/// SEQUENCE's tag and length: version (0 for RFC 5208, 1 for RFC 5958 with the public key),
/// the Ed25519 algorithm identifier (OID 1.3.101.112), and the OCTET STRING that wraps the
/// seed's OCTET STRING (RFC 8410).
const PKCS8_SEED_PREFIX: [&[u8]; 2] = [
    &[
        0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
    ],
    &[
        0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
    ],
];

/// After the seed in an RFC 5958 (version 1) key: `[1] IMPLICIT` BIT STRING of 33 bytes, the
/// unused-bits byte, then the 32-byte public key.
const PKCS8_PUBLIC_KEY_PREFIX: &[u8] = &[0x81, 0x21, 0x00];

/// The certificate's Ed25519 key, signing the TLS 1.3 handshake.
pub(crate) struct Ed25519SigningKey {
    key: Arc<ed25519_dalek::SigningKey>,
}

impl Ed25519SigningKey {
    /// The key in a PKCS#8 document as rcgen and ring write it (version 0 or 1; with version
    /// 1 the embedded public key must be the seed's); anything else is
    /// [`TlsError::Generation`].
    pub(crate) fn from_pkcs8(der: &PrivateKeyDer<'_>) -> Result<Ed25519SigningKey, TlsError> {
        let PrivateKeyDer::Pkcs8(pkcs8) = der else {
            return Err(not_ed25519_pkcs8());
        };
        let der = pkcs8.secret_pkcs8_der();
        let (header, body) = der.split_at_checked(2).ok_or_else(not_ed25519_pkcs8)?;
        if header.first() != Some(&0x30)
            || header.get(1).map(|&len| usize::from(len)) != Some(body.len())
        {
            return Err(not_ed25519_pkcs8());
        }
        let after_prefix = PKCS8_SEED_PREFIX
            .iter()
            .find_map(|prefix| body.strip_prefix(*prefix))
            .ok_or_else(not_ed25519_pkcs8)?;
        let (seed, rest) = after_prefix
            .split_first_chunk::<32>()
            .ok_or_else(not_ed25519_pkcs8)?;
        let key = ed25519_dalek::SigningKey::from_bytes(seed);
        if !rest.is_empty() {
            let public = rest
                .strip_prefix(PKCS8_PUBLIC_KEY_PREFIX)
                .ok_or_else(not_ed25519_pkcs8)?;
            if public != key.verifying_key().as_bytes() {
                return Err(TlsError::Generation(
                    "the Ed25519 PKCS#8 key's public key is not its seed's".to_owned(),
                ));
            }
        }
        Ok(Ed25519SigningKey { key: Arc::new(key) })
    }

    /// The public key, as the certificate's SubjectPublicKeyInfo carries it.
    #[cfg(test)]
    pub(crate) fn public_key_bytes(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }
}

fn not_ed25519_pkcs8() -> TlsError {
    TlsError::Generation("not an Ed25519 PKCS#8 private key".to_owned())
}

impl fmt::Debug for Ed25519SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secret.
        f.debug_struct("Ed25519SigningKey")
            .field("public", &self.key.verifying_key())
            .finish()
    }
}

impl SigningKey for Ed25519SigningKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        offered
            .contains(&SignatureScheme::ED25519)
            .then(|| Box::new(Ed25519Signer(self.key.clone())) as Box<dyn Signer>)
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::ED25519
    }
}

/// One handshake's signer.
struct Ed25519Signer(Arc<ed25519_dalek::SigningKey>);

impl fmt::Debug for Ed25519Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Ed25519Signer")
    }
}

impl Signer for Ed25519Signer {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        Ok(self.0.sign(message).to_bytes().to_vec())
    }

    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::ED25519
    }
}

/// The Ed25519 key in a certificate's key bits; `None` when they are not a 32-byte encoding
/// of a curve point.
pub(crate) fn decode_public_key(bits: &[u8]) -> Option<ed25519_dalek::VerifyingKey> {
    let bits: &[u8; 32] = bits.try_into().ok()?;
    ed25519_dalek::VerifyingKey::from_bytes(bits).ok()
}

/// Checks an Ed25519 handshake signature made by `key` (from [`decode_public_key`]; `None`,
/// a key that did not decode, fails every signature).
pub(crate) fn verify(
    key: Option<&ed25519_dalek::VerifyingKey>,
    message: &[u8],
    signature: &[u8],
) -> Result<(), TlsError> {
    let key = key.ok_or(TlsError::HandshakeSignatureInvalid)?;
    let signature = ed25519_dalek::Signature::from_slice(signature)
        .map_err(|_| TlsError::HandshakeSignatureInvalid)?;
    // The cofactorless check (see the module docs), not `verify_strict`.
    ed25519_dalek::Verifier::verify(key, message, &signature)
        .map_err(|_| TlsError::HandshakeSignatureInvalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certificate::{self, CertificateKeyType};
    use lp2p_core::Keypair;
    use ring::signature::{ED25519, UnparsedPublicKey};
    use rustls::pki_types::PrivatePkcs8KeyDer;

    /// The group order of Ed25519, little-endian: adding it to `S` makes the same signature
    /// in a non-canonical form, which both ring and this module must refuse.
    const ORDER: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];

    fn generated() -> (Ed25519SigningKey, Vec<u8>) {
        let generated =
            certificate::generate_with(&Keypair::generate_ed25519(), CertificateKeyType::Ed25519)
                .unwrap();
        let key = Ed25519SigningKey::from_pkcs8(&generated.private_key).unwrap();
        let cert_key = certificate::handshake_key(generated.certificate.as_ref()).unwrap();
        (key, cert_key.key_bits().to_vec())
    }

    /// Decodes `public` and checks `signature` with it, as a handshake does.
    fn check(public: &[u8], message: &[u8], signature: &[u8]) -> Result<(), TlsError> {
        verify(decode_public_key(public).as_ref(), message, signature)
    }

    fn pkcs8(der: Vec<u8>) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der))
    }

    fn sign(key: &Ed25519SigningKey, message: &[u8]) -> Vec<u8> {
        let signer = key.choose_scheme(&[SignatureScheme::ED25519]).unwrap();
        assert_eq!(signer.scheme(), SignatureScheme::ED25519);
        signer.sign(message).unwrap()
    }

    #[test]
    fn the_generated_key_is_the_certificates_and_ring_accepts_its_signatures() {
        let (key, cert_key) = generated();
        assert_eq!(key.public_key_bytes().as_slice(), cert_key.as_slice());
        let message = b"TLS 1.3, server CertificateVerify";
        let signature = sign(&key, message);
        UnparsedPublicKey::new(&ED25519, &cert_key)
            .verify(message, &signature)
            .unwrap();
        check(&cert_key, message, &signature).unwrap();
    }

    #[test]
    fn only_ed25519_is_offered_a_signer() {
        let (key, _) = generated();
        assert!(
            key.choose_scheme(&[SignatureScheme::ECDSA_NISTP256_SHA256])
                .is_none()
        );
        assert_eq!(key.algorithm(), SignatureAlgorithm::ED25519);
    }

    #[test]
    fn both_pkcs8_versions_load_and_a_foreign_public_key_is_refused() {
        let seed = [7u8; 32];
        let public = ed25519_dalek::SigningKey::from_bytes(&seed)
            .verifying_key()
            .to_bytes();
        let v1 = [&[0x30, 0x2e][..], PKCS8_SEED_PREFIX[0], &seed].concat();
        let v2 = [
            &[0x30, 0x51][..],
            PKCS8_SEED_PREFIX[1],
            &seed,
            PKCS8_PUBLIC_KEY_PREFIX,
            &public,
        ]
        .concat();
        for der in [v1, v2.clone()] {
            let key = Ed25519SigningKey::from_pkcs8(&pkcs8(der)).unwrap();
            assert_eq!(key.public_key_bytes(), public);
        }
        let mut foreign = v2;
        let last = foreign.len() - 1;
        foreign[last] ^= 1;
        assert!(Ed25519SigningKey::from_pkcs8(&pkcs8(foreign)).is_err());
    }

    #[test]
    fn malformed_pkcs8_is_refused() {
        let seed = [7u8; 32];
        let good = [&[0x30, 0x2e][..], PKCS8_SEED_PREFIX[0], &seed].concat();
        let mut wrong_oid = good.clone();
        wrong_oid[10] = 0x71; // 1.3.101.113, Ed448
        let mut wrong_length = good.clone();
        wrong_length[1] = 0x2f;
        let truncated = good[..good.len() - 1].to_vec();
        let trailing = [&good[..], &[0]].concat();
        let mut inner_trailing = trailing.clone();
        inner_trailing[1] = 0x2f;
        for der in [
            wrong_oid,
            wrong_length,
            truncated,
            trailing,
            inner_trailing,
            Vec::new(),
        ] {
            assert!(
                Ed25519SigningKey::from_pkcs8(&pkcs8(der.clone())).is_err(),
                "{der:02x?}"
            );
        }
        let sec1 = PrivateKeyDer::Sec1(good.into());
        assert!(Ed25519SigningKey::from_pkcs8(&sec1).is_err());
    }

    #[test]
    fn checks_agree_with_ring_on_altered_signatures_and_keys() {
        let (key, cert_key) = generated();
        let message = b"TLS 1.3, client CertificateVerify";
        let signature = sign(&key, message);
        let ring_accepts = |public: &[u8], message: &[u8], signature: &[u8]| {
            UnparsedPublicKey::new(&ED25519, public)
                .verify(message, signature)
                .is_ok()
        };
        let mut cases = vec![(cert_key.clone(), message.to_vec(), signature.clone())];
        for bit in (0..512).step_by(7) {
            let mut altered = signature.clone();
            altered[bit / 8] ^= 1 << (bit % 8);
            cases.push((cert_key.clone(), message.to_vec(), altered));
        }
        for bit in (0..256).step_by(5) {
            let mut altered = cert_key.clone();
            altered[bit / 8] ^= 1 << (bit % 8);
            cases.push((altered, message.to_vec(), signature.clone()));
        }
        cases.push((
            cert_key.clone(),
            b"another message".to_vec(),
            signature.clone(),
        ));
        cases.push((cert_key.clone(), message.to_vec(), signature[..63].to_vec()));
        cases.push((cert_key[..31].to_vec(), message.to_vec(), signature.clone()));
        for (public, message, signature) in cases {
            assert_eq!(
                check(&public, &message, &signature).is_ok(),
                ring_accepts(&public, &message, &signature),
                "key {public:02x?} signature {signature:02x?}"
            );
        }
    }

    #[test]
    fn a_non_canonical_s_is_refused() {
        let (key, cert_key) = generated();
        let message = b"malleable?";
        let mut signature = sign(&key, message);
        // S + L, with the carry: same value mod L, a different encoding.
        let mut carry = 0u16;
        for (byte, add) in signature[32..].iter_mut().zip(ORDER) {
            let sum = u16::from(*byte) + u16::from(add) + carry;
            *byte = (sum & 0xff) as u8;
            carry = sum >> 8;
        }
        assert_eq!(carry, 0, "S + L fits in 256 bits");
        assert!(check(&cert_key, message, &signature).is_err());
        assert!(
            UnparsedPublicKey::new(&ED25519, &cert_key)
                .verify(message, &signature)
                .is_err()
        );
    }
}
