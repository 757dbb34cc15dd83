//! The certificate core: the spec's test vectors, our own certificates for every host key
//! type, every certificate key type we verify, and one precise error for each rule a bad
//! certificate can break.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lp2p_core::{Keypair, PeerId};
use lp2p_tls::certificate::{self, LIBP2P_EXTENSION_OID, SIGNING_PREFIX};
use lp2p_tls::rustls::SignatureScheme;
use lp2p_tls::rustls::pki_types::{CertificateDer, UnixTime};
use lp2p_tls::{Libp2pCertVerifier, SignedKey, TlsError};
use rcgen::{CertificateParams, CustomExtension, DistinguishedName, KeyPair, PublicKeyData};

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2));
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// 2025-01-01T00:00:00Z: inside every certificate's window below.
fn now() -> UnixTime {
    UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_735_689_600))
}

const VECTOR_ED25519: &str = "308201ae30820156a0030201020204499602d2300a06082a8648ce3d040302302031123010060355040a13096c69627032702e696f310a300806035504051301313020170d3735303130313133303030305a180f34303936303130313133303030305a302031123010060355040a13096c69627032702e696f310a300806035504051301313059301306072a8648ce3d020106082a8648ce3d030107034200040c901d423c831ca85e27c73c263ba132721bb9d7a84c4f0380b2a6756fd601331c8870234dec878504c174144fa4b14b66a651691606d8173e55bd37e381569ea37c307a3078060a2b0601040183a25a0101046a3068042408011220a77f1d92fedb59dddaea5a1c4abd1ac2fbde7d7b879ed364501809923d7c11b90440d90d2769db992d5e6195dbb08e706b6651e024fda6cfb8846694a435519941cac215a8207792e42849cccc6cd8136c6e4bde92a58c5e08cfd4206eb5fe0bf909300a06082a8648ce3d0403020346003043021f50f6b6c52711a881778718238f650c9fb48943ae6ee6d28427dc6071ae55e702203625f116a7a454db9c56986c82a25682f7248ea1cb764d322ea983ed36a31b77";
const VECTOR_ECDSA: &str = "308201f63082019da0030201020204499602d2300a06082a8648ce3d040302302031123010060355040a13096c69627032702e696f310a300806035504051301313020170d3735303130313133303030305a180f34303936303130313133303030305a302031123010060355040a13096c69627032702e696f310a300806035504051301313059301306072a8648ce3d020106082a8648ce3d030107034200040c901d423c831ca85e27c73c263ba132721bb9d7a84c4f0380b2a6756fd601331c8870234dec878504c174144fa4b14b66a651691606d8173e55bd37e381569ea381c23081bf3081bc060a2b0601040183a25a01010481ad3081aa045f0803125b3059301306072a8648ce3d020106082a8648ce3d03010703420004bf30511f909414ebdd3242178fd290f093a551cf75c973155de0bb5a96fedf6cb5d52da7563e794b512f66e60c7f55ba8a3acf3dd72a801980d205e8a1ad29f2044730450220064ea8124774caf8f50e57f436aa62350ce652418c019df5d98a3ac666c9386a022100aa59d704a931b5f72fb9222cb6cc51f954d04a4e2e5450f8805fe8918f71eaae300a06082a8648ce3d04030203470030440220799395b0b6c1e940a7e4484705f610ab51ed376f19ff9d7c16757cfbf61b8d4302206205c03fbb0f95205c779be86581d3e31c01871ad5d1f3435bcf375cb0e5088a";
const VECTOR_SECP256K1: &str = "308201ba3082015fa0030201020204499602d2300a06082a8648ce3d040302302031123010060355040a13096c69627032702e696f310a300806035504051301313020170d3735303130313133303030305a180f34303936303130313133303030305a302031123010060355040a13096c69627032702e696f310a300806035504051301313059301306072a8648ce3d020106082a8648ce3d030107034200040c901d423c831ca85e27c73c263ba132721bb9d7a84c4f0380b2a6756fd601331c8870234dec878504c174144fa4b14b66a651691606d8173e55bd37e381569ea38184308181307f060a2b0601040183a25a01010471306f0425080212210206dc6968726765b820f050263ececf7f71e4955892776c0970542efd689d2382044630440220145e15a991961f0d08cd15425bb95ec93f6ffa03c5a385eedc34ecf464c7a8ab022026b3109b8a3f40ef833169777eb2aa337cfb6282f188de0666d1bcec2a4690dd300a06082a8648ce3d0403020349003046022100e1a217eeef9ec9204b3f774a08b70849646b6a1e6b8b27f93dc00ed58545d9fe022100b00dafa549d0f03547878338c7b15e7502888f6d45db387e5ae6b5d46899cef0";
const VECTOR_INVALID: &str = "308201f73082019da0030201020204499602d2300a06082a8648ce3d040302302031123010060355040a13096c69627032702e696f310a300806035504051301313020170d3735303130313133303030305a180f34303936303130313133303030305a302031123010060355040a13096c69627032702e696f310a300806035504051301313059301306072a8648ce3d020106082a8648ce3d030107034200040c901d423c831ca85e27c73c263ba132721bb9d7a84c4f0380b2a6756fd601331c8870234dec878504c174144fa4b14b66a651691606d8173e55bd37e381569ea381c23081bf3081bc060a2b0601040183a25a01010481ad3081aa045f0803125b3059301306072a8648ce3d020106082a8648ce3d03010703420004bf30511f909414ebdd3242178fd290f093a551cf75c973155de0bb5a96fedf6cb5d52da7563e794b512f66e60c7f55ba8a3acf3dd72a801980d205e8a1ad29f204473045022100bb6e03577b7cc7a3cd1558df0da2b117dfdcc0399bc2504ebe7de6f65cade72802206de96e2a5be9b6202adba24ee0362e490641ac45c240db71fe955f2c5cf8df6e300a06082a8648ce3d0403020348003045022100e847f267f43717358f850355bdcabbefb2cfbf8a3c043b203a14788a092fe8db022027c1d04a2d41fd6b57a7e8b3989e470325de4406e52e084e34a3fd56eef0d0df";

