//! A scripted-peer harness: one core under test, remote peers played by the test. The test
//! sends exact RPCs and reads back the exact RPCs the core queued for each peer.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use lp2p_core::framing::FrameDecoder;
use lp2p_core::{Keypair, PeerId};
use lp2p_pubsub::proto;
use lp2p_pubsub::{
    Config, Direction, Event, GossipsubConfig, GossipsubCore, GossipsubRouter, PeerConnection,
    PeerKind, PubsubError, Topic,
};
use prost::Message as _;

/// A remote peer played by the test.
pub struct Remote {
    pub keypair: Keypair,
    pub id: PeerId,
    pub seqno: u64,
}

pub struct Harness {
    pub core: GossipsubCore,
    pub local: Keypair,
    pub now: Instant,
    pub remotes: BTreeMap<PeerId, Remote>,
}

impl Harness {
    pub fn new(config: Config, gossipsub: GossipsubConfig) -> Harness {
        let now = Instant::now();
        let router = GossipsubRouter::new(gossipsub).unwrap();
        let local = Keypair::generate_ed25519();
        let core = GossipsubCore::with_seed(local.clone(), config, router, now, 7).unwrap();
        Harness {
            core,
            local,
            now,
            remotes: BTreeMap::new(),
        }
    }

    pub fn gossipsub(gossipsub: GossipsubConfig) -> Harness {
        Harness::new(Config::default(), gossipsub)
    }

    /// Connects a new remote peer.
    pub fn connect(&mut self, kind: PeerKind, direction: Direction) -> PeerId {
        self.connect_with_ip(kind, direction, None)
    }

    pub fn connect_with_ip(
        &mut self,
        kind: PeerKind,
        direction: Direction,
        ip: Option<IpAddr>,
    ) -> PeerId {
        let keypair = Keypair::generate_ed25519();
        let id = keypair.public().to_peer_id();
        self.connect_keypair(keypair, kind, direction, ip);
        id
    }

    pub fn connect_keypair(
        &mut self,
        keypair: Keypair,
        kind: PeerKind,
        direction: Direction,
        ip: Option<IpAddr>,
    ) {
        let id = keypair.public().to_peer_id();
        assert!(self.core.add_peer(
            id,
            PeerConnection {
                kind,
                direction,
                ip
            },
            self.now
        ));
        self.remotes.insert(
            id,
            Remote {
                keypair,
                id,
                seqno: 1,
            },
        );
    }

    /// Connects `n` gossipsub v1.2 peers subscribed to `topic` (alternating outbound and
    /// inbound), and drains what the core sent.
    pub fn connect_subscribed(&mut self, n: usize, topic: &str) -> Vec<PeerId> {
        let peers: Vec<PeerId> = (0..n)
            .map(|i| {
                let direction = if i % 2 == 0 {
                    Direction::Outbound
                } else {
                    Direction::Inbound
                };
                let peer = self.connect(PeerKind::Gossipsub12, direction);
                self.subscribe_remote(peer, topic);
                peer
            })
            .collect();
        self.drain();
        peers
    }

    pub fn send(&mut self, from: PeerId, rpc: &proto::Rpc) -> Result<(), PubsubError> {
        self.core
            .handle_rpc(from, Bytes::from(rpc.encode_to_vec()), self.now)
    }

    pub fn subscribe_remote(&mut self, peer: PeerId, topic: &str) {
        self.send(
            peer,
            &proto::Rpc {
                subscriptions: vec![proto::rpc::SubOpts {
                    subscribe: Some(true),
                    topic_id: Some(topic.into()),
                }],
                ..Default::default()
            },
        )
        .unwrap();
    }

    pub fn send_control(&mut self, from: PeerId, control: proto::ControlMessage) {
        self.send(
            from,
            &proto::Rpc {
                control: Some(control),
                ..Default::default()
            },
        )
        .unwrap();
    }

    /// A message signed by remote `author` (its next sequence number).
    pub fn message_from(&mut self, author: PeerId, topic: &str, data: &[u8]) -> proto::Message {
        let remote = self.remotes.get_mut(&author).unwrap();
        let seqno = remote.seqno;
        remote.seqno += 1;
        sign_message(&remote.keypair, topic, data, seqno)
    }

    /// Sends a message authored and signed by `author` from `author`.
    pub fn publish_from(&mut self, author: PeerId, topic: &str, data: &[u8]) -> proto::Message {
        let message = self.message_from(author, topic, data);
        self.send(
            author,
            &proto::Rpc {
                publish: vec![message.clone()],
                ..Default::default()
            },
        )
        .unwrap();
        message
    }

