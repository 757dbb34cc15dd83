//! The libp2p certificate: generation for a host key, and verification of a remote's.
//!
//! Sans-IO: pure functions of the certificate bytes and the time, no socket and no clock.
//! libp2p/specs `tls/tls.md`, "Peer Authentication": a self-signed X.509 certificate whose key
//! is unrelated to the host key, carrying the libp2p public key extension (OID
//! 1.3.6.1.4.1.53594.1.1) with the host key and the host key's signature over
//! `"libp2p-tls-handshake:" ‖ DER SubjectPublicKeyInfo of the certificate key`.

use lp2p_core::{Keypair, PeerId, PublicKey};
use ring::signature::{self as ring_sig, UnparsedPublicKey, VerificationAlgorithm};
use rustls::SignatureScheme;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use x509_parser::certificate::{X509Certificate, X509CertificateParser};
use x509_parser::nom::Parser;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_HASH_SHA256,
    OID_NIST_HASH_SHA384, OID_NIST_HASH_SHA512, OID_PKCS1_RSAENCRYPTION, OID_PKCS1_RSASSAPSS,
    OID_PKCS1_SHA256WITHRSA, OID_PKCS1_SHA384WITHRSA, OID_PKCS1_SHA512WITHRSA,
    OID_SIG_ECDSA_WITH_SHA256, OID_SIG_ECDSA_WITH_SHA384, OID_SIG_ED25519,
};
use x509_parser::signature_algorithm::SignatureAlgorithm;
use x509_parser::x509::{AlgorithmIdentifier, SubjectPublicKeyInfo};

use crate::TlsError;
use crate::der::SignedKey;

/// The libp2p public key extension's OID, 1.3.6.1.4.1.53594.1.1 (allocated by IANA to the
/// libp2p project).
pub const LIBP2P_EXTENSION_OID: [u64; 9] = [1, 3, 6, 1, 4, 1, 53594, 1, 1];

/// What the host key signs, followed by the certificate key's DER SubjectPublicKeyInfo.
pub const SIGNING_PREFIX: &[u8] = b"libp2p-tls-handshake:";

/// The TLS 1.3 signature schemes the verifier accepts in CertificateVerify, in the order we
/// advertise them. Each needs a certificate key of the matching type.
pub const SUPPORTED_SCHEMES: [SignatureScheme; 6] = [
    SignatureScheme::ECDSA_NISTP256_SHA256,
    SignatureScheme::ED25519,
    SignatureScheme::ECDSA_NISTP384_SHA384,
    SignatureScheme::RSA_PSS_SHA256,
    SignatureScheme::RSA_PSS_SHA384,
    SignatureScheme::RSA_PSS_SHA512,
];

/// A certificate made for a host key, and the private key of the certificate (not the host
/// key) that signs the TLS handshake.
#[derive(Debug)]
pub struct GeneratedCertificate {
    /// The self-signed certificate, DER.
    pub certificate: CertificateDer<'static>,
    /// The certificate key, PKCS#8 DER (of the [`CertificateKeyType`] it was made with).
    pub private_key: PrivateKeyDer<'static>,
}

/// The kind of key a generated certificate carries, which signs the TLS handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertificateKeyType {
    /// ECDSA on P-256 with SHA-256: what go-libp2p, rust-libp2p and js-libp2p use, so every
    /// peer can verify it.
    EcdsaP256,
    /// Ed25519: cheaper to sign and verify than P-256, for peers that offer the `ed25519`
    /// signature scheme (D68).
    Ed25519,
}

/// Generates a fresh certificate for `host_key` with an ECDSA P-256 key, the key every peer
/// can verify (see [`generate_with`]).
pub fn generate(host_key: &Keypair) -> Result<GeneratedCertificate, TlsError> {
    generate_with(host_key, CertificateKeyType::EcdsaP256)
}

/// Generates a fresh certificate for `host_key` whose own key is a new key of `key_type`.
///
/// The spec asks for a certificate key unrelated to the host key, of a type the peer can
/// verify. The libp2p extension is the certificate's only extension and is marked critical,
/// as rust-libp2p and js-libp2p mark it: a verifier that does not understand it must not
/// accept the certificate. The validity window is fixed (1975-01-01 to 4096-01-01, the test
/// vectors' window), so generating needs no clock and a certificate can be reused for the
/// host key's lifetime.
pub fn generate_with(
    host_key: &Keypair,
    key_type: CertificateKeyType,
) -> Result<GeneratedCertificate, TlsError> {
    let algorithm = match key_type {
        CertificateKeyType::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        CertificateKeyType::Ed25519 => &rcgen::PKCS_ED25519,
    };
    let cert_key =
        rcgen::KeyPair::generate_for(algorithm).map_err(|e| TlsError::Generation(e.to_string()))?;
    let extension = libp2p_extension(
        host_key,
        &rcgen::PublicKeyData::subject_public_key_info(&cert_key),
    )?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.custom_extensions.push(extension);
    let certificate = params
        .self_signed(&cert_key)
        .map_err(|e| TlsError::Generation(e.to_string()))?;
    Ok(GeneratedCertificate {
        certificate: certificate.into(),
        private_key: PrivatePkcs8KeyDer::from(cert_key.serialize_der()).into(),
    })
}