#[test]
fn spec_vector_1_ed25519() {
    let cert = certificate::verify(&hex(VECTOR_ED25519), now()).unwrap();
    assert_eq!(
        cert.peer_id().to_string(),
        "12D3KooWM6CgA9iBFZmcYAHA6A2qvbAxqfkmrYiRQuz3XEsk4Ksv"
    );
}

#[test]
fn spec_vector_2_ecdsa() {
    let cert = certificate::verify(&hex(VECTOR_ECDSA), now()).unwrap();
    assert_eq!(
        cert.peer_id().to_string(),
        "QmfXbAwNjJLXfesgztEHe8HwgVDCMMpZ9Eax1HYq6hn9uE"
    );
}

#[test]
fn spec_vector_3_secp256k1() {
    let cert = certificate::verify(&hex(VECTOR_SECP256K1), now()).unwrap();
    assert_eq!(
        cert.peer_id().to_string(),
        "16Uiu2HAkutTMoTzDw1tCvSRtu6YoixJwS46S1ZFxW8hSx9fWHiPs"
    );
}

#[test]
fn spec_vector_4_invalid_is_a_key_mismatch() {
    match certificate::verify(&hex(VECTOR_INVALID), now()) {
        Err(TlsError::ExtensionSignatureInvalid { peer }) => {
            // The extension claims the ECDSA vector's peer; its signature is not over this
            // certificate's key.
            assert_eq!(
                peer.to_string(),
                "QmfXbAwNjJLXfesgztEHe8HwgVDCMMpZ9Eax1HYq6hn9uE"
            );
        }
        other => panic!("{other:?}"),
    }
}

fn rsa_host_key() -> Keypair {
    let mut der = include_bytes!("assets/rsa2048.pk8").to_vec();
    Keypair::rsa_from_pkcs8(&mut der).unwrap()
}

fn host_keys() -> Vec<(&'static str, Keypair)> {
    vec![
        ("ed25519", Keypair::generate_ed25519()),
        ("secp256k1", Keypair::generate_secp256k1()),
        ("ecdsa", Keypair::generate_ecdsa()),
        ("rsa", rsa_host_key()),
    ]
}