    /// Everything queued for each peer, decoded.
    pub fn drain(&mut self) -> BTreeMap<PeerId, Vec<proto::Rpc>> {
        let mut out: BTreeMap<PeerId, Vec<proto::Rpc>> = BTreeMap::new();
        while let Some(peer) = self.core.poll_ready_peer() {
            let mut wire = Vec::new();
            while self.core.poll_transmit(&peer, &mut wire) {}
            out.entry(peer)
                .or_default()
                .extend(decode_frames(&wire, self.core.config().max_transmit_size));
        }
        out
    }

    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.core.poll_event()).collect()
    }

    /// Moves the clock forward by `by`, running every timeout on the way.
    pub fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        while let Some(due) = self.core.poll_timeout() {
            if due > target {
                break;
            }
            self.now = self.now.max(due);
            self.core.handle_timeout(self.now);
        }
        self.now = target;
    }

    /// Runs heartbeats until at least `n` more have happened.
    pub fn heartbeats(&mut self, n: u64) {
        let start = self.core.router().heartbeat_ticks();
        while self.core.router().heartbeat_ticks() < start + n {
            let due = self.core.poll_timeout().unwrap();
            self.now = self.now.max(due);
            self.core.handle_timeout(self.now);
        }
    }

    pub fn mesh(&self, topic: &str) -> Vec<PeerId> {
        self.core
            .router()
            .mesh_peers(&Topic::new(topic))
            .copied()
            .collect()
    }

    pub fn score(&self, peer: &PeerId) -> f64 {
        self.core.peer_score(peer, self.now).unwrap_or(0.0)
    }
}

/// LP-framed RPCs to decoded RPCs.
pub fn decode_frames(wire: &[u8], max: usize) -> Vec<proto::Rpc> {
    let mut decoder = FrameDecoder::new(max);
    let mut buf = BytesMut::from(wire);
    let mut out = Vec::new();
    while let Some(frame) = decoder.decode(&mut buf).unwrap() {
        out.push(proto::Rpc::decode(frame).unwrap());
    }
    assert!(buf.is_empty(), "a partial frame was left over");
    out
}

/// A StrictSign message, signed independently of the library's own signing code.
pub fn sign_message(keypair: &Keypair, topic: &str, data: &[u8], seqno: u64) -> proto::Message {
    let mut message = proto::Message {
        from: Some(Bytes::from(keypair.public().to_peer_id().to_bytes())),
        data: Some(Bytes::copy_from_slice(data)),
        seqno: Some(Bytes::copy_from_slice(&seqno.to_be_bytes())),
        topic: Some(Bytes::copy_from_slice(topic.as_bytes())),
        signature: None,
        key: None,
    };
    let mut signed = b"libp2p-pubsub:".to_vec();
    signed.extend_from_slice(&message.encode_to_vec());
    message.signature = Some(Bytes::from(keypair.sign(&signed).unwrap()));
    message
}

/// All messages in a list of RPCs.
pub fn messages(rpcs: &[proto::Rpc]) -> Vec<&proto::Message> {
    rpcs.iter().flat_map(|r| r.publish.iter()).collect()
}

/// All control messages in a list of RPCs, merged.
pub fn control(rpcs: &[proto::Rpc]) -> proto::ControlMessage {
    let mut merged = proto::ControlMessage::default();
    for rpc in rpcs {
        if let Some(c) = &rpc.control {
            merged.ihave.extend(c.ihave.iter().cloned());
            merged.iwant.extend(c.iwant.iter().cloned());
            merged.graft.extend(c.graft.iter().cloned());
            merged.prune.extend(c.prune.iter().cloned());
            merged.idontwant.extend(c.idontwant.iter().cloned());
        }
    }
    merged
}

pub fn graft(topic: &str) -> proto::ControlMessage {
    proto::ControlMessage {
        graft: vec![proto::ControlGraft {
            topic_id: Some(topic.into()),
        }],
        ..Default::default()
    }
}

pub fn prune(
    topic: &str,
    backoff: Option<u64>,
    peers: Vec<proto::PeerInfo>,
) -> proto::ControlMessage {
    proto::ControlMessage {
        prune: vec![proto::ControlPrune {
            topic_id: Some(topic.into()),
            peers,
            backoff,
        }],
        ..Default::default()
    }
}

/// Scoring on, with thresholds and a topic weighting that tests can reason about.
pub fn scored(topic: &str) -> GossipsubConfig {
    let mut params = lp2p_pubsub::PeerScoreParams {
        behaviour_penalty_weight: -10.0,
        behaviour_penalty_decay: 0.9,
        ..Default::default()
    };
    params.topics.insert(
        Topic::new(topic),
        lp2p_pubsub::TopicScoreParams {
            topic_weight: 1.0,
            time_in_mesh_weight: 0.0,
            first_message_deliveries_weight: 1.0,
            first_message_deliveries_cap: 100.0,
            invalid_message_deliveries_weight: -10.0,
            invalid_message_deliveries_decay: 0.9,
            ..Default::default()
        },
    );
    GossipsubConfig {
        score: Some((params, lp2p_pubsub::PeerScoreThresholds::default())),
        ..Default::default()
    }
}
