//! The sans-IO mDNS state machine: no socket, no task, no clock.
//!
//! The shell tells [`Core`] which interfaces exist ([`Core::set_interfaces`], with their
//! subnets: [`Core::set_subnets`]), which addresses we listen on ([`Core::set_listen_addrs`])
//! and what arrived on each interface's socket ([`Core::handle_packet`]), with the current
//! time; it sends what [`Core::poll_transmit`] returns from that interface's socket to where
//! the [`Transmit`] says (the multicast group, or one querier by unicast), calls
//! [`Core::handle_timeout`] at [`Core::poll_timeout`], and passes on [`Core::poll_event`]'s
//! discoveries and expiries.
//!
//! Rules kept here: start-up queries doubling from `initial_query_interval` to
//! `query_interval`, at least a second apart, plus one when a peer reaches 80 % of its TTL
//! (RFC 6762 §5.2); answers after a random 20-120 ms and at most one multicast per interface
//! per `min_response_interval` (RFC 6762 §6), split to the interface's packet size; where an
//! answer goes (RFC 6762 §5.4, §6.7): by unicast to a querier whose questions for us all ask
//! for it (QU) when we multicast that answer within the last quarter of its TTL, by unicast
//! and multicast to a legacy querier (source port not 5353), by multicast otherwise, unicast
//! only to a querier on the interface's link and at most [`MAX_UNICAST_ANSWERS`] per
//! interface per second; announced addresses checked (no loopback from elsewhere), TTLs
//! capped, peers and addresses bounded, goodbyes honoured after one second (RFC 6762 §10.1);
//! known-answer suppression (RFC 6762 §7.1): our queries list the PTRs we hold with more
//! than half their TTL left (at most [`MAX_KNOWN_ANSWERS`], as many as fit one packet), and a
//! query that lists our PTR with at least half our TTL left gets no find-all answer.

#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use lp2p_core::{Multiaddr, PeerId};

use crate::config::{
    GOODBYE_DELAY, MAX_KNOWN_ANSWERS, MAX_UNICAST_ANSWERS, MDNS_PORT, MdnsConfig,
    RESPONSE_DELAY_MAX, RESPONSE_DELAY_MIN, UNICAST_WINDOW,
};
use crate::iface::{self, Family, IfaceKey, Interface, Subnet};
use crate::proto::{self, Advert, Announcement, LegacyQuery, LocalNames, Wants};
use crate::wire::{Message, Name};
use crate::{MdnsError, MdnsStats};

/// Queries on one interface are at least this far apart (RFC 6762 §5.2).
const MIN_QUERY_GAP: Duration = Duration::from_secs(1);

/// Where a [`Transmit`] goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// The mDNS group of the interface: `224.0.0.251:5353` or `[ff02::fb]:5353`.
    Multicast,
    /// One querier, by unicast from our port 5353: the source address and port of its query
    /// (RFC 6762 §5.4, §6.7). An IPv6 link-local address carries the interface as its scope.
    Unicast(SocketAddr),
}

/// A packet to send on `iface`'s socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The interface and IP version to send on.
    pub iface: IfaceKey,
    /// Where to send it.
    pub to: Destination,
    /// The DNS message.
    pub payload: Vec<u8>,
}

/// What the core reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A peer we did not know announced itself.
    Discovered {
        /// The peer.
        peer: PeerId,
        /// Its usable addresses (without `/p2p`).
        addrs: Vec<Multiaddr>,
        /// How long they are valid.
        ttl: Duration,
    },
    /// A known peer announced addresses we did not have; `addrs` is the full current set.
    Updated {
        /// The peer.
        peer: PeerId,
        /// All its current addresses.
        addrs: Vec<Multiaddr>,
        /// How long the announced ones are valid.
        ttl: Duration,
    },
    /// A known peer announced the same addresses again (their TTL starts over).
    Refreshed {
        /// The peer.
        peer: PeerId,
        /// The addresses announced.
        addrs: Vec<Multiaddr>,
        /// How long they are valid.
        ttl: Duration,
    },
    /// Every address of a peer expired (or it said goodbye).
    Expired {
        /// The peer.
        peer: PeerId,
    },
}

