//! The `SecurityUpgrader` over in-memory connections: identities, muxer agreement over ALPN,
//! peer id mismatch, no SNI, data both ways and half-close, and remotes that misbehave
//! during the handshake (close, stall, send garbage, present a bad certificate).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use lp2p_core::runtime::block_on;
use lp2p_core::{
    Connection, Error, Keypair, PeerId, ProtocolId, RuntimeHandle, SecureConnection,
    SecurityUpgrader, UpgradeContext,
};
use lp2p_memory::MemoryConnection;
use lp2p_tls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use lp2p_tls::{
    ALPN_LIBP2P, Libp2pCertVerifier, LocalCertificate, Tls, TlsConfig, TlsError, certificate,
    client_config, crypto_provider, server_config,
};

fn pipe() -> (MemoryConnection, MemoryConnection) {
    MemoryConnection::pair(
        256 * 1024,
        "/memory/1".parse().unwrap(),
        "/memory/2".parse().unwrap(),
    )
}

fn ctx(muxers: &[&'static str]) -> UpgradeContext {
    UpgradeContext::new(Keypair::generate_ed25519(), RuntimeHandle::default())
        .with_muxers(muxers.iter().map(|m| ProtocolId::from(*m)))
}

fn upgrade(
    dialer: &UpgradeContext,
    listener: &UpgradeContext,
    expected: Option<PeerId>,
) -> (
    Result<SecureConnection, Error>,
    Result<SecureConnection, Error>,
) {
    let (a, b) = pipe();
    let (tls_a, tls_b) = (Tls::new(), Tls::new());
    block_on(async {
        futures::join!(
            tls_a.secure_outbound(Box::new(a), dialer, expected),
            tls_b.secure_inbound(Box::new(b), listener)
        )
    })
}

/// The `TlsError` inside an `Error::Security { protocol: "/tls/1.0.0", .. }`.
fn tls_error(err: &Error) -> &TlsError {
    match err {
        Error::Security { protocol, source } => {
            assert_eq!(*protocol, "/tls/1.0.0");
            source
                .downcast_ref::<TlsError>()
                .unwrap_or_else(|| panic!("not a TlsError: {source:?}"))
        }
        other => panic!("not a security error: {other:?}"),
    }
}

#[test]
fn handshake_proves_both_identities() {
    let (d, l) = (ctx(&[]), ctx(&[]));
    let (a, b) = upgrade(&d, &l, Some(l.local_peer_id()));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.remote_peer(), l.local_peer_id());
    assert_eq!(b.remote_peer(), d.local_peer_id());
    assert_eq!(a.remote_key(), &l.local_key.public());
    assert_eq!(a.protocol(), "/tls/1.0.0");
    assert_eq!(a.early_muxer(), None);
    assert_eq!(b.early_muxer(), None);
    assert_eq!(a.remote_addr().to_string(), "/memory/2");
}

#[test]
fn every_host_key_type() {
    let mut rsa = include_bytes!("assets/rsa2048.pk8").to_vec();
    let keys = [
        Keypair::generate_secp256k1(),
        Keypair::generate_ecdsa(),
        Keypair::rsa_from_pkcs8(&mut rsa).unwrap(),
    ];
    for key in keys {
        let d = UpgradeContext::new(key, RuntimeHandle::default());
        let l = ctx(&[]);
        let (a, b) = upgrade(&d, &l, Some(l.local_peer_id()));
        assert_eq!(b.unwrap().remote_peer(), d.local_peer_id());
        assert_eq!(a.unwrap().remote_peer(), l.local_peer_id());
    }
}

#[test]
fn muxer_agreement_over_alpn() {
    let yamux = "/yamux/1.0.0";
    let mplex = "/mplex/6.7.0";
    let cases: &[(&[&str], &[&str], Option<&str>)] = &[
        (&[yamux, mplex], &[yamux, mplex], Some(yamux)),
        // The client's preference wins (the inlined-muxer-negotiation spec's SHOULD).
        (&[mplex, yamux], &[yamux, mplex], Some(mplex)),
        (&[yamux, mplex], &[mplex], Some(mplex)),
        // No common muxer: both still have `libp2p`, so no early muxer.
        (&[yamux], &[mplex], None),
        (&[yamux], &[], None),
        (&[], &[yamux], None),
        (&[], &[], None),
    ];
    for (client, server, want) in cases {
        let (d, l) = (ctx(client), ctx(server));
        let (a, b) = upgrade(&d, &l, None);
        let (a, b) = (a.unwrap(), b.unwrap());
        let want = want.map(ProtocolId::from);
        assert_eq!(a.early_muxer(), want.as_ref(), "{client:?} / {server:?}");
        assert_eq!(b.early_muxer(), want.as_ref(), "{client:?} / {server:?}");
    }
}

