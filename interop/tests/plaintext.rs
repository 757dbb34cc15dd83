//! lp2p-plaintext against rust-libp2p's `libp2p-plaintext` 0.44, both roles, over an
//! in-memory pipe; and the whole start of a connection (multistream-select, then plaintext)
//! with each side on a different stack.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p_core::upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade};
use lp2p_core::{Keypair, PeerId, RuntimeHandle, SecurityUpgrader, UpgradeContext};
use lp2p_interop::{init_tracing, pipe, run};
use lp2p_plaintext::{PROTOCOL_ID, Plaintext};

fn ctx(key: &Keypair) -> UpgradeContext {
    UpgradeContext::new(key.clone(), RuntimeHandle::default())
}

/// Sends `out` and expects `expected` back, in either order of arrival.
async fn swap<S: futures::AsyncRead + futures::AsyncWrite + Unpin>(
    io: &mut S,
    out: &[u8],
    expected: &[u8],
) {
    io.write_all(out).await.unwrap();
    io.flush().await.unwrap();
    let mut buf = vec![0u8; expected.len()];
    io.read_exact(&mut buf).await.unwrap();
    assert_eq!(buf, expected);
}

#[test]
fn plaintext_lp2p_dialer_rust_listener() {
    init_tracing();
    run("lp2p dials rust", async {
        let (ours_key, theirs_key) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        let theirs_id: PeerId = theirs_key.public().to_peer_id();
        let (a, b) = pipe();
        let octx = ctx(&ours_key);
        let dialer = async {
            let mut conn = Plaintext::new()
                .secure_outbound(Box::new(a), &octx, Some(theirs_id))
                .await
                .unwrap();
            assert_eq!(conn.remote_peer(), theirs_id);
            assert_eq!(conn.remote_key(), &theirs_key.public());
            swap(&mut conn, b"from lp2p", b"from rust").await;
        };
        let listener = async {
            let (peer, mut out) = libp2p_plaintext::Config::new(&theirs_key)
                .upgrade_inbound(b, PROTOCOL_ID)
                .await
                .unwrap();
            assert_eq!(peer, ours_key.public().to_peer_id());
            swap(&mut out, b"from rust", b"from lp2p").await;
        };
        futures::join!(dialer, listener);
    });
}

#[test]
fn plaintext_rust_dialer_lp2p_listener() {
    init_tracing();
    run("rust dials lp2p", async {
        let (ours_key, theirs_key) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        let (a, b) = pipe();
        let octx = ctx(&ours_key);
        let dialer = async {
            let (peer, mut out) = libp2p_plaintext::Config::new(&theirs_key)
                .upgrade_outbound(a, PROTOCOL_ID)
                .await
                .unwrap();
            assert_eq!(peer, ours_key.public().to_peer_id());
            swap(&mut out, b"from rust", b"from lp2p").await;
        };
        let listener = async {
            let mut conn = Plaintext::new()
                .secure_inbound(Box::new(b), &octx)
                .await
                .unwrap();
            assert_eq!(conn.remote_peer(), theirs_key.public().to_peer_id());
            swap(&mut conn, b"from lp2p", b"from rust").await;
        };
        futures::join!(dialer, listener);
    });
}

#[test]
fn plaintext_lp2p_dialer_rust_listener_wrong_peer() {
    init_tracing();
    run("wrong peer", async {
        let (ours_key, theirs_key) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        let someone_else = Keypair::generate_ed25519().public().to_peer_id();
        let (a, b) = pipe();
        let octx = ctx(&ours_key);
        let plaintext = Plaintext::new();
        let (dialed, _) = futures::join!(
            plaintext.secure_outbound(Box::new(a), &octx, Some(someone_else)),
            libp2p_plaintext::Config::new(&theirs_key).upgrade_inbound(b, PROTOCOL_ID),
        );
        match dialed {
            Err(lp2p_core::Error::PeerIdMismatch { expected, actual }) => {
                assert_eq!(*expected, someone_else);
                assert_eq!(*actual, theirs_key.public().to_peer_id());
            }
            other => panic!("unexpected {other:?}"),
        }
    });
}

#[test]
fn plaintext_after_multiselect_rust_dialer_lp2p_listener() {
    init_tracing();
    run("multiselect + plaintext", async {
        let (ours_key, theirs_key) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        let (a, b) = pipe();
        let octx = ctx(&ours_key);
        let dialer = async {
            let (p, io) = multistream_select::dialer_select_proto(
                a,
                ["/noise", PROTOCOL_ID],
                multistream_select::Version::V1,
            )
            .await
            .unwrap();
            assert_eq!(p, PROTOCOL_ID);
            let (peer, mut out) = libp2p_plaintext::Config::new(&theirs_key)
                .upgrade_outbound(io, PROTOCOL_ID)
                .await
                .unwrap();
            assert_eq!(peer, ours_key.public().to_peer_id());
            swap(&mut out, b"rust", b"lp2p").await;
        };
        let listener = async {
            let (p, io) = lp2p_multiselect::listener_select(b, [PROTOCOL_ID])
                .await
                .unwrap();
            assert_eq!(p, PROTOCOL_ID);
            let mut conn = Plaintext::new()
                .secure_inbound(Box::new(io), &octx)
                .await
                .unwrap();
            assert_eq!(conn.remote_peer(), theirs_key.public().to_peer_id());
            swap(&mut conn, b"lp2p", b"rust").await;
        };
        futures::join!(dialer, listener);
    });
}

#[test]
fn plaintext_after_lazy_multiselect_lp2p_dialer_rust_listener() {
    init_tracing();
    run("lazy multiselect + plaintext", async {
        let (ours_key, theirs_key) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        let theirs_id = theirs_key.public().to_peer_id();
        let (a, b) = pipe();
        let octx = ctx(&ours_key);
        let dialer = async {
            // 0-RTT: our exchange leaves with the header and proposal.
            let (p, io) = lp2p_multiselect::dialer_select(
                a,
                [PROTOCOL_ID],
                lp2p_multiselect::Version::V1Lazy,
            )
            .await
            .unwrap();
            assert_eq!(p, PROTOCOL_ID);
            let mut conn = Plaintext::new()
                .secure_outbound(Box::new(io), &octx, Some(theirs_id))
                .await
                .unwrap();
            assert_eq!(conn.remote_peer(), theirs_id);
            swap(&mut conn, b"lp2p", b"rust").await;
        };
        let listener = async {
            let (p, io) = multistream_select::listener_select_proto(b, [PROTOCOL_ID])
                .await
                .unwrap();
            assert_eq!(p, PROTOCOL_ID);
            let (peer, mut out) = libp2p_plaintext::Config::new(&theirs_key)
                .upgrade_inbound(io, PROTOCOL_ID)
                .await
                .unwrap();
            assert_eq!(peer, ours_key.public().to_peer_id());
            swap(&mut out, b"rust", b"lp2p").await;
        };
        futures::join!(dialer, listener);
    });
}
