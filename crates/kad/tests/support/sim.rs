//! A deterministic network of Kademlia cores in virtual time.
//!
//! Every request and response crosses a simulated link as its encoded protobuf bytes (so
//! the wire codec runs on every hop), with a per-link latency and a loss probability; a node
//! that is offline never answers (the requester times out, as with a peer that vanished
//! behind a NAT). When a node serves a request, it learns the requester the way identify
//! would tell it: a server with a signed address (clients are never reported as servers).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use lp2p_core::{Keypair, Multiaddr, PeerId};
use lp2p_kad::{
    Event, KadConfig, KadCore, Mode, PeerReport, QueryId, QueryResult, QueryStats, RequestFailure,
    RequestId, wire,
};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

/// How to build the network.
#[derive(Clone)]
pub struct SimConfig {
    pub nodes: usize,
    pub seed: u64,
    /// One-way link latency range, in milliseconds.
    pub latency_ms: (u64, u64),
    /// Probability that any one message (request or response) is lost.
    pub loss: f64,
    /// Fraction of nodes in client mode.
    pub client_fraction: f64,
    /// Peers each joining node knows (random earlier nodes).
    pub bootstrap_peers: usize,
    /// Time between two nodes joining.
    pub join_interval: Duration,
    pub config: KadConfig,
}

impl SimConfig {
    pub fn new(nodes: usize, seed: u64) -> SimConfig {
        let config = KadConfig {
            // The simulation drives bootstrap itself; periodic jobs would only add events.
            bootstrap_interval: None,
            auto_bootstrap: false,
            republish_interval: None,
            reprovide_interval: None,
            cleanup_interval: Duration::from_secs(600),
            ..KadConfig::default()
        };
        SimConfig {
            nodes,
            seed,
            latency_ms: (10, 100),
            loss: 0.0,
            client_fraction: 0.0,
            bootstrap_peers: 3,
            join_interval: Duration::from_millis(20),
            config,
        }
    }
}

enum Message {
    /// A request arriving at `to`.
    Request {
        from: usize,
        to: usize,
        id: RequestId,
        bytes: Vec<u8>,
    },
    /// The outcome of `id` arriving back at `to`.
    Reply {
        to: usize,
        id: RequestId,
        outcome: Result<(Option<Vec<u8>>, Option<Multiaddr>), RequestFailure>,
    },
}

pub struct Node {
    pub core: KadCore,
    /// Peers this node heard from already (identify runs once per connection).
    reported: std::collections::HashSet<usize>,
    pub id: PeerId,
    pub addr: Multiaddr,
    pub online: bool,
    pub mode: Mode,
}

pub struct Sim {
    pub nodes: Vec<Node>,
    pub index: HashMap<PeerId, usize>,
    pub start: Instant,
    pub now: Instant,
    cfg: SimConfig,
    rng: SmallRng,
    queue: BinaryHeap<Reverse<(Instant, u64)>>,
    messages: HashMap<u64, Message>,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    seq: u64,
    /// Finished queries: (node, id) -> result.
    pub results: HashMap<(usize, QueryId), (QueryResult, QueryStats)>,
    pub messages_sent: u64,
    pub messages_lost: u64,
}

impl Sim {
    /// Builds the nodes (none joined yet: call [`Sim::join_all`]).
    pub fn new(cfg: SimConfig) -> Sim {
        let start = Instant::now();
        let mut rng = SmallRng::seed_from_u64(cfg.seed);
        let mut nodes = Vec::with_capacity(cfg.nodes);
        for n in 0..cfg.nodes {
            let mut secret = [0u8; 32];
            secret[..8].copy_from_slice(&cfg.seed.to_be_bytes());
            secret[8..16].copy_from_slice(&(n as u64).to_be_bytes());
            let id = Keypair::ed25519_from_bytes(secret)
                .unwrap()
                .public()
                .to_peer_id();
            let mode = if rng.random_bool(cfg.client_fraction) {
                Mode::Client
            } else {
                Mode::Server
            };
            let mut config = cfg.config.clone();
            config.mode = mode;
            let core = KadCore::with_seed(id, config, start, cfg.seed ^ (n as u64) << 20);
            nodes.push(Node {
                core,
                reported: std::collections::HashSet::new(),
                id,
                addr: format!("/memory/{}", n + 1).parse().unwrap(),
                online: false,
                mode,
            });
        }
        let index = nodes.iter().enumerate().map(|(i, n)| (n.id, i)).collect();
        Sim {
            nodes,
            index,
            start,
            now: start,
            cfg,
            rng,
            queue: BinaryHeap::new(),
            messages: HashMap::new(),
            timers: BinaryHeap::new(),
            seq: 0,
            results: HashMap::new(),
            messages_sent: 0,
            messages_lost: 0,
        }
    }

