//! [`KadCore`]: the sans-IO Kademlia node. No socket, no task, no clock: the caller passes
//! `now` to every call, carries requests out ([`KadCore::poll_request`]) and answers in
//! ([`KadCore::on_response`]), feeds inbound requests ([`KadCore::handle_request`]), and
//! calls [`KadCore::handle_timeout`] at [`KadCore::poll_timeout`].

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet, VecDeque};
use std::time::Instant;

use lp2p_core::{Multiaddr, PeerId};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tracing::{debug, trace};

use crate::config::{KadConfig, Mode};
use crate::error::KadError;
use crate::event::{Counters, Event, Progress, QueryId, QueryResult, QueryStats, RequestId};
use crate::key::Key;
use crate::query::Lookup;
use crate::query_totals::{QueryTotals, QueryTotalsTable};
use crate::record::Record;
use crate::routing::{Insert, RoutingTable};
use crate::store::{ProviderStore, RecordStore};
use crate::wire::{self, ConnectionType, MessageKind, PeerInfo, Request, Response};

/// A request for the caller to carry out: open a stream to `peer` (dialing `addrs` if not
/// connected), write `request`, read the answer if [`Request::expects_response`], and
/// report with [`KadCore::on_response`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRequest {
    /// Identifies it in [`KadCore::on_response`].
    pub id: RequestId,
    /// To whom.
    pub peer: PeerId,
    /// Addresses to dial if not connected (verified or learned in this lookup).
    pub addrs: Vec<Multiaddr>,
    /// The request.
    pub request: Request,
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestFailure {
    /// Could not connect, or the peer does not speak the protocol.
    Unreachable,
    /// The stream broke, or the answer was undecodable.
    Failed,
    /// No answer in time.
    Timeout,
}

/// What a request brought back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseInfo {
    /// The answer (`None` for requests without one, once written).
    pub response: Option<Response>,
    /// The address we dialed to reach the peer (an outbound connection's remote address):
    /// verified, so it may enter the routing table. `None` when an inbound connection was
    /// reused.
    pub dialed: Option<Multiaddr>,
}

/// What the peer's identify said, as far as the DHT cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerReport {
    /// Whether it advertises the kad protocol (server mode).
    pub server: bool,
    /// Addresses we may trust: from a signed peer record, or dialed by us.
    pub verified_addrs: Vec<Multiaddr>,
}

/// An answer before its closer peers are filled in.
enum Reply {
    Nothing,
    Ping,
    Closer {
        target: Key,
    },
    Value {
        record: Option<Record>,
        target: Key,
    },
    Providers {
        providers: Vec<PeerInfo>,
        target: Key,
    },
    Stored {
        key: Vec<u8>,
        value: Vec<u8>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Request(RequestId),
    Query(QueryId),
    /// The periodic bootstrap (reschedules itself).
    Bootstrap,
    /// The one-off bootstrap when the routing table gets its first peer.
    AutoBootstrap,
    Republish,
    Reprovide,
    Cleanup,
}

#[derive(Debug)]
enum Kind {
    FindPeer {
        target: PeerId,
        found: Option<PeerInfo>,
        found_round: u32,
    },
    ClosestPeers {
        key: Vec<u8>,
    },
    GetValue {
        key: Vec<u8>,
        best: Option<Record>,
        best_holders: Vec<PeerId>,
        outdated: Vec<PeerId>,
        without: Vec<PeerId>,
        valid: usize,
    },
    PutValue {
        record: Record,
    },
    AddProvider {
        key: Vec<u8>,
    },
    GetProviders {
        key: Vec<u8>,
        found: Vec<PeerInfo>,
        seen: HashSet<PeerId>,
    },
    Bootstrap,
}

impl Kind {
    /// The kind's name in [`QueryTotals`](crate::QueryTotals).
    fn name(&self) -> &'static str {
        match self {
            Kind::FindPeer { .. } => "find_peer",
            Kind::ClosestPeers { .. } => "closest_peers",
            Kind::GetValue { .. } => "get_value",
            Kind::PutValue { .. } => "put_value",
            Kind::AddProvider { .. } => "provide",
            Kind::GetProviders { .. } => "get_providers",
            Kind::Bootstrap => "bootstrap",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Lookup,
    /// Sending the record / provider record to the closest peers.
    Store {
        pending: usize,
        stored: usize,
    },
}

#[derive(Debug)]
struct Query {
    kind: Kind,
    lookup: Lookup,
    phase: Phase,
    started: Instant,
    deadline: Instant,
    /// Started by the core itself (refresh, republish): reports nothing.
    internal: bool,
}

#[derive(Debug)]
struct Pending {
    query: Option<QueryId>,
    peer: PeerId,
    kind: MessageKind,
    deadline: Instant,
    /// Sent in a query's lookup phase (the answer feeds the lookup).
    lookup: bool,
}

/// The Kademlia node's state machine.
#[derive(Debug)]
pub struct KadCore {
    local: PeerId,
    config: KadConfig,
    table: RoutingTable,
    records: RecordStore,
    providers: ProviderStore,
    queries: BTreeMap<QueryId, Query>,
    requests: HashMap<RequestId, Pending>,
    outbox: VecDeque<OutboundRequest>,
    events: VecDeque<Event>,
    timers: BinaryHeap<Reverse<(Instant, Timer)>>,
    connected: HashSet<PeerId>,
    /// Records we published ourselves (republished).
    own_records: HashMap<Vec<u8>, Record>,
    /// Keys we provide (re-announced).
    own_provides: HashSet<Vec<u8>>,
    /// Our addresses, as put in our provider records.
    local_addrs: Vec<Multiaddr>,
    next_query: u64,
    next_request: u64,
    bootstrapped: bool,
    counters: Counters,
    query_totals: QueryTotalsTable,
    rng: SmallRng,
}

impl KadCore {
    /// A node for `local`, with its periodic jobs scheduled from `now`.
    pub fn new(local: PeerId, config: KadConfig, now: Instant) -> KadCore {
        KadCore::with_seed(local, config, now, rand::random())
    }