#[test]
fn generated_certificates_verify_for_every_host_key_type() {
    for (name, host) in host_keys() {
        let generated = certificate::generate(&host).unwrap();
        let verified = certificate::verify(generated.certificate.as_ref(), now())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(verified.peer_id(), host.public().to_peer_id(), "{name}");
        assert_eq!(verified.public_key(), &host.public(), "{name}");
        assert_eq!(
            certificate::host_key(generated.certificate.as_ref()).unwrap(),
            host.public()
        );
    }
}

#[test]
fn generated_certificate_shape() {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let host = Keypair::generate_ed25519();
    let generated = certificate::generate(&host).unwrap();
    let (_, cert) = X509Certificate::from_der(generated.certificate.as_ref()).unwrap();
    // The libp2p extension is the only (so also the first, which js-libp2p insists on)
    // extension, and it is critical.
    let exts = cert.extensions();
    assert_eq!(exts.len(), 1);
    assert_eq!(exts[0].oid.to_id_string(), "1.3.6.1.4.1.53594.1.1");
    assert!(exts[0].critical);
    assert!(cert.tbs_certificate.issuer_uid.is_none());
    assert!(cert.tbs_certificate.subject_uid.is_none());
    // ECDSA P-256 with SHA-256, valid from 1975 to 4096.
    assert_eq!(
        cert.signature_algorithm.algorithm.to_id_string(),
        "1.2.840.10045.4.3.2"
    );
    assert_eq!(cert.validity().not_before.timestamp(), 157_766_400);
    assert!(cert.validity().not_after.timestamp() > 60_000_000_000);
    // A fresh certificate key each time, unrelated to the host key.
    let again = certificate::generate(&host).unwrap();
    assert_ne!(again.certificate, generated.certificate);
}

/// A certificate for `host` signed by `cert_key`, with whatever `edit` changes.
fn build(
    host: &Keypair,
    cert_key: &KeyPair,
    edit: impl FnOnce(&mut CertificateParams, &mut Vec<u8>),
) -> Vec<u8> {
    let mut message = SIGNING_PREFIX.to_vec();
    message.extend_from_slice(&cert_key.subject_public_key_info());
    let signature = host.sign(&message).unwrap();
    let public_key = host.public().encode_protobuf();
    let mut value = SignedKey {
        public_key: &public_key,
        signature: &signature,
    }
    .encode();
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    edit(&mut params, &mut value);
    if params.custom_extensions.is_empty() {
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                &LIBP2P_EXTENSION_OID,
                value,
            ));
    }
    params.self_signed(cert_key).unwrap().der().to_vec()
}

fn p256() -> KeyPair {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap()
}

fn verify_err(der: &[u8]) -> TlsError {
    match certificate::verify(der, now()) {
        Ok(v) => panic!("accepted, peer {}", v.peer_id()),
        Err(e) => e,
    }
}

#[test]
fn every_certificate_key_type_we_support_verifies() {
    let host = Keypair::generate_ed25519();
    let mut rsa = include_bytes!("assets/rsa2048-cert.pk8").to_vec();
    let cases: Vec<(&str, KeyPair)> = vec![
        ("p256", p256()),
        (
            "p384",
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap(),
        ),
        (
            "ed25519",
            KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap(),
        ),
        (
            "rsa-sha256",
            KeyPair::from_pkcs8_der_and_sign_algo(&(&rsa[..]).into(), &rcgen::PKCS_RSA_SHA256)
                .unwrap(),
        ),
        (
            "rsa-sha512",
            KeyPair::from_pkcs8_der_and_sign_algo(
                &(&rsa.as_mut_slice()[..]).into(),
                &rcgen::PKCS_RSA_SHA512,
            )
            .unwrap(),
        ),
    ];
    for (name, cert_key) in cases {
        let der = build(&host, &cert_key, |_, _| {});
        let verified = certificate::verify(&der, now()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(verified.peer_id(), host.public().to_peer_id());
    }
}

#[test]
fn a_non_critical_extension_is_accepted_too() {
    // The spec vectors carry it non-critical and our own certificates critical; both are fine.
    let host = Keypair::generate_ed25519();
    let key = p256();
    let der = build(&host, &key, |params, value| {
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                &LIBP2P_EXTENSION_OID,
                value.clone(),
            ));
    });
    assert!(certificate::verify(&der, now()).is_ok());
    let der = build(&host, &key, |params, value| {
        let mut ext = CustomExtension::from_oid_content(&LIBP2P_EXTENSION_OID, value.clone());
        ext.set_criticality(true);
        params.custom_extensions.push(ext);
    });
    assert!(certificate::verify(&der, now()).is_ok());
}

