//! The v1 server's decisions, sans-IO: whether to serve a request (relayed connection, peer
//! id, rate limits, one request per client at a time), and which addresses to dial: only
//! those on the IP we see the client on. Time is passed in.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use lp2p_core::addr::{first_ip, is_public_ip, split_peer_id};
use lp2p_core::{Multiaddr, PeerId, Protocol};

use crate::rate::RateWindow;
use crate::v1::status::V1Status;

/// Requests served per minute in total, by default. Why 30: v1 dials every address it
/// accepts and a request costs a dial and a handshake; rust-libp2p's default allows 30 per
/// period, and go-libp2p's v1 server 30 per minute.
pub const DEFAULT_MAX_REQUESTS_PER_MINUTE: usize = 30;
/// Requests served per minute per client, by default. Why 6: a well-behaved client asks
/// one server about each address once per recheck period; 6 leaves room for a few
/// addresses and restarts while stopping a client from using us as a dialer.
pub const DEFAULT_MAX_REQUESTS_PER_PEER_PER_MINUTE: usize = 6;
/// Requests in progress at once, by default. Why 8: each holds a dial and a stream; 8 in
/// flight is far more than the per-minute budget needs.
pub const DEFAULT_MAX_CONCURRENT: usize = 8;
/// Addresses dialed for one request, by default. Why 4: all of them share the client's
/// IP, so more addresses only mean more ports of the same host; go-libp2p dials 4 too.
pub const DEFAULT_MAX_DIAL_ADDRS: usize = 4;
/// How long the dial back may take. Why 15 s: a TCP or QUIC handshake across the world
/// takes well under a second; a black-holed address would otherwise hold the slot for the
/// transport's full connect timeout.
pub const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the client may take to send its request. Why 30 s: one small message;
/// rust-libp2p allows 30 s for a whole v1 exchange.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The v1 server's limits and policy.
#[derive(Debug, Clone)]
pub struct V1ServerConfig {
    /// Requests served per minute in total.
    pub max_requests_per_minute: usize,
    /// Requests served per minute per client.
    pub max_requests_per_peer_per_minute: usize,
    /// Requests in progress at once.
    pub max_concurrent: usize,
    /// Addresses dialed for one request.
    pub max_dial_addrs: usize,
    /// Dial loopback, private, link-local and other non-public addresses too. Off by default
    /// (like v2's [`ServerConfig`](crate::ServerConfig)); on for test networks.
    pub allow_private_addrs: bool,
    /// How long the dial back may take.
    pub dial_timeout: Duration,
    /// How long the client may take to send its request.
    pub request_timeout: Duration,
}

impl Default for V1ServerConfig {
    fn default() -> Self {
        V1ServerConfig {
            max_requests_per_minute: DEFAULT_MAX_REQUESTS_PER_MINUTE,
            max_requests_per_peer_per_minute: DEFAULT_MAX_REQUESTS_PER_PEER_PER_MINUTE,
            max_concurrent: DEFAULT_MAX_CONCURRENT,
            max_dial_addrs: DEFAULT_MAX_DIAL_ADDRS,
            allow_private_addrs: false,
            dial_timeout: DEFAULT_DIAL_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

impl V1ServerConfig {
    /// This configuration with non-public addresses allowed (test networks, LANs).
    #[must_use]
    pub fn allowing_private_addrs(mut self) -> Self {
        self.allow_private_addrs = true;
        self
    }
}

/// Why a request was not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// It came over a relayed (limited) connection: the IP we see is the relay's.
    Relayed,
    /// It asked us to dial another peer (`E_BAD_REQUEST`).
    OtherPeer,
    /// The total per-minute budget is spent.
    GlobalRate,
    /// This client's per-minute budget is spent.
    PeerRate,
    /// Too many requests in progress.
    Concurrency,
    /// This client has a request in progress already.
    Busy,
    /// No address on the client's IP that we are willing and able to dial.
    NoAddress,
}

impl Refusal {
    /// The status answered for this refusal.
    pub fn status(self) -> V1Status {
        match self {
            Refusal::OtherPeer => V1Status::BadRequest,
            _ => V1Status::DialRefused,
        }
    }

    /// The status text answered.
    pub fn text(self) -> &'static str {
        match self {
            Refusal::Relayed => "dial requests over relayed connections are refused",
            Refusal::OtherPeer => "the request names another peer",
            Refusal::GlobalRate => "too many dial requests",
            Refusal::PeerRate => "too many dial requests from this peer",
            Refusal::Concurrency => "too many dial requests in progress",
            Refusal::Busy => "a dial request from this peer is in progress",
            Refusal::NoAddress => "no dialable address on the observed IP",
        }
    }
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Answer [`Refusal::status`].
    Refuse(Refusal),
    /// Dial these addresses (all on the client's IP, without `/p2p`); the request is in
    /// progress until [`V1ServerCore::finished`].
    Dial(Vec<Multiaddr>),
}

/// What the v1 server did, for [`AutonatV1Server::stats`](crate::v1::AutonatV1Server::stats).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct V1ServerStats {
    /// Requests received (decoded or not).
    pub requests: u64,
    /// Requests that did not decode (`E_BAD_REQUEST`).
    pub malformed: u64,
    /// Refused: over a relayed connection.
    pub refused_relayed: u64,
    /// Refused: the request named another peer.
    pub refused_other_peer: u64,
    /// Refused: a rate or concurrency limit, or a request in progress for this client.
    pub refused_rate: u64,
    /// Refused: no address on the client's IP we would dial.
    pub refused_addrs: u64,
    /// Dial backs that connected.
    pub dial_ok: u64,
    /// Dial backs that failed or timed out.
    pub dial_error: u64,
    /// Requests that failed after the decision (stream reset, host closing).
    pub failed: u64,
}