/// Sockets to open and close after [`Core::set_interfaces`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterfaceChanges {
    /// Interfaces (and IP versions) that need a socket now.
    pub added: Vec<IfaceKey>,
    /// Interfaces whose socket should be closed.
    pub removed: Vec<IfaceKey>,
}

struct IfaceState {
    iface: Interface,
    next_query: Instant,
    last_query: Option<Instant>,
    backoff: Duration,
    /// When we last multicast an answer here.
    last_response: Option<Instant>,
    /// When to multicast an answer, and what.
    pending: Option<(Instant, Wants)>,
    /// When each answer was last multicast here, with the advert as it is now.
    multicast_at: Multicasts,
    /// Unicast answers waiting for their time (a handful: see [`MAX_UNICAST_ANSWERS`]).
    unicast: Vec<UnicastAnswer>,
    /// The current [`UNICAST_WINDOW`]: when it began and the unicast answers it scheduled.
    unicast_window: Option<(Instant, usize)>,
}

impl IfaceState {
    fn new(iface: Interface, now: Instant, backoff: Duration) -> IfaceState {
        IfaceState {
            iface,
            next_query: now,
            last_query: None,
            backoff,
            last_response: None,
            pending: None,
            multicast_at: Multicasts::default(),
            unicast: Vec::new(),
            unicast_window: None,
        }
    }
}

/// A unicast answer waiting for its time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct UnicastAnswer {
    at: Instant,
    to: SocketAddr,
    wants: Wants,
    /// The legacy query it answers (RFC 6762 §6.7); `None` for QU questions (§5.4).
    legacy: Option<LegacyQuery>,
}

/// When each kind of answer was last multicast on an interface (RFC 6762 §5.4: a QU question
/// is answered by unicast only if its answer was multicast within a quarter of its TTL, so
/// every cache on the link stays fresh).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Multicasts {
    peers: Option<Instant>,
    meta: Option<Instant>,
    txt: Option<Instant>,
    srv: Option<Instant>,
    a: Option<Instant>,
    aaaa: Option<Instant>,
}

impl Multicasts {
    /// The answers in `wants` were multicast at `now`.
    fn record(&mut self, wants: Wants, now: Instant) {
        for (asked, at) in [
            (wants.peers, &mut self.peers),
            (wants.meta, &mut self.meta),
            (wants.txt, &mut self.txt),
            (wants.srv, &mut self.srv),
            (wants.a, &mut self.a),
            (wants.aaaa, &mut self.aaaa),
        ] {
            if asked {
                *at = Some(now);
            }
        }
    }

    /// Whether every answer in `wants` was multicast less than `within` before `now`.
    fn all_within(&self, wants: Wants, now: Instant, within: Duration) -> bool {
        [
            (wants.peers, self.peers),
            (wants.meta, self.meta),
            (wants.txt, self.txt),
            (wants.srv, self.srv),
            (wants.a, self.a),
            (wants.aaaa, self.aaaa),
        ]
        .into_iter()
        .all(|(asked, at)| !asked || at.is_some_and(|t| now.saturating_duration_since(t) < within))
    }
}

struct PeerEntry {
    instance: Name,
    /// Each address with its expiry.
    addrs: Vec<(Multiaddr, Instant)>,
    /// When to query again before the addresses expire; `None` once done.
    refresh_at: Option<Instant>,
    /// The `<service> PTR <instance>` record we hold, per interface it arrived on: its TTL
    /// (seconds, capped at `max_ttl`) and when it arrived. Listed as a known answer in our
    /// queries on that interface while more than half the TTL is left (RFC 6762 §7.1).
    known: BTreeMap<IfaceKey, (u32, Instant)>,
}

/// The mDNS state machine of one node.
pub struct Core {
    config: MdnsConfig,
    local: PeerId,
    peer_name: String,
    names: LocalNames,
    query: Vec<u8>,
    ttl: u32,
    listen: Vec<Multiaddr>,
    ifaces: BTreeMap<IfaceKey, IfaceState>,
    /// The interfaces' subnets: who is on each link (unicast answers go only there).
    subnets: Vec<Subnet>,
    peers: HashMap<PeerId, PeerEntry>,
    /// Instance name -> peer, for goodbyes that carry only a PTR.
    instances: HashMap<Name, PeerId>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: MdnsStats,
    rng: u64,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("local", &self.local)
            .field("peer_name", &self.peer_name)
            .field("interfaces", &self.ifaces.len())
            .field("peers", &self.peers.len())
            .finish_non_exhaustive()
    }
}

