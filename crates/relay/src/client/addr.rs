//! `/p2p-circuit` addresses: `<relay transport addr>/p2p/<relay>/p2p-circuit[/p2p/<target>]`.

use lp2p_core::{Multiaddr, PeerId, Protocol};

/// A circuit address taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircuitAddr {
    /// The relay's address, ending in `/p2p/<relay>` (the transport part may be empty when
    /// the peerstore knows where the relay is).
    pub relay_addr: Multiaddr,
    /// The relay.
    pub relay: PeerId,
    /// The target, when the address names one.
    pub dst: Option<PeerId>,
}

impl CircuitAddr {
    /// Parses `addr`; `None` when it is not a circuit address through one named relay.
    pub fn parse(addr: &Multiaddr) -> Option<CircuitAddr> {
        let parts: Vec<Protocol<'_>> = addr.iter().collect();
        let circuit = parts.iter().position(|p| *p == Protocol::P2pCircuit)?;
        let (before, after) = parts.split_at(circuit);
        let after = after.get(1..).unwrap_or_default();
        let relay = match before.last() {
            Some(Protocol::P2p(relay)) => *relay,
            _ => return None,
        };
        let dst = match after {
            [] => None,
            [Protocol::P2p(dst)] => Some(*dst),
            _ => return None,
        };
        let relay_addr: Multiaddr = before.iter().cloned().collect();
        Some(CircuitAddr {
            relay_addr,
            relay,
            dst,
        })
    }

    /// `<relay addr>/p2p-circuit`: our listen address through this relay (identify and the
    /// swarm add `/p2p/<us>`), and the remote address of circuits through it.
    pub fn listen_addr(relay_addr: &Multiaddr) -> Multiaddr {
        relay_addr.clone().with(Protocol::P2pCircuit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lp2p_core::Keypair;

    #[test]
    fn parses_circuit_addresses() {
        let r = Keypair::generate_ed25519().public().to_peer_id();
        let d = Keypair::generate_ed25519().public().to_peer_id();
        let a: Multiaddr = format!("/ip4/192.0.2.1/tcp/4001/p2p/{r}/p2p-circuit/p2p/{d}")
            .parse()
            .unwrap();
        let c = CircuitAddr::parse(&a).unwrap();
        assert_eq!(c.relay, r);
        assert_eq!(c.dst, Some(d));
        assert_eq!(
            c.relay_addr,
            format!("/ip4/192.0.2.1/tcp/4001/p2p/{r}")
                .parse::<Multiaddr>()
                .unwrap()
        );
        let listen: Multiaddr = format!("/p2p/{r}/p2p-circuit").parse().unwrap();
        assert_eq!(CircuitAddr::parse(&listen).unwrap().dst, None);
        for bad in [
            "/ip4/192.0.2.1/tcp/4001".to_owned(),
            "/ip4/192.0.2.1/tcp/4001/p2p-circuit".to_owned(),
            format!("/p2p/{r}/p2p-circuit/p2p/{d}/p2p-circuit"),
            format!("/p2p/{r}/p2p-circuit/ip4/1.2.3.4"),
        ] {
            assert_eq!(CircuitAddr::parse(&bad.parse().unwrap()), None, "{bad}");
        }
    }
}
