//! The server's decisions, sans-IO: whether to serve a request (rate limits), which address
//! to dial, and whether the client must pay dial data first. Time is passed in.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use lp2p_core::addr::{first_ip, is_public_ip, split_peer_id};
use lp2p_core::{Multiaddr, PeerId, Protocol};

use crate::rate::{RateWindow, WINDOW};

/// Requests served per minute in total, by default. Why 60: go-libp2p's default server
/// budget; each request may cost a dial, a handshake and up to 100 kB read.
pub const DEFAULT_MAX_REQUESTS_PER_MINUTE: usize = 60;
/// Requests served per minute per client, by default. Why 12: go-libp2p's per-peer budget;
/// a well-behaved client asks each server about each address once per recheck period.
pub const DEFAULT_MAX_REQUESTS_PER_PEER_PER_MINUTE: usize = 12;
/// Requests that need dial data, per minute in total, by default. Why 12: those dial an IP
/// other than the client's, the case an attacker would use; go-libp2p allows 12.
pub const DEFAULT_MAX_DIAL_DATA_REQUESTS_PER_MINUTE: usize = 12;
/// Requests in progress at once, by default. Why 8: each holds a dial and a stream; 8
/// dials in flight is far more than the per-minute budget needs.
pub const DEFAULT_MAX_CONCURRENT: usize = 8;
/// The dial-data amount is drawn from this range. Why: the spec asks for 30 kB to 100 kB,
/// several times what a handshake costs the dialed victim.
pub const DIAL_DATA_RANGE: std::ops::RangeInclusive<u64> = 30_000..=100_000;
/// How long the dial back may take. Why 15 s: a TCP or QUIC handshake across the world
/// takes well under a second; a black-holed address would otherwise hold the slot for the
/// transport's full connect timeout.
pub const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a whole request may take, dial data included. Why 60 s: 100 kB over a slow
/// link plus the dial back; rust-libp2p allows 10 s per exchange, go 1 min per request.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The server's limits and policy.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Requests served per minute in total.
    pub max_requests_per_minute: usize,
    /// Requests served per minute per client.
    pub max_requests_per_peer_per_minute: usize,
    /// Requests that need dial data, per minute in total.
    pub max_dial_data_requests_per_minute: usize,
    /// Requests in progress at once.
    pub max_concurrent: usize,
    /// Dial loopback, private, link-local and other non-public addresses too. Off by default
    /// (the spec says a server SHOULD NOT); on for test networks on one machine or a LAN.
    pub allow_private_addrs: bool,
    /// How long the dial back may take.
    pub dial_timeout: Duration,
    /// How long a whole request may take.
    pub request_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_requests_per_minute: DEFAULT_MAX_REQUESTS_PER_MINUTE,
            max_requests_per_peer_per_minute: DEFAULT_MAX_REQUESTS_PER_PEER_PER_MINUTE,
            max_dial_data_requests_per_minute: DEFAULT_MAX_DIAL_DATA_REQUESTS_PER_MINUTE,
            max_concurrent: DEFAULT_MAX_CONCURRENT,
            allow_private_addrs: false,
            dial_timeout: DEFAULT_DIAL_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

impl ServerConfig {
    /// This configuration with non-public addresses allowed (test networks, LANs).
    #[must_use]
    pub fn allowing_private_addrs(mut self) -> Self {
        self.allow_private_addrs = true;
        self
    }
}

/// Why a request was not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rejection {
    /// The total per-minute budget is spent.
    GlobalRate,
    /// This client's per-minute budget is spent.
    PeerRate,
    /// Too many requests in progress.
    Concurrency,
    /// The selected address needs dial data and that budget is spent.
    DialDataRate,
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Answer `E_REQUEST_REJECTED`.
    Reject(Rejection),
    /// Answer `E_DIAL_REFUSED`: no address we are willing and able to dial.
    Refuse,
    /// Dial `addr` (index `idx` of the request), after `dial_data` bytes when `Some`.
    Dial {
        /// Index in the request's list.
        idx: u32,
        /// The address to dial, without any `/p2p` suffix.
        addr: Multiaddr,
        /// Bytes the client must send first (the address's IP is not the one we see).
        dial_data: Option<u64>,
    },
}