impl Core {
    /// A core for `local`, with a random peer name drawn from `seed` (the shell passes a
    /// random seed; tests a fixed one).
    pub fn new(config: MdnsConfig, local: PeerId, seed: u64) -> Result<Core, MdnsError> {
        let mut rng = seed;
        let peer_name = proto::random_peer_name(|| splitmix(&mut rng));
        let names = LocalNames::new(&config.service_name, &peer_name)?;
        let query = proto::query(&names.service)?;
        let ttl = secs(config.ttl);
        Ok(Core {
            config,
            local,
            peer_name,
            names,
            query,
            ttl,
            listen: Vec::new(),
            ifaces: BTreeMap::new(),
            subnets: Vec::new(),
            peers: HashMap::new(),
            instances: HashMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: MdnsStats::default(),
            rng,
        })
    }

    /// Our random peer name (the first label of our instance name).
    pub fn peer_name(&self) -> &str {
        &self.peer_name
    }

    /// The configuration.
    pub fn config(&self) -> &MdnsConfig {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> &MdnsStats {
        &self.stats
    }

    /// Counters, for the shell to add its own (socket errors).
    pub fn stats_mut(&mut self) -> &mut MdnsStats {
        &mut self.stats
    }

    /// The interface behind a key, while it is in use.
    pub fn interface(&self, key: IfaceKey) -> Option<&Interface> {
        self.ifaces.get(&key).map(|s| &s.iface)
    }

    /// The interfaces in use.
    pub fn interface_keys(&self) -> impl Iterator<Item = IfaceKey> + '_ {
        self.ifaces.keys().copied()
    }

