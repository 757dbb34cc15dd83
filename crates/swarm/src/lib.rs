//! The lp2p swarm: everything between raw transports and the host's stream handlers.
//!
//! - **Upgrade**: every raw connection, in both roles, negotiates a security protocol with
//!   multistream-select (preference order), runs its handshake, then negotiates a stream
//!   muxer (or takes the one agreed inside the noise handshake), all under a timeout.
//! - **Dial**: a peer is dialed with the addresses the peerstore holds (plus any given),
//!   a few in parallel with a short stagger (Happy Eyeballs); the first success wins and
//!   the rest are cancelled; concurrent dials to one peer are merged; a live connection is
//!   reused; failed addresses enter an exponential backoff you can inspect and clear; a
//!   failed dial lists every address tried, the stage that failed and why.
//! - **Listen** on several addresses; the **connection table** keeps, per peer, each
//!   connection's id, direction, addresses, security protocol and muxer.
//! - **Limits** on inbound, outbound, per-peer and pending (handshaking) inbound
//!   connections, and an **idle timeout** (the connection-lifetime policy: a connection
//!   stays open while it has streams, and closes after [`SwarmConfig::idle_timeout`]
//!   without any; connections to bootstrap and [protected](Swarm::protect_peer) peers are
//!   kept).
//! - **Events**: connected, disconnected, listen address added/removed, incoming
//!   connection error, dial failure; graceful close of a connection, a peer, or
//!   everything; **bootstrap** peers dialed at start and redialed with backoff.
//!
//! # Example
//!
//! ```
//! use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
//! use lp2p_core::Stream;
//! use lp2p_memory::MemoryTransport;
//! use lp2p_plaintext::Plaintext;
//! use lp2p_swarm::Swarm;
//! use lp2p_yamux::Yamux;
//! use std::sync::Arc;
//!
//! # lp2p_core::runtime::block_on(async {
//! let rt = lp2p_core::RuntimeHandle::default();
//! let server = Swarm::builder()
//!     .transport(MemoryTransport::default())
//!     .security(Plaintext::new())
//!     .muxer(Yamux::default())
//!     // Raw streams (the host adds protocol negotiation on top): echo one message.
//!     .inbound_stream_handler(Arc::new(move |_conn, mut stream: Box<dyn Stream>| {
//!         drop(rt.spawn(async move {
//!             let mut buf = [0u8; 5];
//!             stream.read_exact(&mut buf).await.unwrap();
//!             stream.write_all(&buf).await.unwrap();
//!             stream.close().await.unwrap();
//!         }));
//!     }))
//!     .build()?;
//! let addr = server.listen_on(&"/memory/0".parse()?).await?;
//!
//! let client = Swarm::builder()
//!     .transport(MemoryTransport::default())
//!     .security(Plaintext::new())
//!     .muxer(Yamux::default())
//!     .build()?;
//! let conn = client.dial_with_addrs(server.local_peer_id(), vec![addr]).await?;
//! assert_eq!(conn.peer(), server.local_peer_id());
//!
//! let mut stream = conn.open_stream().await?;
//! stream.write_all(b"hello").await?;
//! let mut buf = [0u8; 5];
//! stream.read_exact(&mut buf).await?;
//! assert_eq!(&buf, b"hello");
//!
//! client.close().await;
//! server.close().await;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod candidates;
pub mod config;
mod connection;
pub mod core;
mod dial;
mod direction;
mod driver;
mod error;
mod events;
mod gate;
mod lifecycle;
mod listen;
mod state;
mod swarm;
mod totals;
mod transports;
mod upgrade;

pub use candidates::{MAX_RESOLVE_ROUNDS, MAX_RESOLVED_ADDRS};
pub use config::SwarmConfig;
pub use connection::{CloseReason, Connection, ConnectionId};
pub use direction::Direction;
pub use error::{DialAttempt, LimitKind, Stage, SwarmError};
pub use events::SwarmEvent;
pub use gate::{AllowDenyList, ConnectionGate, Denied, GateStage};
pub use lifecycle::{ConnectionEvent, ConnectionEvents};
pub use lp2p_core::addr::IpSubnet;
pub use lp2p_core::events::{EventBus, EventStream};
pub use state::{InboundStreamHandler, SwarmStats};
pub use swarm::{Swarm, SwarmBuilder};
pub use totals::{
    ConnectionTotals, DIAL_BUCKETS, DialDurations, HANDSHAKE_BUCKETS, LIFETIME_BUCKETS,
};
pub use transports::{EstablishedMarker, IntoTransport, RawMarker, TransportKind};
pub use upgrade::{UpgradeStack, Upgraded};
