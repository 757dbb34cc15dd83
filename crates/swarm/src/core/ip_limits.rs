//! Per-IP and per-subnet shares of inbound connections, so one source cannot take every
//! pending-handshake slot or every inbound connection.

use std::collections::HashMap;
use std::net::IpAddr;

use lp2p_core::Multiaddr;

use crate::config::{IPV4_SUBNET_PREFIX, IPV6_SUBNET_PREFIX};
use crate::{LimitKind, SwarmConfig, SwarmError};
use lp2p_core::addr::{IpSubnet, first_ip};

#[derive(Debug, Clone, Copy, Default)]
struct Use {
    pending: usize,
    established: usize,
}

impl Use {
    fn is_zero(self) -> bool {
        self.pending == 0 && self.established == 0
    }
}

/// Inbound use per IP address and per subnet.
#[derive(Debug, Default)]
pub(super) struct IpLimits {
    ips: HashMap<IpAddr, Use>,
    subnets: HashMap<IpAddr, Use>,
}

/// The address the per-IP limits count `remote` under: `None` when it has no IP, or is a
/// loopback address and the limits spare loopback.
pub(super) fn key(config: &SwarmConfig, remote: &Multiaddr) -> Option<IpAddr> {
    let ip = first_ip(remote)?;
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    };
    if ip.is_loopback() && !config.ip_limits_on_loopback {
        return None;
    }
    Some(ip)
}

fn subnet(ip: IpAddr) -> IpAddr {
    let prefix = match ip {
        IpAddr::V4(_) => IPV4_SUBNET_PREFIX,
        IpAddr::V6(_) => IPV6_SUBNET_PREFIX,
    };
    IpSubnet::new(ip, prefix).map_or(ip, |subnet| subnet.addr())
}

fn refuse(kind: LimitKind, limit: usize, current: usize, subject: String) -> SwarmError {
    SwarmError::Limit {
        kind,
        limit,
        current,
        subject: Some(subject),
    }
}

impl IpLimits {
    /// Whether one more inbound attempt from `ip` is allowed.
    pub(super) fn check(&self, config: &SwarmConfig, ip: IpAddr) -> Result<(), SwarmError> {
        let one = self.ips.get(&ip).copied().unwrap_or_default();
        if one.pending >= config.max_pending_inbound_per_ip {
            return Err(refuse(
                LimitKind::PendingInboundPerIp,
                config.max_pending_inbound_per_ip,
                one.pending,
                ip.to_string(),
            ));
        }
        let total = one.pending.saturating_add(one.established);
        if total >= config.max_inbound_per_ip {
            return Err(refuse(
                LimitKind::InboundPerIp,
                config.max_inbound_per_ip,
                total,
                ip.to_string(),
            ));
        }
        let net = subnet(ip);
        let all = self.subnets.get(&net).copied().unwrap_or_default();
        let prefix = match ip {
            IpAddr::V4(_) => IPV4_SUBNET_PREFIX,
            IpAddr::V6(_) => IPV6_SUBNET_PREFIX,
        };
        if all.pending >= config.max_pending_inbound_per_subnet {
            return Err(refuse(
                LimitKind::PendingInboundPerSubnet,
                config.max_pending_inbound_per_subnet,
                all.pending,
                format!("{net}/{prefix}"),
            ));
        }
        let total = all.pending.saturating_add(all.established);
        if total >= config.max_inbound_per_subnet {
            return Err(refuse(
                LimitKind::InboundPerSubnet,
                config.max_inbound_per_subnet,
                total,
                format!("{net}/{prefix}"),
            ));
        }
        Ok(())
    }

    fn update(&mut self, ip: IpAddr, f: impl Fn(&mut Use)) {
        for (map, k) in [(&mut self.ips, ip), (&mut self.subnets, subnet(ip))] {
            let u = map.entry(k).or_default();
            f(u);
            if u.is_zero() {
                map.remove(&k);
            }
        }
    }

    pub(super) fn pending_added(&mut self, ip: IpAddr) {
        self.update(ip, |u| u.pending = u.pending.saturating_add(1));
    }

    /// A pending attempt ended; `established` when it became a connection.
    pub(super) fn pending_ended(&mut self, ip: IpAddr, established: bool) {
        self.update(ip, |u| {
            u.pending = u.pending.saturating_sub(1);
            if established {
                u.established = u.established.saturating_add(1);
            }
        });
    }

    pub(super) fn established_closed(&mut self, ip: IpAddr) {
        self.update(ip, |u| u.established = u.established.saturating_sub(1));
    }

    /// Inbound connections (pending, established) counted for `ip`.
    pub(super) fn usage(&self, ip: IpAddr) -> (usize, usize) {
        let u = self.ips.get(&ip).copied().unwrap_or_default();
        (u.pending, u.established)
    }
}