    /// [`KadCore::new`] with a fixed seed for its random refresh keys (simulations).
    pub fn with_seed(local: PeerId, config: KadConfig, now: Instant, seed: u64) -> KadCore {
        let table = RoutingTable::new(
            Key::from_peer(&local),
            config.k,
            config.replacement_cache,
            config.max_failures,
        );
        let mut core = KadCore {
            local,
            table,
            records: RecordStore::new(
                config.max_records,
                config.max_record_bytes,
                config.max_value_size,
            ),
            providers: ProviderStore::new(
                config.max_provider_records,
                config.max_providers_per_key,
                config.max_provider_records_per_peer,
            ),
            queries: BTreeMap::new(),
            requests: HashMap::new(),
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            timers: BinaryHeap::new(),
            connected: HashSet::new(),
            own_records: HashMap::new(),
            own_provides: HashSet::new(),
            local_addrs: Vec::new(),
            next_query: 0,
            next_request: 0,
            bootstrapped: false,
            counters: Counters::default(),
            query_totals: QueryTotalsTable::default(),
            rng: SmallRng::seed_from_u64(seed),
            config,
        };
        if let Some(every) = core.config.bootstrap_interval {
            core.schedule(now, every, Timer::Bootstrap);
        }
        if let Some(every) = core.config.republish_interval {
            core.schedule(now, every, Timer::Republish);
        }
        if let Some(every) = core.config.reprovide_interval {
            core.schedule(now, every, Timer::Reprovide);
        }
        let every = core.config.cleanup_interval;
        core.schedule(now, every, Timer::Cleanup);
        core
    }

    fn schedule(&mut self, now: Instant, after: std::time::Duration, timer: Timer) {
        if let Some(at) = now.checked_add(after) {
            self.timers.push(Reverse((at, timer)));
        }
    }

    /// Our peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local
    }

    /// The configuration.
    pub fn config(&self) -> &KadConfig {
        &self.config
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.config.mode
    }

    /// Switches between server and client mode (the shell registers or removes the
    /// protocol's handler accordingly).
    pub fn set_mode(&mut self, mode: Mode) {
        self.config.mode = mode;
    }

    /// Our addresses, announced in our provider records.
    pub fn set_local_addrs(&mut self, addrs: Vec<Multiaddr>) {
        self.local_addrs = addrs;
    }

    /// The routing table.
    pub fn routing_table(&self) -> &RoutingTable {
        &self.table
    }

    /// The records stored for others and ourselves.
    pub fn records(&self) -> &RecordStore {
        &self.records
    }

    /// The provider records stored.
    pub fn providers(&self) -> &ProviderStore {
        &self.providers
    }

    /// What was counted.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Finished queries per kind, with their durations.
    pub fn query_totals(&self) -> Vec<QueryTotals> {
        self.query_totals.snapshot()
    }

    /// Queries running.
    pub fn active_queries(&self) -> usize {
        self.queries.len()
    }

    // ----- peers -----

    fn insert_peer(&mut self, peer: PeerId, addrs: Vec<Multiaddr>, now: Instant) {
        match self.table.insert(peer, addrs, now) {
            Insert::Added { bucket } => {
                trace!(%peer, bucket, "kad: routing table gained a peer");
                self.events.push_back(Event::RoutingAdded { peer, bucket });
                if self.config.auto_bootstrap && !self.bootstrapped {
                    self.bootstrapped = true;
                    self.timers.push(Reverse((now, Timer::AutoBootstrap)));
                }
            }
            Insert::Updated | Insert::Pending | Insert::Local | Insert::NoAddress => {}
        }
    }

    fn drop_peer(&mut self, peer: &PeerId) {
        if let Some(removed) = self.table.record_failure(peer) {
            debug!(peer = %removed.peer, promoted = ?removed.promoted, "kad: peer left the routing table");
            self.events.push_back(Event::RoutingRemoved {
                peer: removed.peer,
                promoted: removed.promoted,
            });
        }
    }

    /// Adds a peer we trust to be a server at `addrs` (a bootstrap peer, or one the
    /// application vouches for).
    pub fn add_address(&mut self, peer: PeerId, addrs: Vec<Multiaddr>, now: Instant) {
        self.insert_peer(peer, addrs, now);
    }

    /// A connection to `peer` is up (`dialed`: its remote address if we dialed it).
    pub fn on_connected(&mut self, peer: PeerId, dialed: Option<Multiaddr>, now: Instant) {
        self.connected.insert(peer);
        if let Some(addr) = dialed
            && self.table.contains(&peer)
        {
            self.insert_peer(peer, vec![addr], now);
        }
    }

    /// The last connection to `peer` closed.
    pub fn on_disconnected(&mut self, peer: &PeerId) {
        self.connected.remove(peer);
    }

    /// What `peer`'s identify said: a server enters (or refreshes) the routing table with
    /// its verified addresses; a peer that stopped advertising the protocol leaves it.
    pub fn on_peer_report(&mut self, peer: PeerId, report: PeerReport, now: Instant) {
        if report.server {
            self.insert_peer(peer, report.verified_addrs, now);
        } else if let Some(removed) = self.table.remove(&peer) {
            self.events.push_back(Event::RoutingRemoved {
                peer: removed.peer,
                promoted: removed.promoted,
            });
        }
    }

