//! End-to-end tests over TCP on 127.0.0.1 (lp2p-tcp).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use lp2p_core::{Connection, DialOpts, RawTransport, Role, RuntimeHandle};
use lp2p_mplex::{Mplex, MplexConfig, MplexConnection};
use lp2p_tcp::TcpTransport;

use common::run;

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

fn pair() -> (Arc<MplexConnection>, Arc<MplexConnection>) {
    pair_with(MplexConfig::default(), MplexConfig::default())
}

#[test]
fn thousand_streams_of_64_kib_both_ways() {
    let (d, l) = pair();
    run(common::many_streams_both_ways(d, l, 1000, 64 * 1024));
}

#[test]
fn half_close() {
    let (d, l) = pair();
    run(common::half_close(d, l));
}

#[test]
fn reset() {
    let (d, l) = pair();
    run(common::reset(d, l));
}

#[test]
fn close_wakes_every_stream() {
    let (d, l) = pair();
    run(common::close_wakes_every_stream(d, l));
}

#[test]
fn drop_half_closes() {
    let (d, l) = pair();
    run(common::drop_half_closes(d, l));
}

#[test]
fn overflow_resets_only_that_stream() {
    let (d, l) = pair_with(
        MplexConfig::default(),
        MplexConfig::default()
            .with_max_stream_buffer(256 * 1024)
            .with_stall_timeout(Duration::from_millis(100)),
    );
    run(common::overflow_resets_only_that_stream(d, l));
}

#[test]
fn late_reader_is_not_reset() {
    // A stall timeout beyond any scheduling delay of a loaded machine (the default is 5 s).
    let config = MplexConfig::default().with_stall_timeout(Duration::from_secs(120));
    let (d, l) = pair_with(MplexConfig::default(), config);
    run(common::late_reader_is_not_reset(d, l));
}

#[test]
fn dropping_the_connection_closes_it() {
    let (d, l) = pair();
    run(common::dropping_the_connection_closes_it(d, l));
}

#[test]
fn unread_stream_does_not_stall_the_others() {
    let config = MplexConfig::default()
        .with_max_stream_buffer(256 * 1024)
        .with_stall_timeout(Duration::from_secs(3600));
    let (d, l) = pair_with(MplexConfig::default(), config);
    run(common::unread_stream_does_not_stall_the_others(d, l));
}

#[test]
fn slow_reader_is_waited_for() {
    let config = MplexConfig::default()
        .with_max_connection_buffer(1024 * 1024)
        .with_max_stream_buffer(256 * 1024)
        .with_reader_grace(Duration::from_secs(60));
    let (d, l) = pair_with(MplexConfig::default(), config);
    run(common::slow_reader_is_waited_for(d, l));
}
