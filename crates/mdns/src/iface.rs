//! Network interfaces as the core sees them, and which addresses go where: the addresses we
//! advertise on an interface, and the announced addresses we keep.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lp2p_core::multiaddr::Protocol;
use lp2p_core::{Multiaddr, PeerId};

use crate::config::MIN_PACKET_SIZE;

/// IPv4 header without options plus the UDP header.
const IPV4_OVERHEAD: usize = 20 + 8;
/// IPv6 header plus the UDP header.
const IPV6_OVERHEAD: usize = 40 + 8;
/// The MTU assumed when the system does not tell: Ethernet's.
pub const DEFAULT_MTU: u32 = 1500;

/// An IP version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// IPv4: group 224.0.0.251.
    V4,
    /// IPv6: group ff02::fb.
    V6,
}

impl Family {
    /// `"ipv4"` or `"ipv6"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        }
    }
}

/// One mDNS socket's identity: an interface and an IP version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IfaceKey {
    /// The interface index.
    pub index: u32,
    /// The IP version.
    pub family: Family,
}

/// A network interface: what the shell read from the system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// The OS interface index (what IPv6 multicast membership and scope ids use).
    pub index: u32,
    /// Its name, e.g. `eth0` (for logs).
    pub name: String,
    /// Whether it is a loopback interface.
    pub loopback: bool,
    /// Its MTU, when known.
    pub mtu: Option<u32>,
    /// Its IPv4 addresses.
    pub ipv4: Vec<Ipv4Addr>,
    /// Its IPv6 addresses (link-local included).
    pub ipv6: Vec<Ipv6Addr>,
}

impl Interface {
    /// The sockets this interface needs: one per IP version it has an address of and that
    /// is enabled.
    pub fn keys(&self, ipv4: bool, ipv6: bool) -> Vec<IfaceKey> {
        let mut keys = Vec::new();
        if ipv4 && !self.ipv4.is_empty() {
            keys.push(IfaceKey {
                index: self.index,
                family: Family::V4,
            });
        }
        if ipv6 && !self.ipv6.is_empty() {
            keys.push(IfaceKey {
                index: self.index,
                family: Family::V6,
            });
        }
        keys
    }

    /// The largest DNS message we send on this interface for `family`: the smaller of the MTU
    /// and `max_packet_size` (at least [`MIN_PACKET_SIZE`]), less the IP and UDP headers.
    pub fn message_limit(&self, family: Family, max_packet_size: usize) -> usize {
        let mtu = usize::try_from(self.mtu.unwrap_or(DEFAULT_MTU)).unwrap_or(usize::MAX);
        let datagram = mtu.min(max_packet_size).max(MIN_PACKET_SIZE);
        let overhead = match family {
            Family::V4 => IPV4_OVERHEAD,
            Family::V6 => IPV6_OVERHEAD,
        };
        datagram.saturating_sub(overhead)
    }

    /// Whether `ip` is one of this interface's addresses.
    pub fn has_ip(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => self.ipv4.contains(&v4),
            IpAddr::V6(v6) => self.ipv6.contains(&v6),
        }
    }
}

/// One address prefix of an interface, as the system reports it: which hosts are on that
/// link. A unicast answer goes only to a querier on the link of the interface its query
/// arrived on (RFC 6762 §11), so a query with a forged source address from elsewhere cannot
/// aim our answers at a third party.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    /// The OS index of the interface.
    pub index: u32,
    /// One of the interface's addresses.
    pub addr: IpAddr,
    /// That address's prefix length (24 for a /24).
    pub prefix_len: u8,
}

