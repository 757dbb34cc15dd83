//! Kademlia DHT for lp2p: `/ipfs/kad/1.0.0` per libp2p/specs `kad-dht/README.md`.
//!
//! Two layers, as in `lp2p-pubsub`:
//!
//! - [`Kademlia`], the **async shell**: a service on an `lp2p-host` `Host` with
//!   [`Kademlia::find_peer`], [`Kademlia::get_value`] / [`Kademlia::put_value`],
//!   [`Kademlia::start_providing`] / [`Kademlia::get_providers`], [`Kademlia::bootstrap`],
//!   and [`Kademlia::query`] for any of them as a [`QueryHandle`] that streams partial
//!   results as they arrive. Its docs have a runnable three-host example.
//! - [`KadCore`], the **sans-IO core** the shell drives: routing table ([`routing`]),
//!   iterative lookups ([`Lookup`]), record and provider stores ([`store`]), validators
//!   ([`validator`], [`ipns`]), all with `now` passed in. It owns no socket, spawns no task
//!   and reads no clock, so the same code runs under the shell, in unit tests, and two
//!   thousand at a time in a virtual-time simulation (`tests/simulation.rs`).
//!
//! # The core's inputs and outputs
//!
//! | call | when |
//! |---|---|
//! | [`KadCore::add_address`] | a bootstrap peer (trusted to be a server) |
//! | [`KadCore::on_connected`] / [`KadCore::on_disconnected`] | connections come and go (`dialed`: the remote address of an outbound one) |
//! | [`KadCore::on_peer_report`] | identify said whether the peer is a server, with its verified addresses |
//! | [`KadCore::handle_request_bytes`] | one inbound LP frame body; returns the answer to write |
//! | [`KadCore::poll_request`] → [`KadCore::on_response_bytes`] | carry a request out, report its answer or failure |
//! | [`KadCore::find_peer`], [`KadCore::get_value`], [`KadCore::put_value`], [`KadCore::start_providing`], [`KadCore::get_providers`], [`KadCore::get_closest_peers`], [`KadCore::bootstrap`] | the user |
//! | [`KadCore::handle_timeout`] at [`KadCore::poll_timeout`] | request and query timeouts, bootstrap, republish, reprovide, expiry |
//! | [`KadCore::poll_event`] | [`Event`]: query progress and results, routing-table changes |
//!
//! # Example: the core alone
//!
//! Two cores wired by hand (the shell does the same with streams):
//!
//! ```
//! use std::time::Instant;
//! use lp2p_core::PeerId;
//! use lp2p_kad::{Event, KadConfig, KadCore, QueryResult};
//!
//! let now = Instant::now();
//! let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
//! let mut alice = KadCore::new(a, KadConfig::default(), now);
//! let mut bob = KadCore::new(b, KadConfig::default(), now);
//! // Bob knows Carol; Alice knows Bob.
//! bob.add_address(c, vec!["/ip4/10.0.0.3/tcp/4001".parse().unwrap()], now);
//! alice.add_address(b, vec!["/ip4/10.0.0.2/tcp/4001".parse().unwrap()], now);
//!
//! alice.find_peer(c, now).unwrap();
//! while let Some(request) = alice.poll_request() {
//!     if request.peer != b {
//!         continue; // Carol is not part of this example
//!     }
//!     // Encode, "send", serve at Bob, "send" back, decode: the bytes of the wire.
//!     let body = lp2p_kad::wire::encode_request(&request.request, now);
//!     let answer = bob.handle_request_bytes(a, &body, now).unwrap();
//!     alice.on_response_bytes(request.id, Ok((answer, Some(request.addrs[0].clone()))), now);
//! }
//! let found = std::iter::from_fn(|| alice.poll_event()).find_map(|event| match event {
//!     Event::Finished { result: QueryResult::FindPeer(found), .. } => found,
//!     _ => None,
//! });
//! assert_eq!(found.unwrap().addrs, vec!["/ip4/10.0.0.3/tcp/4001".parse().unwrap()]);
//! ```
//!
//! # Rules implemented
//!
//! k = 20 buckets over SHA-256 keys with a replacement cache; only server-mode peers with
//! addresses we dialed or that a signed peer record vouches for; α = 10 requests in flight
//! (configurable), per-request and per-query timeouts, termination when the k closest seen
//! have answered, optional disjoint paths; GET_VALUE with a validator and selector per
//! namespace (`/pk/`, `/ipns/`; unknown namespaces refused by default), quorum and entry
//! correction; provider records keyed by multihash with TTL and address retention;
//! bootstrap (self-lookup plus bucket refreshes), republish and reprovide. Limits: see
//! [`KadConfig`] and [`wire::WireLimits`]; everything a peer sends is bounded and counted
//! ([`Counters`]).
//!
//! Memory: the shell reserves every frame it reads (an inbound request, the answer to one of
//! our requests) at its announced length from the host's resource manager, in a
//! [`MEMORY_SERVICE`] (`"kad"`) account for the remote peer, before reading it, and returns
//! the reservation once the core has handled the body. A refused reservation resets the
//! stream and is counted ([`Counters::memory_refused`]); it never panics.

mod config;
mod core;
mod error;
mod event;
pub mod key;
pub mod proto;
mod query;
mod query_totals;
pub mod record;
pub mod routing;
mod shell;
pub mod store;
pub mod validator;
pub mod wire;

pub use crate::config::*;
pub use crate::core::{
    KadCore, OutboundRequest, PeerReport, RequestFailure, ResponseInfo, is_multihash,
    sha256_multihash,
};
pub use crate::error::KadError;
pub use crate::event::{Counters, Event, Progress, QueryId, QueryResult, QueryStats, RequestId};
pub use crate::query::{Lookup, MAX_CANDIDATES};
pub use crate::query_totals::{QUERY_DURATION_BUCKETS, QueryTotals};
pub use crate::record::Record;
pub use crate::shell::{
    DEFAULT_EVENT_BUFFER, DEFAULT_PROGRESS_BUFFER, Kademlia, MEMORY_SERVICE, Op, QueryHandle,
};
pub use crate::validator::ipns;
pub use crate::wire::{ConnectionType, PROTOCOL, PeerInfo, Request, Response};
