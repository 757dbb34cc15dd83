//! The lp2p host: the API most users write against.
//!
//! A [`Host`] is built once with [`Host::builder`] (identity, transports, security channels
//! and muxers in preference order, listen addresses, limits, bootstrap peers) and then used
//! through a cloneable handle:
//!
//! - [`Host::set_stream_handler`] registers an async handler for a protocol id
//!   ([`Host::set_stream_handler_matching`] for a family such as any `/app/1.x`); inbound
//!   streams negotiate their protocol against the registered handlers (an unknown protocol
//!   gets `na`, the connection stays up) under a timeout, and each runs in its own task
//!   within per-protocol limits;
//! - [`Host::new_stream`] dials the peer if needed, negotiates the first protocol it
//!   supports and returns a [`HostStream`] that knows its protocol, peer and connection;
//! - [`Host::connect`], [`Host::peerstore`], [`Host::events`], [`Host::listen_addrs`],
//!   [`Host::close`] (which ends every task the host started).
//!
//! Identify, ping and pubsub attach to a host from their own crates (`lp2p-identify`,
//! `lp2p-ping`, `lp2p-pubsub`); the `lp2p` facade crate wires the usual defaults.
//!
//! # Example
//!
//! ```
//! use futures::{AsyncReadExt, AsyncWriteExt};
//! use lp2p_host::{Host, HostStream};
//! use lp2p_memory::MemoryTransport;
//! use lp2p_noise::Noise;
//! use lp2p_yamux::Yamux;
//!
//! # lp2p_core::runtime::block_on(async {
//! let server = Host::builder()
//!     .transport(MemoryTransport::default())
//!     .security(Noise::new())
//!     .muxer(Yamux::default())
//!     .listen_on("/memory/0".parse()?)
//!     .build()
//!     .await?;
//! server.set_stream_handler("/echo/1.0.0", |mut stream: HostStream| async move {
//!     let mut buf = Vec::new();
//!     if stream.read_to_end(&mut buf).await.is_ok() {
//!         let _ = stream.write_all(&buf).await;
//!     }
//! });
//!
//! let client = Host::builder()
//!     .transport(MemoryTransport::default())
//!     .security(Noise::new())
//!     .muxer(Yamux::default())
//!     .build()
//!     .await?;
//! client.connect(server.local_peer_id(), server.listen_addrs()).await?;
//! let mut stream = client.new_stream(&server.local_peer_id(), ["/echo/1.0.0"]).await?;
//! assert_eq!(stream.protocol(), "/echo/1.0.0");
//! stream.write_all(b"hello").await?;
//! stream.close().await?; // half-close: the server reads EOF and answers
//! let mut answer = Vec::new();
//! stream.read_to_end(&mut answer).await?;
//! assert_eq!(answer, b"hello");
//!
//! client.close().await;
//! server.close().await;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

// HostError carries the peer id and the protocols offered so every message names them; it is
// returned once per failed call, never on a data path, so its size does not matter.
#![allow(clippy::result_large_err)]

mod close;
mod config;
mod error;
mod events;
mod handler;
mod host;
mod negotiating;
mod registry;
mod slots;
mod stream;
mod traffic;

pub use config::{
    DEFAULT_CLOSE_GRACE, DEFAULT_MAX_NEGOTIATING_STREAMS, DEFAULT_MAX_NEGOTIATING_STREAMS_PER_PEER,
    DEFAULT_MAX_STREAMS_PER_PROTOCOL, DEFAULT_NEGOTIATION_TIMEOUT, HostConfig,
};
pub use error::HostError;
pub use events::HostEvent;
pub use handler::{HandlerOptions, ProtocolPredicate, StreamHandler};
pub use host::{Host, HostBuilder, HostStats, StartHook, WeakHost};
pub use lp2p_rcmgr::{self as rcmgr, MemoryLimits, ResourceManager, ResourceStats};
pub use lp2p_swarm::{
    AllowDenyList, CloseReason, Connection, ConnectionEvent, ConnectionEvents, ConnectionGate,
    ConnectionId, Direction, EventStream, IpSubnet, SwarmConfig, SwarmError,
};
pub use stream::HostStream;
pub use traffic::{MAX_TRAFFIC_PROTOCOLS, OTHER_PROTOCOLS, ProtocolTraffic};