/// What the server did, for [`AutonatServer::stats`](crate::AutonatServer::stats).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Requests received.
    pub requests: u64,
    /// Rejected: a rate or concurrency limit.
    pub rejected: u64,
    /// Refused: no address we would dial.
    pub refused: u64,
    /// Requests that asked for dial data.
    pub dial_data_requested: u64,
    /// Dial backs that reached the client and handed over the nonce.
    pub dial_ok: u64,
    /// Dial backs that failed to connect.
    pub dial_error: u64,
    /// Dial backs that connected but could not hand over the nonce.
    pub dial_back_error: u64,
    /// Requests that ended in a protocol error (malformed, timeout, reset).
    pub failed: u64,
}

/// How a dial back ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialOutcome {
    /// Connected and handed over the nonce.
    Ok,
    /// Could not connect.
    DialError,
    /// Connected; the nonce exchange failed.
    DialBackError,
}

/// The sans-IO server: rate windows, the in-progress count and the counters.
#[derive(Debug)]
pub struct ServerCore {
    config: ServerConfig,
    rates: RateWindow,
    recent_dial_data: VecDeque<Instant>,
    in_progress: usize,
    stats: ServerStats,
}

impl ServerCore {
    /// A server with `config`.
    pub fn new(config: ServerConfig) -> ServerCore {
        ServerCore {
            config,
            rates: RateWindow::default(),
            recent_dial_data: VecDeque::new(),
            in_progress: 0,
            stats: ServerStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The counters so far.
    pub fn stats(&self) -> ServerStats {
        self.stats.clone()
    }

    /// Requests in progress.
    pub fn in_progress(&self) -> usize {
        self.in_progress
    }

    fn expire(&mut self, now: Instant) {
        self.rates.expire(now);
        while let Some(&at) = self.recent_dial_data.front() {
            if now.saturating_duration_since(at) < WINDOW {
                break;
            }
            self.recent_dial_data.pop_front();
        }
    }

    /// Decides on a request from `client`, which we see at `observed` (the remote address of
    /// the connection it came on). `can_dial` says whether one of our transports dials an
    /// address; `families` are the IP families we have connectivity on (the spec: an
    /// IPv4-only server refuses IPv6 addresses and the reverse). `draw` picks the dial-data
    /// amount from [`DIAL_DATA_RANGE`].
    ///
    /// A [`Decision::Dial`] counts as in progress until [`finished`](Self::finished).
    #[allow(clippy::too_many_arguments)]
    pub fn on_request(
        &mut self,
        client: PeerId,
        observed: &Multiaddr,
        addrs: &[Option<Multiaddr>],
        can_dial: impl Fn(&Multiaddr) -> bool,
        families: Families,
        now: Instant,
        draw: impl FnOnce(std::ops::RangeInclusive<u64>) -> u64,
    ) -> Decision {
        self.stats.requests += 1;
        self.expire(now);
        let rejection = if self.in_progress >= self.config.max_concurrent {
            Some(Rejection::Concurrency)
        } else if self.rates.total() >= self.config.max_requests_per_minute {
            Some(Rejection::GlobalRate)
        } else if self.rates.of(&client) >= self.config.max_requests_per_peer_per_minute {
            Some(Rejection::PeerRate)
        } else {
            None
        };
        if let Some(why) = rejection {
            self.stats.rejected += 1;
            return Decision::Reject(why);
        }
        let selected = addrs.iter().enumerate().find_map(|(i, a)| {
            let a = a.as_ref()?;
            let dialable = self.dialable(client, a, families, &can_dial)?;
            Some((i, dialable))
        });
        let Some((idx, addr)) = selected else {
            self.stats.refused += 1;
            self.rates.count(client, now);
            return Decision::Refuse;
        };
        let needs_data = first_ip(&addr) != first_ip(observed);
        if needs_data
            && self.recent_dial_data.len() >= self.config.max_dial_data_requests_per_minute
        {
            self.stats.rejected += 1;
            return Decision::Reject(Rejection::DialDataRate);
        }
        self.rates.count(client, now);
        let dial_data = needs_data.then(|| {
            self.recent_dial_data.push_back(now);
            self.stats.dial_data_requested += 1;
            draw(DIAL_DATA_RANGE).clamp(*DIAL_DATA_RANGE.start(), *DIAL_DATA_RANGE.end())
        });
        self.in_progress += 1;
        Decision::Dial {
            idx: u32::try_from(idx).unwrap_or(u32::MAX),
            addr,
            dial_data,
        }
    }

    /// `addr` without its `/p2p` suffix if we would dial it for `client`.
    fn dialable(
        &self,
        client: PeerId,
        addr: &Multiaddr,
        families: Families,
        can_dial: &impl Fn(&Multiaddr) -> bool,
    ) -> Option<Multiaddr> {
        let (transport_addr, named) = split_peer_id(addr);
        if named.is_some_and(|p| p != client) {
            return None;
        }
        // Only literal IP addresses: a name would make us resolve (and maybe dial) what
        // the client chose, and relayed addresses test the relay, not the client.
        let ip = match transport_addr.iter().next() {
            Some(Protocol::Ip4(ip)) => IpAddr::V4(ip),
            Some(Protocol::Ip6(ip)) => IpAddr::V6(ip),
            _ => return None,
        };
        if transport_addr
            .iter()
            .any(|p| matches!(p, Protocol::P2pCircuit | Protocol::P2p(_)))
        {
            return None;
        }
        if ip.is_unspecified() || ip.is_multicast() {
            return None;
        }
        if !self.config.allow_private_addrs && !is_public_ip(ip) {
            return None;
        }
        if !families.allows(ip) || !can_dial(&transport_addr) {
            return None;
        }
        Some(transport_addr)
    }

    /// A request that was [`Decision::Dial`] ended: `Some` outcome when the dial back ran,
    /// `None` when the exchange failed before (bad dial data, timeout, reset).
    pub fn finished(&mut self, outcome: Option<DialOutcome>) {
        self.in_progress = self.in_progress.saturating_sub(1);
        match outcome {
            Some(DialOutcome::Ok) => self.stats.dial_ok += 1,
            Some(DialOutcome::DialError) => self.stats.dial_error += 1,
            Some(DialOutcome::DialBackError) => self.stats.dial_back_error += 1,
            None => self.stats.failed += 1,
        }
    }
}

/// The IP families a server has connectivity on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Families {
    /// IPv4.
    pub v4: bool,
    /// IPv6.
    pub v6: bool,
}

impl Families {
    /// Both families.
    pub const BOTH: Families = Families { v4: true, v6: true };

