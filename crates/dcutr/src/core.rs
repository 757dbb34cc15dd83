//! The decisions of a hole punch, sans-IO: which addresses we offer and which of the
//! remote's we dial, when to start an upgrade, how many attempts, when to dial after `SYNC`.

use std::collections::HashMap;
use std::time::Duration;

use lp2p_core::addr::{first_ip, is_public_ip, split_peer_id};
use lp2p_core::{Multiaddr, PeerId, Protocol};

use crate::message::MAX_ADDRS;

/// Attempts per relayed connection. Why 3: the spec (the initiating peer retries twice).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// How long the direct dials of one attempt may take. Why 10 s: a simultaneous open
/// succeeds within a few round trips or not at all; the retry then measures a fresh RTT.
pub const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one message of the exchange may take. Why 30 s: the relayed path may be slow,
/// but a peer that does not answer in half a minute is not going to hole punch.
pub const DEFAULT_STREAM_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the relayed connection stays open once a direct one exists. Why 5 s: the spec's
/// "grace period": streams already on the relayed connection get to finish, new ones go to
/// the direct connection.
pub const DEFAULT_RELAYED_GRACE: Duration = Duration::from_secs(5);

/// How long a plain dial to the remote's advertised public addresses may take (the spec's
/// unilateral connection upgrade; after [`DEFAULT_UNILATERAL_HEAD_START`] the hole punch
/// runs beside it). Why 5 s: a reachable peer answers within a round trip or two; go-libp2p
/// gives its direct dial the same 5 s.
pub const DEFAULT_UNILATERAL_DIAL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the plain dial of the unilateral upgrade runs alone before the hole punch starts
/// beside it. Why 250 ms: a reachable peer's TCP, noise and yamux handshakes take about three
/// round trips, so within this head start peers up to about 80 ms away are reached without
/// a hole-punch exchange. A peer behind a firewall that drops the dial costs this much
/// instead of the whole dial timeout (D53). Happy Eyeballs (RFC 8305) gives its first
/// attempt the same 250 ms.
pub const DEFAULT_UNILATERAL_HEAD_START: Duration = Duration::from_millis(250);
/// The unilateral dial's head start in round trips of the `CONNECT` exchange (which runs
/// beside it, D54): once that exchange is done, the hole punch goes on. Why 1: a reachable
/// peer's plain dial, begun when identify answers (one round trip in), is done after about
/// 3 round trips over TCP (2 over QUIC), while a hole punch begun after one round trip needs
/// 1 + 3 (QUIC 1 + 2): the plain dial still wins. A firewall that drops the plain dial then
/// costs nothing beyond the exchange, where every round trip of head start would add one to
/// each upgrade behind it (D56). The price: towards a reachable peer, the hole punch's `SYNC`
/// and dials are sent for nothing.
pub const DEFAULT_UNILATERAL_HEAD_START_RTTS: u32 = 1;

/// The shortest head start the round trips can make: the plain dial's handshakes cost about
/// 1 ms of CPU per side in a release build and a few in a debug one, which does not shrink
/// with the round trip. Why 25 ms: on a LAN, round trips of a fraction of a millisecond would
/// otherwise start the hole punch before a reachable peer's plain dial is through its
/// handshake, and the two would race; 25 ms is several handshakes on a loaded machine and
/// less than one round trip across a continent.
pub const MIN_UNILATERAL_HEAD_START: Duration = Duration::from_millis(25);

/// How long the plain dial of the unilateral upgrade runs alone, given the round trip the
/// first `CONNECT` exchange measured (`None` while it has not): `unilateral_head_start`, or
/// `unilateral_head_start_rtts` round trips (at least [`MIN_UNILATERAL_HEAD_START`]) when
/// that is shorter.
pub fn head_start(config: &DcutrConfig, rtt: Option<Duration>) -> Duration {
    match rtt {
        Some(rtt) if config.unilateral_head_start_rtts > 0 => config.unilateral_head_start.min(
            rtt.saturating_mul(config.unilateral_head_start_rtts)
                .max(MIN_UNILATERAL_HEAD_START),
        ),
        _ => config.unilateral_head_start,
    }
}