    // ----- inbound -----

    /// Decodes and serves one inbound request body; returns the response body to write,
    /// if the request has one. An error means the stream should be reset.
    pub fn handle_request_bytes(
        &mut self,
        from: PeerId,
        bytes: &[u8],
        now: Instant,
    ) -> Result<Option<Vec<u8>>, KadError> {
        let decoded = match wire::decode_request(bytes, &self.config.limits, now) {
            Ok(decoded) => decoded,
            Err(source) => {
                self.counters.inbound_refused = self.counters.inbound_refused.saturating_add(1);
                return Err(KadError::Wire { peer: from, source });
            }
        };
        self.count_dropped(decoded.dropped_peers, decoded.dropped_addrs);
        let reply = self.serve_counted(from, decoded.message, now)?;
        // Encoded straight from the routing table: no copy of the closer peers.
        let (base, target) = Self::split_reply(reply);
        let Some(base) = base else {
            return Ok(None);
        };
        let mut out = wire::encode_response(&base, now);
        if let Some(target) = target {
            let k = self.config.k;
            let closer = self
                .table
                .closest(&target, k.saturating_add(1), None)
                .into_iter()
                .filter(|e| e.peer != from)
                .take(k)
                .map(|e| wire::PeerRef {
                    peer: &e.peer,
                    addrs: &e.addrs,
                    connection: self.connection_type(&e.peer),
                });
            wire::append_closer_peers(&mut out, closer);
        }
        Ok(Some(out))
    }

    fn count_dropped(&mut self, peers: usize, addrs: usize) {
        let c = &mut self.counters;
        c.dropped_peers = c.dropped_peers.saturating_add(peers as u64);
        c.dropped_addrs = c.dropped_addrs.saturating_add(addrs as u64);
    }

    /// Serves one inbound request.
    pub fn handle_request(
        &mut self,
        from: PeerId,
        request: Request,
        now: Instant,
    ) -> Result<Option<Response>, KadError> {
        let reply = self.serve_counted(from, request, now)?;
        let (base, target) = Self::split_reply(reply);
        Ok(base.map(|mut response| {
            if let Some(target) = target {
                let closer = self.closer_peers(&target, &from);
                match &mut response {
                    Response::FindNode { closer: c }
                    | Response::GetValue { closer: c, .. }
                    | Response::GetProviders { closer: c, .. } => *c = closer,
                    Response::PutValue { .. } | Response::Ping => {}
                }
            }
            response
        }))
    }

    /// The answer without its closer peers, and the key they are closest to.
    fn split_reply(reply: Reply) -> (Option<Response>, Option<Key>) {
        match reply {
            Reply::Nothing => (None, None),
            Reply::Ping => (Some(Response::Ping), None),
            Reply::Stored { key, value } => (Some(Response::PutValue { key, value }), None),
            Reply::Closer { target } => (
                Some(Response::FindNode { closer: Vec::new() }),
                Some(target),
            ),
            Reply::Value { record, target } => (
                Some(Response::GetValue {
                    record,
                    closer: Vec::new(),
                }),
                Some(target),
            ),
            Reply::Providers { providers, target } => (
                Some(Response::GetProviders {
                    closer: Vec::new(),
                    providers,
                }),
                Some(target),
            ),
        }
    }

    fn serve_counted(
        &mut self,
        from: PeerId,
        request: Request,
        now: Instant,
    ) -> Result<Reply, KadError> {
        let served = self.serve(from, request, now);
        let c = &mut self.counters;
        match &served {
            Ok(_) => c.inbound_requests = c.inbound_requests.saturating_add(1),
            Err(err) => {
                c.inbound_refused = c.inbound_refused.saturating_add(1);
                debug!(peer = %from, %err, "kad: inbound request refused");
            }
        }
        served
    }

    fn serve(&mut self, from: PeerId, request: Request, now: Instant) -> Result<Reply, KadError> {
        if self.config.mode == Mode::Client {
            return Err(KadError::ClientMode { peer: from });
        }
        // Heard from it: refresh it if it is in the table (no new addresses).
        self.table.insert(from, Vec::new(), now);
        Ok(match request {
            Request::Ping => Reply::Ping,
            Request::FindNode { key } => Reply::Closer {
                target: Key::new(&key),
            },
            Request::GetValue { key } => Reply::Value {
                record: self.records.get(&key, now).cloned(),
                target: Key::new(&key),
            },
            Request::GetProviders { key } => {
                self.check_provider_key(&from, &key)?;
                Reply::Providers {
                    providers: self.providers.get(&key, now),
                    target: Key::new(&key),
                }
            }
            Request::PutValue { record } => {
                self.store_record(from, record.clone(), now)?;
                Reply::Stored {
                    key: record.key,
                    value: record.value,
                }
            }
            Request::AddProvider { key, providers } => {
                self.check_provider_key(&from, &key)?;
                let mut own = providers.into_iter().filter(|p| p.peer == from);
                let Some(entry) = own.next() else {
                    self.counters.foreign_providers =
                        self.counters.foreign_providers.saturating_add(1);
                    return Err(KadError::ForeignProvider { peer: from });
                };
                let (ttl, addr_ttl) = (self.config.provider_ttl, self.config.provider_addr_ttl);
                if let Err(source) = self
                    .providers
                    .add(&key, from, entry.addrs, now, ttl, addr_ttl)
                {
                    self.counters.store_full = self.counters.store_full.saturating_add(1);
                    return Err(KadError::Store { peer: from, source });
                }
                Reply::Nothing
            }
        })
    }