    /// The peers we know, with their current addresses.
    pub fn peers(&self) -> impl Iterator<Item = (PeerId, Vec<Multiaddr>)> + '_ {
        self.peers
            .iter()
            .map(|(p, e)| (*p, e.addrs.iter().map(|(a, _)| a.clone()).collect()))
    }

    /// The addresses we listen on. When they change, every interface announces us again
    /// (RFC 6762 §8.3), so peers learn of new addresses without waiting for a query.
    pub fn set_listen_addrs(&mut self, addrs: Vec<Multiaddr>, now: Instant) {
        if addrs == self.listen {
            return;
        }
        self.listen = addrs;
        let keys: Vec<IfaceKey> = self.ifaces.keys().copied().collect();
        for key in keys {
            if let Some(state) = self.ifaces.get_mut(&key) {
                // What we multicast before is not our answer any more.
                state.multicast_at = Multicasts::default();
            }
            self.schedule_response(
                key,
                Wants {
                    peers: true,
                    ..Wants::default()
                },
                now,
            );
        }
    }

    /// The system's interfaces now. Returns which sockets to open and close. A new
    /// interface, or one whose addresses changed, is queried at once and announces us.
    pub fn set_interfaces(&mut self, list: Vec<Interface>, now: Instant) -> InterfaceChanges {
        let mut wanted: BTreeMap<IfaceKey, Interface> = BTreeMap::new();
        for interface in list {
            if interface.loopback && !self.config.loopback {
                continue;
            }
            for key in interface.keys(self.config.ipv4, self.config.ipv6) {
                wanted.insert(key, interface.clone());
            }
        }
        let mut changes = InterfaceChanges::default();
        let gone: Vec<IfaceKey> = self
            .ifaces
            .keys()
            .filter(|k| !wanted.contains_key(k))
            .copied()
            .collect();
        for key in gone {
            self.ifaces.remove(&key);
            changes.removed.push(key);
        }
        let initial = self.config.initial_query_interval;
        for (key, interface) in wanted {
            match self.ifaces.get_mut(&key) {
                Some(state) if state.iface == interface => {}
                Some(state) => {
                    // Same interface, new addresses: a network change.
                    state.iface = interface;
                    state.backoff = initial;
                    state.next_query = query_time(state.last_query, now);
                    state.multicast_at = Multicasts::default();
                    self.schedule_response(
                        key,
                        Wants {
                            peers: true,
                            ..Wants::default()
                        },
                        now,
                    );
                }
                None => {
                    self.ifaces
                        .insert(key, IfaceState::new(interface, now, initial));
                    changes.added.push(key);
                    self.schedule_response(
                        key,
                        Wants {
                            peers: true,
                            ..Wants::default()
                        },
                        now,
                    );
                }
            }
        }
        changes
    }

    /// The subnets of the interfaces (all of them, replacing those given before): a querier
    /// gets a unicast answer only if it is on the link its query arrived on, a host of one of
    /// that interface's subnets or an IPv6 link-local address (RFC 6762 §11). Without them
    /// only IPv6 link-local queriers can get one; the others are answered by multicast.
    pub fn set_subnets(&mut self, subnets: Vec<Subnet>) {
        self.subnets = subnets;
    }

    /// Stops using an interface whose socket could not be opened or failed; the next
    /// [`set_interfaces`](Core::set_interfaces) that lists it tries again.
    pub fn remove_interface(&mut self, key: IfaceKey) {
        self.ifaces.remove(&key);
    }

    /// A datagram that arrived on `key`'s socket from `from`.
    pub fn handle_packet(
        &mut self,
        key: IfaceKey,
        from: SocketAddr,
        packet: &[u8],
        now: Instant,
    ) -> Result<(), MdnsError> {
        self.stats.packets_received = self.stats.packets_received.saturating_add(1);
        let message = match Message::parse(packet, self.config.max_records_per_packet) {
            Ok(m) => m,
            Err(e) => {
                self.stats.malformed_packets = self.stats.malformed_packets.saturating_add(1);
                return Err(MdnsError::Packet {
                    from,
                    source: Box::new(e),
                });
            }
        };
        if !message.header.is_response() {
            let wants = proto::wants(&message, &self.names);
            if wants.any() {
                self.stats.queries_received = self.stats.queries_received.saturating_add(1);
                self.answer_query(key, from, &message, wants, now);
            }
            return Ok(());
        }
        let on_loopback =
            self.ifaces.get(&key).is_some_and(|s| s.iface.loopback) || from.ip().is_loopback();
        for announcement in proto::announcements(&message, &self.names.service) {
            self.stats.txt_rejected = self
                .stats
                .txt_rejected
                .saturating_add(u64::try_from(announcement.rejected).unwrap_or(u64::MAX));
            self.announce(key, announcement, on_loopback, now);
        }
        Ok(())
    }

    /// Runs what is due at `now`: queries, answers, refreshes and expiries.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.expire(now);
        let mut refresh = false;
        for entry in self.peers.values_mut() {
            if entry.refresh_at.is_some_and(|t| t <= now) {
                entry.refresh_at = None;
                refresh = true;
            }
        }
        let keys: Vec<IfaceKey> = self.ifaces.keys().copied().collect();
        for key in keys {
            if refresh && let Some(state) = self.ifaces.get_mut(&key) {
                state.next_query = state.next_query.min(query_time(state.last_query, now));
            }
            self.query_if_due(key, now);
            self.answer_if_due(key, now);
        }
    }

    /// When [`handle_timeout`](Core::handle_timeout) should run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let ifaces = self.ifaces.values().flat_map(|s| {
            std::iter::once(s.next_query)
                .chain(s.pending.map(|(at, _)| at))
                .chain(s.unicast.iter().map(|u| u.at))
        });
        let peers = self.peers.values().flat_map(|e| {
            e.addrs
                .iter()
                .map(|(_, expiry)| *expiry)
                .chain(e.refresh_at)
        });
        ifaces.chain(peers).min()
    }

    /// The next packet to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Goodbye packets (our records with TTL 0, RFC 6762 §10.1) for every interface, to
    /// send when stopping so peers forget us at once instead of after our TTL.
    pub fn goodbye(&mut self) -> Vec<Transmit> {
        let wants = Wants {
            peers: true,
            ..Wants::default()
        };
        let keys: Vec<IfaceKey> = self.ifaces.keys().copied().collect();
        let mut out = Vec::new();
        for key in keys {
            for payload in self.build_responses(key, wants, 0, None) {
                out.push(Transmit {
                    iface: key,
                    to: Destination::Multicast,
                    payload,
                });
            }
        }
        out
    }

    /// Schedules the answer to a query for us: by multicast, by unicast to the querier, or
    /// both (RFC 6762 §5.4, §6.7).
    fn answer_query(
        &mut self,
        key: IfaceKey,
        from: SocketAddr,
        message: &Message,
        wants: Wants,
        now: Instant,
    ) {
        // §7.1: what the querier lists as known with at least half our TTL left is not
        // answered (one pass over its answer section, which the parser caps).
        let known = proto::known_answers(message, &self.names, self.ttl);
        let wants = wants.without(known);
        if known.any() {
            self.stats.answers_suppressed = self.stats.answers_suppressed.saturating_add(1);
        }
        if !wants.any() {
            return;
        }
        if from.port() != MDNS_PORT {
            // A legacy querier (§6.7) hears only its own port: it gets a unicast answer as
            // a unicast DNS server gives. The multicast one stays: rust-libp2p queries from
            // an ephemeral port too, but reads answers only on port 5353 (and only those
            // without a question, so not the legacy one).
            self.schedule_unicast(key, from, wants, Some(LegacyQuery::new(message)), now);
            self.schedule_response(key, wants, now);
            return;
        }
        // §5.4: a QU question is answered by unicast, unless its answer was not multicast
        // within a quarter of its TTL: then it is multicast instead (which the querier, on
        // port 5353, hears too), so every cache on the link is refreshed.
        let quarter = Duration::from_secs(u64::from(self.ttl))
            .checked_div(4)
            .unwrap_or_default();
        let recent = self
            .ifaces
            .get(&key)
            .is_some_and(|s| s.multicast_at.all_within(wants, now, quarter));
        if proto::unicast_requested(message, &self.names)
            && recent
            && self.schedule_unicast(key, from, wants, None, now)
        {
            return;
        }
        self.schedule_response(key, wants, now);
    }

    /// Schedules a unicast answer to `to` (for `legacy`, or for QU questions when `None`).
    /// Refused (false, counted) when `to` is not on the interface's link or the interface
    /// scheduled [`MAX_UNICAST_ANSWERS`] in this [`UNICAST_WINDOW`] already.
    fn schedule_unicast(
        &mut self,
        key: IfaceKey,
        to: SocketAddr,
        wants: Wants,
        legacy: Option<LegacyQuery>,
        now: Instant,
    ) -> bool {
        let delay = self.jitter(RESPONSE_DELAY_MIN, RESPONSE_DELAY_MAX);
        let Some(state) = self.ifaces.get_mut(&key) else {
            return false;
        };
        let Some(to) = unicast_target(key, to, &self.subnets) else {
            self.stats.unicast_refused = self.stats.unicast_refused.saturating_add(1);
            tracing::debug!(%to, interface = %state.iface.name, "mDNS querier not on the link: no unicast answer");
            return false;
        };
        // The same querier again before its answer left (a QU querier with more questions,
        // a resolver sending its query again): one answer.
        if let Some(waiting) = state
            .unicast
            .iter_mut()
            .find(|u| u.to == to && u.legacy == legacy)
        {
            waiting.wants = waiting.wants.merge(wants);
            return true;
        }
        let (start, count) = match state.unicast_window {
            Some((start, count)) if now.saturating_duration_since(start) < UNICAST_WINDOW => {
                (start, count)
            }
            _ => (now, 0),
        };
        if count >= MAX_UNICAST_ANSWERS {
            self.stats.unicast_refused = self.stats.unicast_refused.saturating_add(1);
            tracing::debug!(%to, interface = %state.iface.name, "mDNS unicast answers at their limit this second");
            return false;
        }
        state.unicast_window = Some((start, count.saturating_add(1)));
        state.unicast.push(UnicastAnswer {
            at: now.checked_add(delay).unwrap_or(now),
            to,
            wants,
            legacy,
        });
        true
    }

    fn schedule_response(&mut self, key: IfaceKey, wants: Wants, now: Instant) {
        let delay = self.jitter(RESPONSE_DELAY_MIN, RESPONSE_DELAY_MAX);
        let min_gap = self.config.min_response_interval;
        let Some(state) = self.ifaces.get_mut(&key) else {
            return;
        };
        if let Some((_, pending)) = &mut state.pending {
            *pending = pending.merge(wants);
        } else {
            let mut at = now.checked_add(delay).unwrap_or(now);
            if let Some(last) = state.last_response
                && let Some(allowed) = last.checked_add(min_gap)
            {
                at = at.max(allowed);
            }
            state.pending = Some((at, wants));
        }
    }

    fn query_if_due(&mut self, key: IfaceKey, now: Instant) {
        let query_interval = self.config.query_interval;
        let Some(state) = self.ifaces.get_mut(&key) else {
            return;
        };
        if state.next_query > now {
            return;
        }
        let limit = state
            .iface
            .message_limit(key.family, self.config.max_packet_size);
        let known = self.known_answers(key, now);
        let payload = match proto::query_with_known_answers(
            &self.names.service,
            &known,
            limit,
            MAX_KNOWN_ANSWERS,
        ) {
            Ok((payload, included)) => {
                let omitted = known.len().saturating_sub(included);
                self.stats.known_answers_sent = self
                    .stats
                    .known_answers_sent
                    .saturating_add(u64::try_from(included).unwrap_or(u64::MAX));
                self.stats.known_answers_omitted = self
                    .stats
                    .known_answers_omitted
                    .saturating_add(u64::try_from(omitted).unwrap_or(u64::MAX));
                payload
            }
            Err(err) => {
                tracing::debug!(%err, "cannot build the known-answer list; querying without");
                self.query.clone()
            }
        };
        let Some(state) = self.ifaces.get_mut(&key) else {
            return;
        };
        self.transmits.push_back(Transmit {
            iface: key,
            to: Destination::Multicast,
            payload,
        });
        self.stats.queries_sent = self.stats.queries_sent.saturating_add(1);
        state.last_query = Some(now);
        state.next_query = now
            .checked_add(state.backoff.max(MIN_QUERY_GAP))
            .unwrap_or(now);
        state.backoff = state.backoff.saturating_mul(2).min(query_interval);
    }

    /// The known answers for a query on `key` at `now` (RFC 6762 §7.1): each peer's PTR that
    /// arrived on `key` with more than half its TTL left, as (instance, remaining TTL), most
    /// remaining first (those are the ones a cap should keep).
    fn known_answers(&self, key: IfaceKey, now: Instant) -> Vec<(Name, u32)> {
        let mut known: Vec<(Name, u32)> = self
            .peers
            .values()
            .filter_map(|entry| {
                let (ttl, at) = entry.known.get(&key)?;
                let elapsed = secs(now.saturating_duration_since(*at));
                let remaining = ttl.saturating_sub(elapsed);
                (u64::from(remaining).saturating_mul(2) > u64::from(*ttl))
                    .then(|| (entry.instance.clone(), remaining))
            })
            .collect();
        known.sort_by(|a, b| {
            b.1.cmp(&a.1)
                .then_with(|| a.0.wire_labels().cmp(b.0.wire_labels()))
        });
        known
    }

    fn answer_if_due(&mut self, key: IfaceKey, now: Instant) {
        self.multicast_if_due(key, now);
        self.unicast_if_due(key, now);
    }

    fn multicast_if_due(&mut self, key: IfaceKey, now: Instant) {
        let Some(state) = self.ifaces.get_mut(&key) else {
            return;
        };
        let Some((at, wants)) = state.pending else {
            return;
        };
        if at > now {
            return;
        }
        state.pending = None;
        state.last_response = Some(now);
        let packets = self.build_responses(key, wants, self.ttl, None);
        if !packets.is_empty()
            && let Some(state) = self.ifaces.get_mut(&key)
        {
            state.multicast_at.record(wants, now);
        }
        self.queue_answer(key, Destination::Multicast, packets);
    }

    fn unicast_if_due(&mut self, key: IfaceKey, now: Instant) {
        let Some(state) = self.ifaces.get_mut(&key) else {
            return;
        };
        if !state.unicast.iter().any(|u| u.at <= now) {
            return;
        }
        let (due, waiting): (Vec<UnicastAnswer>, Vec<UnicastAnswer>) =
            std::mem::take(&mut state.unicast)
                .into_iter()
                .partition(|u| u.at <= now);
        state.unicast = waiting;
        for answer in due {
            let packets = self.build_responses(key, answer.wants, self.ttl, answer.legacy.as_ref());
            if !packets.is_empty() {
                self.stats.unicast_responses_sent =
                    self.stats.unicast_responses_sent.saturating_add(1);
            }
            self.queue_answer(key, Destination::Unicast(answer.to), packets);
        }
    }

    /// Queues the packets of one answer, counted.
    fn queue_answer(&mut self, key: IfaceKey, to: Destination, packets: Vec<Vec<u8>>) {
        if !packets.is_empty() {
            self.stats.responses_sent = self.stats.responses_sent.saturating_add(1);
        }
        for payload in packets {
            self.stats.response_packets_sent = self.stats.response_packets_sent.saturating_add(1);
            self.transmits.push_back(Transmit {
                iface: key,
                to,
                payload,
            });
        }
    }

    /// Our answer to `wants` on `key`, with `ttl`: an mDNS one, or one to a legacy query.
    fn build_responses(
        &mut self,
        key: IfaceKey,
        wants: Wants,
        ttl: u32,
        legacy: Option<&LegacyQuery>,
    ) -> Vec<Vec<u8>> {
        let Some(state) = self.ifaces.get(&key) else {
            return Vec::new();
        };
        let iface = &state.iface;
        let addrs = iface::advertised(&self.listen, iface, self.local);
        let keep = |ip: &IpAddr| iface.loopback || !ip.is_loopback();
        let (advert, too_long) = Advert::new(
            &addrs,
            iface
                .ipv4
                .iter()
                .filter(|ip| keep(&IpAddr::V4(**ip)))
                .copied()
                .collect(),
            iface
                .ipv6
                .iter()
                .filter(|ip| keep(&IpAddr::V6(**ip)))
                .copied()
                .collect(),
        );
        self.stats.addrs_too_long = self
            .stats
            .addrs_too_long
            .saturating_add(u64::try_from(too_long).unwrap_or(u64::MAX));
        let limit = iface.message_limit(key.family, self.config.max_packet_size);
        let built = match legacy {
            None => proto::responses(&self.names, wants, &advert, ttl, limit),
            Some(query) => proto::legacy_responses(&self.names, wants, &advert, ttl, limit, query),
        };
        match built {
            Ok(packets) => packets,
            // A legacy query can make its own answer impossible (questions that fill the
            // packet): the querier's doing, not worth a warning.
            Err(err) if legacy.is_some() => {
                tracing::debug!(%err, interface = %iface.name, "cannot build the legacy mDNS answer");
                Vec::new()
            }
            Err(err) => {
                tracing::warn!(%err, interface = %iface.name, "cannot build the mDNS answer");
                Vec::new()
            }
        }
    }

    fn announce(&mut self, key: IfaceKey, a: Announcement, on_loopback: bool, now: Instant) {
        let Some(peer) = a.peer.or_else(|| self.instances.get(&a.instance).copied()) else {
            return;
        };
        if peer == self.local {
            return;
        }
        self.stats.announcements_received = self.stats.announcements_received.saturating_add(1);
        let ttl = Duration::from_secs(u64::from(a.ttl)).min(self.config.max_ttl);
        if ttl.is_zero() {
            if let Some(entry) = self.peers.get_mut(&peer) {
                let deadline = now.checked_add(GOODBYE_DELAY).unwrap_or(now);
                for (_, expiry) in &mut entry.addrs {
                    *expiry = (*expiry).min(deadline);
                }
                entry.refresh_at = None;
                // A goodbye: we no longer know its PTR, on any interface.
                entry.known.clear();
            }
            return;
        }
        let mut addrs = Vec::with_capacity(a.addrs.len());
        for addr in a.addrs {
            match iface::check_announced(&addr, on_loopback) {
                Ok(()) => addrs.push(addr),
                Err(why) => {
                    tracing::debug!(%peer, %addr, ?why, "announced address ignored");
                    self.stats.addrs_unusable = self.stats.addrs_unusable.saturating_add(1);
                }
            }
        }
        if addrs.is_empty() {
            return;
        }
        let expiry = now.checked_add(ttl).unwrap_or(now);
        let refresh_at = ttl
            .checked_div(5)
            .and_then(|fifth| now.checked_add(ttl.saturating_sub(fifth)));
        let is_new = !self.peers.contains_key(&peer);
        if is_new && self.peers.len() >= self.config.max_peers {
            self.stats.peers_dropped = self.stats.peers_dropped.saturating_add(1);
            tracing::debug!(%peer, max = self.config.max_peers, "mDNS peer table full; peer ignored");
            return;
        }
        let max_addrs = self.config.max_addrs_per_peer;
        let entry = self.peers.entry(peer).or_insert_with(|| PeerEntry {
            instance: a.instance.clone(),
            addrs: Vec::new(),
            refresh_at: None,
            known: BTreeMap::new(),
        });
        if entry.instance != a.instance {
            // The peer restarted with a new name.
            self.instances.remove(&entry.instance);
            entry.instance = a.instance.clone();
            entry.known.clear();
        }
        if a.ptr {
            entry.known.insert(key, (secs(ttl), now));
        }
        self.instances.insert(a.instance, peer);
        let mut grew = false;
        for addr in &addrs {
            if let Some((_, e)) = entry.addrs.iter_mut().find(|(known, _)| known == addr) {
                *e = expiry;
            } else if entry.addrs.len() < max_addrs {
                entry.addrs.push((addr.clone(), expiry));
                grew = true;
            } else {
                self.stats.addrs_dropped = self.stats.addrs_dropped.saturating_add(1);
            }
        }
        entry.refresh_at = refresh_at;
        let all: Vec<Multiaddr> = entry.addrs.iter().map(|(a, _)| a.clone()).collect();
        if is_new {
            self.stats.peers_discovered = self.stats.peers_discovered.saturating_add(1);
            self.events.push_back(Event::Discovered {
                peer,
                addrs: all,
                ttl,
            });
        } else if grew {
            self.events.push_back(Event::Updated {
                peer,
                addrs: all,
                ttl,
            });
        } else {
            self.events.push_back(Event::Refreshed { peer, addrs, ttl });
        }
    }

    fn expire(&mut self, now: Instant) {
        let mut gone = Vec::new();
        for (peer, entry) in &mut self.peers {
            entry.addrs.retain(|(_, expiry)| *expiry > now);
            if entry.addrs.is_empty() {
                gone.push(*peer);
            }
        }
        for peer in gone {
            if let Some(entry) = self.peers.remove(&peer) {
                self.instances.remove(&entry.instance);
            }
            self.stats.peers_expired = self.stats.peers_expired.saturating_add(1);
            self.events.push_back(Event::Expired { peer });
        }
    }

    /// A duration in `[min, max]`.
    fn jitter(&mut self, min: Duration, max: Duration) -> Duration {
        let span = max.saturating_sub(min);
        let span_ms = u64::try_from(span.as_millis()).unwrap_or(u64::MAX);
        let extra = splitmix(&mut self.rng)
            .checked_rem(span_ms.saturating_add(1))
            .unwrap_or(0);
        min.saturating_add(Duration::from_millis(extra))
    }
}