/// How long the initiator waits for the remote's identify answer (its listen addresses)
/// before deciding whether a unilateral upgrade is worth a dial. Why 2 s: identify's answer
/// takes one round trip over the relay; a remote that does not answer over a relayed
/// connection fails the request at once, so the wait is only ever spent on a stalled one.
pub const IDENTIFY_WAIT: Duration = Duration::from_secs(2);

/// Pause between attempts. Why 1 s: the remote ends its side of a failed attempt when its
/// own dial times out, at about the time ours does; a retry that came sooner would find its
/// previous attempt still running and be refused.
pub const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// The service's policy.
#[derive(Debug, Clone)]
pub struct DcutrConfig {
    /// Attempts per relayed connection (the peer that opens the stream counts them).
    pub max_attempts: u32,
    /// How long the direct dials of one attempt may take.
    pub dial_timeout: Duration,
    /// How long one message of the exchange may take.
    pub stream_timeout: Duration,
    /// How long the relayed connection stays open once a direct one exists; `None` keeps it.
    pub close_relayed_after: Option<Duration>,
    /// Offer and dial loopback and private addresses too. Off by default: behind a NAT
    /// they name the wrong host; on for test networks (one machine, a LAN).
    pub allow_private_addrs: bool,
    /// Before hole punching, the initiator dials the remote's advertised addresses (those
    /// [`usable`] for a hole punch) plainly, for at most this long: a remote that is
    /// reachable needs no hole punch (the spec's unilateral connection upgrade). `None`
    /// skips that dial.
    pub unilateral_dial_timeout: Option<Duration>,
    /// How long the plain dial runs alone before hole punching starts beside it (when it
    /// has not failed or had nothing to dial by then). See
    /// [`DEFAULT_UNILATERAL_HEAD_START`].
    pub unilateral_head_start: Duration,
    /// The head start ends sooner, this many round trips of the first `CONNECT` exchange
    /// after the upgrade began (but not before [`MIN_UNILATERAL_HEAD_START`]), when that
    /// exchange has measured one ([`head_start`]). `0` keeps the whole head start. See
    /// [`DEFAULT_UNILATERAL_HEAD_START_RTTS`].
    pub unilateral_head_start_rtts: u32,
}

impl Default for DcutrConfig {
    fn default() -> Self {
        DcutrConfig {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            dial_timeout: DEFAULT_DIAL_TIMEOUT,
            stream_timeout: DEFAULT_STREAM_TIMEOUT,
            close_relayed_after: Some(DEFAULT_RELAYED_GRACE),
            allow_private_addrs: false,
            unilateral_dial_timeout: Some(DEFAULT_UNILATERAL_DIAL_TIMEOUT),
            unilateral_head_start: DEFAULT_UNILATERAL_HEAD_START,
            unilateral_head_start_rtts: DEFAULT_UNILATERAL_HEAD_START_RTTS,
        }
    }
}

impl DcutrConfig {
    /// This configuration with loopback and private addresses allowed (test networks).
    #[must_use]
    pub fn allowing_private_addrs(mut self) -> Self {
        self.allow_private_addrs = true;
        self
    }
}