    /// Nodes join one after another, each knowing a few random earlier servers, and
    /// bootstrap; then the network runs for `settle`.
    pub fn join_all(&mut self, settle: Duration) {
        for n in 0..self.nodes.len() {
            self.nodes[n].online = true;
            let servers: Vec<usize> = (0..n)
                .filter(|&j| self.nodes[j].mode == Mode::Server && self.nodes[j].online)
                .collect();
            for _ in 0..self.cfg.bootstrap_peers.min(servers.len()) {
                let j = servers[self.rng.random_range(0..servers.len())];
                let (id, addr) = (self.nodes[j].id, self.nodes[j].addr.clone());
                let now = self.now;
                self.nodes[n].core.add_address(id, vec![addr], now);
            }
            let now = self.now;
            let _ = self.nodes[n].core.bootstrap(now);
            self.flush(n);
            let interval = self.cfg.join_interval;
            self.run_for(interval);
        }
        self.run_for(settle);
    }

    pub fn latency(&mut self) -> Duration {
        let (lo, hi) = self.cfg.latency_ms;
        Duration::from_millis(self.rng.random_range(lo..=hi))
    }

    fn post(&mut self, after: Duration, message: Message) {
        self.seq += 1;
        self.messages_sent += 1;
        let lost = match &message {
            Message::Request { .. } => self.rng.random_bool(self.cfg.loss),
            Message::Reply { outcome, .. } => {
                outcome.is_ok() && self.rng.random_bool(self.cfg.loss)
            }
        };
        if lost {
            self.messages_lost += 1;
            return;
        }
        self.queue.push(Reverse((self.now + after, self.seq)));
        self.messages.insert(self.seq, message);
    }

    /// Moves node `n`'s requests onto the links and collects its events.
    pub fn flush(&mut self, n: usize) {
        while let Some(out) = self.nodes[n].core.poll_request() {
            let Some(&to) = self.index.get(&out.peer) else {
                let failed = Message::Reply {
                    to: n,
                    id: out.id,
                    outcome: Err(RequestFailure::Unreachable),
                };
                self.post(Duration::ZERO, failed);
                continue;
            };
            let bytes = wire::encode_request(&out.request, self.now);
            if !out.request.expects_response() {
                // Written: the requester is done once it is on the wire.
                let written = Message::Reply {
                    to: n,
                    id: out.id,
                    outcome: Ok((None, Some(self.nodes[to].addr.clone()))),
                };
                self.post(Duration::ZERO, written);
            }
            let latency = self.latency();
            self.post(
                latency,
                Message::Request {
                    from: n,
                    to,
                    id: out.id,
                    bytes,
                },
            );
        }
        while let Some(event) = self.nodes[n].core.poll_event() {
            if let Event::Finished { id, result, stats } = event {
                self.results.insert((n, id), (result, stats));
            }
        }
        if let Some(at) = self.nodes[n].core.poll_timeout() {
            self.timers.push(Reverse((at, n)));
        }
    }

