//! The client's state, sans-IO: the candidate addresses, what each server said about each,
//! the verdict per address, which address to test next with which server, and the nonces of
//! probes in flight. Time is passed in.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use lp2p_core::addr::split_peer_id;
use lp2p_core::{Multiaddr, PeerId};

use crate::message::{DialResponse, DialStatus, ResponseStatus};

/// Time between probes while an address waits for a verdict, by default. Why 15 s: a new
/// address gets its verdict from three servers within a minute, and a node asks each
/// server far less often than the servers' per-peer limit (12 a minute).
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(15);
/// Time before an address with a verdict is tested again, by default. Why 30 min: NAT
/// mappings and firewall rules change rarely; go-libp2p rechecks confirmed addresses on
/// the order of an hour, and a lost mapping should not stay advertised for longer.
pub const DEFAULT_RECHECK_INTERVAL: Duration = Duration::from_secs(30 * 60);
/// Distinct servers that must agree before an address is public or private, by default.
/// Why 3: the spec's suggested heuristic; one server alone may lie or sit in the same
/// network as we do.
pub const DEFAULT_CONFIDENCE: usize = 3;
/// Addresses sent in one request, by default. Why 4: the first is the one we want tested,
/// the rest are fallbacks the server may pick when it cannot dial the first (another
/// family or transport); rust-libp2p's servers read at most about 4 KiB per message.
pub const DEFAULT_MAX_ADDRS_PER_REQUEST: usize = 4;
/// Most dial data we agree to send for one request, by default. Why 100 kB: the top of the
/// spec's range; a server asking for more is misbehaving.
pub const DEFAULT_MAX_DIAL_DATA: u64 = 100_000;
/// Candidate addresses tracked at once, by default. Why 16: a node has a few listen
/// addresses per transport and family plus observed and mapped ones; more is noise (or an
/// attacker feeding us observed addresses).
pub const DEFAULT_MAX_CANDIDATES: usize = 16;
/// Server results remembered per address. Why 8: enough to outvote a few liars at the
/// default confidence of 3; older results age out as servers answer again.
pub const RESULTS_PER_ADDRESS: usize = 8;

/// The client's policy.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Time between probes while an address waits for a verdict.
    pub probe_interval: Duration,
    /// Time before an address with a verdict is tested again.
    pub recheck_interval: Duration,
    /// Distinct servers that must agree on a verdict.
    pub confidence: usize,
    /// Addresses sent in one request (the tested one first).
    pub max_addrs_per_request: usize,
    /// Most dial data we agree to send for one request.
    pub max_dial_data: u64,
    /// How long one request may take, dial data and dial back included.
    pub request_timeout: Duration,
    /// Candidate addresses tracked at once.
    pub max_candidates: usize,
    /// Confirmed (public) addresses become the host's external addresses.
    pub update_external_addrs: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            probe_interval: DEFAULT_PROBE_INTERVAL,
            recheck_interval: DEFAULT_RECHECK_INTERVAL,
            confidence: DEFAULT_CONFIDENCE,
            max_addrs_per_request: DEFAULT_MAX_ADDRS_PER_REQUEST,
            max_dial_data: DEFAULT_MAX_DIAL_DATA,
            request_timeout: crate::server::core::DEFAULT_REQUEST_TIMEOUT,
            max_candidates: DEFAULT_MAX_CANDIDATES,
            update_external_addrs: true,
        }
    }
}

/// What we know of one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reachability {
    /// Enough servers dialed it.
    Public,
    /// Enough servers failed to dial it.
    Private,
    /// Not enough (or contradicting) answers yet.
    Unknown,
}

impl Reachability {
    /// `public`, `private` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reachability::Public => "public",
            Reachability::Private => "private",
            Reachability::Unknown => "unknown",
        }
    }
}

/// A probe to send: ask `server` to dial one of `addrs` and hand over `nonce`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeRequest {
    /// The server to ask.
    pub server: PeerId,
    /// The addresses, the one to test first.
    pub addrs: Vec<Multiaddr>,
    /// The nonce the dial back must carry.
    pub nonce: u64,
}

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeResult {
    /// The server reached us on `addr` and handed over our nonce on a connection of the
    /// same transport.
    Reachable {
        /// The address dialed.
        addr: Multiaddr,
    },
    /// The server could not connect to `addr`.
    Unreachable {
        /// The address dialed.
        addr: Multiaddr,
    },
    /// No verdict, and why (the server did not dial, the dial back failed or never carried
    /// our nonce, the exchange failed). Never changes an address's status.
    Inconclusive {
        /// Why.
        reason: String,
    },
}

