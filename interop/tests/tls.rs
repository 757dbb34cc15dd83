//! lp2p-tls against rust-libp2p's `libp2p-tls` 0.7 over an in-memory pipe, in both roles: the
//! TLS 1.3 handshake completes with each side's libp2p certificate, both agree on each
//! other's PeerId, and data (a few MiB each way, concurrently) crosses intact. Our ALPN
//! muxer list is answered with `libp2p` by rust-libp2p (it does not inline the muxer), so no
//! muxer is agreed early. A wrong expected peer fails the handshake.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lp2p_core::Keypair;
use lp2p_interop::secure::{
    both_secured, exchange, lp2p_dials_rust, rust_dials_lp2p, upgrade_context,
};
use lp2p_interop::{init_tracing, run};
use lp2p_tls::Tls;

/// Bytes sent each way in the bulk transfer: many full 16 KiB TLS records both ways.
const BULK: usize = 4 * 1024 * 1024;

fn pattern(seed: u8) -> Vec<u8> {
    (0..BULK)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 11) as u8)
        .collect()
}

fn lp2p_dials(our_key: Keypair, muxers: &[&'static str]) {
    init_tracing();
    let ours = upgrade_context(our_key, muxers);
    let rust_key = libp2p::identity::Keypair::generate_ed25519();
    let rust_peer = rust_key.public().to_peer_id();
    let rust = libp2p_tls::Config::new(&rust_key).unwrap();
    run("lp2p dials rust-libp2p over /tls/1.0.0", async {
        let handshake =
            lp2p_dials_rust(&Tls::new(), &ours, Some(rust_peer), rust, "/tls/1.0.0").await;
        // rust-libp2p's server supports only `libp2p`: no muxer agreed in the handshake.
        let (secured, their_io) = both_secured(handshake, &ours, rust_peer);
        assert_eq!(secured.protocol(), "/tls/1.0.0");
        exchange(secured.into_inner(), their_io, &pattern(1), &pattern(2)).await;
    });
}

fn rust_dials(our_key: Keypair, muxers: &[&'static str]) {
    init_tracing();
    let ours = upgrade_context(our_key, muxers);
    let rust_key = libp2p::identity::Keypair::generate_ed25519();
    let rust_peer = rust_key.public().to_peer_id();
    let rust = libp2p_tls::Config::new(&rust_key).unwrap();
    run("rust-libp2p dials lp2p over /tls/1.0.0", async {
        let handshake = rust_dials_lp2p(&Tls::new(), &ours, rust, "/tls/1.0.0").await;
        let (secured, their_io) = both_secured(handshake, &ours, rust_peer);
        exchange(secured.into_inner(), their_io, &pattern(1), &pattern(2)).await;
    });
}

#[test]
fn tls_lp2p_initiator_rust_responder() {
    lp2p_dials(Keypair::generate_ed25519(), &[]);
}

#[test]
fn tls_rust_initiator_lp2p_responder() {
    rust_dials(Keypair::generate_ed25519(), &[]);
}

#[test]
fn tls_lp2p_initiator_offering_muxers_to_rust() {
    lp2p_dials(
        Keypair::generate_ed25519(),
        &["/yamux/1.0.0", "/mplex/6.7.0"],
    );
}

#[test]
fn tls_lp2p_responder_with_muxers_to_rust() {
    rust_dials(
        Keypair::generate_ed25519(),
        &["/yamux/1.0.0", "/mplex/6.7.0"],
    );
}

#[test]
fn tls_other_host_key_types_both_ways() {
    // rust-libp2p verifies our secp256k1 and ECDSA host keys in the extension, and we verify
    // its Ed25519 one, in both roles.
    for key in [Keypair::generate_secp256k1(), Keypair::generate_ecdsa()] {
        lp2p_dials(key.clone(), &[]);
        rust_dials(key, &[]);
    }
}

#[test]
fn tls_lp2p_dialing_rust_detects_the_wrong_peer() {
    init_tracing();
    let ours = upgrade_context(Keypair::generate_ed25519(), &[]);
    let rust_key = libp2p::identity::Keypair::generate_ed25519();
    let rust = libp2p_tls::Config::new(&rust_key).unwrap();
    let wrong = libp2p::identity::Keypair::generate_ed25519()
        .public()
        .to_peer_id();
    run("lp2p dials rust-libp2p expecting another peer", async {
        let (secured, theirs) =
            lp2p_dials_rust(&Tls::new(), &ours, Some(wrong), rust, "/tls/1.0.0").await;
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