/// The sans-IO v1 server: rate windows, requests in progress and the counters.
#[derive(Debug)]
pub struct V1ServerCore {
    config: V1ServerConfig,
    rates: RateWindow,
    in_progress: HashSet<PeerId>,
    stats: V1ServerStats,
}

impl V1ServerCore {
    /// A server with `config`.
    pub fn new(config: V1ServerConfig) -> V1ServerCore {
        V1ServerCore {
            config,
            rates: RateWindow::default(),
            in_progress: HashSet::new(),
            stats: V1ServerStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &V1ServerConfig {
        &self.config
    }

    /// The counters so far.
    pub fn stats(&self) -> V1ServerStats {
        self.stats.clone()
    }

    /// Requests in progress.
    pub fn in_progress(&self) -> usize {
        self.in_progress.len()
    }

    /// A request that did not decode.
    pub fn on_malformed(&mut self) {
        self.stats.requests = self.stats.requests.saturating_add(1);
        self.stats.malformed = self.stats.malformed.saturating_add(1);
    }

    /// Decides on a request from `client` (the connection's peer), which we see at
    /// `observed` (the remote address of the connection it came on, `limited` when
    /// relayed), asking us to dial `claimed` on `addrs`. `can_dial` says whether one of our
    /// transports dials an address.
    #[allow(clippy::too_many_arguments)]
    pub fn on_request(
        &mut self,
        client: PeerId,
        claimed: PeerId,
        observed: &Multiaddr,
        limited: bool,
        addrs: &[Multiaddr],
        can_dial: impl Fn(&Multiaddr) -> bool,
        now: Instant,
    ) -> Decision {
        self.stats.requests = self.stats.requests.saturating_add(1);
        self.rates.expire(now);
        let refusal = if limited {
            Some(Refusal::Relayed)
        } else if claimed != client {
            Some(Refusal::OtherPeer)
        } else if self.in_progress.contains(&client) {
            Some(Refusal::Busy)
        } else if self.in_progress.len() >= self.config.max_concurrent {
            Some(Refusal::Concurrency)
        } else if self.rates.total() >= self.config.max_requests_per_minute {
            Some(Refusal::GlobalRate)
        } else if self.rates.of(&client) >= self.config.max_requests_per_peer_per_minute {
            Some(Refusal::PeerRate)
        } else {
            None
        };
        if let Some(why) = refusal {
            self.count_refusal(why);
            return Decision::Refuse(why);
        }
        // Counted against the rates from here on, dialed or not.
        self.rates.count(client, now);
        let selected = self.select(client, observed, addrs, &can_dial);
        if selected.is_empty() {
            self.count_refusal(Refusal::NoAddress);
            return Decision::Refuse(Refusal::NoAddress);
        }
        self.in_progress.insert(client);
        Decision::Dial(selected)
    }

    fn count_refusal(&mut self, why: Refusal) {
        let counter = match why {
            Refusal::Relayed => &mut self.stats.refused_relayed,
            Refusal::OtherPeer => &mut self.stats.refused_other_peer,
            Refusal::NoAddress => &mut self.stats.refused_addrs,
            Refusal::GlobalRate | Refusal::PeerRate | Refusal::Concurrency | Refusal::Busy => {
                &mut self.stats.refused_rate
            }
        };
        *counter = counter.saturating_add(1);
    }

    /// The addresses we would dial: literal IPs equal to the observed one (never a third
    /// party), public unless allowed, a transport we speak, not relayed, no other peer's
    /// `/p2p`; distinct, at most [`V1ServerConfig::max_dial_addrs`].
    fn select(
        &self,
        client: PeerId,
        observed: &Multiaddr,
        addrs: &[Multiaddr],
        can_dial: &impl Fn(&Multiaddr) -> bool,
    ) -> Vec<Multiaddr> {
        let Some(observed_ip) = first_ip(observed) else {
            return Vec::new();
        };
        if observed_ip.is_unspecified()
            || observed_ip.is_multicast()
            || (!self.config.allow_private_addrs && !is_public_ip(observed_ip))
        {
            return Vec::new();
        }
        let mut selected: Vec<Multiaddr> = Vec::new();
        for addr in addrs {
            if selected.len() >= self.config.max_dial_addrs {
                break;
            }
            let (transport_addr, named) = split_peer_id(addr);
            if named.is_some_and(|p| p != client) {
                continue;
            }
            let ip = match transport_addr.iter().next() {
                Some(Protocol::Ip4(ip)) => IpAddr::V4(ip),
                Some(Protocol::Ip6(ip)) => IpAddr::V6(ip),
                _ => continue,
            };
            if ip != observed_ip
                || transport_addr
                    .iter()
                    .any(|p| matches!(p, Protocol::P2pCircuit | Protocol::P2p(_)))
                || !can_dial(&transport_addr)
                || selected.contains(&transport_addr)
            {
                continue;
            }
            selected.push(transport_addr);
        }
        selected
    }

    /// A request that was [`Decision::Dial`] for `client` ended: `Some(true)` when a dial
    /// connected, `Some(false)` when every dial failed, `None` when the request failed
    /// otherwise.
    pub fn finished(&mut self, client: PeerId, outcome: Option<bool>) {
        self.in_progress.remove(&client);
        let counter = match outcome {
            Some(true) => &mut self.stats.dial_ok,
            Some(false) => &mut self.stats.dial_error,
            None => &mut self.stats.failed,
        };
        *counter = counter.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate::WINDOW;

    fn addr(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    fn addrs(list: &[&str]) -> Vec<Multiaddr> {
        list.iter().map(|s| addr(s)).collect()
    }

    fn tcp_only(a: &Multiaddr) -> bool {
        a.iter().any(|p| matches!(p, Protocol::Tcp(_)))
    }

    fn ask(core: &mut V1ServerCore, client: PeerId, list: &[&str], at: Instant) -> Decision {
        core.on_request(
            client,
            client,
            &addr("/ip4/8.8.8.8/tcp/5555"),
            false,
            &addrs(list),
            tcp_only,
            at,
        )
    }

    #[test]
    fn only_addresses_on_the_observed_ip_are_dialed() {
        let mut core = V1ServerCore::new(V1ServerConfig::default());
        let client = PeerId::random();
        let other = PeerId::random();
        let d = ask(
            &mut core,
            client,
            &[
                "/ip4/9.9.9.9/tcp/4001",      // a third party
                "/ip4/8.8.8.8/udp/1/quic-v1", // no QUIC transport here
                "/dns4/example.com/tcp/1",    // a name
                &format!("/ip4/8.8.8.8/tcp/2/p2p/{other}"),
                "/ip4/8.8.8.8/tcp/4001",
                &format!("/ip4/8.8.8.8/tcp/4002/p2p/{client}"),
                "/ip4/8.8.8.8/tcp/4001", // a duplicate
            ],
            Instant::now(),
        );
        assert_eq!(
            d,
            Decision::Dial(addrs(&["/ip4/8.8.8.8/tcp/4001", "/ip4/8.8.8.8/tcp/4002"]))
        );
        assert_eq!(core.in_progress(), 1);
        core.finished(client, Some(true));
        assert_eq!(core.in_progress(), 0);
        assert_eq!(core.stats().dial_ok, 1);
    }

    #[test]
    fn third_parties_private_and_relayed_addresses_are_refused() {
        let mut core = V1ServerCore::new(V1ServerConfig::default());
        let client = PeerId::random();
        let d = ask(
            &mut core,
            client,
            &[
                "/ip4/9.9.9.9/tcp/4001",
                "/ip4/8.8.8.8/tcp/1/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit",
            ],
            Instant::now(),
        );
        assert_eq!(d, Decision::Refuse(Refusal::NoAddress));
        assert_eq!(Refusal::NoAddress.status(), V1Status::DialRefused);
        // A client we see on a private IP is not dialed at all, even on that IP.
        let d = core.on_request(
            client,
            client,
            &addr("/ip4/192.168.1.2/tcp/5555"),
            false,
            &addrs(&["/ip4/192.168.1.2/tcp/4001"]),
            tcp_only,
            Instant::now(),
        );
        assert_eq!(d, Decision::Refuse(Refusal::NoAddress));
        assert_eq!(core.stats().refused_addrs, 2);
        assert_eq!(core.in_progress(), 0, "a refusal holds no slot");
    }

    #[test]
    fn loopback_is_dialed_only_when_allowed() {
        let mut core = V1ServerCore::new(V1ServerConfig::default().allowing_private_addrs());
        let client = PeerId::random();
        let d = core.on_request(
            client,
            client,
            &addr("/ip4/127.0.0.1/tcp/5555"),
            false,
            &addrs(&["/ip4/127.0.0.2/tcp/4001", "/ip4/127.0.0.1/tcp/4001"]),
            tcp_only,
            Instant::now(),
        );
        assert_eq!(d, Decision::Dial(addrs(&["/ip4/127.0.0.1/tcp/4001"])));
    }

    #[test]
    fn relayed_connections_and_other_peers_are_refused_and_counted() {
        let mut core = V1ServerCore::new(V1ServerConfig::default());
        let client = PeerId::random();
        let relayed = core.on_request(
            client,
            client,
            &addr("/ip4/8.8.8.8/tcp/5555"),
            true,
            &addrs(&["/ip4/8.8.8.8/tcp/4001"]),
            |_| true,
            Instant::now(),
        );
        assert_eq!(relayed, Decision::Refuse(Refusal::Relayed));
        assert_eq!(Refusal::Relayed.status(), V1Status::DialRefused);
        let other = core.on_request(
            client,
            PeerId::random(),
            &addr("/ip4/8.8.8.8/tcp/5555"),
            false,
            &addrs(&["/ip4/8.8.8.8/tcp/4001"]),
            |_| true,
            Instant::now(),
        );
        assert_eq!(other, Decision::Refuse(Refusal::OtherPeer));
        assert_eq!(Refusal::OtherPeer.status(), V1Status::BadRequest);
        let stats = core.stats();
        assert_eq!(
            (
                stats.requests,
                stats.refused_relayed,
                stats.refused_other_peer
            ),
            (2, 1, 1)
        );
    }

    #[test]
    fn rates_hold_for_a_minute_in_virtual_time() {
        let config = V1ServerConfig {
            max_requests_per_minute: 3,
            max_requests_per_peer_per_minute: 2,
            ..V1ServerConfig::default()
        };
        let mut core = V1ServerCore::new(config);
        let (a, b) = (PeerId::random(), PeerId::random());
        let t0 = Instant::now();
        let one = ["/ip4/8.8.8.8/tcp/1"];
        let dial = |core: &mut V1ServerCore, peer, at| {
            let d = ask(core, peer, &one, at);
            if matches!(d, Decision::Dial(_)) {
                core.finished(peer, Some(false));
            }
            d
        };
        assert!(matches!(dial(&mut core, a, t0), Decision::Dial(_)));
        assert!(matches!(dial(&mut core, a, t0), Decision::Dial(_)));
        assert_eq!(dial(&mut core, a, t0), Decision::Refuse(Refusal::PeerRate));
        assert!(matches!(dial(&mut core, b, t0), Decision::Dial(_)));
        assert_eq!(
            dial(&mut core, b, t0),
            Decision::Refuse(Refusal::GlobalRate)
        );
        let almost = t0 + Duration::from_millis(59_999);
        assert_eq!(
            dial(&mut core, b, almost),
            Decision::Refuse(Refusal::GlobalRate)
        );
        assert!(matches!(dial(&mut core, a, t0 + WINDOW), Decision::Dial(_)));
        assert_eq!(core.stats().refused_rate, 3);
        assert_eq!(core.stats().dial_error, 4);
    }

    #[test]
    fn one_request_per_client_and_a_concurrency_cap() {
        let config = V1ServerConfig {
            max_concurrent: 2,
            ..V1ServerConfig::default()
        };
        let mut core = V1ServerCore::new(config);
        let t0 = Instant::now();
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        let one = ["/ip4/8.8.8.8/tcp/1"];
        assert!(matches!(ask(&mut core, a, &one, t0), Decision::Dial(_)));
        assert_eq!(ask(&mut core, a, &one, t0), Decision::Refuse(Refusal::Busy));
        assert!(matches!(ask(&mut core, b, &one, t0), Decision::Dial(_)));
        assert_eq!(
            ask(&mut core, c, &one, t0),
            Decision::Refuse(Refusal::Concurrency)
        );
        core.finished(a, None);
        assert_eq!(core.stats().failed, 1);
        assert!(matches!(ask(&mut core, c, &one, t0), Decision::Dial(_)));
    }

    #[test]
    fn the_dial_list_is_capped() {
        let config = V1ServerConfig {
            max_dial_addrs: 2,
            ..V1ServerConfig::default()
        };
        let mut core = V1ServerCore::new(config);
        let d = ask(
            &mut core,
            PeerId::random(),
            &[
                "/ip4/8.8.8.8/tcp/1",
                "/ip4/8.8.8.8/tcp/2",
                "/ip4/8.8.8.8/tcp/3",
            ],
            Instant::now(),
        );
        assert_eq!(
            d,
            Decision::Dial(addrs(&["/ip4/8.8.8.8/tcp/1", "/ip4/8.8.8.8/tcp/2"]))
        );
    }
}
