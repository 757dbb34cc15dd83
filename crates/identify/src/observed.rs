//! Learning our external addresses from what peers observe, sans-IO.
//!
//! Each identify answer carries the address the remote sees for our side of the connection.
//! One peer can be wrong (or lie), so an address is adopted only once
//! `threshold` distinct observers reported it on live connections. The rules, after go-libp2p's
//! `ObservedAddrManager` (rust-libp2p only emits candidates and leaves confirmation to
//! AutoNAT):
//!
//! - **Only connections whose local address is one of our listen addresses count**: inbound
//!   connections, or outbound ones that reused a listen port. The external mapping of an
//!   ephemeral outbound port is of no use to others (nobody can dial it), so we do not
//!   rewrite its port to the listen port either (that translation is only right behind a
//!   port-preserving NAT, which we cannot know). A listen address on an unspecified IP
//!   (`0.0.0.0`, `::`) matches any local IP with the same port.
//! - **The observed address must have the same shape** as that local address (same
//!   protocols: a TCP connection cannot tell us a QUIC address); `/p2p/` suffixes are
//!   stripped; relayed (`/p2p-circuit`) and, unless configured, loopback addresses are ignored.
//! - **Observers are counted by network, not by peer id** when they come from a public IP:
//!   one IPv4 address, or one IPv6 /56, is one observer however many peer ids it uses (as go
//!   does), so a single host cannot vote an address in with fresh identities. Observers on
//!   loopback, private or non-IP addresses (tests, a LAN) count by peer id.
//! - An observation lives as long as its connection; a new report on the same connection
//!   replaces the old one.
//! - Bounded: at most `max_candidates` distinct addresses are tracked and at most
//!   `max_confirmed` are ever adopted.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use lp2p_core::addr::is_public_ip;
use lp2p_core::{Multiaddr, PeerId, Protocol, addr};

/// Who reported an observation, for counting distinct observers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Observer {
    /// A public IPv4 address, or the /56 prefix of a public IPv6 address.
    Network(IpAddr),
    /// A peer on a loopback, private or non-IP address.
    Peer(PeerId),
}

impl Observer {
    /// The observer behind a connection from `peer` at `remote_addr`.
    pub fn for_remote(peer: PeerId, remote_addr: &Multiaddr) -> Observer {
        match remote_addr.iter().next() {
            Some(Protocol::Ip4(ip)) if is_public_ip(IpAddr::V4(ip)) => {
                Observer::Network(IpAddr::V4(ip))
            }
            Some(Protocol::Ip6(ip)) if is_public_ip(IpAddr::V6(ip)) => {
                let mut segments = ip.segments();
                // Keep the first 56 bits: segments 0..3 and the high byte of segment 3.
                segments[3] &= 0xff00;
                for s in segments.iter_mut().skip(4) {
                    *s = 0;
                }
                Observer::Network(IpAddr::V6(segments.into()))
            }
            _ => Observer::Peer(peer),
        }
    }
}

/// What happened to one observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// Counted; the address now has this many distinct observers.
    Counted(usize),
    /// This observation pushed the address over the threshold: adopt it.
    Confirmed(Multiaddr),
    /// Already adopted.
    AlreadyConfirmed,
    /// Not counted, and why.
    Ignored(&'static str),
}

#[derive(Debug, Default)]
struct Candidate {
    /// Each observer with the number of live connections it reported this address on.
    observers: HashMap<Observer, usize>,
}

/// The observed-address bookkeeping of one node.
#[derive(Debug)]
pub struct ObservedAddrs {
    threshold: usize,
    allow_loopback: bool,
    max_candidates: usize,
    max_confirmed: usize,
    /// Live observations by connection: the address and the observer.
    by_connection: HashMap<u64, (Multiaddr, Observer)>,
    candidates: HashMap<Multiaddr, Candidate>,
    confirmed: HashSet<Multiaddr>,
}

impl ObservedAddrs {
    /// Adopts an address once `threshold` distinct observers reported it (zero: never).
    pub fn new(
        threshold: usize,
        allow_loopback: bool,
        max_candidates: usize,
        max_confirmed: usize,
    ) -> ObservedAddrs {
        ObservedAddrs {
            threshold,
            allow_loopback,
            max_candidates,
            max_confirmed,
            by_connection: HashMap::new(),
            candidates: HashMap::new(),
            confirmed: HashSet::new(),
        }
    }

