//! Shared by the in-process security-channel tests (`tests/noise.rs`, `tests/tls.rs`): one
//! handshake between an lp2p [`SecurityUpgrader`] and a rust-libp2p connection upgrade over a
//! [`pipe`](crate::pipe), in either role, the checks every successful handshake gets, and a
//! bulk exchange over the secured streams.

use std::fmt::Debug;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p_core::upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade};
use lp2p_core::{Keypair, PeerId, ProtocolId, SecureConnection, SecurityUpgrader, UpgradeContext};
use lp2p_memory::MemoryConnection;

/// What one handshake gave each side: ours, and rust-libp2p's (its view of our peer id and
/// its secured stream `Io` on success, its error `E` otherwise).
pub type Handshake<Io, E> = (
    Result<SecureConnection, lp2p_core::Error>,
    Result<(PeerId, Io), E>,
);

/// An lp2p upgrade context with `key`, offering `muxers` in the handshake.
pub fn upgrade_context(key: Keypair, muxers: &[&'static str]) -> UpgradeContext {
    UpgradeContext::new(key, lp2p_core::RuntimeHandle::default())
        .with_muxers(muxers.iter().map(|m| ProtocolId::from(*m)))
}

/// lp2p dials (`secure_outbound`, expecting `expected`), rust-libp2p answers with `rust`
/// negotiated as `info`; both handshakes run to their end over one pipe.
pub async fn lp2p_dials_rust<S, R, Io>(
    lp2p: &S,
    ctx: &UpgradeContext,
    expected: Option<PeerId>,
    rust: R,
    info: &'static str,
) -> Handshake<Io, R::Error>
where
    S: SecurityUpgrader,
    R: InboundConnectionUpgrade<MemoryConnection, Info = &'static str, Output = (PeerId, Io)>,
{
    let (a, b) = crate::pipe();
    futures::join!(
        lp2p.secure_outbound(Box::new(a), ctx, expected),
        rust.upgrade_inbound(b, info),
    )
}

/// rust-libp2p dials with `rust` negotiated as `info`, lp2p answers (`secure_inbound`); both
/// handshakes run to their end over one pipe.
pub async fn rust_dials_lp2p<S, R, Io>(
    lp2p: &S,
    ctx: &UpgradeContext,
    rust: R,
    info: &'static str,
) -> Handshake<Io, R::Error>
where
    S: SecurityUpgrader,
    R: OutboundConnectionUpgrade<MemoryConnection, Info = &'static str, Output = (PeerId, Io)>,
{
    let (a, b) = crate::pipe();
    let (theirs, ours) = futures::join!(
        rust.upgrade_outbound(a, info),
        lp2p.secure_inbound(Box::new(b), ctx),
    );
    (ours, theirs)
}

/// Checks a handshake that both sides completed: each proved the identity the other expects
/// (`rust_peer` for us, `ctx`'s peer id for rust-libp2p) and, rust-libp2p never offering
/// inlined muxers, no muxer was agreed early. Returns both secured streams.
pub fn both_secured<Io, E: Debug>(
    (ours, theirs): Handshake<Io, E>,
    ctx: &UpgradeContext,
    rust_peer: PeerId,
) -> (SecureConnection, Io) {
    let secured = ours.expect("lp2p side of the handshake");
    let (their_view_of_us, their_io) = theirs.expect("rust-libp2p side of the handshake");
    assert_eq!(secured.remote_peer(), rust_peer);
    assert_eq!(their_view_of_us, ctx.local_peer_id());
    assert_eq!(secured.early_muxer(), None);
    (secured, their_io)
}

/// A short greeting each way, then `to_rust` from lp2p and `to_lp2p` from rust-libp2p at the
/// same time, then both close; each side checks what it read.
pub async fn exchange<A, B>(ours: A, theirs: B, to_rust: &[u8], to_lp2p: &[u8])
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let (mut our_r, mut our_w) = ours.split();
    let (mut their_r, mut their_w) = theirs.split();

    our_w.write_all(b"hello from lp2p").await.expect("write");
    our_w.flush().await.expect("flush");
    let mut buf = [0u8; 15];
    their_r.read_exact(&mut buf).await.expect("read");
    assert_eq!(&buf, b"hello from lp2p");
    their_w.write_all(b"hello from rust").await.expect("write");
    their_w.flush().await.expect("flush");
    our_r.read_exact(&mut buf).await.expect("read");
    assert_eq!(&buf, b"hello from rust");

    let send_ours = async {
        our_w.write_all(to_rust).await.expect("lp2p writes");
        our_w.close().await.expect("lp2p closes");
    };
    let send_theirs = async {
        their_w.write_all(to_lp2p).await.expect("rust writes");
        their_w.close().await.expect("rust closes");
    };
    let recv_ours = async {
        let mut got = Vec::new();
        our_r.read_to_end(&mut got).await.expect("lp2p reads");
        got
    };
    let recv_theirs = async {
        let mut got = Vec::new();
        their_r.read_to_end(&mut got).await.expect("rust reads");
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