    fn connection_type(&self, peer: &PeerId) -> ConnectionType {
        if self.connected.contains(peer) {
            ConnectionType::Connected
        } else {
            ConnectionType::NotConnected
        }
    }

    fn check_provider_key(&mut self, from: &PeerId, key: &[u8]) -> Result<(), KadError> {
        if self.config.require_multihash_keys && !is_multihash(key) {
            self.counters.bad_provider_keys = self.counters.bad_provider_keys.saturating_add(1);
            return Err(KadError::NotMultihash { peer: *from });
        }
        Ok(())
    }

    /// Validates and stores a record from `from` (or ourselves).
    fn store_record(
        &mut self,
        from: PeerId,
        mut record: Record,
        now: Instant,
    ) -> Result<(), KadError> {
        if let Err(source) = self.config.validator.validate(&record.key, &record.value) {
            self.counters.invalid_records = self.counters.invalid_records.saturating_add(1);
            return Err(KadError::InvalidRecord { peer: from, source });
        }
        if let Some(existing) = self.records.get(&record.key, now)
            && existing.value != record.value
        {
            let values = [&existing.value[..], &record.value[..]];
            if self.config.validator.select(&record.key, &values) == 0 {
                self.counters.outdated_records = self.counters.outdated_records.saturating_add(1);
                return Err(KadError::OutdatedRecord { peer: from });
            }
        }
        let longest = now.checked_add(self.config.record_ttl);
        record.expires = match (record.expires, longest) {
            (Some(theirs), Some(ours)) => Some(theirs.min(ours)),
            (theirs, ours) => ours.or(theirs),
        };
        self.records.put(record).map_err(|source| {
            self.counters.store_full = self.counters.store_full.saturating_add(1);
            KadError::Store { peer: from, source }
        })
    }

    /// The `k` closest peers we know to `target`, for an answer to `asker`.
    fn closer_peers(&self, target: &Key, asker: &PeerId) -> Vec<PeerInfo> {
        // One more than k, then the asker left out: no comparison with every entry.
        let k = self.config.k;
        self.table
            .closest(target, k.saturating_add(1), None)
            .into_iter()
            .filter(|e| e.peer != *asker)
            .take(k)
            .map(|e| PeerInfo {
                peer: e.peer,
                addrs: e.addrs.clone(),
                connection: self.connection_type(&e.peer),
            })
            .collect()
    }

    // ----- queries -----

    fn new_query(
        &mut self,
        kind: Kind,
        key: &[u8],
        internal: bool,
        now: Instant,
    ) -> Result<QueryId, KadError> {
        if self.queries.len() >= self.config.max_queries {
            return Err(KadError::TooManyQueries(self.queries.len()));
        }
        self.next_query = self.next_query.wrapping_add(1);
        let id = QueryId(self.next_query);
        let target = Key::new(key);
        self.table.note_lookup(&target, now);
        let seeds = self
            .table
            .closest(&target, self.config.k, None)
            .into_iter()
            .map(|e| PeerInfo::new(e.peer, e.addrs.clone()))
            .collect();
        let lookup = Lookup::new(
            target,
            self.local,
            seeds,
            self.config.k,
            self.config.alpha,
            self.config.disjoint_paths,
        );
        let deadline = now.checked_add(self.config.query_timeout).unwrap_or(now);
        self.timers.push(Reverse((deadline, Timer::Query(id))));
        self.queries.insert(
            id,
            Query {
                kind,
                lookup,
                phase: Phase::Lookup,
                started: now,
                deadline,
                internal,
            },
        );
        Ok(id)
    }

    /// Finds `peer`'s addresses: a lookup for its id that ends as soon as some answer names
    /// it (or at once when it is in our routing table).
    pub fn find_peer(&mut self, peer: PeerId, now: Instant) -> Result<QueryId, KadError> {
        let known = self
            .table
            .get(&peer)
            .map(|e| PeerInfo::new(peer, e.addrs.clone()));
        let id = self.new_query(
            Kind::FindPeer {
                target: peer,
                found: known.clone(),
                found_round: 0,
            },
            &peer.to_bytes(),
            false,
            now,
        )?;
        if let Some(info) = known {
            self.progress(id, Progress::FoundPeer(info));
            self.finish(id, now, false);
        } else {
            self.step(id, now);
        }
        Ok(id)
    }

    /// The `k` closest peers to `key`.
    pub fn get_closest_peers(&mut self, key: &[u8], now: Instant) -> Result<QueryId, KadError> {
        let id = self.new_query(Kind::ClosestPeers { key: key.to_vec() }, key, false, now)?;
        self.step(id, now);
        Ok(id)
    }

    /// The best record under `key` (our own store counts as one answer).
    pub fn get_value(&mut self, key: &[u8], now: Instant) -> Result<QueryId, KadError> {
        let local = self.records.get(key, now).cloned();
        let valid = usize::from(local.is_some());
        let id = self.new_query(
            Kind::GetValue {
                key: key.to_vec(),
                best: local.clone(),
                best_holders: Vec::new(),
                outdated: Vec::new(),
                without: Vec::new(),
                valid,
            },
            key,
            false,
            now,
        )?;
        if let Some(record) = local {
            self.progress(
                id,
                Progress::Record {
                    record,
                    from: self.local,
                },
            );
        }
        if valid >= self.config.quorum {
            self.finish(id, now, false);
        } else {
            self.step(id, now);
        }
        Ok(id)
    }