#[test]
fn missing_extension() {
    let host = Keypair::generate_ed25519();
    let der = build(&host, &p256(), |params, _| {
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                &[2, 5, 29, 99],
                vec![5, 0],
            ));
    });
    assert!(matches!(verify_err(&der), TlsError::MissingExtension));
}

#[test]
fn wrong_oid_non_critical_means_missing_extension() {
    let host = Keypair::generate_ed25519();
    let der = build(&host, &p256(), |params, value| {
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 4, 1, 53594, 1, 2],
                value.clone(),
            ));
    });
    assert!(matches!(verify_err(&der), TlsError::MissingExtension));
}

#[test]
fn wrong_oid_critical_is_an_unknown_critical_extension() {
    let host = Keypair::generate_ed25519();
    let der = build(&host, &p256(), |params, value| {
        let mut ext =
            CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 53594, 1, 2], value.clone());
        ext.set_criticality(true);
        params.custom_extensions.push(ext);
    });
    match verify_err(&der) {
        TlsError::UnknownCriticalExtension { oid } => assert_eq!(oid, "1.3.6.1.4.1.53594.1.2"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_critical_extension_beside_ours() {
    let host = Keypair::generate_ed25519();
    let der = build(&host, &p256(), |params, value| {
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                &LIBP2P_EXTENSION_OID,
                value.clone(),
            ));
        let mut other = CustomExtension::from_oid_content(&[1, 2, 3, 4], vec![5, 0]);
        other.set_criticality(true);
        params.custom_extensions.push(other);
    });
    assert!(matches!(
        verify_err(&der),
        TlsError::UnknownCriticalExtension { .. }
    ));
}

#[test]
fn unknown_non_critical_extensions_are_ignored() {
    let host = Keypair::generate_ed25519();
    let der = build(&host, &p256(), |params, value| {
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(&[1, 2, 3, 4], vec![5, 0]));
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                &LIBP2P_EXTENSION_OID,
                value.clone(),
            ));
    });
    assert!(certificate::verify(&der, now()).is_ok());
}

#[test]
fn duplicate_extension() {
    let host = Keypair::generate_ed25519();
    let der = build(&host, &p256(), |params, value| {
        for _ in 0..2 {
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(
                    &LIBP2P_EXTENSION_OID,
                    value.clone(),
                ));
        }
    });
    assert!(matches!(verify_err(&der), TlsError::DuplicateExtension));
}

