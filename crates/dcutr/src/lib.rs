//! Direct Connection Upgrade through Relay for lp2p (libp2p/specs `relay/DCUtR.md`,
//! `connections/hole-punching.md`): two peers that reach each other only through a relay
//! punch a hole through their NATs and move to a direct connection.
//!
//! [`Dcutr`] runs on both peers. The peer that *received* the relayed connection first
//! looks at the addresses the other advertises (its identify answer, asked over the relayed
//! connection, and the peerstore): when some are usable (public ones by default), a plain
//! dial to them may succeed without any hole punch (the spec's unilateral upgrade, at most
//! [`DcutrConfig::unilateral_dial_timeout`]). Meanwhile the hole punch's first exchange
//! runs: a `/libp2p/dcutr` stream over the relayed connection (negotiated lazily), `CONNECT`
//! with our addresses, and the answer (`CONNECT` with the other's addresses) timed. When the
//! plain dial has not succeeded within its head start ([`DcutrConfig::unilateral_head_start`],
//! or as soon as that exchange is done and 25 ms have passed,
//! [`DcutrConfig::unilateral_head_start_rtts`]; at once when it has nothing to dial or fails),
//! the hole punch goes on beside it, and the first direct connection wins: it sends `SYNC`
//! and waits half the round trip; the other peer dials on `SYNC`. Both dial from their listening port, so each NAT sees the
//! outgoing packets first and lets the other side's in:
//! - over TCP both connects meet in a simultaneous open; the peer that dialed through the
//!   relay is the client of the security handshake and the other the server;
//! - over QUIC the receiving peer sends random UDP packets from its QUIC socket and accepts
//!   the other's dial.
//!
//! Up to three attempts (each with a fresh round-trip measurement); the first direct
//! connection, whoever made it, ends the upgrade, and the relayed connection is closed after
//! a grace period. The addresses offered are the host's confirmed external addresses, what
//! peers observed us at through identify (translated to the listening port when the
//! connection left from another port), and the listen addresses; loopback and private ones
//! only with [`DcutrConfig::allowing_private_addrs`]. [`Dcutr::events`] reports each upgrade
//! and failure.
//!
//! The decisions live in the sans-IO [`core`]; [`service`] is its async shell.
//!
//! # Example
//!
//! Start it on a host with the relay client (see lp2p-relay); upgrades then happen by
//! themselves:
//!
//! ```
//! use lp2p_dcutr::{Dcutr, DcutrConfig};
//! use lp2p_host::Host;
//! use lp2p_noise::Noise;
//! use lp2p_tcp::TcpTransport;
//! use lp2p_yamux::Yamux;
//!
//! # lp2p_core::runtime::block_on(async {
//! let host = Host::builder()
//!     .transport(TcpTransport::default())
//!     .security(Noise::new())
//!     .muxer(Yamux::default())
//!     .on_start(Dcutr::hook(DcutrConfig::default()))
//!     .build()
//!     .await?;
//! let dcutr: Dcutr = host.service().expect("the hook registered it");
//! assert_eq!(dcutr.stats().initiated, 0);
//! host.close().await;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod error;
mod proto;

pub mod core;
pub mod message;
pub mod service;

pub use core::{DcutrConfig, DcutrStats};
pub use error::DcutrError;
pub use message::PROTOCOL;
pub use service::{Dcutr, DcutrEvent, local_candidates};
