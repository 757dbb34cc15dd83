//! End-to-end tests over TCP on 127.0.0.1 (lp2p-tcp).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use lp2p_core::{Connection, DialOpts, RawTransport, Role, RuntimeHandle};
use lp2p_mplex::{Mplex, MplexConfig, MplexConnection};
use lp2p_tcp::TcpTransport;

/// Two ends of a TCP connection over loopback (port 0: the OS picks a free port).
fn tcp_pair() -> (Box<dyn Connection>, Box<dyn Connection>) {
    lp2p_core::runtime::block_on(async {
        let tcp = TcpTransport::default();
        let mut listener = tcp
            .listen(&"/ip4/127.0.0.1/tcp/0".parse().unwrap())
            .await
            .unwrap();
        let addr = listener.local_addr();
        let opts = DialOpts::default();
        let (dialed, accepted) = futures::join!(tcp.dial(&addr, &opts), listener.accept());
        (dialed.unwrap(), accepted.unwrap())
    })
}

fn pair_with(
    dialer: MplexConfig,
    listener: MplexConfig,
) -> (Arc<MplexConnection>, Arc<MplexConnection>) {
    let rt = RuntimeHandle::default();
    let (a, b) = tcp_pair();
    (
        Mplex::new(dialer).start(a, Role::Initiator, &rt),
        Mplex::new(listener).start(b, Role::Responder, &rt),
    )
}

// The scenarios every transport runs (tests/common), over this file's `pair_with`.
common::transport_tests!(pair_with);
