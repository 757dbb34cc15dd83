//! TCP transport behaviour; runs under whichever runtime the features select
//! (`cargo test -p lp2p-tcp` for async-std, `--no-default-features --features smol` for smol).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::{AsyncReadExt, AsyncWriteExt};
use lp2p_core::runtime::block_on;
use lp2p_core::{
    DialOpts, Error, Multiaddr, PeerId, Protocol, RawListener, RawTransport, RuntimeHandle,
};
use lp2p_tcp::TcpTransport;

fn ma(s: &str) -> Multiaddr {
    s.parse().unwrap()
}

fn port_of(addr: &Multiaddr) -> u16 {
    addr.iter()
        .find_map(|p| match p {
            Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .unwrap()
}

async fn echo_roundtrip(tcp: &TcpTransport, listen: &str) {
    let mut listener = tcp.listen(&ma(listen)).await.unwrap();
    let addr = listener.local_addr();
    assert_ne!(port_of(&addr), 0, "port 0 must report the port bound");

    let mut client = tcp.dial(&addr, &DialOpts::default()).await.unwrap();
    let mut server = listener.accept().await.unwrap();
    assert_eq!(client.remote_addr(), addr);
    assert_eq!(server.local_addr(), addr);
    assert_eq!(server.remote_addr(), client.local_addr());

    client.write_all(b"hello over tcp").await.unwrap();
    client.close().await.unwrap(); // half-close
    let mut got = Vec::new();
    server.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"hello over tcp");
    server.write_all(b"bye").await.unwrap();
    drop(server);
    let mut got = Vec::new();
    client.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"bye");
}

#[test]
fn ipv4_port_zero() {
    block_on(echo_roundtrip(
        &TcpTransport::default(),
        "/ip4/127.0.0.1/tcp/0",
    ));
}

#[test]
fn ipv6_loopback() {
    // Machines without IPv6 on loopback cannot bind ::1; that is an environment limit, not
    // a transport bug, so the test says so and checks the error is the right one.
    let ipv6_available = std::net::TcpListener::bind("[::1]:0").is_ok();
    if ipv6_available {
        block_on(echo_roundtrip(&TcpTransport::default(), "/ip6/::1/tcp/0"));
    } else {
        eprintln!("IPv6 loopback unavailable here; checking the listen error instead");
        let err = block_on(TcpTransport::default().listen(&ma("/ip6/::1/tcp/0")))
            .err()
            .unwrap();
        assert!(matches!(err, Error::Listen { .. }));
    }
}

#[test]
fn nodelay_is_on_both_sides() {
    block_on(async {
        let tcp = TcpTransport::default();
        let mut listener = tcp.listen_tcp(&ma("/ip4/127.0.0.1/tcp/0")).unwrap();
        let client = tcp.dial_tcp(&listener.local_addr()).await.unwrap();
        let server = listener.accept_tcp().await;
        assert!(client.socket().nodelay().unwrap());
        assert!(server.socket().nodelay().unwrap());

        let tcp = TcpTransport::default().with_nodelay(false);
        let client = tcp.dial_tcp(&listener.local_addr()).await.unwrap();
        assert!(!client.socket().nodelay().unwrap());
    });
}

#[test]
fn trailing_peer_id_is_accepted_for_dialing() {
    block_on(async {
        let tcp = TcpTransport::default();
        let mut listener = tcp.listen(&ma("/ip4/127.0.0.1/tcp/0")).await.unwrap();
        let addr = listener.local_addr().with(Protocol::P2p(PeerId::random()));
        assert!(tcp.can_dial(&addr));
        let client = tcp.dial(&addr, &DialOpts::default()).await.unwrap();
        let _server = listener.accept().await.unwrap();
        // The connection reports the socket address, without the peer id.
        assert_eq!(client.remote_addr(), listener.local_addr());
    });
}

#[test]
fn unsupported_addresses_are_refused() {
    block_on(async {
        let tcp = TcpTransport::default();
        for bad in [
            "/ip4/127.0.0.1/udp/4001",
            "/ip4/127.0.0.1/udp/4001/quic-v1",
            "/dns/localhost/tcp/4001",
            "/dns4/example.com/tcp/443",
            "/memory/7",
            "/ip4/127.0.0.1/tcp/4001/ws",
            "/ip4/127.0.0.1/tcp/0",  // no port to dial
            "/ip4/0.0.0.0/tcp/4001", // unspecified address
        ] {
            let addr = ma(bad);
            assert!(!tcp.can_dial(&addr), "{bad} must not be dialable");
            match tcp.dial(&addr, &DialOpts::default()).await {
                Err(Error::UnsupportedAddress(a)) => assert_eq!(a, addr),
                Err(other) => panic!("{bad}: wrong error {other}"),
                Ok(_) => panic!("{bad}: dial succeeded"),
            }
        }
        for bad in ["/ip4/127.0.0.1/udp/0", "/dns/localhost/tcp/0", "/memory/0"] {
            assert!(!tcp.can_listen(&ma(bad)));
            assert!(
                matches!(
                    tcp.listen(&ma(bad)).await,
                    Err(Error::UnsupportedAddress(_))
                ),
                "{bad}"
            );
        }
        assert!(tcp.can_listen(&ma("/ip4/0.0.0.0/tcp/0")));
    });
}

