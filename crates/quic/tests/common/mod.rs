//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

pub mod raw_peer;

use std::time::Duration;

use lp2p_core::{
    DialOpts, Established, Keypair, Listener, Multiaddr, RuntimeHandle, Transport, TransportContext,
};
use lp2p_quic::{QuicConfig, QuicTransport};

/// A generous bound for anything that should finish quickly, on a slow, loaded machine.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub fn ctx() -> TransportContext {
    TransportContext::new(Keypair::generate_ed25519(), RuntimeHandle::default())
}

pub async fn listen(
    transport: &QuicTransport,
    ctx: &TransportContext,
    addr: &str,
) -> (Box<dyn Listener>, Multiaddr) {
    let listener = transport.listen(ctx, &addr.parse().unwrap()).await.unwrap();
    let addr = listener.local_addrs()[0].clone();
    (listener, addr)
}

/// Accepts one inbound connection and runs its upgrade.
pub async fn accept(listener: &mut Box<dyn Listener>) -> Established {
    let incoming = listener.accept().await.unwrap();
    incoming.upgrade.await.unwrap()
}

/// Two connected peers: (dialer's side, listener's side), plus both transports and
/// contexts (kept alive by the caller).
pub struct Pair {
    pub dialer: Established,
    pub listener: Established,
    pub a: QuicTransport,
    pub b: QuicTransport,
    pub a_ctx: TransportContext,
    pub b_ctx: TransportContext,
    pub b_listener: Box<dyn Listener>,
    pub b_addr: Multiaddr,
}

pub async fn pair_with(config: QuicConfig) -> Pair {
    pair_in(config, ctx(), ctx()).await
}

/// [`pair_with`] in the given contexts (the dialer's, the listener's).
pub async fn pair_in(config: QuicConfig, a_ctx: TransportContext, b_ctx: TransportContext) -> Pair {
    let (a, b) = (
        QuicTransport::new(config.clone()),
        QuicTransport::new(config),
    );
    let (mut b_listener, b_addr) = listen(&b, &b_ctx, "/ip4/127.0.0.1/udp/0/quic-v1").await;
    let (dialer, listener) = futures::join!(
        a.dial(
            &a_ctx,
            &b_addr,
            DialOpts::to_peer(Some(b_ctx.local_peer_id()))
        ),
        accept(&mut b_listener)
    );
    Pair {
        dialer: dialer.unwrap(),
        listener,
        a,
        b,
        a_ctx,
        b_ctx,
        b_listener,
        b_addr,
    }
}

pub async fn pair() -> Pair {
    pair_with(QuicConfig::default()).await
}

/// Runs `future` under [`PATIENCE`].
pub async fn within<F: std::future::Future>(rt: &RuntimeHandle, future: F) -> F::Output {
    rt.timeout(PATIENCE, future).await.expect("timed out")
}
