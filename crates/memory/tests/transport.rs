//! Memory transport behaviour; runs under whichever runtime the features select.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::{AsyncReadExt, AsyncWriteExt};
use lp2p_core::runtime::block_on;
use lp2p_core::{DialOpts, Error, Multiaddr, PeerId, RawTransport, RuntimeHandle};
use lp2p_memory::{MemoryConnection, MemoryTransport};

fn ma(s: &str) -> Multiaddr {
    s.parse().unwrap()
}

#[test]
fn port_zero_picks_a_free_number_and_dial_connects() {
    block_on(async {
        let t = MemoryTransport::default();
        let mut l1 = t.listen(&ma("/memory/0")).await.unwrap();
        let l2 = t.listen(&ma("/memory/0")).await.unwrap();
        assert_ne!(l1.local_addr(), l2.local_addr());
        assert_ne!(l1.local_addr(), ma("/memory/0"));

        let addr = l1.local_addr();
        let mut c = t.dial(&addr, &DialOpts::default()).await.unwrap();
        let mut s = l1.accept().await.unwrap();
        assert_eq!(c.remote_addr(), addr);
        assert_eq!(s.local_addr(), addr);
        assert_eq!(s.remote_addr(), c.local_addr());

        c.write_all(b"hello").await.unwrap();
        c.close().await.unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"hello");
        // Half-close: the other direction still works.
        s.write_all(b"back").await.unwrap();
        drop(s);
        let mut got = Vec::new();
        c.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"back");
    });
}

#[test]
fn dial_accepts_a_trailing_peer_id() {
    block_on(async {
        let t = MemoryTransport::default();
        let mut l = t.listen(&ma("/memory/0")).await.unwrap();
        let addr = l
            .local_addr()
            .with(lp2p_core::Protocol::P2p(PeerId::random()));
        assert!(t.can_dial(&addr));
        let _c = t.dial(&addr, &DialOpts::default()).await.unwrap();
        let _s = l.accept().await.unwrap();
    });
}

#[test]
fn refused_and_unsupported() {
    block_on(async {
        let t = MemoryTransport::default();
        let l = t.listen(&ma("/memory/0")).await.unwrap();
        let addr = l.local_addr();
        drop(l);
        assert!(matches!(
            t.dial(&addr, &DialOpts::default()).await,
            Err(Error::Dial { .. })
        ));
        let tcp = ma("/ip4/127.0.0.1/tcp/1");
        assert!(!t.can_dial(&tcp));
        assert!(matches!(
            t.dial(&tcp, &DialOpts::default()).await,
            Err(Error::UnsupportedAddress(_))
        ));
        assert!(matches!(
            t.listen(&tcp).await,
            Err(Error::UnsupportedAddress(_))
        ));
    });
}

#[test]
fn address_in_use() {
    block_on(async {
        let t = MemoryTransport::default();
        let l = t.listen(&ma("/memory/0")).await.unwrap();
        assert!(matches!(
            t.listen(&l.local_addr()).await,
            Err(Error::Listen { .. })
        ));
    });
}

#[test]
fn backlog_is_bounded() {
    block_on(async {
        let t = MemoryTransport::default().with_backlog(2);
        let l = t.listen(&ma("/memory/0")).await.unwrap();
        let addr = l.local_addr();
        let _a = t.dial(&addr, &DialOpts::default()).await.unwrap();
        let _b = t.dial(&addr, &DialOpts::default()).await.unwrap();
        assert!(matches!(
            t.dial(&addr, &DialOpts::default()).await,
            Err(Error::Dial { .. })
        ));
    });
}

#[test]
fn writer_waits_for_reader_and_large_transfers_arrive_intact() {
    let rt = RuntimeHandle::default();
    block_on(async {
        let (mut a, mut b) = MemoryConnection::pair(1024, ma("/memory/1"), ma("/memory/2"));
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let expected = data.clone();
        let writer = rt.spawn(async move {
            a.write_all(&data).await.unwrap();
            a.close().await.unwrap();
            a
        });
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, expected);
        drop(writer.await.unwrap());
    });
}

#[test]
fn write_to_dropped_peer_fails() {
    block_on(async {
        let (mut a, b) = MemoryConnection::pair(16, ma("/memory/1"), ma("/memory/2"));
        drop(b);
        let err = a.write_all(b"x").await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
        let mut buf = [0u8; 1];
        assert_eq!(a.read(&mut buf).await.unwrap(), 0);
    });
}