#[test]
fn peer_id_mismatch() {
    let (d, l) = (ctx(&[]), ctx(&[]));
    let wanted = PeerId::random();
    let (a, _b) = upgrade(&d, &l, Some(wanted));
    match a.unwrap_err() {
        Error::PeerIdMismatch { expected, actual } => {
            assert_eq!(*expected, wanted);
            assert_eq!(*actual, l.local_peer_id());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn data_both_ways_and_half_close() {
    let (d, l) = (ctx(&[]), ctx(&[]));
    let (a, b) = upgrade(&d, &l, None);
    let (mut a, mut b) = (a.unwrap(), b.unwrap());
    let big: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    block_on(async {
        let send_a = async {
            a.write_all(&big).await.unwrap();
            a.close().await.unwrap();
            let mut back = Vec::new();
            a.read_to_end(&mut back).await.unwrap();
            back
        };
        let echo_b = async {
            let mut got = Vec::new();
            b.read_to_end(&mut got).await.unwrap();
            b.write_all(&got[..1000]).await.unwrap();
            b.close().await.unwrap();
            got
        };
        let (back, got) = futures::join!(send_a, echo_b);
        assert_eq!(got, big);
        assert_eq!(back, &big[..1000]);
    });
}

#[test]
fn the_client_sends_no_server_name() {
    // Drive our client configuration against a plain rustls server and look at what the
    // server saw.
    let client_key = Keypair::generate_ed25519();
    let server_key = Keypair::generate_ed25519();
    let client_cert = LocalCertificate::generate(&client_key).unwrap();
    let server_cert = LocalCertificate::generate(&server_key).unwrap();
    let alpn = vec![ALPN_LIBP2P.to_vec()];
    let client = client_config(&client_cert, Libp2pCertVerifier::new(), alpn.clone()).unwrap();
    let server = server_config(&server_cert, Libp2pCertVerifier::new(), alpn).unwrap();
    let name = ServerName::try_from("example.com").unwrap();
    let mut client = rustls::ClientConnection::new(Arc::new(client), name).unwrap();
    let mut server = rustls::ServerConnection::new(Arc::new(server)).unwrap();
    let mut buf = Vec::new();
    for _ in 0..10 {
        buf.clear();
        while client.wants_write() {
            client.write_tls(&mut buf).unwrap();
        }
        let mut slice = &buf[..];
        while !slice.is_empty() {
            server.read_tls(&mut slice).unwrap();
        }
        server.process_new_packets().unwrap();
        buf.clear();
        while server.wants_write() {
            server.write_tls(&mut buf).unwrap();
        }
        let mut slice = &buf[..];
        while !slice.is_empty() {
            client.read_tls(&mut slice).unwrap();
        }
        client.process_new_packets().unwrap();
        if !client.is_handshaking() && !server.is_handshaking() {
            break;
        }
    }
    assert!(!server.is_handshaking());
    assert_eq!(server.server_name(), None, "the client sent SNI");
    assert_eq!(server.alpn_protocol(), Some(ALPN_LIBP2P));
    assert_eq!(
        client.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
}

#[test]
fn remote_closes_during_handshake() {
    let d = ctx(&[]);
    let (a, b) = pipe();
    drop(b);
    let err = block_on(Tls::new().secure_outbound(Box::new(a), &d, None)).unwrap_err();
    assert!(
        matches!(tls_error(&err), TlsError::UnexpectedEof | TlsError::Io(_)),
        "{err}"
    );
}

#[test]
fn stalled_remote_times_out() {
    let d = ctx(&[]);
    let (a, _b) = pipe();
    let tls = Tls::with_config(TlsConfig::default().handshake_timeout(Duration::from_millis(200)));
    let err = block_on(tls.secure_outbound(Box::new(a), &d, None)).unwrap_err();
    assert!(matches!(tls_error(&err), TlsError::Timeout(_)), "{err}");
}

#[test]
fn garbage_instead_of_a_client_hello() {
    let l = ctx(&[]);
    let (mut a, b) = pipe();
    let tls = Tls::new();
    let result = block_on(async {
        let garbage = async {
            a.write_all(&[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5])
                .await
                .unwrap();
            let mut sink = Vec::new();
            let _ = a.read_to_end(&mut sink).await;
        };
        let (result, ()) = futures::join!(tls.secure_inbound(Box::new(b), &l), garbage);
        result
    });
    let err = result.unwrap_err();
    assert!(
        matches!(tls_error(&err), TlsError::Tls(_) | TlsError::Io(_)),
        "{err}"
    );
}

/// Presents `cert` signed with `key` as they are: rustls' own consistency check is skipped
/// (it goes through webpki, which also refuses the critical libp2p extension).
fn resolver(cert: Vec<u8>, key: Vec<u8>) -> Arc<rustls::sign::SingleCertAndKey> {
    let key = PrivateKeyDer::from(PrivatePkcs8KeyDer::from(key));
    let signing = rustls::crypto::ring::sign::any_ecdsa_type(&key).unwrap();
    Arc::new(rustls::sign::SingleCertAndKey::from(
        rustls::sign::CertifiedKey::new(vec![CertificateDer::from(cert)], signing),
    ))
}

/// A rustls client that presents `cert` and `key` as they are (no checks of ours), with our
/// verifier on its side.
fn raw_client(cert: Vec<u8>, key: Vec<u8>, alpn: &[&[u8]]) -> futures_rustls::TlsConnector {
    let mut config = rustls::ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Libp2pCertVerifier::new()))
        .with_client_cert_resolver(resolver(cert, key));
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    futures_rustls::TlsConnector::from(Arc::new(config))
}

/// Runs a raw client against our listener; returns the listener's result.
fn against_raw_client(client: &futures_rustls::TlsConnector) -> Result<SecureConnection, Error> {
    let l = ctx(&["/mplex/6.7.0"]);
    let (a, b) = pipe();
    let tls = Tls::new();
    block_on(async {
        let dial = async {
            let name = ServerName::try_from("l").unwrap();
            if let Ok(mut s) = client.connect(name, a).await {
                // TLS 1.3: the client is done before the server has checked its
                // certificate; wait for the server's verdict.
                let mut sink = Vec::new();
                let _ = s.read_to_end(&mut sink).await;
            }
        };
        let (result, ()) = futures::join!(tls.secure_inbound(Box::new(b), &l), dial);
        result
    })
}

fn cert_without_extension() -> (Vec<u8>, Vec<u8>) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::default()
        .self_signed(&key)
        .unwrap();
    (cert.der().to_vec(), key.serialize_der())
}

#[test]
fn a_client_certificate_without_the_extension_is_refused() {
    let (cert, key) = cert_without_extension();
    let err = against_raw_client(&raw_client(cert, key, &[ALPN_LIBP2P])).unwrap_err();
    assert!(
        matches!(tls_error(&err), TlsError::MissingExtension),
        "{err}"
    );
}

#[test]
fn a_client_certificate_with_a_foreign_key_is_refused() {
    // A valid libp2p certificate, but the client signs the handshake with another key.
    let host = Keypair::generate_ed25519();
    let generated = certificate::generate(&host).unwrap();
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let err = against_raw_client(&raw_client(
        generated.certificate.to_vec(),
        other.serialize_der(),
        &[ALPN_LIBP2P],
    ))
    .unwrap_err();
    assert!(
        matches!(tls_error(&err), TlsError::HandshakeSignatureInvalid),
        "{err}"
    );
}

#[test]
fn a_client_without_any_supported_alpn_protocol_is_refused() {
    let host = Keypair::generate_ed25519();
    let generated = certificate::generate(&host).unwrap();
    let err = against_raw_client(&raw_client(
        generated.certificate.to_vec(),
        generated.private_key.secret_der().to_vec(),
        &[b"/yamux/1.0.0"],
    ))
    .unwrap_err();
    match tls_error(&err) {
        TlsError::Tls(rustls::Error::NoApplicationProtocol) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_server_certificate_without_the_extension_is_refused() {
    let (cert, key) = cert_without_extension();
    let mut config = rustls::ServerConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_client_cert_verifier(Arc::new(Libp2pCertVerifier::new()))
        .with_cert_resolver(resolver(cert, key));
    config.alpn_protocols = vec![ALPN_LIBP2P.to_vec()];
    let acceptor = futures_rustls::TlsAcceptor::from(Arc::new(config));
    let d = ctx(&[]);
    let (a, b) = pipe();
    let tls = Tls::new();
    let result = block_on(async {
        let serve = async {
            let _ = acceptor.accept(b).await;
        };
        let (result, ()) = futures::join!(tls.secure_outbound(Box::new(a), &d, None), serve);
        result
    });
    let err = result.unwrap_err();
    assert!(
        matches!(tls_error(&err), TlsError::MissingExtension),
        "{err}"
    );
}

#[test]
fn the_certificate_is_generated_once_per_host_key() {
    let tls = Tls::new();
    let key = Keypair::generate_ed25519();
    let first = tls.local_certificate(&key).unwrap();
    let second = tls.local_certificate(&key).unwrap();
    let other = tls.local_certificate(&Keypair::generate_ed25519()).unwrap();
    for schemes in [
        &[rustls::SignatureScheme::ED25519][..],
        &[rustls::SignatureScheme::ECDSA_NISTP256_SHA256],
    ] {
        let mine = first.certificate_for(schemes);
        assert_eq!(mine, second.certificate_for(schemes));
        assert_ne!(mine, other.certificate_for(schemes));
    }
}