impl Subnet {
    /// Whether `ip` is a host of this subnet: within its prefix, and for an IPv4 prefix of
    /// /30 or shorter neither its network nor its broadcast address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let host_bits = 32u32.saturating_sub(u32::from(self.prefix_len));
                let mask = u32::MAX.checked_shl(host_bits).unwrap_or(0);
                let (net, ip) = (u32::from(net), u32::from(ip));
                let host = ip & !mask;
                net & mask == ip & mask && (host_bits < 2 || (host != 0 && host != !mask))
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let host_bits = 128u32.saturating_sub(u32::from(self.prefix_len));
                let mask = u128::MAX.checked_shl(host_bits).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Whether a querier at `ip`, heard on interface `index`, is on that link, so it may get a
/// unicast answer: an IPv6 link-local address (routers never forward those), or a host of
/// one of the interface's `subnets`. Never an unspecified, multicast or broadcast address.
pub fn on_link(ip: IpAddr, index: u32, subnets: &[Subnet]) -> bool {
    let unicast = match ip {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
    };
    if !unicast {
        return false;
    }
    if let IpAddr::V6(v6) = ip
        && v6.is_unicast_link_local()
    {
        return true;
    }
    subnets.iter().any(|s| s.index == index && s.contains(ip))
}

/// The addresses to advertise on `iface`, each ending in `/p2p/<local>`:
/// - a listen address on an unspecified IP (`0.0.0.0`, `::`) stands for each of the
///   interface's addresses of that version (IPv6 link-local ones excepted: a multiaddr
///   cannot carry their zone);
/// - a listen address on a specific IP is advertised only on the interface that has it;
/// - loopback addresses only on a loopback interface;
/// - relayed (`/p2p-circuit`) and non-IP addresses are not advertised (they are not about
///   this link).
pub fn advertised(listen: &[Multiaddr], iface: &Interface, local: PeerId) -> Vec<Multiaddr> {
    let mut out: Vec<Multiaddr> = Vec::new();
    for addr in listen {
        if addr.iter().any(|p| matches!(p, Protocol::P2pCircuit)) {
            continue;
        }
        let mut base = addr.clone();
        if matches!(base.iter().last(), Some(Protocol::P2p(_))) {
            base.pop();
        }
        let ips: Vec<IpAddr> = match base.iter().next() {
            Some(Protocol::Ip4(ip)) if ip.is_unspecified() => iface
                .ipv4
                .iter()
                .filter(|ip| iface.loopback || !ip.is_loopback())
                .map(|ip| IpAddr::V4(*ip))
                .collect(),
            Some(Protocol::Ip6(ip)) if ip.is_unspecified() => iface
                .ipv6
                .iter()
                .filter(|ip| !ip.is_unicast_link_local())
                .filter(|ip| iface.loopback || !ip.is_loopback())
                .map(|ip| IpAddr::V6(*ip))
                .collect(),
            Some(Protocol::Ip4(ip)) => vec![IpAddr::V4(ip)],
            Some(Protocol::Ip6(ip)) => vec![IpAddr::V6(ip)],
            _ => continue,
        };
        for ip in ips {
            if !iface.has_ip(ip) || (ip.is_loopback() && !iface.loopback) {
                continue;
            }
            if let IpAddr::V6(v6) = ip
                && v6.is_unicast_link_local()
            {
                continue;
            }
            let concrete = base.replace(0, |_| Some(Protocol::from(ip)));
            let Some(concrete) = concrete else { continue };
            let full = concrete.with(Protocol::P2p(local));
            if !out.contains(&full) {
                out.push(full);
            }
        }
    }
    out
}

/// Why an announced address is not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    /// An unspecified, multicast or broadcast IP: nothing to dial.
    NotUnicast,
    /// A loopback IP announced on a non-loopback interface: it would be our own machine.
    Loopback,
    /// An IPv6 link-local IP: without its zone it cannot be dialed.
    LinkLocal,
}

