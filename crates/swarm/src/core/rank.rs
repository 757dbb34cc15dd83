//! Ordering the addresses of one dial: which to try first.
//!
//! The order, most important first:
//! 1. an address that recently led to a connection;
//! 2. direct before relayed (`/p2p-circuit`);
//! 3. by scope: loopback, then private (RFC 1918, link-local, ULA), then public — the nearest
//!    path is the most likely to work and the cheapest;
//! 4. by transport: QUIC (one round trip to a secure, multiplexed connection) before TCP,
//!    TCP before WebSocket, then anything else;
//! 5. among addresses equal on all of the above, IPv6 and IPv4 interleaved, IPv6 first
//!    (Happy Eyeballs, RFC 8305 section 4), keeping their given order within each family.
//!
//! The dial scheduler then starts them one after another with a stagger, so a dead first
//! choice costs only the stagger delay.

use std::net::{Ipv4Addr, Ipv6Addr};

use lp2p_core::{Multiaddr, Protocol};

/// How far away an address is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Scope {
    /// Loopback or in-process (`/memory`).
    Loopback,
    /// A private, link-local or unique-local network.
    Private,
    /// Anything else (public addresses, names).
    Public,
}

/// The transport an address asks for, in preference order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TransportClass {
    /// `/udp/.../quic-v1`.
    Quic,
    /// `/tcp/...` without a WebSocket layer, and `/memory`.
    Tcp,
    /// `/ws`, `/wss`, `/tls/ws`.
    WebSocket,
    /// Anything else.
    Other,
}

/// The IP family of an address, when it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    V6,
    V4,
    None,
}

/// What ranking looks at in one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Traits {
    pub(crate) relayed: bool,
    pub(crate) scope: Scope,
    pub(crate) transport: TransportClass,
    pub(crate) family: Family,
}

fn v4_scope(ip: Ipv4Addr) -> Scope {
    if ip.is_loopback() {
        Scope::Loopback
    } else if ip.is_private() || ip.is_link_local() || ip.is_unspecified() {
        Scope::Private
    } else {
        Scope::Public
    }
}

fn v6_scope(ip: Ipv6Addr) -> Scope {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Scope::Loopback
    } else if (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80 || ip.is_unspecified() {
        // fc00::/7 unique local, fe80::/10 link local.
        Scope::Private
    } else if let Some(v4) = ip.to_ipv4_mapped() {
        v4_scope(v4)
    } else {
        Scope::Public
    }
}

/// Classifies one address.
pub(crate) fn traits(addr: &Multiaddr) -> Traits {
    let mut t = Traits {
        relayed: false,
        scope: Scope::Public,
        transport: TransportClass::Other,
        family: Family::None,
    };
    let mut first_ip = true;
    for p in addr {
        match p {
            // Only the first IP names the path we take; a relayed address has a second one
            // (or a peer id) after /p2p-circuit.
            Protocol::Ip4(ip) if first_ip => {
                first_ip = false;
                t.scope = v4_scope(ip);
                t.family = Family::V4;
            }
            Protocol::Ip6(ip) if first_ip => {
                first_ip = false;
                t.scope = v6_scope(ip);
                t.family = Family::V6;
            }
            Protocol::Memory(_) => {
                t.scope = Scope::Loopback;
                t.transport = TransportClass::Tcp;
            }
            Protocol::QuicV1 if t.transport == TransportClass::Other => {
                t.transport = TransportClass::Quic;
            }
            Protocol::Tcp(_) if t.transport == TransportClass::Other => {
                t.transport = TransportClass::Tcp;
            }
            Protocol::Ws(_) | Protocol::Wss(_) => t.transport = TransportClass::WebSocket,
            Protocol::P2pCircuit => t.relayed = true,
            _ => {}
        }
    }
    t
}

/// Orders `addrs` in place (see the module docs). `recent` says whether an address led to a
/// connection recently.
pub(crate) fn rank(addrs: &mut Vec<Multiaddr>, recent: impl Fn(&Multiaddr) -> bool) {
    let mut keyed: Vec<(bool, Traits, Multiaddr)> = addrs
        .drain(..)
        .map(|a| (!recent(&a), traits(&a), a))
        .collect();
    // Stable: equal keys keep their given order.
    keyed.sort_by_key(|(not_recent, t, _)| (*not_recent, t.relayed, t.scope, t.transport));
    let mut i = 0;
    while i < keyed.len() {
        let key = |k: &(bool, Traits, Multiaddr)| (k.0, k.1.relayed, k.1.scope, k.1.transport);
        let group_key = key(&keyed[i]);
        let mut end = i + 1;
        while end < keyed.len() && key(&keyed[end]) == group_key {
            end += 1;
        }
        interleave_families(&mut keyed[i..end]);
        i = end;
    }
    addrs.extend(keyed.into_iter().map(|(_, _, a)| a));
}

