//! lp2p-noise against rust-libp2p's `libp2p-noise` 0.47 over an in-memory pipe, in both
//! roles: the handshake completes, both sides agree on each other's PeerId, and data (a few
//! MiB each way, concurrently) crosses intact.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p_core::upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade};
use lp2p_core::{Keypair, ProtocolId, RuntimeHandle, SecurityUpgrader, UpgradeContext};
use lp2p_interop::{init_tracing, pipe, run};
use lp2p_noise::Noise;

/// Bytes sent each way in the bulk transfer: several MiB, so many full 65519-byte frames
/// (ours) and rust-libp2p's smaller chunks cross in both directions.
const BULK: usize = 4 * 1024 * 1024;

fn pattern(seed: u8) -> Vec<u8> {
    (0..BULK)
        .map(|i| (i as u8).wrapping_mul(17).wrapping_add(seed) ^ (i >> 13) as u8)
        .collect()
}

fn lp2p_ctx(muxers: &[&'static str]) -> UpgradeContext {
    UpgradeContext::new(Keypair::generate_ed25519(), RuntimeHandle::default())
        .with_muxers(muxers.iter().map(|m| ProtocolId::from(*m)))
}

/// A short exchange, then `BULK` bytes each way at the same time, then close; each side
/// checks what it read.
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

fn lp2p_dials_rust(muxers: &[&'static str]) {
    init_tracing();
    let ours = lp2p_ctx(muxers);
    let rust_key = libp2p::identity::Keypair::generate_ed25519();
    let rust_peer = rust_key.public().to_peer_id();
    let rust = libp2p_noise::Config::new(&rust_key).unwrap();
    let noise = Noise::new();
    let (a, b) = pipe();
    run("lp2p dials rust-libp2p over /noise", async {
        let (secured, theirs) = futures::join!(
            noise.secure_outbound(Box::new(a), &ours, Some(rust_peer)),
            rust.upgrade_inbound(b, "/noise"),
        );
        let secured = secured.unwrap();
        let (their_view_of_us, their_io) = theirs.unwrap();
        assert_eq!(secured.remote_peer(), rust_peer);
        assert_eq!(their_view_of_us, ours.local_peer_id());
        // rust-libp2p never sends stream_muxers: no muxer agreed in the handshake.
        assert_eq!(secured.early_muxer(), None);
        exchange(secured.into_inner(), their_io).await;
    });
}

fn rust_dials_lp2p(muxers: &[&'static str]) {
    init_tracing();
    let ours = lp2p_ctx(muxers);
    let rust_key = libp2p::identity::Keypair::generate_ed25519();
    let rust_peer = rust_key.public().to_peer_id();
    let rust = libp2p_noise::Config::new(&rust_key).unwrap();
    let noise = Noise::new();
    let (a, b) = pipe();
    run("rust-libp2p dials lp2p over /noise", async {
        let (theirs, secured) = futures::join!(
            rust.upgrade_outbound(a, "/noise"),
            noise.secure_inbound(Box::new(b), &ours),
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
fn noise_lp2p_initiator_rust_responder() {
    lp2p_dials_rust(&[]);
}

#[test]
fn noise_rust_initiator_lp2p_responder() {
    rust_dials_lp2p(&[]);
}

#[test]
fn noise_lp2p_initiator_offering_muxers_to_rust() {
    lp2p_dials_rust(&["/yamux/1.0.0", "/mplex/6.7.0"]);
}

#[test]
fn noise_lp2p_responder_offering_muxers_to_rust() {
    rust_dials_lp2p(&["/yamux/1.0.0", "/mplex/6.7.0"]);
}

#[test]
fn noise_lp2p_dialing_rust_detects_the_wrong_peer() {
    init_tracing();
    let ours = lp2p_ctx(&[]);
    let rust_key = libp2p::identity::Keypair::generate_ed25519();
    let rust = libp2p_noise::Config::new(&rust_key).unwrap();
    let wrong = libp2p::identity::Keypair::generate_ed25519()
        .public()
        .to_peer_id();
    let noise = Noise::new();
    let (a, b) = pipe();
    run("lp2p dials rust-libp2p expecting another peer", async {
        let (secured, theirs) = futures::join!(
            noise.secure_outbound(Box::new(a), &ours, Some(wrong)),
            rust.upgrade_inbound(b, "/noise"),
        );
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