/// Whether an announced address (without its `/p2p` part) is worth keeping, given whether
/// it arrived on a loopback interface.
pub fn check_announced(addr: &Multiaddr, on_loopback: bool) -> Result<(), Unusable> {
    match addr.iter().next() {
        Some(Protocol::Ip4(ip)) => {
            if ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast() {
                Err(Unusable::NotUnicast)
            } else if ip.is_loopback() && !on_loopback {
                Err(Unusable::Loopback)
            } else {
                Ok(())
            }
        }
        Some(Protocol::Ip6(ip)) => {
            if ip.is_unspecified() || ip.is_multicast() {
                Err(Unusable::NotUnicast)
            } else if ip.is_loopback() && !on_loopback {
                Err(Unusable::Loopback)
            } else if ip.is_unicast_link_local() {
                Err(Unusable::LinkLocal)
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth() -> Interface {
        Interface {
            index: 2,
            name: "eth0".into(),
            loopback: false,
            mtu: Some(1500),
            ipv4: vec!["192.168.1.10".parse().unwrap()],
            ipv6: vec!["fe80::1".parse().unwrap(), "fd00::10".parse().unwrap()],
        }
    }

    fn lo() -> Interface {
        Interface {
            index: 1,
            name: "lo".into(),
            loopback: true,
            mtu: Some(65536),
            ipv4: vec!["127.0.0.1".parse().unwrap()],
            ipv6: vec!["::1".parse().unwrap()],
        }
    }

    fn strs(addrs: &[Multiaddr]) -> Vec<String> {
        addrs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn unspecified_listen_addresses_expand_per_interface() {
        let me = PeerId::random();
        let listen: Vec<Multiaddr> = vec![
            "/ip4/0.0.0.0/tcp/4001".parse().unwrap(),
            "/ip6/::/tcp/4002".parse().unwrap(),
            "/ip4/10.0.0.1/tcp/4003".parse().unwrap(),
            "/ip4/127.0.0.1/tcp/4004".parse().unwrap(),
            "/ip4/192.168.1.10/udp/4005/quic-v1".parse().unwrap(),
            "/ip4/192.168.1.10/tcp/4006/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA/p2p-circuit".parse().unwrap(),
            "/dns4/example.com/tcp/1".parse().unwrap(),
        ];
        assert_eq!(
            strs(&advertised(&listen, &eth(), me)),
            [
                format!("/ip4/192.168.1.10/tcp/4001/p2p/{me}"),
                format!("/ip6/fd00::10/tcp/4002/p2p/{me}"),
                format!("/ip4/192.168.1.10/udp/4005/quic-v1/p2p/{me}"),
            ]
        );
        assert_eq!(
            strs(&advertised(&listen, &lo(), me)),
            [
                format!("/ip4/127.0.0.1/tcp/4001/p2p/{me}"),
                format!("/ip6/::1/tcp/4002/p2p/{me}"),
                format!("/ip4/127.0.0.1/tcp/4004/p2p/{me}"),
            ]
        );
    }

    #[test]
    fn a_listen_address_with_our_id_is_not_doubled() {
        let me = PeerId::random();
        let listen: Vec<Multiaddr> =
            vec![format!("/ip4/192.168.1.10/tcp/1/p2p/{me}").parse().unwrap()];
        assert_eq!(
            strs(&advertised(&listen, &eth(), me)),
            [format!("/ip4/192.168.1.10/tcp/1/p2p/{me}")]
        );
    }

    #[test]
    fn announced_addresses_are_checked() {
        let ok = |s: &str, lo: bool| check_announced(&s.parse().unwrap(), lo);
        assert_eq!(ok("/ip4/192.168.1.2/tcp/1", false), Ok(()));
        assert_eq!(ok("/ip4/127.0.0.1/tcp/1", false), Err(Unusable::Loopback));
        assert_eq!(ok("/ip4/127.0.0.1/tcp/1", true), Ok(()));
        assert_eq!(ok("/ip4/0.0.0.0/tcp/1", true), Err(Unusable::NotUnicast));
        assert_eq!(
            ok("/ip4/224.0.0.251/udp/1", false),
            Err(Unusable::NotUnicast)
        );
        assert_eq!(ok("/ip6/::1/tcp/1", false), Err(Unusable::Loopback));
        assert_eq!(ok("/ip6/fe80::1/tcp/1", false), Err(Unusable::LinkLocal));
        assert_eq!(ok("/ip6/fd00::1/tcp/1", false), Ok(()));
        assert_eq!(ok("/dns4/printer.local/tcp/1", false), Ok(()));
    }

    #[test]
    fn on_link_is_a_subnet_of_that_interface_or_ipv6_link_local() {
        let subnets = [
            Subnet {
                index: 2,
                addr: "192.168.1.10".parse().unwrap(),
                prefix_len: 24,
            },
            Subnet {
                index: 2,
                addr: "fd00::10".parse().unwrap(),
                prefix_len: 64,
            },
            Subnet {
                index: 3,
                addr: "10.9.0.1".parse().unwrap(),
                prefix_len: 16,
            },
            Subnet {
                index: 4,
                addr: "10.8.0.1".parse().unwrap(),
                prefix_len: 31,
            },
        ];
        let on = |ip: &str, index: u32| on_link(ip.parse().unwrap(), index, &subnets);
        assert!(on("192.168.1.77", 2));
        assert!(on("192.168.1.10", 2));
        assert!(!on("192.168.2.77", 2), "another subnet");
        assert!(!on("10.9.3.4", 2), "a subnet of another interface");
        assert!(on("10.9.3.4", 3));
        assert!(!on("192.168.1.0", 2), "network address");
        assert!(!on("192.168.1.255", 2), "broadcast address");
        assert!(!on("255.255.255.255", 2));
        assert!(!on("224.0.0.251", 2));
        assert!(!on("0.0.0.0", 2));
        assert!(
            on("10.8.0.0", 4) && on("10.8.0.1", 4),
            "a /31 has two hosts"
        );
        assert!(on("fd00::1234", 2));
        assert!(!on("fd01::1234", 2));
        assert!(on("fe80::99", 2), "IPv6 link-local");
        assert!(on("fe80::99", 9), "IPv6 link-local, whatever the interface");
        assert!(!on("ff02::fb", 2));
        assert!(!on("::", 2));
        assert!(!on("2001:db8::1", 2));
    }

    #[test]
    fn message_limit_follows_mtu_and_cap() {
        let mut iface = eth();
        assert_eq!(iface.message_limit(Family::V4, 1500), 1472);
        assert_eq!(iface.message_limit(Family::V6, 1500), 1452);
        iface.mtu = Some(65536);
        assert_eq!(iface.message_limit(Family::V4, 1500), 1472);
        assert_eq!(iface.message_limit(Family::V4, 9000), 8972);
        iface.mtu = Some(100);
        assert_eq!(iface.message_limit(Family::V4, 1500), 548);
        iface.mtu = None;
        assert_eq!(iface.message_limit(Family::V6, 9000), 1452);
    }
}