/// Where a unicast answer to a query from `from` on `key` goes: `from` itself if it is a
/// usable address on that interface's link (an IPv6 link-local one scoped to the interface),
/// else nowhere.
fn unicast_target(key: IfaceKey, from: SocketAddr, subnets: &[Subnet]) -> Option<SocketAddr> {
    let family = match from {
        SocketAddr::V4(_) => Family::V4,
        SocketAddr::V6(_) => Family::V6,
    };
    if from.port() == 0 || family != key.family || !iface::on_link(from.ip(), key.index, subnets) {
        return None;
    }
    match from {
        SocketAddr::V6(mut v6) if v6.ip().is_unicast_link_local() && v6.scope_id() == 0 => {
            v6.set_scope_id(key.index);
            Some(SocketAddr::V6(v6))
        }
        other => Some(other),
    }
}

/// The earliest time a query may go out: now, or a second after the last one.
fn query_time(last: Option<Instant>, now: Instant) -> Instant {
    last.and_then(|l| l.checked_add(MIN_QUERY_GAP))
        .map_or(now, |allowed| allowed.max(now))
}

/// Whole seconds of a TTL, rounded up, saturating at `u32::MAX`.
fn secs(d: Duration) -> u32 {
    let s = d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0));
    u32::try_from(s).unwrap_or(u32::MAX)
}

/// SplitMix64: a small, fast generator for jitter and peer names (not for secrets).
pub(crate) fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests;
