//! lp2p-noise against rust-libp2p's `libp2p-noise` 0.47 over an in-memory pipe, in both
//! roles: the handshake completes, both sides agree on each other's PeerId, and data (a few
//! MiB each way, concurrently) crosses intact.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lp2p_core::Keypair;
use lp2p_interop::secure::{
    both_secured, exchange, lp2p_dials_rust, rust_dials_lp2p, upgrade_context,
};
use lp2p_interop::{init_tracing, run};
use lp2p_noise::Noise;

/// Bytes sent each way in the bulk transfer: several MiB, so many full 65519-byte frames
/// (ours) and rust-libp2p's smaller chunks cross in both directions.
const BULK: usize = 4 * 1024 * 1024;

fn pattern(seed: u8) -> Vec<u8> {
    (0..BULK)
        .map(|i| (i as u8).wrapping_mul(17).wrapping_add(seed) ^ (i >> 13) as u8)
        .collect()
}

fn lp2p_dials(muxers: &[&'static str]) {
    init_tracing();
    let ours = upgrade_context(Keypair::generate_ed25519(), muxers);
    let rust_key = libp2p::identity::Keypair::generate_ed25519();
    let rust_peer = rust_key.public().to_peer_id();
    let rust = libp2p_noise::Config::new(&rust_key).unwrap();
    run("lp2p dials rust-libp2p over /noise", async {
        let handshake =
            lp2p_dials_rust(&Noise::new(), &ours, Some(rust_peer), rust, "/noise").await;
        // rust-libp2p never sends stream_muxers: no muxer agreed in the handshake.
        let (secured, their_io) = both_secured(handshake, &ours, rust_peer);
        exchange(secured.into_inner(), their_io, &pattern(1), &pattern(2)).await;
    });
}

fn rust_dials(muxers: &[&'static str]) {
    init_tracing();
    let ours = upgrade_context(Keypair::generate_ed25519(), muxers);
    let rust_key = libp2p::identity::Keypair::generate_ed25519();
    let rust_peer = rust_key.public().to_peer_id();
    let rust = libp2p_noise::Config::new(&rust_key).unwrap();
    run("rust-libp2p dials lp2p over /noise", async {
        let handshake = rust_dials_lp2p(&Noise::new(), &ours, rust, "/noise").await;
        let (secured, their_io) = both_secured(handshake, &ours, rust_peer);
        exchange(secured.into_inner(), their_io, &pattern(1), &pattern(2)).await;
    });
}

#[test]
fn noise_lp2p_initiator_rust_responder() {
    lp2p_dials(&[]);
}

#[test]
fn noise_rust_initiator_lp2p_responder() {
    rust_dials(&[]);
}

#[test]
fn noise_lp2p_initiator_offering_muxers_to_rust() {
    lp2p_dials(&["/yamux/1.0.0", "/mplex/6.7.0"]);
}

#[test]
fn noise_lp2p_responder_offering_muxers_to_rust() {
    rust_dials(&["/yamux/1.0.0", "/mplex/6.7.0"]);
}

#[test]
fn noise_lp2p_dialing_rust_detects_the_wrong_peer() {
    init_tracing();
    let ours = upgrade_context(Keypair::generate_ed25519(), &[]);
    let rust_key = libp2p::identity::Keypair::generate_ed25519();
    let rust = libp2p_noise::Config::new(&rust_key).unwrap();
    let wrong = libp2p::identity::Keypair::generate_ed25519()
        .public()
        .to_peer_id();
    run("lp2p dials rust-libp2p expecting another peer", async {
        let (secured, theirs) =
            lp2p_dials_rust(&Noise::new(), &ours, Some(wrong), rust, "/noise").await;
        match secured.unwrap_err() {
            lp2p_core::Error::PeerIdMismatch { expected, actual } => {
                assert_eq!(*expected, wrong);
                assert_eq!(*actual, rust_key.public().to_peer_id());
            }
            other => panic!("expected a peer id mismatch, got {other:?}"),
        }
        // We stopped before message 3, so the rust side fails too.
        assert!(theirs.is_err());
    });
}
