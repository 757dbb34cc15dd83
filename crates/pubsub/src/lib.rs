//! PubSub for lp2p: floodsub and gossipsub v1.1/v1.2 with peer scoring and validation.
//!
//! Two layers:
//!
//! - [`PubSub`], the **async shell**: a service on an `lp2p-host` `Host`
//!   ([`PubSub::gossipsub`], [`PubSub::floodsub`]) with [`PubSub::subscribe`] (a
//!   [`Subscription`] stream that unsubscribes on drop), [`PubSub::publish`], peers, mesh,
//!   topics, events and validators. Its docs have a runnable two-host example.
//! - [`PubSubCore`], the **sans-IO core** the shell drives: it owns no socket, spawns no task
//!   and reads no clock. Bytes and events go in, with the current time `now` passed by the
//!   caller; RPC bytes to send, messages to deliver and events come out. The same core
//!   therefore runs under the shell on a real host, in unit tests, and a hundred at a time
//!   in one process in virtual time.
//!
//! Routing is pluggable behind the [`Router`] trait: [`FloodsubRouter`] (`/floodsub/1.0.0`)
//! and [`GossipsubRouter`] (`/meshsub/1.2.0`, `/meshsub/1.1.0`, `/meshsub/1.0.0`, and
//! floodsub peers), with the v1.1 peer score ([`PeerScoreParams`], [`PeerScoreThresholds`])
//! and v1.2 IDONTWANT.
//!
//! # The core's inputs
//!
//! | call | when |
//! |---|---|
//! | [`PubSubCore::add_peer`] | a peer's pubsub stream is up: the protocol negotiated on our outbound stream ([`PeerKind::from_protocol`]), the connection [`Direction`], its remote IP (for P₆) |
//! | [`PubSubCore::remove_peer`] | the peer's connection (or its streams) went away |
//! | [`PubSubCore::handle_rpc`] | one LP frame body read from the peer's inbound stream (read it with `lp2p_core::framing` and a limit of `Config::max_transmit_size`) |
//! | [`PubSubCore::report_validation_result`] | the answer to an [`Event::ValidationRequested`] |
//! | [`PubSubCore::subscribe`] / [`PubSubCore::unsubscribe`] / [`PubSubCore::publish`] | the user |
//! | [`PubSubCore::handle_timeout`] | at (or after) [`PubSubCore::poll_timeout`]: heartbeat, score decay, validation timeouts |
//!
//! # The core's outputs
//!
//! | call | gives |
//! |---|---|
//! | [`PubSubCore::poll_ready_peer`] | a peer with output waiting |
//! | [`PubSubCore::poll_transmit`] | that peer's output, appended to a caller buffer as ready-to-write LP-framed RPCs (control first, then own publishes, then forwards; many RPCs coalesced per call) |
//! | [`PubSubCore::poll_event`] | [`Event`]s: messages for local subscribers, validation requests, peers (un)subscribing, mesh grafts and prunes, slow peers, graylisting, peer exchange, explicit peers to connect |
//!
//! Each peer's send queue is bounded (`Config::max_send_queue_len`, `max_send_queue_bytes`):
//! a peer whose writer does not keep up loses forwards first (own publishes evict them) and
//! raises [`Event::SlowPeer`]. With [`PubSubCore::set_memory_budget`] (the shell passes the
//! host's resource manager) each queued message's bytes are also reserved per peer under
//! [`MEMORY_SERVICE`] first; a refusal drops it the same way. Every limit on what peers can make us hold (topics per peer,
//! IHAVE/IWANT/IDONTWANT per heartbeat, pending validations, seen ids, retained scores) is a
//! named constant with a config knob.
//!
//! # Example: the core alone
//!
//! Two gossipsub cores wired by hand (the async shell does the same with streams):
//!
//! ```
//! use std::time::{Duration, Instant};
//! use bytes::Bytes;
//! use lp2p_core::Keypair;
//! use lp2p_pubsub::{
//!     Config, Direction, Event, GossipsubConfig, GossipsubCore, GossipsubRouter,
//!     PeerConnection, PeerKind,
//! };
//!
//! let now = Instant::now();
//! let new_core = || {
//!     let router = GossipsubRouter::new(GossipsubConfig::default()).unwrap();
//!     GossipsubCore::new(Keypair::generate_ed25519(), Config::default(), router, now).unwrap()
//! };
//! let (mut alice, mut bob) = (new_core(), new_core());
//! let (a, b) = (alice.local_peer_id(), bob.local_peer_id());
//! let link = |direction| PeerConnection { kind: PeerKind::Gossipsub12, direction, ip: None };
//! alice.add_peer(b, link(Direction::Outbound), now);
//! bob.add_peer(a, link(Direction::Inbound), now);
//! alice.subscribe("news", now);
//! bob.subscribe("news", now);
//!
//! // Carry every queued frame from one core to the other.
//! fn pump(from: &mut GossipsubCore, to: &mut GossipsubCore, now: Instant) {
//!     let sender = from.local_peer_id();
//!     let mut decoder = lp2p_core::framing::FrameDecoder::new(from.config().max_transmit_size);
//!     while let Some(peer) = from.poll_ready_peer() {
//!         let mut wire = Vec::new();
//!         while from.poll_transmit(&peer, &mut wire) {}
//!         let mut buf = bytes::BytesMut::from(&wire[..]);
//!         while let Some(frame) = decoder.decode(&mut buf).unwrap() {
//!             to.handle_rpc(sender, frame, now).unwrap();
//!         }
//!     }
//! }
//! for _ in 0..2 {
//!     pump(&mut alice, &mut bob, now);
//!     pump(&mut bob, &mut alice, now);
//! }
//!
//! alice.publish("news", Bytes::from_static(b"hello"), now).unwrap();
//! pump(&mut alice, &mut bob, now);
//! let delivered = std::iter::from_fn(|| bob.poll_event()).find_map(|event| match event {
//!     Event::Message { message, .. } => Some(message),
//!     _ => None,
//! });
//! assert_eq!(delivered.unwrap().data, Bytes::from_static(b"hello"));
//!
//! // Time is the caller's: run the heartbeat when the core asks for it.
//! let later = now + Duration::from_secs(1);
//! assert!(alice.poll_timeout().unwrap() <= later);
//! alice.handle_timeout(later);
//! ```

