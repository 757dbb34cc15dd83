//! lp2p-tls against rust-libp2p's `libp2p-tls` 0.7 over an in-memory pipe, in both roles: the
//! TLS 1.3 handshake completes with each side's libp2p certificate, both agree on each
//! other's PeerId, and data (a few MiB each way, concurrently) crosses intact. Our ALPN
//! muxer list is answered with `libp2p` by rust-libp2p (it does not inline the muxer), so no
//! muxer is agreed early. A wrong expected peer fails the handshake.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p_core::upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade};
use lp2p_core::{Keypair, ProtocolId, RuntimeHandle, SecurityUpgrader, UpgradeContext};
use lp2p_interop::{init_tracing, pipe, run};
use lp2p_tls::Tls;

/// Bytes sent each way in the bulk transfer: many full 16 KiB TLS records both ways.
const BULK: usize = 4 * 1024 * 1024;

fn pattern(seed: u8) -> Vec<u8> {
    (0..BULK)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 11) as u8)
        .collect()
}

fn lp2p_ctx(key: Keypair, muxers: &[&'static str]) -> UpgradeContext {
    UpgradeContext::new(key, RuntimeHandle::default())
        .with_muxers(muxers.iter().map(|m| ProtocolId::from(*m)))
}

/// A short exchange, then `BULK` bytes each way at the same time, then close.
async fn exchange<A, B>(ours: A, theirs: B)
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let (mut our_r, mut our_w) = ours.split();
    let (mut their_r, mut their_w) = theirs.split();
    our_w.write_all(b"hello from lp2p").await.unwrap();
    our_w.flush().await.unwrap();
    let mut buf = [0u8; 15];
    their_r.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"hello from lp2p");
    their_w.write_all(b"hello from rust").await.unwrap();
    their_w.flush().await.unwrap();
    our_r.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"hello from rust");

    let (to_rust, to_lp2p) = (pattern(1), pattern(2));
    let send_ours = async {
        our_w.write_all(&to_rust).await.unwrap();
        our_w.close().await.unwrap();
    };
    let send_theirs = async {
        their_w.write_all(&to_lp2p).await.unwrap();
        their_w.close().await.unwrap();
    };
    let recv_ours = async {
        let mut got = Vec::new();
        our_r.read_to_end(&mut got).await.unwrap();
        got
    };
    let recv_theirs = async {
        let mut got = Vec::new();
        their_r.read_to_end(&mut got).await.unwrap();
        got
    };
    let ((), (), got_ours, got_theirs) =
        futures::join!(send_ours, send_theirs, recv_ours, recv_theirs);
    assert!(
        got_theirs == to_rust,
        "rust read {} bytes",
        got_theirs.len()
    );
    assert!(got_ours == to_lp2p, "lp2p read {} bytes", got_ours.len());
}

fn lp2p_dials_rust(our_key: Keypair, muxers: &[&'static str]) {
    init_tracing();
    let ours = lp2p_ctx(our_key, muxers);
    let rust_key = libp2p::identity::Keypair::generate_ed25519();
    let rust_peer = rust_key.public().to_peer_id();
    let rust = libp2p_tls::Config::new(&rust_key).unwrap();
    let tls = Tls::new();
    let (a, b) = pipe();
    run("lp2p dials rust-libp2p over /tls/1.0.0", async {
        let (secured, theirs) = futures::join!(
            tls.secure_outbound(Box::new(a), &ours, Some(rust_peer)),
            rust.upgrade_inbound(b, "/tls/1.0.0"),
        );
        let secured = secured.unwrap();
        let (their_view_of_us, their_io) = theirs.unwrap();
        assert_eq!(secured.remote_peer(), rust_peer);
        assert_eq!(secured.protocol(), "/tls/1.0.0");
        assert_eq!(their_view_of_us, ours.local_peer_id());
        // rust-libp2p's server supports only `libp2p`: no muxer agreed in the handshake.
        assert_eq!(secured.early_muxer(), None);
        exchange(secured.into_inner(), their_io).await;
    });
}

fn rust_dials_lp2p(our_key: Keypair, muxers: &[&'static str]) {
    init_tracing();
    let ours = lp2p_ctx(our_key, muxers);
    let rust_key = libp2p::identity::Keypair::generate_ed25519();
    let rust_peer = rust_key.public().to_peer_id();
    let rust = libp2p_tls::Config::new(&rust_key).unwrap();
    let tls = Tls::new();
    let (a, b) = pipe();
    run("rust-libp2p dials lp2p over /tls/1.0.0", async {
        let (theirs, secured) = futures::join!(
            rust.upgrade_outbound(a, "/tls/1.0.0"),
            tls.secure_inbound(Box::new(b), &ours),
        );
        let secured = secured.unwrap();
        let (their_view_of_us, their_io) = theirs.unwrap();
        assert_eq!(secured.remote_peer(), rust_peer);
        assert_eq!(their_view_of_us, ours.local_peer_id());
        assert_eq!(secured.early_muxer(), None);
        exchange(secured.into_inner(), their_io).await;
    });
}

#[test]
fn tls_lp2p_initiator_rust_responder() {
    lp2p_dials_rust(Keypair::generate_ed25519(), &[]);
}

#[test]
fn tls_rust_initiator_lp2p_responder() {
    rust_dials_lp2p(Keypair::generate_ed25519(), &[]);
}

#[test]
fn tls_lp2p_initiator_offering_muxers_to_rust() {
    lp2p_dials_rust(
        Keypair::generate_ed25519(),
        &["/yamux/1.0.0", "/mplex/6.7.0"],
    );
}

#[test]
fn tls_lp2p_responder_with_muxers_to_rust() {
    rust_dials_lp2p(
        Keypair::generate_ed25519(),
        &["/yamux/1.0.0", "/mplex/6.7.0"],
    );
}

#[test]
fn tls_other_host_key_types_both_ways() {
    // rust-libp2p verifies our secp256k1 and ECDSA host keys in the extension, and we verify
    // its Ed25519 one, in both roles.
    for key in [Keypair::generate_secp256k1(), Keypair::generate_ecdsa()] {
        lp2p_dials_rust(key.clone(), &[]);
        rust_dials_lp2p(key, &[]);
    }
}

#[test]
fn tls_lp2p_dialing_rust_detects_the_wrong_peer() {
    init_tracing();
    let ours = lp2p_ctx(Keypair::generate_ed25519(), &[]);
    let rust_key = libp2p::identity::Keypair::generate_ed25519();
    let rust = libp2p_tls::Config::new(&rust_key).unwrap();
    let wrong = libp2p::identity::Keypair::generate_ed25519()
        .public()
        .to_peer_id();
    let tls = Tls::new();
    let (a, b) = pipe();
    run("lp2p dials rust-libp2p expecting another peer", async {
        let (secured, theirs) = futures::join!(
            tls.secure_outbound(Box::new(a), &ours, Some(wrong)),
            rust.upgrade_inbound(b, "/tls/1.0.0"),
        );
        match secured.unwrap_err() {
            lp2p_core::Error::PeerIdMismatch { expected, actual } => {
                assert_eq!(*expected, wrong);
                assert_eq!(*actual, rust_key.public().to_peer_id());
            }
            other => panic!("expected a peer id mismatch, got {other:?}"),
        }
        // We aborted the handshake with an alert before our Finished: rust fails too.
        assert!(theirs.is_err());
    });
}