    /// Runs the network until `self.now + by`.
    pub fn run_for(&mut self, by: Duration) {
        let end = self.now + by;
        loop {
            let next_message = self.queue.peek().map(|Reverse((t, _))| *t);
            let next_timer = self.timers.peek().map(|Reverse((t, _))| *t);
            let next = match (next_message, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(t) => t,
                    None => break,
                },
            };
            if next > end {
                break;
            }
            self.now = self.now.max(next);
            if next_message == Some(next) {
                let Reverse((_, seq)) = self.queue.pop().unwrap();
                let message = self.messages.remove(&seq).unwrap();
                self.deliver(message);
            } else {
                let Reverse((at, n)) = self.timers.pop().unwrap();
                // Stale entries (the node's deadline moved) are skipped.
                if self.nodes[n].core.poll_timeout() == Some(at) {
                    let now = self.now;
                    self.nodes[n].core.handle_timeout(now);
                    self.flush(n);
                }
            }
        }
        self.now = end;
    }

    fn deliver(&mut self, message: Message) {
        let now = self.now;
        match message {
            Message::Request {
                from,
                to,
                id,
                bytes,
            } => {
                if !self.nodes[to].online || self.nodes[to].mode == Mode::Client {
                    // Gone, or does not speak the protocol: no answer (offline), or a
                    // refusal (client mode) that arrives after a round trip.
                    if self.nodes[to].online {
                        let latency = self.latency();
                        let refused = Message::Reply {
                            to: from,
                            id,
                            outcome: Err(RequestFailure::Unreachable),
                        };
                        self.post(latency, refused);
                    }
                    return;
                }
                let requester = self.nodes[from].id;
                if self.nodes[from].mode == Mode::Server && self.nodes[to].reported.insert(from) {
                    // What identify would have told the responder.
                    let report = PeerReport {
                        server: true,
                        verified_addrs: vec![self.nodes[from].addr.clone()],
                    };
                    self.nodes[to].core.on_peer_report(requester, report, now);
                }
                let answer = self.nodes[to]
                    .core
                    .handle_request_bytes(requester, &bytes, now);
                self.flush(to);
                let dialed = Some(self.nodes[to].addr.clone());
                match answer {
                    Ok(Some(response)) => {
                        let latency = self.latency();
                        let reply = Message::Reply {
                            to: from,
                            id,
                            outcome: Ok((Some(response), dialed)),
                        };
                        self.post(latency, reply);
                    }
                    Ok(None) => {}
                    Err(_) => {
                        let latency = self.latency();
                        let reset = Message::Reply {
                            to: from,
                            id,
                            outcome: Err(RequestFailure::Failed),
                        };
                        self.post(latency, reset);
                    }
                }
            }
            Message::Reply { to, id, outcome } => {
                if !self.nodes[to].online {
                    return;
                }
                self.nodes[to].core.on_response_bytes(id, outcome, now);
                self.flush(to);
            }
        }
    }

    /// Runs until query `id` of node `n` finished (at most `limit`); its result.
    pub fn wait(&mut self, n: usize, id: QueryId, limit: Duration) -> (QueryResult, QueryStats) {
        let step = Duration::from_millis(100);
        let end = self.now + limit;
        while self.now < end {
            if let Some(done) = self.results.remove(&(n, id)) {
                return done;
            }
            self.run_for(step);
        }
        self.results
            .remove(&(n, id))
            .unwrap_or_else(|| panic!("query {id} of node {n} did not finish"))
    }

    pub fn online_servers(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&n| self.nodes[n].online && self.nodes[n].mode == Mode::Server)
            .collect()
    }

    pub fn online(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&n| self.nodes[n].online)
            .collect()
    }

    /// Takes `fraction` of the online nodes (never those in `keep`) offline; returns them.
    pub fn churn(&mut self, fraction: f64, keep: &[usize]) -> Vec<usize> {
        let mut gone = Vec::new();
        for n in 0..self.nodes.len() {
            if self.nodes[n].online && !keep.contains(&n) && self.rng.random_bool(fraction) {
                self.nodes[n].online = false;
                gone.push(n);
            }
        }
        gone
    }

    pub fn rng(&mut self) -> &mut SmallRng {
        &mut self.rng
    }
}
