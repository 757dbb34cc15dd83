//! A deterministic network of gossipsub cores in virtual time. Links carry the encoded,
//! LP-framed RPC bytes the cores produce, with a fixed latency per link; the receiving side
//! cuts frames with lp2p-core's frame decoder and feeds them to its core.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use lp2p_core::framing::FrameDecoder;
use lp2p_core::{Keypair, PeerId};
use lp2p_pubsub::{
    Config, Direction, Event, GossipsubConfig, GossipsubCore, GossipsubRouter, MessageId,
    PeerConnection, PeerKind, PubsubError, Topic,
};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

/// How to build the network.
#[derive(Clone)]
pub struct SimConfig {
    pub nodes: usize,
    /// Each node dials this many random others (plus a ring, so the graph is connected).
    pub dials: usize,
    pub seed: u64,
    /// Link latency range, in milliseconds.
    pub latency_ms: (u64, u64),
    /// Fraction of nodes that speak only gossipsub v1.1.
    pub v11_fraction: f64,
    pub config: Config,
    pub gossipsub: GossipsubConfig,
}

impl SimConfig {
    pub fn new(nodes: usize, dials: usize, seed: u64) -> SimConfig {
        SimConfig {
            nodes,
            dials,
            seed,
            latency_ms: (5, 50),
            v11_fraction: 0.0,
            config: Config::default(),
            gossipsub: GossipsubConfig::default(),
        }
    }
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Packet {
    arrival: Instant,
    seq: u64,
    from: usize,
    to: usize,
    bytes: Vec<u8>,
}

/// Per directed link: the receiver's frame decoder and buffer.
struct Inbound {
    decoder: FrameDecoder,
    buf: BytesMut,
}

pub struct Sim {
    pub nodes: Vec<GossipsubCore>,
    pub ids: Vec<PeerId>,
    index: HashMap<PeerId, usize>,
    pub start: Instant,
    pub now: Instant,
    /// Undirected links, (low, high).
    pub links: BTreeSet<(usize, usize)>,
    latency: HashMap<(usize, usize), Duration>,
    inbound: HashMap<(usize, usize), Inbound>,
    queue: BinaryHeap<Reverse<Packet>>,
    seq: u64,
    /// Per node: message id -> times delivered to the application.
    pub deliveries: Vec<HashMap<MessageId, u32>>,
    /// Publish-to-delivery latencies, virtual time.
    pub latencies: Vec<Duration>,
    published: HashMap<MessageId, Instant>,
    /// Per node: the events other than messages.
    pub events: Vec<Vec<Event>>,
    /// (time, node, mesh size of the tracked topic) right after each heartbeat.
    pub mesh_sizes: Vec<(Instant, usize, usize)>,
    pub tracked: Option<Topic>,
    pub bytes_sent: u64,
    pub frames_sent: u64,
}

impl Sim {
    pub fn new(cfg: &SimConfig) -> Sim {
        let start = Instant::now();
        let mut rng = SmallRng::seed_from_u64(cfg.seed);
        let mut nodes = Vec::new();
        let mut ids = Vec::new();
        let mut kinds = Vec::new();
        for n in 0..cfg.nodes {
            // Identities from the seed too, so a run is reproducible end to end.
            let mut secret = [0u8; 32];
            secret[..8].copy_from_slice(&cfg.seed.to_be_bytes());
            secret[8..16].copy_from_slice(&(n as u64).to_be_bytes());
            let keypair = Keypair::ed25519_from_bytes(secret).unwrap();
            ids.push(keypair.public().to_peer_id());
            let router = GossipsubRouter::new(cfg.gossipsub.clone()).unwrap();
            let seed = cfg.seed.wrapping_mul(1000).wrapping_add(n as u64);
            nodes.push(
                GossipsubCore::with_seed(keypair, cfg.config.clone(), router, start, seed).unwrap(),
            );
            let v11 = rng.random_bool(cfg.v11_fraction);
            kinds.push(if v11 {
                PeerKind::Gossipsub11
            } else {
                PeerKind::Gossipsub12
            });
        }
        let index = ids.iter().enumerate().map(|(i, p)| (*p, i)).collect();
        let mut sim = Sim {
            deliveries: vec![HashMap::new(); cfg.nodes],
            events: vec![Vec::new(); cfg.nodes],
            nodes,
            ids,
            index,
            start,
            now: start,
            links: BTreeSet::new(),
            latency: HashMap::new(),
            inbound: HashMap::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            latencies: Vec::new(),
            published: HashMap::new(),
            mesh_sizes: Vec::new(),
            tracked: None,
            bytes_sent: 0,
            frames_sent: 0,
        };
        let n = cfg.nodes;
        for a in 0..n {
            let mut targets = BTreeSet::new();
            if n > 1 {
                targets.insert((a + 1) % n);
            }
            // The ring neighbour plus `dials` random others.
            let want = (cfg.dials + 1).min(n.saturating_sub(1));
            while targets.len() < want {
                let b = rng.random_range(0..n);
                if b != a {
                    targets.insert(b);
                }
            }
            for b in targets {
                let latency =
                    Duration::from_millis(rng.random_range(cfg.latency_ms.0..=cfg.latency_ms.1));
                sim.connect(a, b, latency, kinds[a].min(kinds[b]));
            }
        }
        sim
    }

