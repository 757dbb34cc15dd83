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

use libp2p_identity::PeerId;
use multiaddr::{Multiaddr, Protocol};

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