    /// Validates and stores `record` here, then at the `k` closest peers to its key;
    /// republished every `republish_interval`.
    pub fn put_value(&mut self, mut record: Record, now: Instant) -> Result<QueryId, KadError> {
        if record.publisher.is_none() {
            record.publisher = Some(self.local);
        }
        if record.expires.is_none() {
            record.expires = now.checked_add(self.config.record_ttl);
        }
        self.store_record(self.local, record.clone(), now)?;
        self.own_records.insert(record.key.clone(), record.clone());
        self.start_put(record, false, now)
    }

    fn start_put(
        &mut self,
        record: Record,
        internal: bool,
        now: Instant,
    ) -> Result<QueryId, KadError> {
        let key = record.key.clone();
        let id = self.new_query(Kind::PutValue { record }, &key, internal, now)?;
        self.step(id, now);
        Ok(id)
    }

    /// Announces us as a provider of `key` (a multihash) at the `k` closest peers;
    /// re-announced every `reprovide_interval`.
    pub fn start_providing(&mut self, key: &[u8], now: Instant) -> Result<QueryId, KadError> {
        let local = self.local;
        self.check_provider_key(&local, key)?;
        let (ttl, addr_ttl) = (self.config.provider_ttl, self.config.provider_addr_ttl);
        // Our own record is ours to keep: not subject to the per-key limit for others.
        let _ = self
            .providers
            .add(key, local, self.local_addrs.clone(), now, ttl, addr_ttl);
        self.own_provides.insert(key.to_vec());
        self.start_provide(key, false, now)
    }

    fn start_provide(
        &mut self,
        key: &[u8],
        internal: bool,
        now: Instant,
    ) -> Result<QueryId, KadError> {
        let id = self.new_query(Kind::AddProvider { key: key.to_vec() }, key, internal, now)?;
        self.step(id, now);
        Ok(id)
    }

    /// Stops re-announcing `key` (records already out expire on their own).
    pub fn stop_providing(&mut self, key: &[u8]) {
        self.own_provides.remove(key);
        self.providers.remove(key, &self.local);
    }

    /// The providers of `key`, streamed as they are found.
    pub fn get_providers(&mut self, key: &[u8], now: Instant) -> Result<QueryId, KadError> {
        let local = self.local;
        self.check_provider_key(&local, key)?;
        let known = self.providers.get(key, now);
        let id = self.new_query(
            Kind::GetProviders {
                key: key.to_vec(),
                found: Vec::new(),
                seen: HashSet::new(),
            },
            key,
            false,
            now,
        )?;
        if !known.is_empty() {
            self.add_providers(id, local, known);
        }
        if self.providers_enough(id) {
            self.finish(id, now, false);
        } else {
            self.step(id, now);
        }
        Ok(id)
    }

    /// A self-lookup; when it ends, a lookup of a random key in each stale bucket.
    pub fn bootstrap(&mut self, now: Instant) -> Result<QueryId, KadError> {
        self.bootstrapped = true;
        let me = self.local.to_bytes();
        let id = self.new_query(Kind::Bootstrap, &me, false, now)?;
        self.step(id, now);
        Ok(id)
    }

    /// Whether a request handed out by [`KadCore::poll_request`] is still wanted: false once
    /// it timed out or its query ended (its answer would be ignored).
    pub fn is_wanted(&self, id: RequestId) -> bool {
        self.requests.contains_key(&id)
    }

    /// Stops a query (no result is reported).
    pub fn cancel(&mut self, id: QueryId) {
        if self.queries.remove(&id).is_some() {
            self.requests.retain(|_, p| p.query != Some(id));
        }
    }

    fn progress(&mut self, id: QueryId, progress: Progress) {
        if self.queries.get(&id).is_some_and(|q| !q.internal) {
            self.events.push_back(Event::Progress { id, progress });
        }
    }

    fn lookup_request(kind: &Kind) -> Request {
        match kind {
            Kind::GetValue { key, .. } => Request::GetValue { key: key.clone() },
            Kind::GetProviders { key, .. } => Request::GetProviders { key: key.clone() },
            Kind::FindPeer { target, .. } => Request::FindNode {
                key: target.to_bytes(),
            },
            Kind::PutValue { record } => Request::FindNode {
                key: record.key.clone(),
            },
            Kind::AddProvider { key } | Kind::ClosestPeers { key } => {
                Request::FindNode { key: key.clone() }
            }
            Kind::Bootstrap => Request::FindNode { key: Vec::new() },
        }
    }

    /// Sends what the query may send now, or moves it to its next phase.
    fn step(&mut self, id: QueryId, now: Instant) {
        let Some(query) = self.queries.get_mut(&id) else {
            return;
        };
        if query.phase != Phase::Lookup {
            return;
        }
        if query.lookup.is_finished() {
            self.lookup_done(id, now);
            return;
        }
        let budget = self
            .config
            .max_outbound_requests
            .saturating_sub(self.requests.len());
        let mut request = Self::lookup_request(&query.kind);
        if let (Request::FindNode { key }, Kind::Bootstrap) = (&mut request, &query.kind) {
            *key = self.local.to_bytes();
        }
        let targets = query.lookup.next_peers(budget);
        for (peer, addrs) in targets {
            self.send(Some(id), peer, addrs, request.clone(), true, now);
        }
    }

    fn send(
        &mut self,
        query: Option<QueryId>,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        request: Request,
        lookup: bool,
        now: Instant,
    ) {
        self.next_request = self.next_request.wrapping_add(1);
        let id = RequestId(self.next_request);
        let deadline = now.checked_add(self.config.request_timeout).unwrap_or(now);
        self.requests.insert(
            id,
            Pending {
                query,
                peer,
                kind: request.kind(),
                deadline,
                lookup,
            },
        );
        self.timers.push(Reverse((deadline, Timer::Request(id))));
        self.counters.requests_sent = self.counters.requests_sent.saturating_add(1);
        self.outbox.push_back(OutboundRequest {
            id,
            peer,
            addrs,
            request,
        });
    }

