//! The operating system side: which interfaces exist (getifaddrs, plus MTU and flags from
//! sysfs on Linux) and the per-interface multicast sockets (socket2 options, then async-io).

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket};

use async_io::Async;
use socket2::{Domain, Protocol, Socket, Type};

use crate::MdnsError;
use crate::config::MDNS_PORT;
use crate::iface::{Family, IfaceKey, Interface, Subnet};

/// The IPv4 mDNS group.
pub const IPV4_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);
/// The IPv6 mDNS group (link-local scope).
pub const IPV6_GROUP: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0xfb);

/// Linux's `IFF_MULTICAST` interface flag.
#[cfg(target_os = "linux")]
const IFF_MULTICAST: u32 = 0x1000;

/// The up (running), multicast-capable interfaces with at least one IP address, and their
/// subnets (each address with its prefix length).
pub(crate) fn list_interfaces() -> Result<(Vec<Interface>, Vec<Subnet>), MdnsError> {
    let raw = if_addrs::get_if_addrs().map_err(MdnsError::Interfaces)?;
    let mut by_index: BTreeMap<u32, Interface> = BTreeMap::new();
    let mut subnets = Vec::new();
    for entry in raw {
        let Some(index) = entry.index else { continue };
        if !entry.is_oper_up() {
            continue;
        }
        let prefix_len = match &entry.addr {
            if_addrs::IfAddr::V4(v4) => v4.prefixlen,
            if_addrs::IfAddr::V6(v6) => v6.prefixlen,
        };
        subnets.push(Subnet {
            index,
            addr: entry.ip(),
            prefix_len,
        });
        let iface = by_index.entry(index).or_insert_with(|| Interface {
            index,
            name: entry.name.clone(),
            loopback: false,
            mtu: mtu(&entry.name),
            ipv4: Vec::new(),
            ipv6: Vec::new(),
        });
        match entry.ip() {
            IpAddr::V4(ip) => {
                iface.loopback |= ip.is_loopback();
                if !iface.ipv4.contains(&ip) {
                    iface.ipv4.push(ip);
                }
            }
            IpAddr::V6(ip) => {
                iface.loopback |= ip.is_loopback();
                if !iface.ipv6.contains(&ip) {
                    iface.ipv6.push(ip);
                }
            }
        }
    }
    let list: Vec<Interface> = by_index
        .into_values()
        .filter(|iface| multicast_capable(&iface.name))
        .map(|mut iface| {
            iface.ipv4.sort();
            iface.ipv6.sort();
            iface
        })
        .collect();
    subnets.retain(|s| list.iter().any(|iface| iface.index == s.index));
    Ok((list, subnets))
}

/// The interface's MTU (Linux: sysfs; elsewhere unknown, so the default is assumed).
fn mtu(name: &str) -> Option<u32> {
    #[cfg(target_os = "linux")]
    {
        std::fs::read_to_string(format!("/sys/class/net/{name}/mtu"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = name;
        None
    }
}

/// Whether the interface has the multicast flag (Linux: sysfs; elsewhere assumed, and a
/// failing join or send is then reported and retried like any socket error).
fn multicast_capable(name: &str) -> bool {
    #[cfg(target_os = "linux")]
    {
        std::fs::read_to_string(format!("/sys/class/net/{name}/flags"))
            .ok()
            .and_then(|s| u32::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok())
            .is_none_or(|flags| flags & IFF_MULTICAST != 0)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = name;
        true
    }
}

/// Where packets for `key` go: the family's group, port 5353 (scoped to the interface for
/// IPv6).
pub(crate) fn group_addr(key: IfaceKey) -> SocketAddr {
    match key.family {
        Family::V4 => SocketAddr::from((IPV4_GROUP, MDNS_PORT)),
        Family::V6 => SocketAddr::V6(SocketAddrV6::new(IPV6_GROUP, MDNS_PORT, 0, key.index)),
    }
}

/// A socket bound to port 5353 on the wildcard address, member of the mDNS group on this
/// interface only, sending there (and unicast answers to queriers) with IP TTL 255 (RFC 6762
/// §11) and looping our own packets back (so peers on this machine hear us, and we answer our own query as the spec asks).
/// Several processes share the port (`SO_REUSEADDR`, `SO_REUSEPORT`). On Linux
/// `IP_MULTICAST_ALL` is turned off, so the socket receives only what arrived on its own
/// interface, which is what tells us which addresses are reachable by the sender.
pub(crate) fn open_socket(key: IfaceKey, iface: &Interface) -> Result<Async<UdpSocket>, MdnsError> {
    let label = format!("{}/{}", iface.name, key.family.as_str());
    let fail = |what: &'static str| {
        let interface = label.clone();
        move |source: io::Error| MdnsError::Socket {
            interface,
            what,
            source,
        }
    };
    let socket = match key.family {
        Family::V4 => {
            let local = iface.ipv4.first().copied().ok_or_else(|| {
                fail("pick an IPv4 address")(io::Error::new(
                    io::ErrorKind::AddrNotAvailable,
                    "the interface has no IPv4 address",
                ))
            })?;
            let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
                .map_err(fail("create"))?;
            share_port(&socket).map_err(fail("share port 5353"))?;
            socket
                .bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, MDNS_PORT)).into())
                .map_err(fail("bind port 5353"))?;
            #[cfg(target_os = "linux")]
            socket
                .set_multicast_all_v4(false)
                .map_err(fail("IP_MULTICAST_ALL"))?;
            socket
                .join_multicast_v4(&IPV4_GROUP, &local)
                .map_err(fail("join 224.0.0.251"))?;
            socket
                .set_multicast_if_v4(&local)
                .map_err(fail("IP_MULTICAST_IF"))?;
            socket
                .set_multicast_loop_v4(true)
                .map_err(fail("IP_MULTICAST_LOOP"))?;
            socket
                .set_multicast_ttl_v4(255)
                .map_err(fail("IP_MULTICAST_TTL"))?;
            socket.set_ttl_v4(255).map_err(fail("IP_TTL"))?;
            socket
        }
        Family::V6 => {
            let socket = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))
                .map_err(fail("create"))?;
            socket.set_only_v6(true).map_err(fail("IPV6_V6ONLY"))?;
            share_port(&socket).map_err(fail("share port 5353"))?;
            socket
                .bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, MDNS_PORT)).into())
                .map_err(fail("bind port 5353"))?;
            #[cfg(target_os = "linux")]
            socket
                .set_multicast_all_v6(false)
                .map_err(fail("IPV6_MULTICAST_ALL"))?;
            socket
                .join_multicast_v6(&IPV6_GROUP, key.index)
                .map_err(fail("join ff02::fb"))?;
            socket
                .set_multicast_if_v6(key.index)
                .map_err(fail("IPV6_MULTICAST_IF"))?;
            socket
                .set_multicast_loop_v6(true)
                .map_err(fail("IPV6_MULTICAST_LOOP"))?;
            socket
                .set_multicast_hops_v6(255)
                .map_err(fail("IPV6_MULTICAST_HOPS"))?;
            socket
                .set_unicast_hops_v6(255)
                .map_err(fail("IPV6_UNICAST_HOPS"))?;
            socket
        }
    };
    Async::new(UdpSocket::from(socket)).map_err(fail("register with async-io"))
}

fn share_port(socket: &Socket) -> io::Result<()> {
    socket.set_reuse_address(true)?;
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
    socket.set_reuse_port(true)?;
    Ok(())
}
