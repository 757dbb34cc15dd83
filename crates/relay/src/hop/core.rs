//! The relay's bookkeeping, sans-IO: which peers hold reservations until when, which circuits
//! are open, and the limits that refuse more. No socket, no task, no clock: `now` (monotonic)
//! and `unix_now` (seconds, for the expiry written on the wire) are passed in.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use lp2p_core::PeerId;

use crate::message::{Limit, Status};

/// How long a reservation lasts. Why one hour: the spec's and go/rust's default; clients
/// renew well before (ours at three quarters of the way).
pub const DEFAULT_RESERVATION_DURATION: Duration = Duration::from_secs(3600);
/// Most reservations at once. Why 128: rust-libp2p's default; each costs a table entry and
/// the connection the reserving peer keeps open.
pub const DEFAULT_MAX_RESERVATIONS: usize = 128;
/// Most reservations from one IP address. Why 4: one host behind a NAT runs a few nodes at
/// most; more from one address is a flood of fresh identities.
pub const DEFAULT_MAX_RESERVATIONS_PER_IP: usize = 4;
/// Most circuits at once. Why 16: rust-libp2p's default; a relay is a rendezvous for hole
/// punching, not a bulk proxy.
pub const DEFAULT_MAX_CIRCUITS: usize = 16;
/// Most circuits one peer may have open as their source. Why 4: rust-libp2p's default.
pub const DEFAULT_MAX_CIRCUITS_PER_PEER: usize = 4;
/// Most circuits from one IP address as their source. Why 8: twice the per-peer limit, for
/// a few peers behind one NAT.
pub const DEFAULT_MAX_CIRCUITS_PER_IP: usize = 8;
/// Duration limit of each circuit. Why 2 minutes: go's and rust's default; long enough for
/// DCUtR's exchanges and a few retries.
pub const DEFAULT_CIRCUIT_DURATION: Duration = Duration::from_secs(120);
/// Bytes each circuit may carry in each direction. Why 128 KiB: go's and rust's default;
/// enough for the handshakes, identify and hole punching, not for bulk data.
pub const DEFAULT_CIRCUIT_DATA: u64 = 1 << 17;

/// Limits of the hop service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HopConfig {
    /// See [`DEFAULT_RESERVATION_DURATION`].
    pub reservation_duration: Duration,
    /// See [`DEFAULT_MAX_RESERVATIONS`].
    pub max_reservations: usize,
    /// See [`DEFAULT_MAX_RESERVATIONS_PER_IP`].
    pub max_reservations_per_ip: usize,
    /// See [`DEFAULT_MAX_CIRCUITS`].
    pub max_circuits: usize,
    /// See [`DEFAULT_MAX_CIRCUITS_PER_PEER`].
    pub max_circuits_per_peer: usize,
    /// See [`DEFAULT_MAX_CIRCUITS_PER_IP`].
    pub max_circuits_per_ip: usize,
    /// The limits of every circuit (told to both ends, enforced by resetting both streams).
    pub circuit_limit: Limit,
}

impl Default for HopConfig {
    fn default() -> Self {
        HopConfig {
            reservation_duration: DEFAULT_RESERVATION_DURATION,
            max_reservations: DEFAULT_MAX_RESERVATIONS,
            max_reservations_per_ip: DEFAULT_MAX_RESERVATIONS_PER_IP,
            max_circuits: DEFAULT_MAX_CIRCUITS,
            max_circuits_per_peer: DEFAULT_MAX_CIRCUITS_PER_PEER,
            max_circuits_per_ip: DEFAULT_MAX_CIRCUITS_PER_IP,
            circuit_limit: Limit {
                duration: Some(DEFAULT_CIRCUIT_DURATION),
                data: Some(DEFAULT_CIRCUIT_DATA),
            },
        }
    }
}

/// Counters of what the relay granted and refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HopStats {
    /// Reservations granted (renewals included).
    pub reservations_accepted: u64,
    /// Reservations refused at a limit.
    pub reservations_refused_limit: u64,
    /// Reservations refused because they came over a relayed connection.
    pub reservations_refused_relayed: u64,
    /// Circuits opened.
    pub circuits_accepted: u64,
    /// Circuit requests to a peer without a reservation.
    pub circuits_refused_no_reservation: u64,
    /// Circuit requests refused at a limit.
    pub circuits_refused_limit: u64,
    /// Circuit requests refused because they came over a relayed connection.
    pub circuits_refused_relayed: u64,
    /// Circuits reset because they went over their duration or data limit.
    pub circuits_over_limit: u64,
    /// Requests that did not decode or came out of order.
    pub malformed_requests: u64,
}