#[test]
fn dial_refused_is_a_dial_error() {
    block_on(async {
        // Bind then drop a listener so the port is (very likely) closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = ma(&format!("/ip4/127.0.0.1/tcp/{port}"));
        match TcpTransport::default()
            .dial(&addr, &DialOpts::default())
            .await
        {
            Err(Error::Dial { addr: a, source }) => {
                assert_eq!(a, addr);
                assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused);
            }
            Err(other) => panic!("wrong error {other}"),
            Ok(_) => panic!("dial to a closed port succeeded"),
        }
    });
}

#[test]
fn many_connections_in_parallel() {
    let rt = RuntimeHandle::default();
    block_on(async {
        let tcp = TcpTransport::default();
        let mut listener = tcp.listen(&ma("/ip4/127.0.0.1/tcp/0")).await.unwrap();
        let addr = listener.local_addr();
        let server = rt.spawn(async move {
            let mut n = 0;
            while n < 50 {
                let mut conn = listener.accept().await.unwrap();
                let mut buf = [0u8; 4];
                conn.read_exact(&mut buf).await.unwrap();
                conn.write_all(&buf).await.unwrap();
                n += 1;
            }
        });
        let mut clients = Vec::new();
        for i in 0..50u32 {
            let tcp = tcp.clone();
            let addr = addr.clone();
            clients.push(rt.spawn(async move {
                let mut c = tcp.dial(&addr, &DialOpts::default()).await.unwrap();
                c.write_all(&i.to_be_bytes()).await.unwrap();
                let mut buf = [0u8; 4];
                c.read_exact(&mut buf).await.unwrap();
                assert_eq!(u32::from_be_bytes(buf), i);
            }));
        }
        for c in clients {
            c.await.unwrap();
        }
        server.await.unwrap();
    });
}

/// With `port_reuse`, a dial leaves from the port we listen on (what hole punching needs);
/// without it, from an ephemeral port; and with no listener of that family, it falls back.
#[test]
fn port_reuse_dials_from_the_listening_port() {
    block_on(async {
        let a = TcpTransport::default();
        let mut a_listener = a.listen(&ma("/ip4/127.0.0.1/tcp/0")).await.unwrap();
        let a_port = port_of(&a_listener.local_addr());
        let b = TcpTransport::default();
        let mut b_listener = b.listen(&ma("/ip4/127.0.0.1/tcp/0")).await.unwrap();
        let b_addr = b_listener.local_addr();

        let reuse = DialOpts {
            port_reuse: true,
            ..DialOpts::default()
        };
        let dialed = a.dial(&b_addr, &reuse).await.unwrap();
        let accepted = b_listener.accept().await.unwrap();
        assert_eq!(port_of(&dialed.local_addr()), a_port);
        assert_eq!(
            port_of(&accepted.remote_addr()),
            a_port,
            "b sees a's listen port"
        );

        // A second connection from the same port to another destination works too.
        let c = TcpTransport::default();
        let mut c_listener = c.listen(&ma("/ip4/127.0.0.1/tcp/0")).await.unwrap();
        let again = a.dial(&c_listener.local_addr(), &reuse).await.unwrap();
        let _ = c_listener.accept().await.unwrap();
        assert_eq!(port_of(&again.local_addr()), a_port);

        // The listener still accepts.
        let inbound = b
            .dial(&a_listener.local_addr(), &DialOpts::default())
            .await
            .unwrap();
        let got = a_listener.accept().await.unwrap();
        assert_eq!(got.remote_addr(), inbound.local_addr());

        // Without port reuse: an ephemeral port.
        let plain = a.dial(&b_addr, &DialOpts::default()).await.unwrap();
        assert_ne!(port_of(&plain.local_addr()), a_port);

        // No IPv6 listener: an IPv6 dial with port reuse falls back to an ephemeral port
        // (where the machine has IPv6 loopback at all).
        if let Ok(mut v6) = b.listen(&ma("/ip6/::1/tcp/0")).await {
            let d = a.dial(&v6.local_addr(), &reuse).await.unwrap();
            let _ = v6.accept().await.unwrap();
            assert_ne!(port_of(&d.local_addr()), a_port);
        }

        // A dropped listener no longer lends its port.
        drop(a_listener);
        let after = a.dial(&b_addr, &reuse).await.unwrap();
        assert_ne!(port_of(&after.local_addr()), a_port);
    });
}