    /// Records that `observer`, on connection `connection` whose local address is
    /// `local_addr`, sees us at `observed`. `listen_addrs` are our listen addresses now.
    pub fn observe(
        &mut self,
        connection: u64,
        observer: Observer,
        local_addr: &Multiaddr,
        observed: &Multiaddr,
        listen_addrs: &[Multiaddr],
    ) -> Observation {
        if self.threshold == 0 {
            return Observation::Ignored("adoption disabled");
        }
        let observed = addr::split_peer_id(observed).0;
        if observed.is_empty() {
            return Observation::Ignored("empty address");
        }
        if observed.iter().any(|p| matches!(p, Protocol::P2pCircuit)) {
            return Observation::Ignored("relayed address");
        }
        if !self.allow_loopback && is_loopback(&observed) {
            return Observation::Ignored("loopback address");
        }
        if !listen_addrs
            .iter()
            .any(|l| local_matches_listen(local_addr, l))
        {
            return Observation::Ignored("local address is not a listen address");
        }
        if !same_shape(local_addr, &observed) {
            return Observation::Ignored("observed address is of another transport");
        }
        // A new report on the same connection replaces the old one.
        self.forget(connection);
        if self.confirmed.contains(&observed) {
            self.count(connection, observed, observer);
            return Observation::AlreadyConfirmed;
        }
        if !self.candidates.contains_key(&observed) && self.candidates.len() >= self.max_candidates
        {
            return Observation::Ignored("too many candidate addresses");
        }
        let distinct = self.count(connection, observed.clone(), observer);
        if distinct < self.threshold {
            return Observation::Counted(distinct);
        }
        if self.confirmed.len() >= self.max_confirmed {
            return Observation::Ignored("too many external addresses adopted");
        }
        self.confirmed.insert(observed.clone());
        Observation::Confirmed(observed)
    }

    fn count(&mut self, connection: u64, observed: Multiaddr, observer: Observer) -> usize {
        let candidate = self.candidates.entry(observed.clone()).or_default();
        let n = candidate.observers.entry(observer.clone()).or_insert(0);
        *n = n.saturating_add(1);
        let distinct = candidate.observers.len();
        self.by_connection.insert(connection, (observed, observer));
        distinct
    }

    /// The connection closed: its observation no longer counts.
    pub fn remove_connection(&mut self, connection: u64) {
        self.forget(connection);
    }

    fn forget(&mut self, connection: u64) {
        let Some((observed, observer)) = self.by_connection.remove(&connection) else {
            return;
        };
        let Some(candidate) = self.candidates.get_mut(&observed) else {
            return;
        };
        if let Some(n) = candidate.observers.get_mut(&observer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                candidate.observers.remove(&observer);
            }
        }
        if candidate.observers.is_empty() {
            self.candidates.remove(&observed);
        }
    }

    /// Distinct live observers of `addr`.
    pub fn observers(&self, addr: &Multiaddr) -> usize {
        self.candidates.get(addr).map_or(0, |c| c.observers.len())
    }

    /// The addresses adopted so far.
    pub fn confirmed(&self) -> impl Iterator<Item = &Multiaddr> {
        self.confirmed.iter()
    }

    /// Distinct candidate addresses tracked now.
    pub fn candidates(&self) -> usize {
        self.candidates.len()
    }
}

/// The address a peer saw us at on a connection from `local`, as we would be seen from our
/// listening port: `observed` as is when `local` is a listen address (we dialed from it, or
/// the connection is inbound), otherwise with its port replaced by the port of our listen
/// address of the same transport (rust-libp2p's and go-libp2p's "address translation": a
/// NAT that keeps ports maps the listening port to the same external port). `None` when we
/// listen on no address of that transport. A `/p2p` suffix is dropped.
pub fn translate_to_listen_port(
    observed: &Multiaddr,
    local: &Multiaddr,
    listen: &[Multiaddr],
) -> Option<Multiaddr> {
    let observed = addr::split_peer_id(observed).0;
    if listen
        .iter()
        .any(|l| same_shape(l, local) && port(l).is_some() && port(l) == port(local))
    {
        return Some(observed);
    }
    let listen_port = listen
        .iter()
        .filter(|l| same_shape(l, &observed))
        .find_map(port)?;
    Some(
        observed
            .iter()
            .map(|p| match p {
                Protocol::Tcp(_) => Protocol::Tcp(listen_port),
                Protocol::Udp(_) => Protocol::Udp(listen_port),
                other => other,
            })
            .collect(),
    )
}

fn port(addr: &Multiaddr) -> Option<u16> {
    addr.iter().find_map(|p| match p {
        Protocol::Tcp(port) | Protocol::Udp(port) => Some(port),
        _ => None,
    })
}