/// Which AutoNAT protocol a probe used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtocolVersion {
    /// AutoNAT v1 (`/libp2p/autonat/1.0.0`): the fallback when no connected peer serves v2.
    V1,
    /// AutoNAT v2 (`/libp2p/autonat/2/dial-request`).
    V2,
}

/// An address whose status changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    /// The address.
    pub addr: Multiaddr,
    /// Its new status.
    pub status: Reachability,
}

/// The client's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Probes started.
    pub probes: u64,
    /// Probes that found an address reachable.
    pub reachable: u64,
    /// Probes that found an address unreachable.
    pub unreachable: u64,
    /// Probes without a verdict.
    pub inconclusive: u64,
    /// Dial backs carrying a nonce we did not send (dropped).
    pub unknown_nonces: u64,
    /// Candidates not tracked because the list was full.
    pub candidates_dropped: u64,
}

#[derive(Debug)]
struct Candidate {
    status: Reachability,
    /// The latest result of each server that answered, oldest first.
    results: VecDeque<(PeerId, bool)>,
    last_probe: Option<Instant>,
    /// The latest probe that tested this address first and ended without a verdict.
    last_inconclusive: Option<(PeerId, String)>,
}

/// What the client knows about one tracked address: the material of an
/// [`Explanation`](crate::client::explain::Explanation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandidateReport {
    /// The verdict.
    pub status: Reachability,
    /// Servers whose latest answer was that they reached the address.
    pub reachable_by: Vec<PeerId>,
    /// Servers whose latest answer was that they could not.
    pub unreachable_by: Vec<PeerId>,
    /// Distinct agreeing servers a verdict needs ([`ClientConfig::confidence`]).
    pub confidence: usize,
    /// How long ago the address was last probed; `None`: never.
    pub last_probed: Option<Duration>,
    /// The latest probe of this address that ended without a verdict: the server and why.
    pub last_inconclusive: Option<(PeerId, String)>,
}

#[derive(Debug)]
struct Pending {
    server: PeerId,
    addrs: Vec<Multiaddr>,
    /// The local address of the connection the dial back came on, once it came.
    dialed_on: Option<Multiaddr>,
}

/// The sans-IO client.
#[derive(Debug)]
pub struct ClientCore {
    config: ClientConfig,
    candidates: Vec<(Multiaddr, Candidate)>,
    pending: HashMap<u64, Pending>,
    stats: ClientStats,
}