/// Reorders one group so that IPv6 and IPv4 alternate, IPv6 first; addresses without an IP
/// family go last.
fn interleave_families(group: &mut [(bool, Traits, Multiaddr)]) {
    if group.len() < 2 {
        return;
    }
    let mut v6 = Vec::new();
    let mut v4 = Vec::new();
    let mut rest = Vec::new();
    for item in group.iter() {
        match item.1.family {
            Family::V6 => v6.push(item.clone()),
            Family::V4 => v4.push(item.clone()),
            Family::None => rest.push(item.clone()),
        }
    }
    let mut out = Vec::with_capacity(group.len());
    let (mut a, mut b) = (v6.into_iter(), v4.into_iter());
    loop {
        match (a.next(), b.next()) {
            (None, None) => break,
            (x, y) => out.extend(x.into_iter().chain(y)),
        }
    }
    out.extend(rest);
    for (slot, item) in group.iter_mut().zip(out) {
        *slot = item;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ma(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    fn ranked(addrs: &[&str], recent: &[&str]) -> Vec<String> {
        let mut v: Vec<Multiaddr> = addrs.iter().map(|a| ma(a)).collect();
        let recent: Vec<Multiaddr> = recent.iter().map(|a| ma(a)).collect();
        rank(&mut v, |a| recent.contains(a));
        v.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn quic_before_tcp_before_websocket() {
        let r = ranked(
            &[
                "/ip4/1.2.3.4/tcp/1/ws",
                "/ip4/1.2.3.4/tcp/1",
                "/ip4/1.2.3.4/udp/1/quic-v1",
            ],
            &[],
        );
        assert_eq!(
            r,
            [
                "/ip4/1.2.3.4/udp/1/quic-v1",
                "/ip4/1.2.3.4/tcp/1",
                "/ip4/1.2.3.4/tcp/1/ws"
            ]
        );
    }

    #[test]
    fn loopback_then_private_then_public() {
        let r = ranked(
            &[
                "/ip4/8.8.8.8/tcp/1",
                "/ip4/192.168.1.2/tcp/1",
                "/ip4/127.0.0.1/tcp/1",
                "/ip6/fd00::1/tcp/1",
            ],
            &[],
        );
        assert_eq!(
            r,
            [
                "/ip4/127.0.0.1/tcp/1",
                "/ip6/fd00::1/tcp/1",
                "/ip4/192.168.1.2/tcp/1",
                "/ip4/8.8.8.8/tcp/1"
            ]
        );
    }

    #[test]
    fn families_interleave_v6_first_keeping_order() {
        let r = ranked(
            &[
                "/ip4/1.1.1.1/tcp/1",
                "/ip4/1.1.1.2/tcp/1",
                "/ip4/1.1.1.3/tcp/1",
                "/ip6/2001:db8::1/tcp/1",
                "/ip6/2001:db8::2/tcp/1",
            ],
            &[],
        );
        assert_eq!(
            r,
            [
                "/ip6/2001:db8::1/tcp/1",
                "/ip4/1.1.1.1/tcp/1",
                "/ip6/2001:db8::2/tcp/1",
                "/ip4/1.1.1.2/tcp/1",
                "/ip4/1.1.1.3/tcp/1"
            ]
        );
    }

    #[test]
    fn recent_success_first_and_relayed_last() {
        let relayed = "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit";
        let r = ranked(
            &[
                relayed,
                "/ip4/127.0.0.1/udp/1/quic-v1",
                "/ip4/8.8.8.8/tcp/9",
            ],
            &["/ip4/8.8.8.8/tcp/9"],
        );
        assert_eq!(
            r,
            [
                "/ip4/8.8.8.8/tcp/9",
                "/ip4/127.0.0.1/udp/1/quic-v1",
                relayed
            ]
        );
    }

    #[test]
    fn names_and_memory_are_classified() {
        assert_eq!(traits(&ma("/memory/5")).scope, Scope::Loopback);
        let dns = traits(&ma("/dns4/example.com/tcp/443/wss"));
        assert_eq!(dns.scope, Scope::Public);
        assert_eq!(dns.transport, TransportClass::WebSocket);
        assert_eq!(dns.family, Family::None);
        assert_eq!(
            traits(&ma("/ip6/::ffff:10.0.0.1/tcp/1")).scope,
            Scope::Private
        );
    }
}
