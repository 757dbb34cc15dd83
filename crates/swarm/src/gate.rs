//! Connection gating: user rules that refuse a connection at each stage of its life, and a
//! ready-made allow/deny list of peers, IP addresses and subnets.
//!
//! The swarm asks every gate, in the order added, at four points:
//! 1. **dial** — before an address is dialed (a refused address is listed as
//!    [`Stage::Denied`](crate::Stage::Denied) in the dial's failure report);
//! 2. **accept** — when an inbound attempt arrives, by address, before any handshake work;
//! 3. **secured** — as soon as a handshake has proven the remote's peer id, before any muxer
//!    work (both directions);
//! 4. **upgraded** — when the connection is ready, before it enters the connection table.
//!
//! A refused connection is closed at once and counted in [`SwarmStats`](crate::SwarmStats);
//! inbound refusals also come out as `IncomingConnectionError` events.
//!
//! ```
//! use lp2p_swarm::{AllowDenyList, IpSubnet};
//!
//! let gate = AllowDenyList::new()
//!     .deny_subnet("10.66.0.0/16".parse::<IpSubnet>().unwrap())
//!     .deny_ip("192.0.2.7".parse().unwrap());
//! assert!(gate.check_addr(&"/ip4/10.66.3.4/tcp/1".parse().unwrap()).is_err());
//! assert!(gate.check_addr(&"/ip4/10.67.3.4/tcp/1".parse().unwrap()).is_ok());
//! ```

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;

use lp2p_core::addr::{IpSubnet, first_ip};
use lp2p_core::{Multiaddr, PeerId};

use crate::Direction;

/// Why a gate refused a connection (shown in errors and logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied(pub String);

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The stage at which a gate refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GateStage {
    /// Before dialing an address.
    Dial,
    /// An inbound attempt, by address, before any handshake work.
    Accept,
    /// The remote's peer id is proven; no muxer work yet.
    Secured,
    /// The connection is ready, before it enters the table.
    Upgraded,
}

impl fmt::Display for GateStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GateStage::Dial => "dial",
            GateStage::Accept => "accept",
            GateStage::Secured => "secured",
            GateStage::Upgraded => "upgraded",
        })
    }
}

/// Rules that refuse connections. Every method allows by default; implement the stages you
/// care about. Calls are synchronous and must be cheap (they run on the connection path).
pub trait ConnectionGate: Send + Sync + 'static {
    /// Before dialing `addr` (for `peer`, when known).
    fn allow_dial(&self, peer: Option<&PeerId>, addr: &Multiaddr) -> Result<(), Denied> {
        let _ = (peer, addr);
        Ok(())
    }

    /// An inbound attempt from `remote` arrived on `local`.
    fn allow_accept(&self, local: &Multiaddr, remote: &Multiaddr) -> Result<(), Denied> {
        let _ = (local, remote);
        Ok(())
    }

    /// The handshake proved `peer` on a connection with `remote`.
    fn allow_secured(
        &self,
        peer: &PeerId,
        remote: &Multiaddr,
        direction: Direction,
    ) -> Result<(), Denied> {
        let _ = (peer, remote, direction);
        Ok(())
    }

    /// The connection to `peer` is ready (`muxer` agreed, `limited` or not).
    fn allow_upgraded(
        &self,
        peer: &PeerId,
        remote: &Multiaddr,
        direction: Direction,
        muxer: &str,
        limited: bool,
    ) -> Result<(), Denied> {
        let _ = (peer, remote, direction, muxer, limited);
        Ok(())
    }
}

/// A gate from lists: denied peers, IPs and subnets are refused; when an allow list is set
/// (any `allow_*` call), only what it names gets in (peers are checked once known, addresses
/// at dial and accept time).
#[derive(Debug, Clone, Default)]
pub struct AllowDenyList {
    deny_peers: HashSet<PeerId>,
    deny_ips: HashSet<IpAddr>,
    deny_subnets: Vec<IpSubnet>,
    allow_peers: HashSet<PeerId>,
    allow_ips: HashSet<IpAddr>,
    allow_subnets: Vec<IpSubnet>,
}

impl AllowDenyList {
    /// An empty list: allows everyone.
    pub fn new() -> AllowDenyList {
        AllowDenyList::default()
    }

    /// Refuses `peer`.
    #[must_use]
    pub fn deny_peer(mut self, peer: PeerId) -> Self {
        self.deny_peers.insert(peer);
        self
    }

    /// Refuses connections to and from `ip`.
    #[must_use]
    pub fn deny_ip(mut self, ip: IpAddr) -> Self {
        self.deny_ips.insert(ip);
        self
    }

    /// Refuses connections to and from `subnet`.
    #[must_use]
    pub fn deny_subnet(mut self, subnet: IpSubnet) -> Self {
        self.deny_subnets.push(subnet);
        self
    }

    /// Allows `peer` (and, once any peer is allowed, only allowed peers).
    #[must_use]
    pub fn allow_peer(mut self, peer: PeerId) -> Self {
        self.allow_peers.insert(peer);
        self
    }