    /// The families of the addresses we listen on; both when we listen on none with an IP
    /// (we cannot tell, so we do not refuse on that ground).
    pub fn of_listen_addrs<'a>(addrs: impl IntoIterator<Item = &'a Multiaddr>) -> Families {
        let mut families = Families {
            v4: false,
            v6: false,
        };
        for a in addrs {
            match first_ip(a) {
                Some(IpAddr::V4(_)) => families.v4 = true,
                Some(IpAddr::V6(_)) => families.v6 = true,
                None => {}
            }
        }
        if families.v4 || families.v6 {
            families
        } else {
            Families::BOTH
        }
    }

    fn allows(self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(_) => self.v4,
            IpAddr::V6(_) => self.v6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    fn some(list: &[&str]) -> Vec<Option<Multiaddr>> {
        list.iter().map(|s| Some(addr(s))).collect()
    }

    fn decide(core: &mut ServerCore, client: PeerId, observed: &str, addrs: &[&str]) -> Decision {
        core.on_request(
            client,
            &addr(observed),
            &some(addrs),
            |a| a.iter().any(|p| matches!(p, Protocol::Tcp(_))),
            Families::BOTH,
            Instant::now(),
            |range| *range.start(),
        )
    }

    #[test]
    fn the_first_dialable_address_is_chosen_without_data_when_the_ip_matches() {
        let mut core = ServerCore::new(ServerConfig::default());
        let client = PeerId::random();
        let d = decide(
            &mut core,
            client,
            "/ip4/8.8.8.8/tcp/5555",
            &[
                "/ip4/8.8.8.8/udp/1/quic-v1", // no QUIC transport here
                "/ip4/192.168.1.2/tcp/4001",  // private
                "/ip4/8.8.8.8/tcp/4001",
                "/ip4/9.9.9.9/tcp/4001",
            ],
        );
        assert_eq!(
            d,
            Decision::Dial {
                idx: 2,
                addr: addr("/ip4/8.8.8.8/tcp/4001"),
                dial_data: None
            }
        );
        assert_eq!(core.in_progress(), 1);
        core.finished(Some(DialOutcome::Ok));
        assert_eq!(core.in_progress(), 0);
        assert_eq!(core.stats().dial_ok, 1);
    }

    #[test]
    fn another_ip_costs_dial_data_in_the_spec_range() {
        let mut core = ServerCore::new(ServerConfig::default());
        let d = core.on_request(
            PeerId::random(),
            &addr("/ip4/8.8.8.8/tcp/5555"),
            &some(&["/ip4/9.9.9.9/tcp/4001"]),
            |_| true,
            Families::BOTH,
            Instant::now(),
            |_| 5, // a broken draw is clamped into the range
        );
        assert_eq!(
            d,
            Decision::Dial {
                idx: 0,
                addr: addr("/ip4/9.9.9.9/tcp/4001"),
                dial_data: Some(30_000)
            }
        );
        assert_eq!(core.stats().dial_data_requested, 1);
    }

    #[test]
    fn private_relayed_named_and_foreign_peer_addresses_are_refused() {
        let mut core = ServerCore::new(ServerConfig::default());
        let client = PeerId::random();
        let other = PeerId::random();
        let d = decide(
            &mut core,
            client,
            "/ip4/8.8.8.8/tcp/5555",
            &[
                "/ip4/127.0.0.1/tcp/1",
                "/ip4/10.0.0.1/tcp/1",
                "/ip4/100.64.0.1/tcp/1",
                "/ip6/::1/tcp/1",
                "/ip6/fe80::1/tcp/1",
                "/ip4/0.0.0.0/tcp/1",
                "/dns4/example.com/tcp/1",
                &format!("/ip4/8.8.8.8/tcp/1/p2p/{other}"),
                "/ip4/8.8.8.8/tcp/1/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit",
            ],
        );
        assert_eq!(d, Decision::Refuse);
        assert_eq!(core.stats().refused, 1);
        assert_eq!(core.in_progress(), 0, "a refusal holds no slot");
    }

    #[test]
    fn the_clients_own_p2p_suffix_is_accepted_and_dropped() {
        let mut core = ServerCore::new(ServerConfig::default());
        let client = PeerId::random();
        let d = decide(
            &mut core,
            client,
            "/ip4/8.8.8.8/tcp/5555",
            &[&format!("/ip4/8.8.8.8/tcp/1/p2p/{client}")],
        );
        assert_eq!(
            d,
            Decision::Dial {
                idx: 0,
                addr: addr("/ip4/8.8.8.8/tcp/1"),
                dial_data: None
            }
        );
    }

    #[test]
    fn private_addresses_are_dialed_when_allowed() {
        let mut core = ServerCore::new(ServerConfig::default().allowing_private_addrs());
        let d = decide(
            &mut core,
            PeerId::random(),
            "/ip4/127.0.0.1/tcp/5555",
            &["/ip4/127.0.0.1/tcp/4001"],
        );
        assert!(
            matches!(
                d,
                Decision::Dial {
                    dial_data: None,
                    ..
                }
            ),
            "{d:?}"
        );
    }

    #[test]
    fn an_ipv4_only_server_refuses_ipv6() {
        let mut core = ServerCore::new(ServerConfig::default());
        let families = Families::of_listen_addrs(&[addr("/ip4/0.0.0.0/tcp/1")]);
        let d = core.on_request(
            PeerId::random(),
            &addr("/ip4/8.8.8.8/tcp/5555"),
            &some(&["/ip6/2001:4860::1/tcp/1"]),
            |_| true,
            families,
            Instant::now(),
            |r| *r.start(),
        );
        assert_eq!(d, Decision::Refuse);
    }

    #[test]
    fn unparsable_addresses_are_skipped_with_their_index_kept() {
        let mut core = ServerCore::new(ServerConfig::default());
        let d = core.on_request(
            PeerId::random(),
            &addr("/ip4/8.8.8.8/tcp/5555"),
            &[None, Some(addr("/ip4/8.8.8.8/tcp/1"))],
            |_| true,
            Families::BOTH,
            Instant::now(),
            |r| *r.start(),
        );
        assert!(matches!(d, Decision::Dial { idx: 1, .. }), "{d:?}");
    }

    #[test]
    fn per_peer_and_global_rates_hold_for_a_minute() {
        let config = ServerConfig {
            max_requests_per_minute: 3,
            max_requests_per_peer_per_minute: 2,
            max_concurrent: 100,
            ..ServerConfig::default()
        };
        let mut core = ServerCore::new(config);
        let (a, b) = (PeerId::random(), PeerId::random());
        let t0 = Instant::now();
        let ask = |core: &mut ServerCore, peer, at| {
            core.on_request(
                peer,
                &addr("/ip4/8.8.8.8/tcp/5555"),
                &some(&["/ip4/8.8.8.8/tcp/1"]),
                |_| true,
                Families::BOTH,
                at,
                |r| *r.start(),
            )
        };
        assert!(matches!(ask(&mut core, a, t0), Decision::Dial { .. }));
        assert!(matches!(ask(&mut core, a, t0), Decision::Dial { .. }));
        assert_eq!(ask(&mut core, a, t0), Decision::Reject(Rejection::PeerRate));
        assert!(matches!(ask(&mut core, b, t0), Decision::Dial { .. }));
        assert_eq!(
            ask(&mut core, b, t0),
            Decision::Reject(Rejection::GlobalRate)
        );
        let later = t0 + WINDOW;
        assert!(matches!(ask(&mut core, a, later), Decision::Dial { .. }));
        assert_eq!(core.stats().rejected, 2);
    }

    #[test]
    fn concurrency_and_dial_data_budgets_reject() {
        let config = ServerConfig {
            max_concurrent: 1,
            max_dial_data_requests_per_minute: 1,
            ..ServerConfig::default()
        };
        let mut core = ServerCore::new(config);
        let t0 = Instant::now();
        let other_ip = |core: &mut ServerCore| {
            core.on_request(
                PeerId::random(),
                &addr("/ip4/8.8.8.8/tcp/5555"),
                &some(&["/ip4/9.9.9.9/tcp/1"]),
                |_| true,
                Families::BOTH,
                t0,
                |r| *r.start(),
            )
        };
        assert!(matches!(other_ip(&mut core), Decision::Dial { .. }));
        assert_eq!(
            other_ip(&mut core),
            Decision::Reject(Rejection::Concurrency)
        );
        core.finished(None);
        assert_eq!(core.stats().failed, 1);
        assert_eq!(
            other_ip(&mut core),
            Decision::Reject(Rejection::DialDataRate)
        );
    }
}