    /// Reports the outcome of a request handed out by [`KadCore::poll_request`], with the
    /// answer still encoded (decoded here under the configured limits).
    pub fn on_response_bytes(
        &mut self,
        id: RequestId,
        outcome: Result<(Option<Vec<u8>>, Option<Multiaddr>), RequestFailure>,
        now: Instant,
    ) {
        let Some(kind) = self.requests.get(&id).map(|p| p.kind) else {
            return;
        };
        let outcome = match outcome {
            Err(failure) => Err(failure),
            Ok((None, dialed)) => Ok(ResponseInfo {
                response: None,
                dialed,
            }),
            Ok((Some(bytes), dialed)) => {
                match wire::decode_response(&bytes, kind, &self.config.limits, now) {
                    Ok(decoded) => {
                        self.count_dropped(decoded.dropped_peers, decoded.dropped_addrs);
                        Ok(ResponseInfo {
                            response: Some(decoded.message),
                            dialed,
                        })
                    }
                    Err(err) => {
                        self.counters.bad_responses = self.counters.bad_responses.saturating_add(1);
                        debug!(%err, "kad: undecodable answer");
                        Err(RequestFailure::Failed)
                    }
                }
            }
        };
        self.on_response(id, outcome, now);
    }

    /// Reports the outcome of a request handed out by [`KadCore::poll_request`].
    pub fn on_response(
        &mut self,
        id: RequestId,
        outcome: Result<ResponseInfo, RequestFailure>,
        now: Instant,
    ) {
        let Some(pending) = self.requests.remove(&id) else {
            return; // timed out already, or its query ended
        };
        let peer = pending.peer;
        let outcome = match outcome {
            Ok(info) if pending.kind.expects_response() && info.response.is_none() => {
                Err(RequestFailure::Failed)
            }
            other => other,
        };
        match outcome {
            Ok(info) => {
                // It answered the protocol: a server. The address we dialed is verified.
                let verified = info.dialed.into_iter().collect();
                self.insert_peer(peer, verified, now);
                if let Some(query) = pending.query {
                    self.on_query_success(query, peer, pending.lookup, info.response, now);
                }
            }
            Err(failure) => {
                self.counters.requests_failed = self.counters.requests_failed.saturating_add(1);
                trace!(%peer, ?failure, "kad: request failed");
                self.drop_peer(&peer);
                if let Some(query) = pending.query {
                    self.on_query_failure(query, peer, pending.lookup, now);
                }
            }
        }
        self.drive(now);
    }

    fn on_query_success(
        &mut self,
        id: QueryId,
        from: PeerId,
        lookup: bool,
        response: Option<Response>,
        now: Instant,
    ) {
        let Some(query) = self.queries.get_mut(&id) else {
            return;
        };
        if !lookup {
            if let Phase::Store { pending, stored } = &mut query.phase {
                *pending = pending.saturating_sub(1);
                *stored = stored.saturating_add(1);
                let done = *pending == 0;
                self.progress(id, Progress::Stored { peer: from });
                if done {
                    self.finish(id, now, false);
                }
            }
            return;
        }
        let (closer, record, providers) = match response {
            Some(Response::FindNode { closer }) => (closer, None, Vec::new()),
            Some(Response::GetValue { record, closer }) => (closer, record, Vec::new()),
            Some(Response::GetProviders { closer, providers }) => (closer, None, providers),
            _ => (Vec::new(), None, Vec::new()),
        };
        // Find-peer: the target named in an answer (with addresses) ends the lookup.
        let mut found = None;
        if let Kind::FindPeer { target, .. } = &query.kind {
            found = closer
                .iter()
                .find(|p| p.peer == *target && !p.addrs.is_empty())
                .cloned();
            if from == *target && found.is_none() {
                found = Some(PeerInfo::new(from, Vec::new()));
            }
        }
        let Some(depth) = query.lookup.on_success(&from, closer) else {
            return;
        };
        if let (
            Some(info),
            Kind::FindPeer {
                found: slot,
                found_round,
                ..
            },
        ) = (found, &mut query.kind)
            && slot.is_none()
        {
            *slot = Some(info.clone());
            *found_round = depth;
            self.progress(id, Progress::FoundPeer(info));
            self.finish(id, now, false);
            return;
        }
        if matches!(
            self.queries.get(&id).map(|q| &q.kind),
            Some(Kind::GetValue { .. })
        ) {
            self.on_value(id, from, record, now);
        }
        if !providers.is_empty() {
            self.add_providers(id, from, providers);
        }
        if self.providers_enough(id) || self.quorum_reached(id) {
            self.finish(id, now, false);
        }
    }

    fn on_value(&mut self, id: QueryId, from: PeerId, record: Option<Record>, now: Instant) {
        let validator = self.config.validator.clone();
        let Some(Query {
            kind:
                Kind::GetValue {
                    key,
                    best,
                    best_holders,
                    outdated,
                    without,
                    valid,
                },
            ..
        }) = self.queries.get_mut(&id)
        else {
            return;
        };
        let Some(record) = record.filter(|r| r.key == *key && !r.is_expired(now)) else {
            without.push(from);
            return;
        };
        if let Err(err) = validator.validate(&record.key, &record.value) {
            self.counters.invalid_records = self.counters.invalid_records.saturating_add(1);
            debug!(peer = %from, %err, "kad: invalid record in a GET_VALUE answer");
            without.push(from);
            return;
        }
        *valid = valid.saturating_add(1);
        match best {
            Some(current) if current.value == record.value => best_holders.push(from),
            Some(current) => {
                let values = [&current.value[..], &record.value[..]];
                if validator.select(key, &values) == 1 {
                    outdated.append(best_holders);
                    best_holders.push(from);
                    *best = Some(record.clone());
                } else {
                    outdated.push(from);
                }
            }
            None => {
                best_holders.push(from);
                *best = Some(record.clone());
            }
        }
        self.progress(id, Progress::Record { record, from });
    }