    /// Allows `ip` (and, once any address is allowed, only allowed addresses).
    #[must_use]
    pub fn allow_ip(mut self, ip: IpAddr) -> Self {
        self.allow_ips.insert(ip);
        self
    }

    /// Allows `subnet` (and, once any address is allowed, only allowed addresses).
    #[must_use]
    pub fn allow_subnet(mut self, subnet: IpSubnet) -> Self {
        self.allow_subnets.push(subnet);
        self
    }

    /// The address rules applied to one address.
    pub fn check_addr(&self, addr: &Multiaddr) -> Result<(), Denied> {
        let Some(ip) = first_ip(addr) else {
            // No IP (memory, or a name before resolution): only an allow list can refuse it.
            if self.allow_ips.is_empty() && self.allow_subnets.is_empty() {
                return Ok(());
            }
            return Err(Denied(format!("{addr} is not on the allow list")));
        };
        if self.deny_ips.contains(&ip) {
            return Err(Denied(format!("{ip} is on the deny list")));
        }
        if let Some(net) = self.deny_subnets.iter().find(|n| n.contains(ip)) {
            return Err(Denied(format!("{ip} is in the denied subnet {net}")));
        }
        let restricted = !self.allow_ips.is_empty() || !self.allow_subnets.is_empty();
        if restricted
            && !self.allow_ips.contains(&ip)
            && !self.allow_subnets.iter().any(|n| n.contains(ip))
        {
            return Err(Denied(format!("{ip} is not on the allow list")));
        }
        Ok(())
    }

    /// The peer rules applied to one peer.
    pub fn check_peer(&self, peer: &PeerId) -> Result<(), Denied> {
        if self.deny_peers.contains(peer) {
            return Err(Denied(format!("peer {peer} is on the deny list")));
        }
        if !self.allow_peers.is_empty() && !self.allow_peers.contains(peer) {
            return Err(Denied(format!("peer {peer} is not on the allow list")));
        }
        Ok(())
    }
}

impl ConnectionGate for AllowDenyList {
    fn allow_dial(&self, peer: Option<&PeerId>, addr: &Multiaddr) -> Result<(), Denied> {
        if let Some(peer) = peer {
            self.check_peer(peer)?;
        }
        self.check_addr(addr)
    }

    fn allow_accept(&self, _local: &Multiaddr, remote: &Multiaddr) -> Result<(), Denied> {
        self.check_addr(remote)
    }

    fn allow_secured(
        &self,
        peer: &PeerId,
        _remote: &Multiaddr,
        _direction: Direction,
    ) -> Result<(), Denied> {
        self.check_peer(peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ma(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    #[test]
    fn subnets_parse_mask_and_contain() {
        let net: IpSubnet = "10.1.2.3/16".parse().unwrap();
        assert_eq!(net.to_string(), "10.1.0.0/16");
        assert!(net.contains("10.1.255.1".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(!net.contains("::1".parse().unwrap()));
        let v6: IpSubnet = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<IpSubnet>().is_err());
        assert!("10.0.0.0".parse::<IpSubnet>().is_err());
        assert!("x/8".parse::<IpSubnet>().is_err());
        let all: IpSubnet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
    }

    #[test]
    fn deny_and_allow_lists() {
        let peer = PeerId::random();
        let deny = AllowDenyList::new()
            .deny_peer(peer)
            .deny_ip("1.2.3.4".parse().unwrap());
        assert!(
            deny.allow_dial(Some(&peer), &ma("/ip4/5.6.7.8/tcp/1"))
                .is_err()
        );
        assert!(
            deny.allow_accept(&ma("/memory/1"), &ma("/ip4/1.2.3.4/tcp/9"))
                .is_err()
        );
        assert!(
            deny.allow_accept(&ma("/memory/1"), &ma("/ip4/1.2.3.5/tcp/9"))
                .is_ok()
        );
        assert!(
            deny.allow_accept(&ma("/memory/1"), &ma("/memory/7"))
                .is_ok()
        );

        let friend = PeerId::random();
        let only = AllowDenyList::new()
            .allow_peer(friend)
            .allow_subnet("192.168.0.0/16".parse().unwrap());
        assert!(
            only.allow_secured(&friend, &ma("/ip4/192.168.1.1/tcp/1"), Direction::Inbound)
                .is_ok()
        );
        let err = only
            .allow_secured(
                &PeerId::random(),
                &ma("/ip4/192.168.1.1/tcp/1"),
                Direction::Inbound,
            )
            .unwrap_err();
        assert!(err.0.contains("not on the allow list"), "{err}");
        assert!(
            only.allow_accept(&ma("/memory/1"), &ma("/ip4/8.8.8.8/tcp/1"))
                .is_err()
        );
        assert!(
            only.allow_accept(&ma("/memory/1"), &ma("/memory/7"))
                .is_err()
        );
    }
}
