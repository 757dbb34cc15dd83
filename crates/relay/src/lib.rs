//! Circuit relay v2 for lp2p (libp2p/specs `relay/circuit-v2.md`).
//!
//! - [`hop`]: the relay. [`RelayService`] serves `/libp2p/circuit/relay/0.2.0/hop` on a host:
//!   reservations with an absolute expiry and a signed voucher, circuits to reserved peers
//!   over the stop protocol, each circuit held to a duration and a data limit by resetting
//!   both of its streams, reservation and circuit limits per peer and per IP, and nothing
//!   over relayed connections. Decisions live in the sans-IO [`hop::core::HopCore`].
//! - [`client`]: the peer behind a NAT. [`client::new`] gives a [`RelayTransport`] (dials and
//!   listens on `/p2p-circuit` addresses; its connections are `limited`) and a
//!   [`RelayClient`] that attaches it to the host (the stop handler, reservation renewal,
//!   and re-reservation after the connection to the relay drops).
//!
//! Relayed connections are limited: only stream handlers registered with
//! `HandlerOptions::allow_limited` run over them, and `Host::new_stream` refuses them unless
//! asked with `new_stream_allow_limited`.
//!
//! # Example
//!
//! A relay, a listener reachable only through it, and a dialer that reaches the listener
//! through the relay:
//!
//! ```
//! use futures::{AsyncReadExt, AsyncWriteExt};
//! use lp2p_core::{Multiaddr, Protocol};
//! use lp2p_host::{HandlerOptions, Host, HostStream};
//! use lp2p_memory::MemoryTransport;
//! use lp2p_noise::Noise;
//! use lp2p_relay::{HopConfig, RelayService, client};
//! use lp2p_swarm::UpgradeStack;
//! use lp2p_yamux::Yamux;
//!
//! # lp2p_core::runtime::block_on(async {
//! let stack = || UpgradeStack::new().security(Noise::new()).muxer(Yamux::default());
//! let relay = Host::builder()
//!     .transport(MemoryTransport::default())
//!     .security(Noise::new())
//!     .muxer(Yamux::default())
//!     .on_start(RelayService::hook(HopConfig::default()))
//!     .listen_on("/memory/0".parse()?)
//!     .build()
//!     .await?;
//! let relay_addr = relay.listen_addrs()[0].clone().with(Protocol::P2p(relay.local_peer_id()));
//!
//! let node = |(transport, client): (client::RelayTransport, client::RelayClient)| {
//!     Host::builder()
//!         .transport(MemoryTransport::default())
//!         .transport(transport)
//!         .security(Noise::new())
//!         .muxer(Yamux::default())
//!         .on_start(client.hook())
//!         .build()
//! };
//! let listener = node(client::new(stack(), Default::default())).await?;
//! listener.set_stream_handler_with("/echo/1", HandlerOptions::allow_limited(), |mut s: HostStream| async move {
//!     let mut buf = Vec::new();
//!     if s.read_to_end(&mut buf).await.is_ok() {
//!         let _ = s.write_all(&buf).await;
//!     }
//! });
//! // Listening on `<relay>/p2p-circuit` reserves a slot on the relay.
//! listener.listen_on(&relay_addr.clone().with(Protocol::P2pCircuit)).await?;
//!
//! let dialer = node(client::new(stack(), Default::default())).await?;
//! let target: Multiaddr = relay_addr
//!     .with(Protocol::P2pCircuit)
//!     .with(Protocol::P2p(listener.local_peer_id()));
//! let conn = dialer.connect_addr(target).await?;
//! assert!(conn.is_limited());
//! let mut s = dialer.new_stream_allow_limited(&listener.local_peer_id(), ["/echo/1"]).await?;
//! s.write_all(b"through the relay").await?;
//! s.close().await?;
//! let mut back = Vec::new();
//! s.read_to_end(&mut back).await?;
//! assert_eq!(back, b"through the relay");
//! for h in [dialer, listener, relay] {
//!     h.close().await;
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod error;
mod io;
mod proto;

pub mod client;
pub mod hop;
pub mod message;
pub mod splice;
pub mod voucher;

pub use client::{RelayClient, RelayTransport};
pub use error::RelayError;
pub use hop::core::{HopConfig, HopStats};
pub use hop::service::RelayService;
pub use io::DEFAULT_STREAM_TIMEOUT;
pub use message::{Limit, PROTOCOL_HOP, PROTOCOL_STOP, Status};