mod codec;
mod config;
mod context;
mod core;
mod error;
mod event;
pub mod message;
mod outbox;
pub mod proto;
mod protocol_ids;
pub mod router;
pub mod score;
mod seen;
mod shell;
mod types;
mod validation;

pub use crate::config::{
    Config, DEFAULT_MAX_PENDING_VALIDATIONS, DEFAULT_MAX_QUEUED_CONTROL_IDS,
    DEFAULT_MAX_SEEN_MESSAGES, DEFAULT_MAX_SEND_QUEUE_BYTES, DEFAULT_MAX_SEND_QUEUE_LEN,
    DEFAULT_MAX_TOPIC_LEN, DEFAULT_MAX_TOPICS_PER_PEER, DEFAULT_MAX_TRANSMIT_SIZE,
    DEFAULT_PUBLIC_KEY_CACHE_SIZE, DEFAULT_SEEN_TTL, DEFAULT_TRANSMIT_BATCH_BYTES,
    DEFAULT_VALIDATION_TIMEOUT, MEMORY_SERVICE,
};
pub use crate::context::RouterContext;
pub use crate::core::{PeerConnection, PubSubCore};
pub use crate::error::PubsubError;
pub use crate::event::{Counters, Event, PxPeer};
pub use crate::message::{
    Authenticity, InvalidMessage, MessageIdFn, content_message_id, default_message_id,
    rust_libp2p_message_id,
};
pub use crate::router::Router;
pub use crate::router::floodsub::{FLOODSUB_PROTOCOL, FloodsubRouter};
pub use crate::router::gossipsub::{
    DEFAULT_MAX_PX_ADDRESSES, GOSSIPSUB_1_0_PROTOCOL, GOSSIPSUB_1_1_PROTOCOL,
    GOSSIPSUB_1_2_PROTOCOL, GossipsubConfig, GossipsubRouter,
};
pub use crate::score::{PeerScoreParams, PeerScoreThresholds, TopicScoreParams};
pub use crate::shell::{
    DEFAULT_EVENT_BUFFER, DEFAULT_MAX_INBOUND_STREAMS_PER_PEER, DEFAULT_MAX_PENDING_DIALS,
    DEFAULT_SUBSCRIPTION_BUFFER, Deliveries, Delivery, Flushed, PubSub, SCORE_BUCKETS,
    Subscription,
};
pub use crate::types::{Acceptance, Direction, Message, MessageId, PeerKind, RoutedMessage, Topic};
pub use crate::validation::SyncValidator;

/// A pubsub core routing with floodsub.
pub type FloodsubCore = PubSubCore<FloodsubRouter>;

/// A pubsub core routing with gossipsub.
pub type GossipsubCore = PubSubCore<GossipsubRouter>;