    fn add_providers(&mut self, id: QueryId, from: PeerId, providers: Vec<PeerInfo>) {
        let Some(Query {
            kind: Kind::GetProviders { found, seen, .. },
            ..
        }) = self.queries.get_mut(&id)
        else {
            return;
        };
        let cap = self.config.max_providers_per_key.max(self.config.k);
        let fresh: Vec<PeerInfo> = providers
            .into_iter()
            .filter(|p| found.len() < cap && seen.insert(p.peer))
            .collect();
        if fresh.is_empty() {
            return;
        }
        found.extend(fresh.iter().cloned());
        self.progress(
            id,
            Progress::Providers {
                providers: fresh,
                from,
            },
        );
    }

    fn providers_enough(&self, id: QueryId) -> bool {
        match (
            self.queries.get(&id).map(|q| &q.kind),
            self.config.providers_wanted,
        ) {
            (Some(Kind::GetProviders { found, .. }), Some(wanted)) => found.len() >= wanted,
            _ => false,
        }
    }

    fn quorum_reached(&self, id: QueryId) -> bool {
        matches!(
            self.queries.get(&id).map(|q| &q.kind),
            Some(Kind::GetValue { valid, .. }) if *valid >= self.config.quorum.max(1)
        )
    }

    fn on_query_failure(&mut self, id: QueryId, peer: PeerId, lookup: bool, now: Instant) {
        let Some(query) = self.queries.get_mut(&id) else {
            return;
        };
        if lookup {
            query.lookup.on_failure(&peer);
            return;
        }
        if let Phase::Store { pending, .. } = &mut query.phase {
            *pending = pending.saturating_sub(1);
            if *pending == 0 {
                self.finish(id, now, false);
            }
        }
    }

    /// Gives every running query a chance to send (after a slot freed up).
    fn drive(&mut self, now: Instant) {
        let ids: Vec<QueryId> = self.queries.keys().copied().collect();
        for id in ids {
            self.step(id, now);
        }
    }

    /// The lookup phase ended: finish, or store at the closest peers.
    fn lookup_done(&mut self, id: QueryId, now: Instant) {
        let Some(query) = self.queries.get_mut(&id) else {
            return;
        };
        let k = self.config.k;
        let request = match &query.kind {
            Kind::PutValue { record } => Request::PutValue {
                record: record.clone(),
            },
            Kind::AddProvider { key } => Request::AddProvider {
                key: key.clone(),
                providers: vec![PeerInfo::new(self.local, self.local_addrs.clone())],
            },
            _ => {
                self.finish(id, now, false);
                return;
            }
        };
        let targets = query.lookup.closest_succeeded(k);
        if targets.is_empty() {
            self.finish(id, now, false);
            return;
        }
        query.phase = Phase::Store {
            pending: targets.len(),
            stored: 0,
        };
        for info in targets {
            self.send(Some(id), info.peer, info.addrs, request.clone(), false, now);
        }
    }

    /// Ends a query: reports its result, sends entry corrections, starts refreshes.
    fn finish(&mut self, id: QueryId, now: Instant, timed_out: bool) {
        let Some(query) = self.queries.remove(&id) else {
            return;
        };
        self.requests.retain(|_, p| p.query != Some(id));
        let (requests, successes, failures) = query.lookup.counts();
        let k = self.config.k;
        let mut rounds = query.lookup.rounds(k);
        self.query_totals.finished(
            query.kind.name(),
            now.saturating_duration_since(query.started),
            timed_out,
        );
        let result = match query.kind {
            Kind::FindPeer {
                found, found_round, ..
            } => {
                if found.is_some() {
                    rounds = found_round;
                }
                QueryResult::FindPeer(found)
            }
            Kind::ClosestPeers { .. } => {
                QueryResult::ClosestPeers(query.lookup.closest_succeeded(k))
            }
            Kind::GetValue {
                best,
                outdated,
                without,
                ..
            } => {
                if let Some(record) = &best {
                    // Entry correction: the best record to holders of worse ones and to
                    // the closest peers that had none.
                    let mut fix: Vec<PeerId> = outdated;
                    fix.extend(
                        without
                            .into_iter()
                            .filter(|p| query.lookup.is_among_closest(p, k)),
                    );
                    fix.sort();
                    fix.dedup();
                    let closest = query.lookup.closest_succeeded(usize::MAX);
                    for peer in fix {
                        let addrs = closest
                            .iter()
                            .find(|i| i.peer == peer)
                            .map(|i| i.addrs.clone())
                            .unwrap_or_default();
                        let request = Request::PutValue {
                            record: record.clone(),
                        };
                        self.send(None, peer, addrs, request, false, now);
                    }
                }
                QueryResult::GetValue(best)
            }
            Kind::PutValue { .. } => QueryResult::PutValue {
                stored: match query.phase {
                    Phase::Store { stored, .. } => stored,
                    Phase::Lookup => 0,
                },
            },
            Kind::AddProvider { .. } => QueryResult::StartProviding {
                stored: match query.phase {
                    Phase::Store { stored, .. } => stored,
                    Phase::Lookup => 0,
                },
            },
            Kind::GetProviders { found, .. } => QueryResult::GetProviders(found),
            Kind::Bootstrap => {
                let refreshes = self.start_refreshes(now);
                QueryResult::Bootstrap {
                    routing_table: self.table.len(),
                    refreshes,
                }
            }
        };
        if !query.internal {
            self.events.push_back(Event::Finished {
                id,
                result,
                stats: QueryStats {
                    requests,
                    successes,
                    failures,
                    rounds,
                    started: query.started,
                    ended: now,
                    timed_out,
                },
            });
        }
        self.drive(now);
    }

