//! Core types and traits of lp2p.
//!
//! Every lp2p component is written against the traits of this crate, so a user can swap a
//! transport, a security channel or a stream muxer without touching the rest:
//!
//! | layer | trait | implemented by |
//! |---|---|---|
//! | established connections (what the swarm takes) | [`Transport`], [`Listener`] → [`Incoming`] → [`Established`] | `lp2p_swarm::Upgraded` over a raw transport; QUIC |
//! | raw byte streams | [`RawTransport`], [`RawListener`], [`Connection`] | `lp2p-tcp`, `lp2p-memory` |
//! | security | [`SecurityUpgrader`] → [`SecureConnection`] | `lp2p-noise`, `lp2p-plaintext` |
//! | stream muxing | [`MuxerUpgrader`] → [`MuxedConnection`] → [`Stream`] | `lp2p-yamux`, `lp2p-mplex` |
//! | names in addresses | [`AddressResolver`] | `lp2p-dns` |
//! | memory held by muxers | [`MemoryBudget`] → [`MemoryAccount`] | `lp2p-rcmgr` |
//!
//! It also holds the [`runtime`] seam (spawning and timers behind one small trait, with
//! async-std and smol implementations), the [`varint`] codec and length-prefixed
//! [`framing`], the pool of handshake keys made [`ahead`] of their use, and re-exports the
//! ecosystem's shared identity and address types so values pass freely between lp2p and
//! other Rust libp2p code.
//!
//! # Example
//!
//! Length-prefixed framing over any `futures::io` byte stream:
//!
//! ```
//! use lp2p_core::framing::{read_frame, write_frame};
//!
//! # futures::executor::block_on(async {
//! let mut wire = Vec::new();
//! write_frame(&mut wire, b"hello").await?;
//! assert_eq!(wire, b"\x05hello");
//!
//! let mut reader = &wire[..];
//! let frame = read_frame(&mut reader, 1024).await?;
//! assert_eq!(frame, b"hello");
//! # Ok::<(), lp2p_core::Error>(())
//! # }).unwrap();
//! ```

pub mod addr;
pub mod ahead;
pub mod counts;
mod error;
mod established;
pub mod events;
pub mod framing;
mod histogram;
pub mod memory;
mod muxing;
mod protocol;
mod proven;
mod resolve;
pub mod runtime;
mod security;
pub mod shrink;
mod transport;
pub mod varint;

/// The attribute the core traits are written with; implement them with
/// `#[lp2p_core::async_trait]` without depending on `async-trait` yourself.
pub use async_trait::async_trait;
pub use counts::{ConnectionLimiter, ConnectionSlot, LimitDenied, Resource};
pub use error::{BoxError, Error};
pub use established::{Established, Incoming, Listener, SecuredCheck, Transport, TransportContext};
pub use histogram::Histogram;
pub use memory::{
    MemoryAccount, MemoryBudget, MemoryDenied, SharedLimit, SharedLimitAccount, UnlimitedMemory,
};
pub use muxing::{MuxedConnection, MuxerUpgrader, Stream};
pub use protocol::{ProtocolId, Role};
pub use proven::ProvenBytes;
pub use resolve::AddressResolver;
pub use runtime::{JoinHandle, Runtime, RuntimeHandle};
pub use security::{SecureConnection, SecurityUpgrader, UpgradeContext};
pub use transport::{Connection, DialOpts, RawListener, RawTransport};

pub use libp2p_identity as identity;
pub use libp2p_identity::{Keypair, PeerId, PublicKey};
pub use multiaddr::{self, Multiaddr, Protocol};
