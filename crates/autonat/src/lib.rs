//! AutoNAT v2 (libp2p/specs `autonat/autonat-v2.md`), with v1 as the fallback, for lp2p:
//! which of our addresses can others dial?
//!
//! - [`AutonatClient`] takes our listen and external addresses with a public IP, where
//!   identify's peers see us, and any [`add_candidate`](AutonatClient::add_candidate), as
//!   candidates and asks connected servers, one probe at a time, to dial one of them back.
//!   The server hands our nonce over on a new connection; only a dial back carrying the
//!   nonce, on a connection of the same transport, counts. An address is
//!   [`Reachability::Public`] once
//!   [`ClientConfig::confidence`] distinct servers (3 by default) reached it and outnumber
//!   those that did not, [`Reachability::Private`] the other way round; timeouts, refusals
//!   and failed hand-overs never flip a status. Public addresses become the host's external
//!   addresses; [`AutonatClient::events`] reports every probe and status change.
//! - [`AutonatServer`] serves `/libp2p/autonat/2/dial-request`: it dials the first address
//!   it is willing and able to (a literal public IP of a family we have, a transport we
//!   speak, not relayed), from a new connection and never from its listening port, and
//!   before dialing an IP other than the one it sees the client on it asks for 30-100 kB of
//!   dial data, so it cannot be used to flood a third party. Requests are rate limited per
//!   client and in total ([`ServerConfig`]).
//!
//! - [`v1`]: AutoNAT v1 (`/libp2p/autonat/1.0.0`). [`AutonatClient`] falls back to v1
//!   servers when no connected peer serves v2 (one address per request, the same
//!   confidence rule; [`AutonatEvent::Probed`] names the version), and [`AutonatV1Server`]
//!   dials back only addresses on the IP it sees the client on.
//!
//! The decisions live in the sans-IO [`client::core::ClientCore`] and
//! [`server::core::ServerCore`] (`now` passed in); the services are their async shells.
//!
//! # Example
//!
//! A server and a client on 127.0.0.1 (a test network, so both allow private addresses):
//!
//! ```
//! use lp2p_autonat::{AutonatClient, AutonatServer, ClientConfig, ProbeResult, ServerConfig};
//! use lp2p_host::Host;
//! use lp2p_noise::Noise;
//! use lp2p_tcp::TcpTransport;
//! use lp2p_yamux::Yamux;
//!
//! # lp2p_core::runtime::block_on(async {
//! let tcp_host = || {
//!     Host::builder()
//!         .transport(TcpTransport::default())
//!         .security(Noise::new())
//!         .muxer(Yamux::default())
//!         .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
//! };
//! let server = tcp_host()
//!     .on_start(AutonatServer::hook(ServerConfig::default().allowing_private_addrs()))
//!     .build()
//!     .await?;
//! let node = tcp_host().build().await?;
//! let client = AutonatClient::new_allowing_private_addrs(&node, ClientConfig::default());
//!
//! node.connect(server.local_peer_id(), server.listen_addrs()).await?;
//! let result = client.probe(server.local_peer_id(), node.listen_addrs()).await?;
//! assert_eq!(result, ProbeResult::Reachable { addr: node.listen_addrs()[0].clone() });
//! for h in [node, server] {
//!     h.close().await;
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod error;
mod io;
mod proto;
mod rate;
mod status;

pub mod client;
pub mod message;
pub mod server;
pub mod v1;

pub use client::core::{
    CandidateReport, ClientConfig, ClientStats, ProbeResult, ProtocolVersion, Reachability,
    StatusChange,
};
pub use client::explain::{Explanation, NotTracked};
pub use client::service::{AutonatClient, AutonatEvent, CHECK_INTERVAL, DIAL_BACK_TIMEOUT};
pub use error::AutonatError;
pub use message::{PROTOCOL_DIAL_BACK, PROTOCOL_DIAL_REQUEST};
pub use server::core::{ServerConfig, ServerStats};
pub use server::service::AutonatServer;
pub use v1::{AutonatV1Server, PROTOCOL_V1, V1ServerConfig};
