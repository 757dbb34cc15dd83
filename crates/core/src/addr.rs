//! Small helpers on [`Multiaddr`] shared by transports and the dialer.
//!
//! ```
//! use lp2p_core::{addr, Multiaddr, PeerId};
//! let peer = PeerId::random();
//! let full: Multiaddr = format!("/ip4/127.0.0.1/tcp/4001/p2p/{peer}").parse().unwrap();
//! let (transport, id) = addr::split_peer_id(&full);
//! assert_eq!(transport.to_string(), "/ip4/127.0.0.1/tcp/4001");
//! assert_eq!(id, Some(peer));
//! assert_eq!(addr::with_peer_id(&transport, peer), full);
//! ```

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use libp2p_identity::PeerId;
use multiaddr::{Multiaddr, Protocol};

use crate::Error;

/// Splits a trailing `/p2p/<peer id>` off an address: the transport part and the peer id.
pub fn split_peer_id(addr: &Multiaddr) -> (Multiaddr, Option<PeerId>) {
    let mut transport = addr.clone();
    match transport.pop() {
        Some(Protocol::P2p(peer)) => (transport, Some(peer)),
        _ => (addr.clone(), None),
    }
}

/// The peer id in a trailing `/p2p/<peer id>`, if any.
pub fn peer_id(addr: &Multiaddr) -> Option<PeerId> {
    match addr.iter().last() {
        Some(Protocol::P2p(peer)) => Some(peer),
        _ => None,
    }
}

/// `addr` ending in `/p2p/<peer>`: appended when absent, left alone when already there.
pub fn with_peer_id(addr: &Multiaddr, peer: PeerId) -> Multiaddr {
    let (transport, _) = split_peer_id(addr);
    transport.with(Protocol::P2p(peer))
}

/// An IP subnet in CIDR form, e.g. `10.0.0.0/8` or `2001:db8::/32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpSubnet {
    addr: IpAddr,
    prefix: u8,
}

impl IpSubnet {
    /// The subnet of `prefix` bits containing `addr` (the host bits are cleared). `None` when
    /// the prefix is longer than the address.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<IpSubnet> {
        let masked = mask(addr, prefix)?;
        Some(IpSubnet {
            addr: masked,
            prefix,
        })
    }

    /// Whether `ip` is in the subnet (an IPv4 address is never in an IPv6 subnet).
    pub fn contains(&self, ip: IpAddr) -> bool {
        mask(ip, self.prefix).is_some_and(|m| m == self.addr)
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }
}

/// `ip` with all but the first `prefix` bits cleared.
fn mask(ip: IpAddr, prefix: u8) -> Option<IpAddr> {
    match ip {
        IpAddr::V4(v4) if prefix <= 32 => {
            let bits = u32::from(v4);
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix))
            };
            Some(IpAddr::V4((bits & m).into()))
        }
        IpAddr::V6(v6) if prefix <= 128 => {
            let bits = u128::from(v6);
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix))
            };
            Some(IpAddr::V6((bits & m).into()))
        }
        _ => None,
    }
}

impl fmt::Display for IpSubnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for IpSubnet {
    type Err = Error;

    /// Parses `ADDR/PREFIX`; anything else is [`Error::InvalidSubnet`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || Error::InvalidSubnet(s.to_owned());
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        IpSubnet::new(addr, prefix).ok_or_else(bad)
    }
}

/// The first IP address in a multiaddr (the one the path goes to).
pub fn first_ip(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

/// Whether `ip` is reachable across the internet: not loopback, private (RFC 1918, IPv6
/// unique local), link-local, unspecified, broadcast, documentation or carrier-grade NAT
/// (100.64.0.0/10) space. What identify counts as a distinct observer and AutoNAT agrees
/// to dial.
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => {
            !(ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_broadcast()
                || ip.is_documentation()
                // 100.64.0.0/10, carrier-grade NAT.
                || (ip.octets()[0] == 100 && (ip.octets()[1] & 0xc0) == 64))
        }
        IpAddr::V6(ip) => {
            !(ip.is_loopback()
                || ip.is_unspecified()
                || ip.is_unique_local()
                || ip.is_unicast_link_local())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_without_peer() {
        let a: Multiaddr = "/memory/5".parse().unwrap();
        assert_eq!(split_peer_id(&a), (a.clone(), None));
        assert_eq!(peer_id(&a), None);
    }

    #[test]
    fn with_peer_id_replaces() {
        let p1 = PeerId::random();
        let p2 = PeerId::random();
        let a: Multiaddr = format!("/memory/5/p2p/{p1}").parse().unwrap();
        let b = with_peer_id(&a, p2);
        assert_eq!(peer_id(&b), Some(p2));
        assert_eq!(b.iter().count(), 2);
    }
}