fn is_loopback(addr: &Multiaddr) -> bool {
    match addr.iter().next() {
        Some(Protocol::Ip4(ip)) => ip.is_loopback(),
        Some(Protocol::Ip6(ip)) => ip.is_loopback(),
        _ => false,
    }
}

/// Same protocols in the same order, whatever their values.
fn same_shape(a: &Multiaddr, b: &Multiaddr) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b.iter())
            .all(|(x, y)| std::mem::discriminant(&x) == std::mem::discriminant(&y))
}

/// Whether a connection's local address is (an instance of) a listen address: same shape,
/// same values, except that an unspecified listen IP matches any IP of its family.
fn local_matches_listen(local: &Multiaddr, listen: &Multiaddr) -> bool {
    let listen = addr::split_peer_id(listen).0;
    same_shape(local, &listen)
        && local
            .iter()
            .zip(listen.iter())
            .all(|(l, s)| match (&l, &s) {
                (Protocol::Ip4(_), Protocol::Ip4(ip)) if ip.is_unspecified() => true,
                (Protocol::Ip6(_), Protocol::Ip6(ip)) if ip.is_unspecified() => true,
                _ => l == s,
            })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observed_addresses_are_translated_to_the_listen_port() {
        let a = |s: &str| s.parse::<Multiaddr>().unwrap();
        let listen = [
            a("/ip4/10.0.0.2/tcp/4001"),
            a("/ip4/10.0.0.2/udp/4001/quic-v1"),
        ];
        // We dialed from an ephemeral port: the NAT is assumed to keep ports.
        assert_eq!(
            translate_to_listen_port(
                &a("/ip4/7.7.7.7/tcp/51000"),
                &a("/ip4/10.0.0.2/tcp/51000"),
                &listen
            ),
            Some(a("/ip4/7.7.7.7/tcp/4001"))
        );
        // From the listen port (port reuse, or an inbound connection): as observed.
        assert_eq!(
            translate_to_listen_port(
                &a("/ip4/7.7.7.7/tcp/6000"),
                &a("/ip4/10.0.0.2/tcp/4001"),
                &listen
            ),
            Some(a("/ip4/7.7.7.7/tcp/6000"))
        );
        assert_eq!(
            translate_to_listen_port(
                &a("/ip4/7.7.7.7/udp/7000/quic-v1"),
                &a("/ip4/10.0.0.2/udp/9/quic-v1"),
                &listen
            ),
            Some(a("/ip4/7.7.7.7/udp/4001/quic-v1"))
        );
        // No listener of that transport: nothing to predict.
        assert_eq!(
            translate_to_listen_port(
                &a("/ip4/7.7.7.7/tcp/1/ws"),
                &a("/ip4/10.0.0.2/tcp/2/ws"),
                &listen
            ),
            None
        );
    }

    fn ma(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    fn listen() -> Vec<Multiaddr> {
        vec![ma("/ip4/0.0.0.0/tcp/4001"), ma("/ip6/::/tcp/4001")]
    }

    fn public_observer(i: u8) -> Observer {
        Observer::for_remote(PeerId::random(), &ma(&format!("/ip4/203.0.{i}.1/tcp/5000")))
    }

    #[test]
    fn adopted_exactly_at_the_threshold() {
        let mut obs = ObservedAddrs::new(4, false, 16, 4);
        let local = ma("/ip4/10.0.0.5/tcp/4001");
        let seen = ma("/ip4/198.51.100.7/tcp/4001");
        for i in 0..3u8 {
            assert_eq!(
                obs.observe(u64::from(i), public_observer(i), &local, &seen, &listen()),
                Observation::Counted(usize::from(i) + 1)
            );
        }
        assert_eq!(
            obs.observe(3, public_observer(3), &local, &seen, &listen()),
            Observation::Confirmed(seen.clone())
        );
        assert_eq!(
            obs.observe(4, public_observer(4), &local, &seen, &listen()),
            Observation::AlreadyConfirmed
        );
        assert_eq!(obs.confirmed().collect::<Vec<_>>(), vec![&seen]);
    }

    #[test]
    fn one_network_is_one_observer() {
        let mut obs = ObservedAddrs::new(2, false, 16, 4);
        let local = ma("/ip4/10.0.0.5/tcp/4001");
        let seen = ma("/ip4/198.51.100.7/tcp/4001");
        // Many peer ids from one public IPv4 address.
        for conn in 0..10 {
            let o = Observer::for_remote(PeerId::random(), &ma("/ip4/93.184.216.9/tcp/1"));
            assert_eq!(
                obs.observe(conn, o, &local, &seen, &listen()),
                Observation::Counted(1)
            );
        }
        // And from one IPv6 /56.
        let a = Observer::for_remote(PeerId::random(), &ma("/ip6/2001:db8:1:200::1/tcp/1"));
        let b = Observer::for_remote(PeerId::random(), &ma("/ip6/2001:db8:1:2ff:ffff::9/tcp/1"));
        assert_eq!(a, b);
        let c = Observer::for_remote(PeerId::random(), &ma("/ip6/2001:db8:1:300::1/tcp/1"));
        assert_ne!(a, c);
        // Private addresses count by peer.
        let p = PeerId::random();
        assert_eq!(
            Observer::for_remote(p, &ma("/ip4/192.168.1.2/tcp/1")),
            Observer::Peer(p)
        );
        assert_eq!(Observer::for_remote(p, &ma("/memory/5")), Observer::Peer(p));
    }

    #[test]
    fn closed_connections_stop_counting() {
        let mut obs = ObservedAddrs::new(3, false, 16, 4);
        let local = ma("/ip4/10.0.0.5/tcp/4001");
        let seen = ma("/ip4/198.51.100.7/tcp/4001");
        obs.observe(1, public_observer(1), &local, &seen, &listen());
        obs.observe(2, public_observer(2), &local, &seen, &listen());
        assert_eq!(obs.observers(&seen), 2);
        obs.remove_connection(1);
        assert_eq!(obs.observers(&seen), 1);
        obs.remove_connection(2);
        assert_eq!(obs.candidates(), 0);
        // Reporting again on the same connection replaces, it does not add.
        obs.observe(3, public_observer(3), &local, &seen, &listen());
        obs.observe(3, public_observer(3), &local, &seen, &listen());
        assert_eq!(obs.observers(&seen), 1);
        let other = ma("/ip4/198.51.100.8/tcp/4001");
        obs.observe(3, public_observer(3), &local, &other, &listen());
        assert_eq!((obs.observers(&seen), obs.observers(&other)), (0, 1));
    }

    #[test]
    fn ignored_observations() {
        let mut obs = ObservedAddrs::new(1, false, 16, 4);
        let seen = ma("/ip4/198.51.100.7/tcp/4001");
        let o = || public_observer(1);
        // Outbound connection from an ephemeral port.
        assert!(matches!(
            obs.observe(1, o(), &ma("/ip4/10.0.0.5/tcp/53211"), &seen, &listen()),
            Observation::Ignored(_)
        ));
        let local = ma("/ip4/10.0.0.5/tcp/4001");
        for bad in [
            "/ip4/127.0.0.1/tcp/4001",
            "/ip4/198.51.100.7/udp/4001/quic-v1",
            "/ip4/198.51.100.7/tcp/4001/p2p-circuit",
        ] {
            assert!(
                matches!(
                    obs.observe(1, o(), &local, &ma(bad), &listen()),
                    Observation::Ignored(_)
                ),
                "{bad}"
            );
        }
        assert_eq!(obs.candidates(), 0);
        // Loopback is accepted when allowed; a /p2p suffix is stripped.
        let mut obs = ObservedAddrs::new(1, true, 16, 4);
        let peer = PeerId::random();
        let lo = ma("/ip4/127.0.0.1/tcp/4001");
        assert_eq!(
            obs.observe(
                1,
                o(),
                &lo,
                &lo.clone().with(Protocol::P2p(peer)),
                std::slice::from_ref(&lo)
            ),
            Observation::Confirmed(lo)
        );
        // Threshold zero disables adoption.
        let mut obs = ObservedAddrs::new(0, false, 16, 4);
        assert!(matches!(
            obs.observe(1, o(), &local, &seen, &listen()),
            Observation::Ignored(_)
        ));
    }

    #[test]
    fn bounded() {
        let mut obs = ObservedAddrs::new(1, false, 3, 2);
        let local = ma("/ip4/10.0.0.5/tcp/4001");
        let mut confirmed = 0;
        for i in 0..10u8 {
            let seen = ma(&format!("/ip4/198.51.100.{i}/tcp/4001"));
            if let Observation::Confirmed(_) =
                obs.observe(u64::from(i), public_observer(i), &local, &seen, &listen())
            {
                confirmed += 1;
            }
        }
        assert_eq!(confirmed, 2);
        assert!(obs.candidates() <= 3);
    }
}