/// Whether `addr` is worth offering or dialing for a hole punch: a literal IP (not
/// unspecified, not multicast; public unless `allow_private`), not relayed.
pub fn usable(addr: &Multiaddr, allow_private: bool) -> bool {
    let Some(ip) = first_ip(addr) else {
        return false;
    };
    if !matches!(
        addr.iter().next(),
        Some(Protocol::Ip4(_) | Protocol::Ip6(_))
    ) {
        return false;
    }
    !ip.is_unspecified()
        && !ip.is_multicast()
        && (allow_private || is_public_ip(ip))
        && !addr.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

/// The addresses to offer or dial: the usable ones of `addrs`, `/p2p` suffix dropped,
/// without duplicates, at most [`MAX_ADDRS`], in the order given.
pub fn select(addrs: impl IntoIterator<Item = Multiaddr>, allow_private: bool) -> Vec<Multiaddr> {
    let mut out: Vec<Multiaddr> = Vec::new();
    for a in addrs {
        let a = split_peer_id(&a).0;
        if usable(&a, allow_private) && !out.contains(&a) {
            out.push(a);
            if out.len() == MAX_ADDRS {
                break;
            }
        }
    }
    out
}

/// When the peer that sent `SYNC` dials `addr`.
///
/// - TCP: half the round trip it measured from its `CONNECT` to the answer, so both SYNs
///   leave at about the same time (the `SYNC` takes half a round trip to arrive and the
///   other side dials on arrival). A SYN sent earlier could meet a NAT that answers it with
///   a reset.
/// - QUIC: at once. This side only sends random punching packets. Until the other side's
///   first Initial opens its own NAT, that NAT drops them, which does no harm. Waiting
///   has a cost: when that Initial reaches our NAT before our first packet has opened it,
///   the Initial is lost. QUIC resends it only after its probe timeout, about 0.3 s later
///   (D50). Timer jitter makes that likely when the direct path is much shorter than the
///   relayed one.
pub fn sync_delay(rtt: Duration, addr: &Multiaddr) -> Duration {
    if addr.iter().any(|p| matches!(p, Protocol::QuicV1)) {
        Duration::ZERO
    } else {
        rtt / 2
    }
}

/// What the service did, for [`Dcutr::stats`](crate::Dcutr::stats).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DcutrStats {
    /// Upgrades we initiated (inbound relayed connections).
    pub initiated: u64,
    /// Exchanges the remote initiated (we dialed on `SYNC`).
    pub answered: u64,
    /// Attempts made in all (each a `CONNECT`/`SYNC` exchange and its dials).
    pub attempts: u64,
    /// Upgrades that ended with a direct connection.
    pub succeeded: u64,
    /// Upgrades that ended without one.
    pub failed: u64,
    /// Of the upgrades that succeeded, those a plain dial to the remote's advertised
    /// addresses achieved, with no hole punch (the unilateral upgrade).
    pub unilateral: u64,
    /// Streams refused: not over a relayed connection, or another upgrade with the peer
    /// already in progress.
    pub refused: u64,
}

/// Upgrades in progress, per peer: at most one at a time with each peer.
#[derive(Debug, Default)]
pub struct Upgrades {
    in_progress: HashMap<PeerId, u32>,
    stats: DcutrStats,
}

/// Which side of the exchange we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// We received the relayed connection and open the DCUtR stream (the spec's B).
    Initiator,
    /// We dialed through the relay and answer the stream (the spec's A).
    Responder,
}

impl Upgrades {
    /// Starts an upgrade with `peer` from `side`, unless one is in progress or a direct
    /// connection exists. False means do nothing (counted when we refuse a remote's stream).
    pub fn start(&mut self, peer: PeerId, side: Side, has_direct: bool) -> bool {
        if has_direct || self.in_progress.contains_key(&peer) {
            if side == Side::Responder {
                self.stats.refused += 1;
            }
            return false;
        }
        self.in_progress.insert(peer, 0);
        match side {
            Side::Initiator => self.stats.initiated += 1,
            Side::Responder => self.stats.answered += 1,
        }
        true
    }

    /// Counts a stream refused for another reason (it did not come over a relayed
    /// connection).
    pub fn refuse(&mut self) {
        self.stats.refused += 1;
    }

    /// Counts an attempt with `peer`; returns its number (1 for the first).
    pub fn attempt(&mut self, peer: PeerId) -> u32 {
        self.stats.attempts += 1;
        let n = self.in_progress.entry(peer).or_insert(0);
        *n += 1;
        *n
    }

    /// The upgrade with `peer` ended; returns the attempts it took.
    pub fn finish(&mut self, peer: &PeerId, succeeded: bool) -> u32 {
        if succeeded {
            self.stats.succeeded += 1;
        } else {
            self.stats.failed += 1;
        }
        self.in_progress.remove(peer).unwrap_or(0)
    }

    /// The upgrade with `peer` we initiated ended with a direct connection from the plain
    /// dial, which runs beside the hole-punching attempts; returns the attempts begun.
    pub fn finish_unilateral(&mut self, peer: &PeerId) -> u32 {
        self.stats.succeeded += 1;
        self.stats.unilateral += 1;
        self.in_progress.remove(peer).unwrap_or(0)
    }

    /// Whether an upgrade with `peer` is in progress.
    pub fn in_progress(&self, peer: &PeerId) -> bool {
        self.in_progress.contains_key(peer)
    }

