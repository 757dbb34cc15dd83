//! QUIC multiaddresses: `/ip4|ip6/ADDR/udp/PORT/quic-v1[/p2p/ID]`.

use std::net::{IpAddr, SocketAddr};

use lp2p_core::{Multiaddr, Protocol, addr};

/// What an address is to this transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QuicAddr {
    /// `/ip4|ip6/.../udp/PORT/quic-v1`.
    V1(SocketAddr),
    /// `/ip4|ip6/.../udp/PORT/quic`: draft-29, which we do not speak.
    Draft29,
    /// Anything else.
    Other,
}

/// Classifies `addr` (a trailing `/p2p/ID` is allowed).
pub(crate) fn parse(addr: &Multiaddr) -> QuicAddr {
    let (addr, _) = addr::split_peer_id(addr);
    let mut iter = addr.iter();
    let ip: IpAddr = match iter.next() {
        Some(Protocol::Ip4(ip)) => ip.into(),
        Some(Protocol::Ip6(ip)) => ip.into(),
        _ => return QuicAddr::Other,
    };
    let Some(Protocol::Udp(port)) = iter.next() else {
        return QuicAddr::Other;
    };
    let kind = match iter.next() {
        Some(Protocol::QuicV1) => QuicAddr::V1(SocketAddr::new(ip, port)),
        Some(Protocol::Quic) => QuicAddr::Draft29,
        _ => return QuicAddr::Other,
    };
    if iter.next().is_some() {
        return QuicAddr::Other;
    }
    kind
}

/// The multiaddress of a socket address: `/ip4|ip6/ADDR/udp/PORT/quic-v1`.
pub(crate) fn to_multiaddr(addr: SocketAddr) -> Multiaddr {
    Multiaddr::empty()
        .with(match addr.ip() {
            IpAddr::V4(ip) => Protocol::Ip4(ip),
            IpAddr::V6(ip) => Protocol::Ip6(ip),
        })
        .with(Protocol::Udp(addr.port()))
        .with(Protocol::QuicV1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ma(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    #[test]
    fn shapes() {
        assert_eq!(
            parse(&ma("/ip4/127.0.0.1/udp/4001/quic-v1")),
            QuicAddr::V1("127.0.0.1:4001".parse().unwrap())
        );
        assert_eq!(
            parse(&ma(
                "/ip6/::1/udp/4001/quic-v1/p2p/12D3KooWM6CgA9iBFZmcYAHA6A2qvbAxqfkmrYiRQuz3XEsk4Ksv"
            )),
            QuicAddr::V1("[::1]:4001".parse().unwrap())
        );
        assert_eq!(parse(&ma("/ip4/1.2.3.4/udp/4001/quic")), QuicAddr::Draft29);
        assert_eq!(parse(&ma("/ip4/1.2.3.4/tcp/4001")), QuicAddr::Other);
        assert_eq!(parse(&ma("/ip4/1.2.3.4/udp/4001")), QuicAddr::Other);
        assert_eq!(
            parse(&ma("/ip4/1.2.3.4/udp/4001/quic-v1/webtransport")),
            QuicAddr::Other
        );
        assert_eq!(
            parse(&ma("/dns4/example.com/udp/4001/quic-v1")),
            QuicAddr::Other
        );
        let sa: SocketAddr = "[::1]:9".parse().unwrap();
        assert_eq!(to_multiaddr(sa), ma("/ip6/::1/udp/9/quic-v1"));
    }
}