    /// `a` dials `b`.
    fn connect(&mut self, a: usize, b: usize, latency: Duration, kind: PeerKind) {
        let key = (a.min(b), a.max(b));
        if !self.links.insert(key) {
            return;
        }
        for (from, to) in [(a, b), (b, a)] {
            self.latency.insert((from, to), latency);
            self.inbound.insert(
                (from, to),
                Inbound {
                    decoder: FrameDecoder::new(self.nodes[to].config().max_transmit_size),
                    buf: BytesMut::new(),
                },
            );
        }
        let now = self.now;
        let (ida, idb) = (self.ids[a], self.ids[b]);
        let ip = |n: usize| {
            Some(std::net::IpAddr::from([
                10,
                0,
                (n / 256) as u8,
                (n % 256) as u8,
            ]))
        };
        self.nodes[a].add_peer(
            idb,
            PeerConnection {
                kind,
                direction: Direction::Outbound,
                ip: ip(b),
            },
            now,
        );
        self.nodes[b].add_peer(
            ida,
            PeerConnection {
                kind,
                direction: Direction::Inbound,
                ip: ip(a),
            },
            now,
        );
    }

    pub fn neighbours(&self, node: usize) -> Vec<usize> {
        self.links
            .iter()
            .filter_map(|&(a, b)| {
                if a == node {
                    Some(b)
                } else if b == node {
                    Some(a)
                } else {
                    None
                }
            })
            .collect()
    }

    pub fn subscribe_all(&mut self, topic: &str) {
        self.tracked = Some(Topic::new(topic));
        let now = self.now;
        for node in &mut self.nodes {
            node.subscribe(topic, now);
        }
    }

    pub fn publish(
        &mut self,
        node: usize,
        topic: &str,
        data: Bytes,
    ) -> Result<MessageId, PubsubError> {
        let id = self.nodes[node].publish(topic, data, self.now)?;
        self.published.insert(id.clone(), self.now);
        Ok(id)
    }

    /// Moves everything the cores produced onto the links, and collects their events.
    fn flush(&mut self) {
        for from in 0..self.nodes.len() {
            while let Some(peer) = self.nodes[from].poll_ready_peer() {
                let mut wire = Vec::new();
                while self.nodes[from].poll_transmit(&peer, &mut wire) {}
                if wire.is_empty() {
                    continue;
                }
                let to = self.index[&peer];
                let arrival = self.now + self.latency[&(from, to)];
                self.seq += 1;
                self.bytes_sent += wire.len() as u64;
                self.frames_sent += 1;
                self.queue.push(Reverse(Packet {
                    arrival,
                    seq: self.seq,
                    from,
                    to,
                    bytes: wire,
                }));
            }
            while let Some(event) = self.nodes[from].poll_event() {
                match event {
                    Event::Message { message_id, .. } => {
                        if let Some(published) = self.published.get(&message_id) {
                            self.latencies.push(self.now - *published);
                        }
                        *self.deliveries[from].entry(message_id).or_default() += 1;
                    }
                    Event::Grafted { .. } | Event::Pruned { .. } | Event::Subscribed { .. } => {}
                    other => self.events[from].push(other),
                }
            }
        }
    }

    /// Runs the network until `self.now + by`.
    pub fn run_for(&mut self, by: Duration) {
        let end = self.now + by;
        loop {
            self.flush();
            let next_packet = self.queue.peek().map(|Reverse(p)| p.arrival);
            let next_timer = self
                .nodes
                .iter()
                .filter_map(GossipsubCore::poll_timeout)
                .min();
            let next = match (next_packet, next_timer) {
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
            while self
                .queue
                .peek()
                .is_some_and(|Reverse(p)| p.arrival <= self.now)
            {
                let Reverse(packet) = self.queue.pop().unwrap();
                self.deliver(&packet);
            }
            for node in 0..self.nodes.len() {
                if self.nodes[node]
                    .poll_timeout()
                    .is_some_and(|t| t <= self.now)
                {
                    let ticks = self.nodes[node].router().heartbeat_ticks();
                    self.nodes[node].handle_timeout(self.now);
                    if self.nodes[node].router().heartbeat_ticks() != ticks
                        && let Some(topic) = &self.tracked
                    {
                        let size = self.nodes[node].router().mesh_peers(topic).count();
                        self.mesh_sizes.push((self.now, node, size));
                    }
                }
            }
        }
        self.flush();
        self.now = end;
    }

    fn deliver(&mut self, packet: &Packet) {
        let inbound = self.inbound.get_mut(&(packet.from, packet.to)).unwrap();
        inbound.buf.extend_from_slice(&packet.bytes);
        let sender = self.ids[packet.from];
        while let Some(frame) = inbound.decoder.decode(&mut inbound.buf).unwrap() {
            self.nodes[packet.to]
                .handle_rpc(sender, frame, self.now)
                .unwrap();
        }
    }

    /// The `q`-quantile of the recorded delivery latencies.
    pub fn latency_quantile(&self, q: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        let index = ((sorted.len() - 1) as f64 * q).round() as usize;
        sorted[index]
    }
}