/// The libp2p extension for a certificate whose key has this DER SubjectPublicKeyInfo.
pub(crate) fn libp2p_extension(
    host_key: &Keypair,
    cert_spki: &[u8],
) -> Result<rcgen::CustomExtension, TlsError> {
    let mut message = Vec::with_capacity(SIGNING_PREFIX.len().saturating_add(cert_spki.len()));
    message.extend_from_slice(SIGNING_PREFIX);
    message.extend_from_slice(cert_spki);
    let signature = host_key.sign(&message).map_err(TlsError::Signing)?;
    let public_key = host_key.public().encode_protobuf();
    let value = SignedKey {
        public_key: &public_key,
        signature: &signature,
    }
    .encode();
    let mut extension = rcgen::CustomExtension::from_oid_content(&LIBP2P_EXTENSION_OID, value);
    extension.set_criticality(true);
    Ok(extension)
}

/// The type of a certificate key, as far as signature verification needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyType {
    EcdsaP256,
    EcdsaP384,
    Ed25519,
    Rsa,
}

/// The certificate key, which signs the TLS handshake (CertificateVerify).
#[derive(Debug, Clone)]
pub struct HandshakeKey {
    key_type: KeyType,
    /// The SubjectPublicKeyInfo's key bits (an EC point, an Ed25519 key or an RSAPublicKey).
    key: Vec<u8>,
    /// An Ed25519 key, decoded once (a point decompression); `None` for other key types and
    /// for bits that are not a curve point, whose signatures all fail.
    ed25519: Option<ed25519_dalek::VerifyingKey>,
}

impl HandshakeKey {
    fn new(key_type: KeyType, key: &[u8]) -> HandshakeKey {
        HandshakeKey {
            key_type,
            key: key.to_vec(),
            ed25519: if key_type == KeyType::Ed25519 {
                crate::ed25519::decode_public_key(key)
            } else {
                None
            },
        }
    }

    /// The key bits, as the SubjectPublicKeyInfo carries them.
    #[cfg(test)]
    pub(crate) fn key_bits(&self) -> &[u8] {
        &self.key
    }

    /// Checks a TLS 1.3 handshake signature (CertificateVerify) made with this key.
    ///
    /// Fails with [`TlsError::UnsupportedSignatureScheme`] when the scheme does not fit the
    /// key (or is one TLS 1.3 forbids, like PKCS#1 v1.5), and with
    /// [`TlsError::HandshakeSignatureInvalid`] when the signature is wrong.
    pub fn verify(
        &self,
        scheme: SignatureScheme,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), TlsError> {
        let algorithm: &'static dyn VerificationAlgorithm = match (scheme, self.key_type) {
            (SignatureScheme::ECDSA_NISTP256_SHA256, KeyType::EcdsaP256) => {
                &ring_sig::ECDSA_P256_SHA256_ASN1
            }
            (SignatureScheme::ECDSA_NISTP384_SHA384, KeyType::EcdsaP384) => {
                &ring_sig::ECDSA_P384_SHA384_ASN1
            }
            (SignatureScheme::ED25519, KeyType::Ed25519) => {
                return crate::ed25519::verify(self.ed25519.as_ref(), message, signature);
            }
            (SignatureScheme::RSA_PSS_SHA256, KeyType::Rsa) => &ring_sig::RSA_PSS_2048_8192_SHA256,
            (SignatureScheme::RSA_PSS_SHA384, KeyType::Rsa) => &ring_sig::RSA_PSS_2048_8192_SHA384,
            (SignatureScheme::RSA_PSS_SHA512, KeyType::Rsa) => &ring_sig::RSA_PSS_2048_8192_SHA512,
            _ => return Err(TlsError::UnsupportedSignatureScheme(scheme)),
        };
        UnparsedPublicKey::new(algorithm, &self.key)
            .verify(message, signature)
            .map_err(|_| TlsError::HandshakeSignatureInvalid)
    }
}

/// What a verified certificate proves: the remote's host key (hence its peer id), and the
/// certificate key that must sign the TLS handshake.
#[derive(Debug, Clone)]
pub struct VerifiedCertificate {
    host_key: PublicKey,
    peer_id: PeerId,
    handshake_key: HandshakeKey,
    not_before: i64,
    not_after: i64,
}

