use std::net::{IpAddr, SocketAddr};

use lp2p_core::{Multiaddr, Protocol};

/// The socket address of `/ip4|ip6/ADDR/tcp/PORT`, or `None` for any other shape (a
/// trailing `/p2p/...` included: strip it first).
pub fn multiaddr_to_socketaddr(addr: &Multiaddr) -> Option<SocketAddr> {
    let mut iter = addr.iter();
    let ip = match iter.next()? {
        Protocol::Ip4(ip) => IpAddr::V4(ip),
        Protocol::Ip6(ip) => IpAddr::V6(ip),
        _ => return None,
    };
    let Protocol::Tcp(port) = iter.next()? else {
        return None;
    };
    if iter.next().is_some() {
        return None;
    }
    Some(SocketAddr::new(ip, port))
}

/// `/ip4|ip6/ADDR/tcp/PORT` for a socket address.
pub fn socketaddr_to_multiaddr(addr: SocketAddr) -> Multiaddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) => Protocol::Ip4(ip),
        IpAddr::V6(ip) => Protocol::Ip6(ip),
    };
    Multiaddr::empty().with(ip).with(Protocol::Tcp(addr.port()))
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
            multiaddr_to_socketaddr(&ma("/ip4/127.0.0.1/tcp/80")),
            Some("127.0.0.1:80".parse().unwrap())
        );
        assert_eq!(
            multiaddr_to_socketaddr(&ma("/ip6/::1/tcp/0")),
            Some("[::1]:0".parse().unwrap())
        );
        for bad in [
            "/ip4/127.0.0.1/udp/80",
            "/dns/localhost/tcp/80",
            "/ip4/1.2.3.4",
            "/tcp/80",
            "/ip4/1.2.3.4/tcp/1/ws",
            "/memory/3",
        ] {
            assert_eq!(multiaddr_to_socketaddr(&ma(bad)), None, "{bad}");
        }
        let sa: SocketAddr = "[::1]:4001".parse().unwrap();
        assert_eq!(socketaddr_to_multiaddr(sa), ma("/ip6/::1/tcp/4001"));
    }
}