#[test]
fn bad_extension_signature() {
    let host = Keypair::generate_ed25519();
    let der = build(&host, &p256(), |_, value| {
        // The signature's last byte (the value ends with it).
        *value.last_mut().unwrap() ^= 1;
    });
    match verify_err(&der) {
        TlsError::ExtensionSignatureInvalid { peer } => {
            assert_eq!(*peer, host.public().to_peer_id());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn extension_signed_for_another_certificate_key() {
    // A host key's genuine signature, but over another certificate key: the extension was
    // lifted from another certificate.
    let host = Keypair::generate_ed25519();
    let other_key = p256();
    let der = build(&host, &p256(), |_, value| {
        let mut message = SIGNING_PREFIX.to_vec();
        message.extend_from_slice(&other_key.subject_public_key_info());
        let signature = host.sign(&message).unwrap();
        let public_key = host.public().encode_protobuf();
        *value = SignedKey {
            public_key: &public_key,
            signature: &signature,
        }
        .encode();
    });
    assert!(matches!(
        verify_err(&der),
        TlsError::ExtensionSignatureInvalid { .. }
    ));
}

#[test]
fn extension_with_a_foreign_host_key() {
    // The extension names one host key but carries another one's signature.
    let host = Keypair::generate_ed25519();
    let foreign = Keypair::generate_ed25519();
    let key = p256();
    let der = build(&host, &key, |_, value| {
        let mut message = SIGNING_PREFIX.to_vec();
        message.extend_from_slice(&key.subject_public_key_info());
        let signature = foreign.sign(&message).unwrap();
        let public_key = host.public().encode_protobuf();
        *value = SignedKey {
            public_key: &public_key,
            signature: &signature,
        }
        .encode();
    });
    match verify_err(&der) {
        TlsError::ExtensionSignatureInvalid { peer } => {
            assert_eq!(*peer, host.public().to_peer_id());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_signed_key() {
    let host = Keypair::generate_ed25519();
    let der = build(&host, &p256(), |_, value| {
        *value = vec![0x30, 0x03, 0x04, 0x01, 0x00];
    });
    assert!(matches!(verify_err(&der), TlsError::MalformedExtension(_)));
}

#[test]
fn invalid_host_key() {
    let host = Keypair::generate_ed25519();
    let der = build(&host, &p256(), |_, value| {
        *value = SignedKey {
            public_key: &[0x08, 0x01, 0x12, 0x03, 1, 2, 3],
            signature: &[0; 64],
        }
        .encode();
    });
    assert!(matches!(verify_err(&der), TlsError::InvalidHostKey { .. }));
}

#[test]
fn expired() {
    let host = Keypair::generate_ed25519();
    let der = build(&host, &p256(), |params, _| {
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2020, 1, 1);
    });
    match verify_err(&der) {
        TlsError::Expired { not_after, now } => {
            assert_eq!(not_after, 1_577_836_800);
            assert_eq!(now, 1_735_689_600);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn not_yet_valid() {
    let host = Keypair::generate_ed25519();
    let der = build(&host, &p256(), |params, _| {
        params.not_before = rcgen::date_time_ymd(2030, 1, 1);
    });
    assert!(matches!(verify_err(&der), TlsError::NotYetValid { .. }));
}

#[test]
fn bad_self_signature() {
    let host = Keypair::generate_ed25519();
    let mut der = build(&host, &p256(), |_, _| {});
    // The last byte is the last byte of the ECDSA signature's `s`.
    *der.last_mut().unwrap() ^= 0x01;
    assert!(matches!(verify_err(&der), TlsError::SelfSignatureInvalid));
}

#[test]
fn certificate_signed_by_another_key() {
    // Not self-signed: the issuer's key signed it, and the certificate carries another key.
    let host = Keypair::generate_ed25519();
    let subject_key = p256();
    let issuer_key = p256();
    let mut message = SIGNING_PREFIX.to_vec();
    message.extend_from_slice(&subject_key.subject_public_key_info());
    let signature = host.sign(&message).unwrap();
    let public_key = host.public().encode_protobuf();
    let value = SignedKey {
        public_key: &public_key,
        signature: &signature,
    }
    .encode();
    let mut issuer_params = CertificateParams::default();
    issuer_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let issuer = rcgen::Issuer::new(issuer_params, &issuer_key);
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .custom_extensions
        .push(CustomExtension::from_oid_content(
            &LIBP2P_EXTENSION_OID,
            value,
        ));
    let cert = params.signed_by(&subject_key, &issuer).unwrap();
    assert!(matches!(
        verify_err(cert.der()),
        TlsError::SelfSignatureInvalid
    ));
}

#[test]
fn garbage_and_trailing_bytes() {
    assert!(matches!(
        verify_err(b"not a certificate"),
        TlsError::Malformed { .. }
    ));
    assert!(matches!(verify_err(&[]), TlsError::Malformed { .. }));
    let mut der = hex(VECTOR_ED25519);
    der.push(0);
    assert!(matches!(verify_err(&der), TlsError::TrailingData(1)));
    let der = hex(VECTOR_ED25519);
    for len in [1, 10, 100, der.len() - 1] {
        assert!(matches!(
            verify_err(&der[..len]),
            TlsError::Malformed { .. }
        ));
    }
}

#[test]
fn handshake_signatures() {
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
    let host = Keypair::generate_ed25519();
    let generated = certificate::generate(&host).unwrap();
    let verified = certificate::verify(generated.certificate.as_ref(), now()).unwrap();
    let rng = SystemRandom::new();
    let signer = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_ASN1_SIGNING,
        generated.private_key.secret_der(),
        &rng,
    )
    .unwrap();
    let message = b"TLS 1.3, server CertificateVerify";
    let signature = signer.sign(&rng, message).unwrap();
    let key = verified.handshake_key();
    key.verify(
        SignatureScheme::ECDSA_NISTP256_SHA256,
        message,
        signature.as_ref(),
    )
    .unwrap();
    assert!(matches!(
        key.verify(
            SignatureScheme::ECDSA_NISTP256_SHA256,
            b"other",
            signature.as_ref()
        ),
        Err(TlsError::HandshakeSignatureInvalid)
    ));
    // Schemes that do not fit a P-256 key, and PKCS#1 which TLS 1.3 forbids.
    for scheme in [
        SignatureScheme::ECDSA_NISTP384_SHA384,
        SignatureScheme::ED25519,
        SignatureScheme::RSA_PSS_SHA256,
        SignatureScheme::RSA_PKCS1_SHA256,
    ] {
        assert!(matches!(
            key.verify(scheme, message, signature.as_ref()),
            Err(TlsError::UnsupportedSignatureScheme(s)) if s == scheme
        ));
    }
}

/// Runs `check` on the `TlsError` inside a verifier's rustls error.
fn with_verifier_error(result: Result<(), lp2p_tls::rustls::Error>, check: impl FnOnce(&TlsError)) {
    let err = result.unwrap_err();
    check(TlsError::from_rustls(&err).unwrap_or_else(|| panic!("not ours: {err:?}")));
}

#[test]
fn verifier_refuses_two_certificates_and_the_wrong_peer() {
    use lp2p_tls::rustls::client::danger::ServerCertVerifier;
    use lp2p_tls::rustls::pki_types::ServerName;
    use lp2p_tls::rustls::server::danger::ClientCertVerifier;

    let host = Keypair::generate_ed25519();
    let cert = certificate::generate(&host).unwrap().certificate;
    let other = certificate::generate(&Keypair::generate_ed25519())
        .unwrap()
        .certificate;
    let name = ServerName::try_from("l").unwrap();
    let verifier = Libp2pCertVerifier::new();

    let two = [other.clone()];
    with_verifier_error(
        ServerCertVerifier::verify_server_cert(&verifier, &cert, &two, &name, &[], now())
            .map(|_| ()),
        |err| {
            assert!(
                matches!(err, TlsError::TooManyCertificates { count: 2 }),
                "{err:?}"
            );
        },
    );
    with_verifier_error(
        verifier.verify_client_cert(&cert, &two, now()).map(|_| ()),
        |err| {
            assert!(
                matches!(err, TlsError::TooManyCertificates { count: 2 }),
                "{err:?}"
            );
        },
    );
    assert!(verifier.verify_client_cert(&cert, &[], now()).is_ok());

    let wanted = PeerId::random();
    let expecting = Libp2pCertVerifier::expecting(Some(wanted));
    with_verifier_error(
        expecting
            .verify_server_cert(&cert, &[], &name, &[], now())
            .map(|_| ()),
        |err| match err {
            TlsError::PeerIdMismatch { expected, actual } => {
                assert_eq!(**expected, wanted);
                assert_eq!(**actual, host.public().to_peer_id());
            }
            other => panic!("{other:?}"),
        },
    );
    let right = Libp2pCertVerifier::expecting(Some(host.public().to_peer_id()));
    assert!(
        right
            .verify_server_cert(&cert, &[], &name, &[], now())
            .is_ok()
    );
}

#[test]
fn failure_hook_sees_every_refusal() {
    use lp2p_tls::rustls::server::danger::ClientCertVerifier;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let verifier = Libp2pCertVerifier::new().on_failure(Arc::new(move |err: &Arc<TlsError>| {
        assert!(err.is_bad_certificate());
        counter.fetch_add(1, Ordering::SeqCst);
    }));
    let garbage = CertificateDer::from(b"garbage".to_vec());
    assert!(verifier.verify_client_cert(&garbage, &[], now()).is_err());
    let invalid = CertificateDer::from(hex(VECTOR_INVALID));
    assert!(verifier.verify_client_cert(&invalid, &[], now()).is_err());
    assert_eq!(seen.load(Ordering::SeqCst), 2);
}