impl ClientCore {
    /// A client with `config`.
    pub fn new(config: ClientConfig) -> ClientCore {
        ClientCore {
            config,
            candidates: Vec::new(),
            pending: HashMap::new(),
            stats: ClientStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The counters so far.
    pub fn stats(&self) -> ClientStats {
        self.stats.clone()
    }

    /// Tracks `addr` (its `/p2p` suffix dropped) as a candidate; false when known already or
    /// the list is full.
    pub fn add_candidate(&mut self, addr: &Multiaddr) -> bool {
        let addr = split_peer_id(addr).0;
        if self.candidates.iter().any(|(a, _)| *a == addr) {
            return false;
        }
        if self.candidates.len() >= self.config.max_candidates {
            self.stats.candidates_dropped += 1;
            return false;
        }
        self.candidates.push((
            addr,
            Candidate {
                status: Reachability::Unknown,
                results: VecDeque::new(),
                last_probe: None,
                last_inconclusive: None,
            },
        ));
        true
    }

    /// Stops tracking `addr`; true when it was tracked.
    pub fn remove_candidate(&mut self, addr: &Multiaddr) -> bool {
        let before = self.candidates.len();
        self.candidates.retain(|(a, _)| a != addr);
        before != self.candidates.len()
    }

    /// Every candidate with its status.
    pub fn candidates(&self) -> Vec<(Multiaddr, Reachability)> {
        self.candidates
            .iter()
            .map(|(a, c)| (a.clone(), c.status))
            .collect()
    }

    /// The status of `addr` (`Unknown` when not tracked).
    pub fn status(&self, addr: &Multiaddr) -> Reachability {
        self.candidate(addr)
            .map_or(Reachability::Unknown, |c| c.status)
    }

    /// How many servers said `addr` is reachable and unreachable (their latest answers).
    pub fn votes(&self, addr: &Multiaddr) -> (usize, usize) {
        self.candidate(addr).map_or((0, 0), |c| {
            let yes = c.results.iter().filter(|(_, ok)| *ok).count();
            (yes, c.results.len() - yes)
        })
    }

    /// Everything the client knows about `addr` at `now`; `None` when it is not tracked.
    pub fn report(&self, addr: &Multiaddr, now: Instant) -> Option<CandidateReport> {
        let addr = split_peer_id(addr).0;
        let c = self.candidate(&addr)?;
        let by = |ok: bool| {
            c.results
                .iter()
                .filter(|(_, r)| *r == ok)
                .map(|(s, _)| *s)
                .collect()
        };
        Some(CandidateReport {
            status: c.status,
            reachable_by: by(true),
            unreachable_by: by(false),
            confidence: self.config.confidence.max(1),
            last_probed: c.last_probe.map(|t| now.saturating_duration_since(t)),
            last_inconclusive: c.last_inconclusive.clone(),
        })
    }

    /// Whether the candidate list is full (further addresses are not tracked).
    pub fn is_full(&self) -> bool {
        self.candidates.len() >= self.config.max_candidates
    }

    fn candidate(&self, addr: &Multiaddr) -> Option<&Candidate> {
        self.candidates
            .iter()
            .find(|(a, _)| a == addr)
            .map(|(_, c)| c)
    }

    /// Probes in flight.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Whether `candidate` should be tested now, and with which of `servers`: one that has
    /// not answered for it yet; while the servers disagree and no verdict stands, the one
    /// whose answer is oldest, at the probe interval; otherwise any, after the recheck
    /// interval.
    ///
    /// The disagreeing case: a server that answered before a port mapping existed said
    /// "unreachable", the others since said "reachable", and no server is left to ask. Its
    /// stale answer would hold the verdict back until the recheck interval (30 minutes).
    /// When every server agrees and there are fewer than `confidence`, asking again adds no
    /// vote, so that case waits for the recheck.
    fn due_with(&self, c: &Candidate, servers: &[PeerId], now: Instant) -> Option<PeerId> {
        let since = c.last_probe.map(|t| now.saturating_duration_since(t));
        let fresh = servers
            .iter()
            .find(|s| !c.results.iter().any(|(r, _)| r == *s))
            .copied();
        let undecided = c.status == Reachability::Unknown;
        let disagree = c.results.iter().any(|(_, ok)| *ok) && c.results.iter().any(|(_, ok)| !ok);
        // The server whose answer is oldest (or one that never answered).
        let oldest = || {
            servers
                .iter()
                .min_by_key(|s| c.results.iter().position(|(r, _)| r == *s))
                .copied()
        };
        match (since, fresh) {
            (None, Some(s)) => Some(s),
            (None, None) => servers.first().copied(),
            (Some(e), Some(s)) if undecided && e >= self.config.probe_interval => Some(s),
            (Some(e), None) if undecided && disagree && e >= self.config.probe_interval => oldest(),
            (Some(e), _) if e >= self.config.recheck_interval => oldest(),
            _ => None,
        }
    }

    /// The next probe to send, if an address is due and a server is available; it is in
    /// flight from now until [`finish`](Self::finish). One probe at a time: `None` while one
    /// is in flight.
    pub fn next_probe(
        &mut self,
        servers: &[PeerId],
        now: Instant,
        nonce: u64,
    ) -> Option<ProbeRequest> {
        self.next_probe_with(servers, now, nonce, self.config.max_addrs_per_request)
    }

    /// [`next_probe`](Self::next_probe) with at most `max_addrs` addresses in the request
    /// (at least the tested one): AutoNAT v1 probes test one address each, so that a
    /// server's `E_DIAL_ERROR` is a verdict on that address alone.
    pub fn next_probe_with(
        &mut self,
        servers: &[PeerId],
        now: Instant,
        nonce: u64,
        max_addrs: usize,
    ) -> Option<ProbeRequest> {
        if !self.pending.is_empty() || servers.is_empty() {
            return None;
        }
        // Never-tested addresses first, then the one tested longest ago.
        let (idx, server) = self
            .candidates
            .iter()
            .enumerate()
            .filter_map(|(i, (_, c))| Some((i, self.due_with(c, servers, now)?, c.last_probe)))
            .min_by_key(|(_, _, last)| *last)
            .map(|(i, s, _)| (i, s))?;
        let mut addrs = vec![self.candidates[idx].0.clone()];
        addrs.extend(
            self.candidates
                .iter()
                .enumerate()
                .filter(|(i, (_, c))| *i != idx && c.status == Reachability::Unknown)
                .map(|(_, (a, _))| a.clone())
                .take(max_addrs.saturating_sub(1)),
        );
        Some(self.start_probe(server, addrs, nonce, now))
    }

    /// Registers a probe of `addrs` with `server` (the shell's explicit probes go through
    /// here too). The tracked ones among `addrs` count as probed now.
    pub fn start_probe(
        &mut self,
        server: PeerId,
        addrs: Vec<Multiaddr>,
        nonce: u64,
        now: Instant,
    ) -> ProbeRequest {
        for (a, c) in &mut self.candidates {
            if addrs.contains(a) {
                c.last_probe = Some(now);
            }
        }
        self.stats.probes += 1;
        self.pending.insert(
            nonce,
            Pending {
                server,
                addrs: addrs.clone(),
                dialed_on: None,
            },
        );
        ProbeRequest {
            server,
            addrs,
            nonce,
        }
    }

    /// A dial back arrived with `nonce` on a connection whose local address is `local`.
    /// True when the nonce is one of ours in flight (answer it); false otherwise (drop it).
    pub fn dial_back(&mut self, nonce: u64, local: &Multiaddr) -> bool {
        if let Some(p) = self.pending.get_mut(&nonce) {
            p.dialed_on = Some(split_peer_id(local).0);
            true
        } else {
            self.stats.unknown_nonces += 1;
            false
        }
    }

    /// The probe with `nonce` ended with the server's `response`, or `Err(reason)` when the
    /// exchange failed. Returns what the probe found and the status change it caused.
    pub fn finish(
        &mut self,
        nonce: u64,
        response: Result<DialResponse, String>,
    ) -> (ProbeResult, Option<StatusChange>) {
        self.conclude(nonce, |pending| judge(pending, response))
    }

    /// The probe with `nonce` ended with the verdict `judge` reaches on the addresses it
    /// sent: how AutoNAT v1 probes end (their verdicts come from
    /// [`v1::client::core::judge`](crate::v1::client::core::judge)). The verdict counts
    /// toward the same per-address confidence as v2's.
    pub fn finish_judged(
        &mut self,
        nonce: u64,
        judge: impl FnOnce(&[Multiaddr]) -> ProbeResult,
    ) -> (ProbeResult, Option<StatusChange>) {
        self.conclude(nonce, |pending| judge(&pending.addrs))
    }

    fn conclude(
        &mut self,
        nonce: u64,
        judge: impl FnOnce(&Pending) -> ProbeResult,
    ) -> (ProbeResult, Option<StatusChange>) {
        let Some(pending) = self.pending.remove(&nonce) else {
            return (
                ProbeResult::Inconclusive {
                    reason: "no such probe".into(),
                },
                None,
            );
        };
        let result = judge(&pending);
        let change = match &result {
            ProbeResult::Reachable { addr } => {
                self.stats.reachable += 1;
                self.record(addr, pending.server, true)
            }
            ProbeResult::Unreachable { addr } => {
                self.stats.unreachable += 1;
                self.record(addr, pending.server, false)
            }
            ProbeResult::Inconclusive { reason } => {
                self.stats.inconclusive += 1;
                if let Some(tested) = pending.addrs.first()
                    && let Some((_, c)) = self.candidates.iter_mut().find(|(a, _)| a == tested)
                {
                    c.last_inconclusive = Some((pending.server, reason.clone()));
                }
                None
            }
        };
        (result, change)
    }

    fn record(&mut self, addr: &Multiaddr, server: PeerId, ok: bool) -> Option<StatusChange> {
        let confidence = self.config.confidence.max(1);
        let (_, c) = self.candidates.iter_mut().find(|(a, _)| a == addr)?;
        c.results.retain(|(s, _)| *s != server);
        c.results.push_back((server, ok));
        while c.results.len() > RESULTS_PER_ADDRESS {
            c.results.pop_front();
        }
        let yes = c.results.iter().filter(|(_, ok)| *ok).count();
        let no = c.results.len() - yes;
        let status = if yes >= confidence && yes > no {
            Reachability::Public
        } else if no >= confidence && no > yes {
            Reachability::Private
        } else {
            Reachability::Unknown
        };
        (status != c.status).then(|| {
            c.status = status;
            StatusChange {
                addr: addr.clone(),
                status,
            }
        })
    }
}

/// What a response means for the probe it answers.
fn judge(pending: &Pending, response: Result<DialResponse, String>) -> ProbeResult {
    let inconclusive = |reason: String| ProbeResult::Inconclusive { reason };
    let response = match response {
        Ok(r) => r,
        Err(reason) => return inconclusive(reason),
    };
    if response.status != ResponseStatus::Ok {
        return inconclusive(format!("the server answered {:?}", response.status));
    }
    let Some(addr) = usize::try_from(response.addr_idx)
        .ok()
        .and_then(|i| pending.addrs.get(i))
    else {
        return inconclusive(format!(
            "the server named address #{} of {}",
            response.addr_idx,
            pending.addrs.len()
        ));
    };
    match response.dial_status {
        DialStatus::Ok => match &pending.dialed_on {
            Some(local) if same_transport(local, addr) => {
                ProbeResult::Reachable { addr: addr.clone() }
            }
            Some(local) => inconclusive(format!(
                "the dial back came on {local}, not a connection like {addr}"
            )),
            None => {
                inconclusive("the server reported a dial back that never brought our nonce".into())
            }
        },
        DialStatus::DialError => ProbeResult::Unreachable { addr: addr.clone() },
        DialStatus::DialBackError => {
            inconclusive("the server connected but the dial back failed".into())
        }
        DialStatus::Unused => inconclusive("the server reported no dial".into()),
    }
}

/// Whether two addresses have the same protocol stack (ignoring addresses and ports): the
/// spec's check that the server dialed an address of the transport it reported.
fn same_transport(a: &Multiaddr, b: &Multiaddr) -> bool {
    a.iter().map(|p| p.tag()).eq(b.iter().map(|p| p.tag()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    #[allow(clippy::unnecessary_wraps)]
    fn ok(idx: u32) -> Result<DialResponse, String> {
        Ok(DialResponse {
            status: ResponseStatus::Ok,
            addr_idx: idx,
            dial_status: DialStatus::Ok,
        })
    }

    #[allow(clippy::unnecessary_wraps)]
    fn failed(idx: u32) -> Result<DialResponse, String> {
        Ok(DialResponse {
            status: ResponseStatus::Ok,
            addr_idx: idx,
            dial_status: DialStatus::DialError,
        })
    }

    fn one_address(confidence: usize) -> (ClientCore, Multiaddr) {
        let mut core = ClientCore::new(ClientConfig {
            confidence,
            ..ClientConfig::default()
        });
        let a = addr("/ip4/8.8.8.8/tcp/4001");
        assert!(core.add_candidate(&a));
        (core, a)
    }

    #[test]
    fn three_servers_that_dialed_back_make_an_address_public() {
        let (mut core, a) = one_address(3);
        let servers: Vec<PeerId> = (0..3).map(|_| PeerId::random()).collect();
        let mut now = Instant::now();
        let mut changes = Vec::new();
        for nonce in 1..=3 {
            let probe = core
                .next_probe(&servers, now, nonce)
                .expect("a probe is due");
            assert_eq!(probe.addrs, vec![a.clone()]);
            assert!(core.dial_back(nonce, &addr("/ip4/10.0.0.2/tcp/4001")));
            let (result, change) = core.finish(nonce, ok(0));
            assert_eq!(result, ProbeResult::Reachable { addr: a.clone() });
            changes.extend(change);
            now += DEFAULT_PROBE_INTERVAL;
        }
        assert_eq!(
            changes,
            vec![StatusChange {
                addr: a.clone(),
                status: Reachability::Public
            }]
        );
        assert_eq!(core.votes(&a), (3, 0));
    }

    #[test]
    fn each_server_counts_once_toward_confidence() {
        let (mut core, a) = one_address(2);
        let server = PeerId::random();
        let now = Instant::now();
        for nonce in 1..=3 {
            core.start_probe(server, vec![a.clone()], nonce, now);
            core.dial_back(nonce, &a);
            core.finish(nonce, ok(0));
        }
        assert_eq!(core.status(&a), Reachability::Unknown);
        assert_eq!(core.votes(&a), (1, 0));
        // With every server heard, the address waits for the recheck interval.
        assert!(
            core.next_probe(&[server], now + DEFAULT_PROBE_INTERVAL, 9)
                .is_none()
        );
        assert!(
            core.next_probe(&[server], now + DEFAULT_RECHECK_INTERVAL, 9)
                .is_some()
        );
    }

    /// The upnp cell of the NAT testbed hit this: server X answered before the port mapping
    /// existed, Y and Z after it. With no server left that has not answered, X is asked
    /// again at the probe interval (not after the 30-minute recheck), and the address
    /// becomes public.
    #[test]
    fn a_stale_dissenting_server_is_asked_again_at_the_probe_interval() {
        let (mut core, a) = one_address(3);
        let servers: Vec<PeerId> = (0..3).map(|_| PeerId::random()).collect();
        let mut now = Instant::now();
        for (nonce, reachable) in [(1, false), (2, true), (3, true)] {
            let probe = core
                .next_probe(&servers, now, nonce)
                .expect("a probe is due");
            assert_eq!(probe.server, servers[usize::try_from(nonce - 1).unwrap()]);
            let response = if reachable {
                assert!(core.dial_back(nonce, &a));
                ok(0)
            } else {
                failed(0)
            };
            core.finish(nonce, response);
            now += DEFAULT_PROBE_INTERVAL;
        }
        assert_eq!(core.votes(&a), (2, 1));
        assert_eq!(core.status(&a), Reachability::Unknown);
        let probe = core.next_probe(&servers, now, 4).expect("asked again");
        assert_eq!(
            probe.server, servers[0],
            "the server whose answer is oldest"
        );
        assert!(core.dial_back(4, &a));
        let (_, change) = core.finish(4, ok(0));
        assert_eq!(
            change,
            Some(StatusChange {
                addr: a.clone(),
                status: Reachability::Public
            })
        );
    }

    #[test]
    fn a_dial_ok_without_our_nonce_is_discarded() {
        let (mut core, a) = one_address(1);
        let server = PeerId::random();
        core.start_probe(server, vec![a.clone()], 5, Instant::now());
        assert!(!core.dial_back(6, &a), "another nonce is not ours");
        let (result, change) = core.finish(5, ok(0));
        assert!(
            matches!(result, ProbeResult::Inconclusive { .. }),
            "{result:?}"
        );
        assert_eq!(change, None);
        assert_eq!(core.stats().unknown_nonces, 1);
    }

    #[test]
    fn a_dial_back_on_another_transport_is_discarded() {
        let (mut core, a) = one_address(1);
        core.start_probe(PeerId::random(), vec![a.clone()], 5, Instant::now());
        assert!(core.dial_back(5, &addr("/ip4/8.8.8.8/udp/4001/quic-v1")));
        let (result, _) = core.finish(5, ok(0));
        assert!(
            matches!(result, ProbeResult::Inconclusive { .. }),
            "{result:?}"
        );
    }

    #[test]
    fn failures_make_an_address_private_and_errors_never_flip_it() {
        let (mut core, a) = one_address(2);
        let now = Instant::now();
        for nonce in 1..=2 {
            core.start_probe(PeerId::random(), vec![a.clone()], nonce, now);
            core.finish(nonce, failed(0));
        }
        assert_eq!(core.status(&a), Reachability::Private);
        for (nonce, response) in [
            (10, Err("timeout".to_string())),
            (
                11,
                Ok(DialResponse::without_dial(ResponseStatus::RequestRejected)),
            ),
            (
                12,
                Ok(DialResponse {
                    status: ResponseStatus::Ok,
                    addr_idx: 0,
                    dial_status: DialStatus::DialBackError,
                }),
            ),
        ] {
            core.start_probe(PeerId::random(), vec![a.clone()], nonce, now);
            let (result, change) = core.finish(nonce, response);
            assert!(matches!(result, ProbeResult::Inconclusive { .. }));
            assert_eq!(change, None);
        }
        assert_eq!(core.status(&a), Reachability::Private);
        assert_eq!(core.stats().inconclusive, 3);
    }

    #[test]
    fn the_verdict_goes_to_the_address_the_server_chose() {
        let mut core = ClientCore::new(ClientConfig {
            confidence: 1,
            ..ClientConfig::default()
        });
        let (a, b) = (addr("/ip6/2001:db8::1/tcp/1"), addr("/ip4/8.8.8.8/tcp/1"));
        core.add_candidate(&a);
        core.add_candidate(&b);
        let probe = core
            .next_probe(&[PeerId::random()], Instant::now(), 1)
            .unwrap();
        assert_eq!(probe.addrs, vec![a.clone(), b.clone()]);
        core.dial_back(1, &addr("/ip4/127.0.0.1/tcp/1"));
        let (_, change) = core.finish(1, ok(1));
        assert_eq!(
            change,
            Some(StatusChange {
                addr: b.clone(),
                status: Reachability::Public
            })
        );
        assert_eq!(core.status(&a), Reachability::Unknown);
        // An index outside the request is no verdict.
        core.start_probe(PeerId::random(), vec![a.clone()], 2, Instant::now());
        let (result, _) = core.finish(2, failed(4));
        assert!(matches!(result, ProbeResult::Inconclusive { .. }));
    }

    #[test]
    fn contradicting_servers_leave_the_address_unknown_until_a_majority() {
        let (mut core, a) = one_address(2);
        let now = Instant::now();
        let probe = |core: &mut ClientCore, nonce, reachable: bool| {
            core.start_probe(PeerId::random(), vec![a.clone()], nonce, now);
            if reachable {
                core.dial_back(nonce, &a);
                core.finish(nonce, ok(0))
            } else {
                core.finish(nonce, failed(0))
            }
        };
        probe(&mut core, 1, true);
        probe(&mut core, 2, false);
        assert_eq!(core.status(&a), Reachability::Unknown, "one each way");
        let (_, change) = probe(&mut core, 3, true);
        assert_eq!(change.map(|c| c.status), Some(Reachability::Public));
        assert_eq!(core.votes(&a), (2, 1));
    }

    #[test]
    fn candidates_are_bounded_and_deduplicated() {
        let mut core = ClientCore::new(ClientConfig {
            max_candidates: 2,
            ..ClientConfig::default()
        });
        let peer = PeerId::random();
        assert!(core.add_candidate(&addr(&format!("/ip4/1.1.1.1/tcp/1/p2p/{peer}"))));
        assert!(
            !core.add_candidate(&addr("/ip4/1.1.1.1/tcp/1")),
            "same address once"
        );
        assert!(core.add_candidate(&addr("/ip4/1.1.1.1/tcp/2")));
        assert!(!core.add_candidate(&addr("/ip4/1.1.1.1/tcp/3")));
        assert_eq!(core.stats().candidates_dropped, 1);
        assert!(core.remove_candidate(&addr("/ip4/1.1.1.1/tcp/2")));
        assert!(core.add_candidate(&addr("/ip4/1.1.1.1/tcp/3")));
    }

    #[test]
    fn the_report_names_the_servers_and_the_last_probe_without_verdict() {
        let (mut core, a) = one_address(3);
        let (yes, no, refusing) = (PeerId::random(), PeerId::random(), PeerId::random());
        let t0 = Instant::now();
        core.start_probe(yes, vec![a.clone()], 1, t0);
        core.dial_back(1, &a);
        core.finish(1, ok(0));
        core.start_probe(no, vec![a.clone()], 2, t0);
        core.finish(2, failed(0));
        core.start_probe(refusing, vec![a.clone()], 3, t0);
        core.finish(3, Err("the stream was reset".into()));
        let report = core
            .report(&a, t0 + Duration::from_secs(5))
            .expect("tracked");
        assert_eq!(report.status, Reachability::Unknown);
        assert_eq!(
            (report.reachable_by, report.unreachable_by),
            (vec![yes], vec![no])
        );
        assert_eq!(report.confidence, 3);
        assert_eq!(report.last_probed, Some(Duration::from_secs(5)));
        assert_eq!(
            report.last_inconclusive,
            Some((refusing, "the stream was reset".to_owned()))
        );
        assert!(core.report(&addr("/ip4/8.8.4.4/tcp/1"), t0).is_none());
    }

    #[test]
    fn one_probe_at_a_time_and_none_without_servers() {
        let (mut core, _) = one_address(3);
        let now = Instant::now();
        assert!(core.next_probe(&[], now, 1).is_none());
        let server = PeerId::random();
        assert!(core.next_probe(&[server], now, 1).is_some());
        assert!(core.next_probe(&[server], now, 2).is_none());
        core.finish(1, Err("reset".into()));
        assert_eq!(core.in_flight(), 0);
    }
}