/// What a granted reservation looks like on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// Expiry in Unix seconds.
    pub expire_unix: u64,
    /// The limits of circuits to the reserving peer.
    pub limit: Limit,
    /// Whether it renewed a live reservation.
    pub renewal: bool,
}

/// Identifies a circuit inside a [`HopCore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CircuitId(u64);

#[derive(Debug, Clone, Copy)]
struct ReservationEntry {
    ip: Option<IpAddr>,
    expires: Instant,
}

#[derive(Debug, Clone, Copy)]
struct CircuitEntry {
    src: PeerId,
    src_ip: Option<IpAddr>,
}

/// The relay's state machine (see the module docs).
#[derive(Debug)]
pub struct HopCore {
    config: HopConfig,
    reservations: HashMap<PeerId, ReservationEntry>,
    circuits: HashMap<CircuitId, CircuitEntry>,
    next_circuit: u64,
    stats: HopStats,
}

impl HopCore {
    /// A relay with no reservations.
    pub fn new(config: HopConfig) -> HopCore {
        HopCore {
            config,
            reservations: HashMap::new(),
            circuits: HashMap::new(),
            next_circuit: 0,
            stats: HopStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &HopConfig {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> HopStats {
        self.stats
    }

    /// Counts a request that did not decode or came out of order.
    pub fn count_malformed(&mut self) {
        self.stats.malformed_requests = self.stats.malformed_requests.saturating_add(1);
    }

    /// Counts a circuit reset at its limit.
    pub fn count_over_limit(&mut self) {
        self.stats.circuits_over_limit = self.stats.circuits_over_limit.saturating_add(1);
    }

    /// A reservation request from `peer` at `ip` (`None` for a non-IP address), over a
    /// relayed connection or not.
    pub fn reserve(
        &mut self,
        peer: PeerId,
        ip: Option<IpAddr>,
        relayed: bool,
        now: Instant,
        unix_now: u64,
    ) -> Result<Grant, Status> {
        self.expire(now);
        if relayed {
            self.stats.reservations_refused_relayed =
                self.stats.reservations_refused_relayed.saturating_add(1);
            return Err(Status::PermissionDenied);
        }
        let renewal = self.reservations.contains_key(&peer);
        if !renewal {
            let same_ip = ip.map_or(0, |ip| {
                self.reservations
                    .values()
                    .filter(|r| r.ip == Some(ip))
                    .count()
            });
            if self.reservations.len() >= self.config.max_reservations
                || (ip.is_some() && same_ip >= self.config.max_reservations_per_ip)
            {
                self.stats.reservations_refused_limit =
                    self.stats.reservations_refused_limit.saturating_add(1);
                return Err(Status::ResourceLimitExceeded);
            }
        }
        let duration = self.config.reservation_duration;
        self.reservations.insert(
            peer,
            ReservationEntry {
                ip,
                expires: now.checked_add(duration).unwrap_or(now),
            },
        );
        self.stats.reservations_accepted = self.stats.reservations_accepted.saturating_add(1);
        Ok(Grant {
            expire_unix: unix_now.saturating_add(duration.as_secs()),
            limit: self.config.circuit_limit,
            renewal,
        })
    }

    /// Whether `peer` holds a live reservation.
    pub fn has_reservation(&self, peer: &PeerId, now: Instant) -> bool {
        self.reservations.get(peer).is_some_and(|r| r.expires > now)
    }

    /// Live reservations.
    pub fn num_reservations(&self) -> usize {
        self.reservations.len()
    }

    /// Open circuits.
    pub fn num_circuits(&self) -> usize {
        self.circuits.len()
    }

    /// A circuit request from `src` at `src_ip` to `dst`. On success the circuit counts
    /// against the limits until [`circuit_closed`](Self::circuit_closed).
    pub fn connect(
        &mut self,
        src: PeerId,
        src_ip: Option<IpAddr>,
        dst: PeerId,
        relayed: bool,
        now: Instant,
    ) -> Result<(CircuitId, Limit), Status> {
        self.expire(now);
        if relayed {
            self.stats.circuits_refused_relayed =
                self.stats.circuits_refused_relayed.saturating_add(1);
            return Err(Status::PermissionDenied);
        }
        if !self.has_reservation(&dst, now) {
            self.stats.circuits_refused_no_reservation =
                self.stats.circuits_refused_no_reservation.saturating_add(1);
            return Err(Status::NoReservation);
        }
        let from_peer = self.circuits.values().filter(|c| c.src == src).count();
        let from_ip = src_ip.map_or(0, |ip| {
            self.circuits
                .values()
                .filter(|c| c.src_ip == Some(ip))
                .count()
        });
        if self.circuits.len() >= self.config.max_circuits
            || from_peer >= self.config.max_circuits_per_peer
            || (src_ip.is_some() && from_ip >= self.config.max_circuits_per_ip)
        {
            self.stats.circuits_refused_limit = self.stats.circuits_refused_limit.saturating_add(1);
            return Err(Status::ResourceLimitExceeded);
        }
        let id = CircuitId(self.next_circuit);
        self.next_circuit = self.next_circuit.wrapping_add(1);
        self.circuits.insert(id, CircuitEntry { src, src_ip });
        self.stats.circuits_accepted = self.stats.circuits_accepted.saturating_add(1);
        Ok((id, self.config.circuit_limit))
    }

    /// A circuit ended (either side closed, a limit was hit, or setting it up failed).
    pub fn circuit_closed(&mut self, id: CircuitId) {
        self.circuits.remove(&id);
    }

    /// The last connection to `peer` closed: its reservation ends with it.
    pub fn peer_disconnected(&mut self, peer: &PeerId) -> bool {
        self.reservations.remove(peer).is_some()
    }

    /// Drops the reservations that expired by `now`.
    pub fn expire(&mut self, now: Instant) {
        self.reservations.retain(|_, r| r.expires > now);
    }

    /// When the next reservation expires.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.reservations.values().map(|r| r.expires).min()
    }
}

/// Which way bytes flow through a circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the source (the peer that asked for the circuit) to the target.
    SrcToDst,
    /// From the target to the source.
    DstToSrc,
}

/// What a circuit may still carry, sans-IO: bytes per direction and a deadline.
#[derive(Debug, Clone, Copy)]
pub struct CircuitBudget {
    data: Option<u64>,
    used: [u64; 2],
    deadline: Option<Instant>,
}

impl CircuitBudget {
    /// The budget of a circuit opened at `now` under `limit`.
    pub fn new(limit: Limit, now: Instant) -> CircuitBudget {
        CircuitBudget {
            data: limit.data,
            used: [0, 0],
            deadline: limit.duration.and_then(|d| now.checked_add(d)),
        }
    }