impl VerifiedCertificate {
    /// The remote's peer id, derived from the host key in the extension.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The remote's host key.
    pub fn public_key(&self) -> &PublicKey {
        &self.host_key
    }

    /// The certificate key, to check the TLS handshake signature with.
    pub fn handshake_key(&self) -> &HandshakeKey {
        &self.handshake_key
    }

    /// The validity window, `notBefore` and `notAfter` in seconds since the Unix epoch.
    pub fn validity(&self) -> (i64, i64) {
        (self.not_before, self.not_after)
    }
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, TlsError> {
    let (rest, cert) = X509CertificateParser::new()
        .with_deep_parse_extensions(false)
        .parse(der)
        .map_err(|e| TlsError::Malformed {
            reason: e.to_string(),
        })?;
    if !rest.is_empty() {
        return Err(TlsError::TrailingData(rest.len()));
    }
    Ok(cert)
}

/// The certificate key of a certificate, to check a handshake signature with; no other rule
/// is checked (a verifier checks the certificate itself in the same handshake).
pub fn handshake_key(der: &[u8]) -> Result<HandshakeKey, TlsError> {
    let cert = parse(der)?;
    let spki = cert.public_key();
    Ok(HandshakeKey::new(
        key_type(spki)?,
        &spki.subject_public_key.data,
    ))
}

/// The host key in a certificate's libp2p extension, without checking any signature.
///
/// Only for a certificate that a [`Libp2pCertVerifier`](crate::Libp2pCertVerifier) accepted
/// in this very handshake (QUIC reads the peer's identity this way once the handshake is
/// done); anything else must go through [`verify`].
pub fn host_key(der: &[u8]) -> Result<PublicKey, TlsError> {
    let cert = parse(der)?;
    let signed_key = SignedKey::decode(find_extension(&cert)?)?;
    PublicKey::try_decode_protobuf(signed_key.public_key).map_err(|e| TlsError::InvalidHostKey {
        reason: e.to_string(),
    })
}

/// Verifies a remote's certificate against every rule of the spec, at time `now`.
///
/// In order: well-formed DER with nothing trailing; no unique ids; exactly one libp2p
/// extension and no other critical extension; `notBefore <= now <= notAfter`; a supported
/// certificate key; a valid self-signature; a well-formed `SignedKey` whose host key is a
/// valid libp2p key and whose signature verifies over the certificate key. Each failure is
/// its own [`TlsError`] variant.
pub fn verify(der: &[u8], now: UnixTime) -> Result<VerifiedCertificate, TlsError> {
    let cert = parse(der)?;
    let tbs = &cert.tbs_certificate;
    if tbs.issuer_uid.is_some() || tbs.subject_uid.is_some() {
        return Err(TlsError::UniqueIdPresent);
    }
    let signed_key = find_extension(&cert)?;
    let validity = cert.validity();
    let (not_before, not_after) = (
        validity.not_before.timestamp(),
        validity.not_after.timestamp(),
    );
    check_validity(not_before, not_after, now)?;
    let spki = tbs.public_key();
    let key_type = key_type(spki)?;
    check_self_signature(&cert, key_type)?;

    let signed_key = SignedKey::decode(signed_key)?;
    let host_key = PublicKey::try_decode_protobuf(signed_key.public_key).map_err(|e| {
        TlsError::InvalidHostKey {
            reason: e.to_string(),
        }
    })?;
    let peer_id = host_key.to_peer_id();
    let mut message = Vec::with_capacity(SIGNING_PREFIX.len().saturating_add(spki.raw.len()));
    message.extend_from_slice(SIGNING_PREFIX);
    message.extend_from_slice(spki.raw);
    if !host_key.verify(&message, signed_key.signature) {
        return Err(TlsError::ExtensionSignatureInvalid {
            peer: Box::new(peer_id),
        });
    }
    Ok(VerifiedCertificate {
        host_key,
        peer_id,
        handshake_key: HandshakeKey::new(key_type, &spki.subject_public_key.data),
        not_before,
        not_after,
    })
}

/// The value of the one libp2p extension; any other critical extension is refused.
fn find_extension<'a>(cert: &X509Certificate<'a>) -> Result<&'a [u8], TlsError> {
    let mut found = None;
    for ext in cert.extensions() {
        let is_libp2p = ext
            .oid
            .iter()
            .is_some_and(|arcs| arcs.eq(LIBP2P_EXTENSION_OID.iter().copied()));
        if is_libp2p {
            if found.is_some() {
                return Err(TlsError::DuplicateExtension);
            }
            found = Some(ext.value);
        } else if ext.critical {
            // The spec: abort on critical extensions we do not understand. We act on no
            // standard extension, so every other critical one is not understood.
            return Err(TlsError::UnknownCriticalExtension {
                oid: ext.oid.to_id_string(),
            });
        }
    }
    found.ok_or(TlsError::MissingExtension)
}