    /// The counters.
    pub fn stats(&self) -> DcutrStats {
        self.stats.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_usable_addresses_are_selected_once_each() {
        let peer = PeerId::random();
        let got = select(
            [
                a("/ip4/8.8.8.8/tcp/1"),
                a(&format!("/ip4/8.8.8.8/tcp/1/p2p/{peer}")),
                a("/ip4/192.168.0.2/tcp/1"),
                a("/ip4/0.0.0.0/tcp/1"),
                a("/dns4/example.com/tcp/1"),
                a(
                    "/ip4/9.9.9.9/tcp/1/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit",
                ),
                a("/ip6/2001:db8::1/udp/1/quic-v1"),
            ],
            false,
        );
        assert_eq!(
            got,
            vec![a("/ip4/8.8.8.8/tcp/1"), a("/ip6/2001:db8::1/udp/1/quic-v1")]
        );
        let local = select([a("/ip4/127.0.0.1/tcp/1"), a("/ip4/0.0.0.0/tcp/2")], true);
        assert_eq!(local, vec![a("/ip4/127.0.0.1/tcp/1")]);
    }

    #[test]
    fn selection_is_capped() {
        let many = (0..100).map(|p| a(&format!("/ip4/8.8.8.8/tcp/{p}")));
        assert_eq!(select(many, false).len(), MAX_ADDRS);
    }

    #[test]
    fn a_tcp_dial_waits_half_the_round_trip_and_a_quic_one_does_not() {
        let tcp = a("/ip4/8.8.8.8/tcp/4001");
        let quic = a("/ip4/8.8.8.8/udp/4001/quic-v1");
        assert_eq!(
            sync_delay(Duration::from_millis(80), &tcp),
            Duration::from_millis(40)
        );
        assert_eq!(sync_delay(Duration::ZERO, &tcp), Duration::ZERO);
        assert_eq!(sync_delay(Duration::from_millis(80), &quic), Duration::ZERO);
    }

    #[test]
    fn the_head_start_ends_with_the_exchange_between_25_and_250_ms() {
        let config = DcutrConfig::default();
        let ms = Duration::from_millis;
        // Not measured yet: the whole head start.
        assert_eq!(head_start(&config, None), ms(250));
        // A LAN neighbour 1 ms away: the floor, not 1 ms.
        assert_eq!(head_start(&config, Some(ms(1))), ms(25));
        assert_eq!(head_start(&config, Some(ms(40))), ms(40));
        // Far away: capped.
        assert_eq!(head_start(&config, Some(ms(400))), ms(250));
        assert_eq!(head_start(&config, Some(Duration::MAX)), ms(250));
        // More round trips when configured.
        let three = DcutrConfig {
            unilateral_head_start_rtts: 3,
            ..DcutrConfig::default()
        };
        assert_eq!(head_start(&three, Some(ms(40))), ms(120));
        // 0 turns the shortening off.
        let whole = DcutrConfig {
            unilateral_head_start_rtts: 0,
            ..DcutrConfig::default()
        };
        assert_eq!(head_start(&whole, Some(ms(1))), ms(250));
    }

    #[test]
    fn one_upgrade_per_peer_and_none_with_a_direct_connection() {
        let mut u = Upgrades::default();
        let peer = PeerId::random();
        assert!(!u.start(peer, Side::Initiator, true));
        assert!(u.start(peer, Side::Initiator, false));
        assert!(!u.start(peer, Side::Responder, false), "one at a time");
        assert_eq!(u.attempt(peer), 1);
        assert_eq!(u.attempt(peer), 2);
        assert_eq!(u.finish(&peer, true), 2);
        assert!(!u.in_progress(&peer));
        let s = u.stats();
        assert_eq!(
            (s.initiated, s.attempts, s.succeeded, s.refused),
            (1, 2, 1, 1)
        );
    }

    #[test]
    fn a_unilateral_upgrade_counts_as_a_success_without_attempts() {
        let mut u = Upgrades::default();
        let peer = PeerId::random();
        assert!(u.start(peer, Side::Initiator, false));
        u.finish_unilateral(&peer);
        assert!(!u.in_progress(&peer));
        let s = u.stats();
        assert_eq!(
            (s.initiated, s.attempts, s.succeeded, s.unilateral, s.failed),
            (1, 0, 1, 1, 0)
        );
        // The next relayed connection from the peer may start again.
        assert!(u.start(peer, Side::Initiator, false));
    }
}