    /// Counts `n` bytes read in `dir`; false when that goes over the data limit (the relay
    /// then resets both streams without forwarding them).
    pub fn spend(&mut self, dir: Direction, n: usize) -> bool {
        let slot = match dir {
            Direction::SrcToDst => &mut self.used[0],
            Direction::DstToSrc => &mut self.used[1],
        };
        *slot = slot.saturating_add(n as u64);
        self.data.is_none_or(|max| *slot <= max)
    }

    /// Bytes carried so far in `dir`.
    pub fn used(&self, dir: Direction) -> u64 {
        match dir {
            Direction::SrcToDst => self.used[0],
            Direction::DstToSrc => self.used[1],
        }
    }

    /// When the circuit must end, if it has a duration limit.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether the duration limit has passed at `now`.
    pub fn is_expired(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|d| now >= d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lp2p_core::Keypair;

    fn peer() -> PeerId {
        Keypair::generate_ed25519().public().to_peer_id()
    }

    #[allow(clippy::unnecessary_wraps)] // the core takes an optional IP (non-IP transports)
    fn ip(n: u8) -> Option<IpAddr> {
        Some(IpAddr::from([198, 51, 100, n]))
    }

    #[test]
    fn reservation_expires_and_renews() {
        let t0 = Instant::now();
        let mut core = HopCore::new(HopConfig::default());
        let a = peer();
        let g = core.reserve(a, ip(1), false, t0, 1000).unwrap();
        assert_eq!(g.expire_unix, 1000 + 3600);
        assert!(!g.renewal);
        assert!(core.has_reservation(&a, t0));
        let later = t0 + Duration::from_secs(1800);
        let g2 = core.reserve(a, ip(1), false, later, 2800).unwrap();
        assert!(g2.renewal);
        // The renewal pushed the expiry: still valid after the first one's.
        assert!(core.has_reservation(&a, t0 + Duration::from_secs(3700)));
        assert_eq!(core.poll_timeout(), Some(later + Duration::from_secs(3600)));
        core.expire(later + Duration::from_secs(3600));
        assert!(!core.has_reservation(&a, later + Duration::from_secs(3600)));
        assert_eq!(core.num_reservations(), 0);
    }

    #[test]
    fn reservations_over_relayed_connections_are_refused() {
        let mut core = HopCore::new(HopConfig::default());
        assert_eq!(
            core.reserve(peer(), ip(1), true, Instant::now(), 0),
            Err(Status::PermissionDenied)
        );
        assert_eq!(core.stats().reservations_refused_relayed, 1);
        assert_eq!(core.num_reservations(), 0);
    }

    #[test]
    fn reservation_flood_is_refused_per_ip_and_in_total() {
        let now = Instant::now();
        let mut core = HopCore::new(HopConfig {
            max_reservations: 6,
            max_reservations_per_ip: 2,
            ..HopConfig::default()
        });
        // One IP, many identities: two get in.
        let mut refused = 0;
        for _ in 0..10 {
            if core.reserve(peer(), ip(1), false, now, 0).is_err() {
                refused += 1;
            }
        }
        assert_eq!(refused, 8);
        // A renewal of an existing one is not a new reservation.
        let p = peer();
        core.reserve(p, ip(2), false, now, 0).unwrap();
        core.reserve(p, ip(2), false, now, 0).unwrap();
        for n in 3..10 {
            let _ = core.reserve(peer(), ip(n), false, now, 0);
        }
        assert_eq!(core.num_reservations(), 6);
        assert_eq!(core.stats().reservations_refused_limit, 8 + 4);
        // Disconnecting frees the slot.
        assert!(core.peer_disconnected(&p));
        assert!(core.reserve(peer(), ip(20), false, now, 0).is_ok());
    }

    #[test]
    fn circuits_need_a_reservation_and_respect_limits() {
        let now = Instant::now();
        let mut core = HopCore::new(HopConfig {
            max_circuits: 3,
            max_circuits_per_peer: 2,
            max_circuits_per_ip: 2,
            ..HopConfig::default()
        });
        let (src, dst) = (peer(), peer());
        assert_eq!(
            core.connect(src, ip(1), dst, false, now),
            Err(Status::NoReservation)
        );
        core.reserve(dst, ip(9), false, now, 0).unwrap();
        assert_eq!(
            core.connect(src, ip(1), dst, true, now),
            Err(Status::PermissionDenied)
        );
        let (c1, limit) = core.connect(src, ip(1), dst, false, now).unwrap();
        assert_eq!(limit, HopConfig::default().circuit_limit);
        core.connect(src, ip(1), dst, false, now).unwrap();
        // Third from the same peer: over the per-peer limit.
        assert_eq!(
            core.connect(src, ip(1), dst, false, now),
            Err(Status::ResourceLimitExceeded)
        );
        // Another peer on the same IP: over the per-IP limit.
        assert_eq!(
            core.connect(peer(), ip(1), dst, false, now),
            Err(Status::ResourceLimitExceeded)
        );
        core.connect(peer(), ip(2), dst, false, now).unwrap();
        // Total limit.
        assert_eq!(
            core.connect(peer(), ip(3), dst, false, now),
            Err(Status::ResourceLimitExceeded)
        );
        core.circuit_closed(c1);
        assert!(core.connect(peer(), ip(3), dst, false, now).is_ok());
        let s = core.stats();
        assert_eq!(s.circuits_accepted, 4);
        assert_eq!(s.circuits_refused_limit, 3);
        assert_eq!(s.circuits_refused_no_reservation, 1);
        assert_eq!(s.circuits_refused_relayed, 1);
        // An expired reservation admits no circuit.
        let later = now + Duration::from_secs(3601);
        assert_eq!(
            core.connect(peer(), ip(4), dst, false, later),
            Err(Status::NoReservation)
        );
    }

    #[test]
    fn budget_counts_each_direction_and_the_deadline() {
        let now = Instant::now();
        let mut b = CircuitBudget::new(
            Limit {
                duration: Some(Duration::from_secs(10)),
                data: Some(100),
            },
            now,
        );
        assert!(b.spend(Direction::SrcToDst, 60));
        assert!(b.spend(Direction::DstToSrc, 100));
        assert!(b.spend(Direction::SrcToDst, 40));
        assert!(!b.spend(Direction::SrcToDst, 1));
        assert!(!b.spend(Direction::DstToSrc, usize::MAX));
        assert!(!b.is_expired(now + Duration::from_secs(9)));
        assert!(b.is_expired(now + Duration::from_secs(10)));
        let mut unlimited = CircuitBudget::new(Limit::default(), now);
        assert!(unlimited.spend(Direction::SrcToDst, usize::MAX));
        assert!(unlimited.deadline().is_none());
    }
}
