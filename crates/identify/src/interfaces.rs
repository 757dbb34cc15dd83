//! Listen addresses as peers can dial them: a listener on the unspecified IP (`0.0.0.0` or
//! `::`) accepts on every interface, so it is advertised as one address per interface IP of
//! its family, never as the unspecified address itself (which no peer can dial).

use std::net::IpAddr;

use lp2p_core::{Multiaddr, Protocol};

/// The IPs of this machine's interfaces (those not reported down), for
/// [`expand_unspecified`]. IPv6
/// link-local addresses are left out: dialing one needs a zone (the interface), which a
/// multiaddr cannot carry. Empty when the interfaces cannot be listed (logged).
pub fn interface_ips() -> Vec<IpAddr> {
    match if_addrs::get_if_addrs() {
        Ok(interfaces) => interfaces
            .into_iter()
            // Many virtual interfaces (loopback among them) report an unknown state.
            .filter(|i| {
                !matches!(
                    i.oper_status,
                    if_addrs::IfOperStatus::Down
                        | if_addrs::IfOperStatus::NotPresent
                        | if_addrs::IfOperStatus::LowerLayerDown
                )
            })
            .map(|i| i.ip())
            .filter(|ip| !matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local()))
            .collect(),
        Err(err) => {
            tracing::debug!(%err, "cannot list the network interfaces");
            Vec::new()
        }
    }
}

/// `addrs` with every address on an unspecified IP replaced by the same address on each of
/// `interfaces` of the same family (non-loopback ones first, so peers try those first);
/// other addresses are kept as they are, in order, without duplicates.
pub fn expand_unspecified(addrs: &[Multiaddr], interfaces: &[IpAddr]) -> Vec<Multiaddr> {
    let mut ordered: Vec<IpAddr> = interfaces.to_vec();
    // Stable: loopback after the others, each group in the order listed.
    ordered.sort_by_key(IpAddr::is_loopback);
    let mut out: Vec<Multiaddr> = Vec::new();
    for addr in addrs {
        let mut parts = addr.iter();
        let family_v4 = match parts.next() {
            Some(Protocol::Ip4(ip)) if ip.is_unspecified() => true,
            Some(Protocol::Ip6(ip)) if ip.is_unspecified() => false,
            _ => {
                if !out.contains(addr) {
                    out.push(addr.clone());
                }
                continue;
            }
        };
        let rest: Vec<Protocol<'_>> = parts.collect();
        for ip in &ordered {
            let head = match ip {
                IpAddr::V4(v4) if family_v4 => Protocol::Ip4(*v4),
                IpAddr::V6(v6) if !family_v4 => Protocol::Ip6(*v6),
                _ => continue,
            };
            let expanded: Multiaddr = std::iter::once(head).chain(rest.iter().cloned()).collect();
            if !out.contains(&expanded) {
                out.push(expanded);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ma(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    #[test]
    fn unspecified_becomes_each_interface_of_its_family() {
        let interfaces: Vec<IpAddr> = ["127.0.0.1", "192.0.2.7", "::1", "2001:db8::5"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let addrs = [
            ma("/ip4/0.0.0.0/tcp/4001"),
            ma("/ip6/::/udp/4001/quic-v1"),
            ma("/ip4/198.51.100.1/tcp/80"),
            ma("/memory/5"),
        ];
        assert_eq!(
            expand_unspecified(&addrs, &interfaces),
            vec![
                ma("/ip4/192.0.2.7/tcp/4001"),
                ma("/ip4/127.0.0.1/tcp/4001"),
                ma("/ip6/2001:db8::5/udp/4001/quic-v1"),
                ma("/ip6/::1/udp/4001/quic-v1"),
                ma("/ip4/198.51.100.1/tcp/80"),
                ma("/memory/5"),
            ]
        );
    }

    #[test]
    fn no_interfaces_means_no_unspecified_address_either() {
        let addrs = [ma("/ip4/0.0.0.0/tcp/1"), ma("/ip4/0.0.0.0/tcp/1")];
        assert!(expand_unspecified(&addrs, &[]).is_empty());
        let dup = [ma("/ip4/10.0.0.1/tcp/1"), ma("/ip4/10.0.0.1/tcp/1")];
        assert_eq!(
            expand_unspecified(&dup, &[]),
            vec![ma("/ip4/10.0.0.1/tcp/1")]
        );
    }

    #[test]
    fn this_machine_has_a_loopback_interface() {
        let ips = interface_ips();
        assert!(ips.iter().any(IpAddr::is_loopback), "{ips:?}");
        assert!(!ips.iter().any(IpAddr::is_unspecified), "{ips:?}");
    }
}