/// `notBefore <= now <= notAfter`, with the bounds in seconds since the Unix epoch.
pub(crate) fn check_validity(
    not_before: i64,
    not_after: i64,
    now: UnixTime,
) -> Result<(), TlsError> {
    let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    if now < not_before {
        return Err(TlsError::NotYetValid { not_before, now });
    }
    if now > not_after {
        return Err(TlsError::Expired { not_after, now });
    }
    Ok(())
}

fn key_type(spki: &SubjectPublicKeyInfo<'_>) -> Result<KeyType, TlsError> {
    let alg = &spki.algorithm.algorithm;
    if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        return match curve {
            Some(c) if c == OID_EC_P256 => Ok(KeyType::EcdsaP256),
            Some(c) if c == OID_NIST_EC_P384 => Ok(KeyType::EcdsaP384),
            other => Err(TlsError::UnsupportedCertificateKey {
                oid: format!(
                    "{} with curve {}",
                    alg.to_id_string(),
                    other.map_or_else(|| "(none)".to_owned(), |c| c.to_id_string())
                ),
            }),
        };
    }
    if *alg == OID_SIG_ED25519 {
        return Ok(KeyType::Ed25519);
    }
    if *alg == OID_PKCS1_RSAENCRYPTION {
        return Ok(KeyType::Rsa);
    }
    Err(TlsError::UnsupportedCertificateKey {
        oid: alg.to_id_string(),
    })
}

/// The ring algorithm for a certificate signature algorithm and the signer's key type.
fn self_signature_algorithm(
    alg: &AlgorithmIdentifier<'_>,
    key: KeyType,
) -> Option<&'static dyn VerificationAlgorithm> {
    let oid = &alg.algorithm;
    let found: &'static dyn VerificationAlgorithm = if *oid == OID_SIG_ECDSA_WITH_SHA256 {
        match key {
            KeyType::EcdsaP256 => &ring_sig::ECDSA_P256_SHA256_ASN1,
            KeyType::EcdsaP384 => &ring_sig::ECDSA_P384_SHA256_ASN1,
            _ => return None,
        }
    } else if *oid == OID_SIG_ECDSA_WITH_SHA384 {
        match key {
            KeyType::EcdsaP256 => &ring_sig::ECDSA_P256_SHA384_ASN1,
            KeyType::EcdsaP384 => &ring_sig::ECDSA_P384_SHA384_ASN1,
            _ => return None,
        }
    } else if *oid == OID_SIG_ED25519 && key == KeyType::Ed25519 {
        &ring_sig::ED25519
    } else if key != KeyType::Rsa {
        return None;
    } else if *oid == OID_PKCS1_SHA256WITHRSA {
        &ring_sig::RSA_PKCS1_2048_8192_SHA256
    } else if *oid == OID_PKCS1_SHA384WITHRSA {
        &ring_sig::RSA_PKCS1_2048_8192_SHA384
    } else if *oid == OID_PKCS1_SHA512WITHRSA {
        &ring_sig::RSA_PKCS1_2048_8192_SHA512
    } else if *oid == OID_PKCS1_RSASSAPSS {
        // The hash comes from the parameters; ring's PSS uses MGF1 with the same hash and a
        // salt as long as the hash, which is what every PSS certificate in practice uses.
        let Ok(SignatureAlgorithm::RSASSA_PSS(params)) = SignatureAlgorithm::try_from(alg) else {
            return None;
        };
        let hash = params.hash_algorithm_oid();
        if *hash == OID_NIST_HASH_SHA256 {
            &ring_sig::RSA_PSS_2048_8192_SHA256
        } else if *hash == OID_NIST_HASH_SHA384 {
            &ring_sig::RSA_PSS_2048_8192_SHA384
        } else if *hash == OID_NIST_HASH_SHA512 {
            &ring_sig::RSA_PSS_2048_8192_SHA512
        } else {
            return None;
        }
    } else {
        return None;
    };
    Some(found)
}

fn check_self_signature(cert: &X509Certificate<'_>, key: KeyType) -> Result<(), TlsError> {
    if cert.signature_algorithm != cert.tbs_certificate.signature {
        return Err(TlsError::SignatureAlgorithmMismatch);
    }
    let algorithm = self_signature_algorithm(&cert.signature_algorithm, key).ok_or_else(|| {
        TlsError::UnsupportedSignatureAlgorithm {
            oid: cert.signature_algorithm.algorithm.to_id_string(),
        }
    })?;
    if cert.signature_value.unused_bits != 0 {
        return Err(TlsError::SelfSignatureInvalid);
    }
    UnparsedPublicKey::new(algorithm, &cert.public_key().subject_public_key.data)
        .verify(cert.tbs_certificate.as_ref(), &cert.signature_value.data)
        .map_err(|_| TlsError::SelfSignatureInvalid)
}