    /// Lookups of a random key in each stale bucket (spec "Bootstrap process").
    fn start_refreshes(&mut self, now: Instant) -> usize {
        let since = self
            .config
            .bootstrap_interval
            .and_then(|every| now.checked_sub(every))
            .unwrap_or(now);
        let stale = self
            .table
            .stale_buckets(since, self.config.max_refresh_bucket);
        let mut started = 0;
        for bucket in stale {
            let Some(key) = self.random_key_in_bucket(bucket) else {
                continue;
            };
            if let Ok(id) = self.new_query(Kind::ClosestPeers { key: key.clone() }, &key, true, now)
            {
                self.step(id, now);
                started += 1;
            }
        }
        started
    }

    /// Random key bytes (shaped as a sha2-256 PeerId, so any peer accepts them as a
    /// FIND_NODE key) whose hash falls in `bucket`: found by trying, about 2^(bucket + 1)
    /// hashes, which is why only the first `max_refresh_bucket` buckets are refreshed.
    fn random_key_in_bucket(&mut self, bucket: usize) -> Option<Vec<u8>> {
        let local = *self.table.local_key();
        let tries = 1usize << (bucket.min(20) + 4);
        let mut key = vec![0x12, 0x20];
        key.resize(34, 0);
        for _ in 0..tries {
            if let Some(digest) = key.get_mut(2..) {
                self.rng.fill_bytes(digest);
            }
            if local.distance(&Key::new(&key)).bucket() == Some(bucket) {
                return Some(key);
            }
        }
        None
    }

    // ----- time -----

    /// When [`KadCore::handle_timeout`] should next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Runs what is due at `now`: request and query timeouts, bootstrap, republishing,
    /// reproviding, expiry.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, timer))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            match timer {
                Timer::Request(id) => {
                    if self.requests.get(&id).is_some_and(|p| p.deadline <= now) {
                        self.on_response(id, Err(RequestFailure::Timeout), now);
                    }
                }
                Timer::Query(id) => {
                    if self.queries.get(&id).is_some_and(|q| q.deadline <= now) {
                        self.finish(id, now, true);
                    }
                }
                Timer::Bootstrap => {
                    if !self.table.is_empty() {
                        let _ = self.bootstrap(now);
                    }
                    if let Some(every) = self.config.bootstrap_interval {
                        self.schedule(now, every, Timer::Bootstrap);
                    }
                }
                Timer::AutoBootstrap => {
                    if !self.table.is_empty() {
                        let _ = self.bootstrap(now);
                    }
                }
                Timer::Republish => {
                    let records: Vec<Record> = self.own_records.values().cloned().collect();
                    for mut record in records {
                        record.expires = now.checked_add(self.config.record_ttl);
                        let _ = self.store_record(self.local, record.clone(), now);
                        let _ = self.start_put(record, true, now);
                    }
                    if let Some(every) = self.config.republish_interval {
                        self.schedule(now, every, Timer::Republish);
                    }
                }
                Timer::Reprovide => {
                    let keys: Vec<Vec<u8>> = self.own_provides.iter().cloned().collect();
                    let (ttl, addr_ttl) = (self.config.provider_ttl, self.config.provider_addr_ttl);
                    for key in keys {
                        let addrs = self.local_addrs.clone();
                        let _ = self
                            .providers
                            .add(&key, self.local, addrs, now, ttl, addr_ttl);
                        let _ = self.start_provide(&key, true, now);
                    }
                    if let Some(every) = self.config.reprovide_interval {
                        self.schedule(now, every, Timer::Reprovide);
                    }
                }
                Timer::Cleanup => {
                    let records = self.records.expire(now);
                    let providers = self.providers.expire(now);
                    if records + providers > 0 {
                        trace!(records, providers, "kad: expired entries removed");
                    }
                    let every = self.config.cleanup_interval;
                    self.schedule(now, every, Timer::Cleanup);
                }
            }
        }
    }

    // ----- outputs -----

    /// The next request to carry out.
    pub fn poll_request(&mut self) -> Option<OutboundRequest> {
        self.outbox.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}

/// The sha2-256 multihash of `data` (`0x12 0x20 ‖ SHA-256(data)`): the provider key of a
/// piece of content (a CID's multihash).
pub fn sha256_multihash(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    let mut key = Vec::with_capacity(34);
    key.extend_from_slice(&[0x12, 0x20]);
    key.extend_from_slice(&sha2::Sha256::digest(data));
    key
}

/// Whether `bytes` is exactly one multihash: `uvarint(code) ‖ uvarint(len) ‖ digest[len]`.
pub fn is_multihash(bytes: &[u8]) -> bool {
    let Ok((_code, rest)) = lp2p_core::varint::decode_prefix(bytes) else {
        return false;
    };
    let Ok((len, digest)) = lp2p_core::varint::decode_prefix(rest) else {
        return false;
    };
    usize::try_from(len).is_ok_and(|len| len == digest.len())
}
