//! Packet sizes: over loopback the listener's datagrams grow to the loopback MTU
//! ([`DEFAULT_LOOPBACK_MTU`]) when the remote accepts datagrams that large, and never exceed
//! the `max_udp_payload_size` a remote advertises (rust-libp2p's, like quinn's, is 1472).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;

use common::raw_peer::{RawClient, good_tls_config};
use common::{PATIENCE, ctx, listen, within};
use futures::AsyncWriteExt;
use lp2p_core::runtime::block_on;
use lp2p_core::{Multiaddr, Protocol, RuntimeHandle};
use lp2p_quic::{DEFAULT_LOOPBACK_MTU, QuicConfig, QuicTransport};
use quinn_proto::Dir;

/// What the listener sends on one stream: enough for many full-size packets.
const SENT: usize = 1024 * 1024;

fn socket_addr(addr: &Multiaddr) -> SocketAddr {
    let (mut ip, mut port) = (None, None);
    for p in addr {
        match p {
            Protocol::Ip4(v4) => ip = Some(std::net::IpAddr::V4(v4)),
            Protocol::Udp(p) => port = Some(p),
            _ => {}
        }
    }
    SocketAddr::new(ip.unwrap(), port.unwrap())
}

/// The largest datagram a listener with `config` sends to a raw client over 127.0.0.1 that
/// advertises `advertised` (quinn-proto's default when `None`), on a stream of [`SENT`]
/// bytes.
fn largest_datagram(config: QuicConfig, advertised: Option<u16>) -> usize {
    block_on(async {
        let rt = RuntimeHandle::default();
        let b = QuicTransport::new(config);
        let (mut listener, addr) = listen(&b, &ctx(), "/ip4/127.0.0.1/udp/0/quic-v1").await;
        let server = socket_addr(&addr);
        let client = std::thread::spawn(move || {
            let mut raw = advertised.map_or_else(RawClient::new, RawClient::with_max_udp_payload);
            let i = raw.connect(server, good_tls_config());
            raw.drive(PATIENCE, |raw| raw.outcome(i).is_some());
            assert!(matches!(raw.outcome(i), Some(Ok(()))));
            let id = raw.conn(i).streams().open(Dir::Bi).unwrap();
            raw.conn(i).send_stream(id).write(b"go").unwrap();
            // The stream data, not read by the client: its windows are larger than SENT.
            raw.drive(PATIENCE, |raw| raw.received >= SENT);
            assert!(raw.received >= SENT, "received {} bytes", raw.received);
            raw.largest_datagram
        });
        let conn = within(&rt, async {
            listener.accept().await.unwrap().upgrade.await.unwrap()
        })
        .await;
        let mut stream = within(&rt, conn.muxer.accept_stream()).await.unwrap();
        within(&rt, stream.write_all(&vec![7u8; SENT]))
            .await
            .unwrap();
        // The connection stays open until the client has it all.
        let largest = client.join().unwrap();
        drop(stream);
        largest
    })
}

#[test]
fn loopback_datagrams_grow_to_the_loopback_mtu() {
    let largest = largest_datagram(QuicConfig::default(), Some(DEFAULT_LOOPBACK_MTU));
    assert!(largest > 1472, "{largest}");
    assert!(largest <= usize::from(DEFAULT_LOOPBACK_MTU), "{largest}");
}

#[test]
fn datagrams_stay_within_what_the_remote_advertises() {
    let largest = largest_datagram(QuicConfig::default(), None);
    assert!(largest <= 1472, "{largest}");
    let largest = largest_datagram(QuicConfig::default(), Some(4000));
    assert!(largest > 1472 && largest <= 4000, "{largest}");
}

#[test]
fn without_a_loopback_mtu_loopback_is_like_any_path() {
    let config = QuicConfig::default().loopback_mtu(None);
    assert_eq!(config.get_loopback_mtu(), None);
    let largest = largest_datagram(config, Some(DEFAULT_LOOPBACK_MTU));
    // Path MTU discovery's default ceiling (1452) at most.
    assert!(largest <= 1472, "{largest}");
}
