//! Peerstore for lp2p: addresses with TTLs, keys, protocols and metadata, bounded.
//!
//! A [`Peerstore`] holds what a node knows about other peers, the way go-libp2p's and
//! py-libp2p's peerstores do:
//!
//! - **Address book**: each address has a TTL. [`PERMANENT_ADDR_TTL`] never expires;
//!   [`CONNECTED_ADDR_TTL`] is set by the swarm while a connection is open and downgraded to
//!   [`RECENTLY_CONNECTED_ADDR_TTL`] (10 minutes) on disconnect with
//!   [`Peerstore::update_addrs`]; [`TEMP_ADDR_TTL`] (2 minutes) is for unverified addresses.
//!   [`Peerstore::add_addrs`] extends but never shortens an entry, [`Peerstore::set_addrs`]
//!   overrides it (zero removes). A trailing `/p2p/<peer>` is stripped on insert and one
//!   naming another peer refused. Expired entries are collected lazily on access and by
//!   [`Peerstore::gc`].
//! - **Key book**: public keys, verified against the peer id before they are stored; keys
//!   inlined in identity-multihash peer ids (Ed25519) are returned without being stored.
//! - **Protocol book** and **metadata** (agent version, protocol version, free-form).
//!
//! Everything is bounded ([`PeerstoreConfig`], each default a named constant with the reason
//! for its value): addresses, protocols and metadata per peer, and peers in all. A new peer
//! beyond [`MAX_PEERS`] evicts the least recently seen one (seen: last written about);
//! peers we are connected to (holding a [`CONNECTED_ADDR_TTL`] address) and peers with a
//! [`PERMANENT_ADDR_TTL`] address go last. Operations that can be refused are all or nothing
//! and return a [`PeerstoreError`].
//!
//! The store is plain library code: no I/O, no tasks; time comes from the clock of the
//! [`RuntimeHandle`](lp2p_core::RuntimeHandle) it is made with (the host's), so expiry follows
//! a virtual clock in tests (`lp2p-testkit`) without sleeping. It is thread-safe and cheap to
//! clone (an `Arc` inside).
//!
//! # Example
//!
//! ```
//! use lp2p_core::{Keypair, Multiaddr, RuntimeHandle};
//! use lp2p_peerstore::{Peerstore, PeerstoreError, CONNECTED_ADDR_TTL, RECENTLY_CONNECTED_ADDR_TTL};
//!
//! # fn main() -> Result<(), PeerstoreError> {
//! // A host passes its own runtime; expiry follows that runtime's clock.
//! let store = Peerstore::with_runtime(RuntimeHandle::default());
//! let key = Keypair::generate_ed25519().public();
//! let peer = key.to_peer_id();
//!
//! // The swarm connected to `peer`: the address is stored without its /p2p suffix.
//! let addr: Multiaddr = format!("/ip4/192.0.2.7/tcp/4001/p2p/{peer}").parse().unwrap();
//! store.add_addr(&peer, addr, CONNECTED_ADDR_TTL)?;
//! assert_eq!(store.addrs(&peer), vec!["/ip4/192.0.2.7/tcp/4001".parse::<Multiaddr>().unwrap()]);
//! assert!(store.is_connected(&peer));
//!
//! // Identify told us its key, protocols and agent.
//! store.add_public_key(&peer, key.clone())?;
//! store.set_protocols(&peer, ["/ipfs/id/1.0.0", "/ipfs/ping/1.0.0"])?;
//! store.set_agent_version(&peer, "lp2p/0.1.0")?;
//! assert_eq!(
//!     store.first_supported_protocol(&peer, &["/echo/1.0.0", "/ipfs/ping/1.0.0"]).unwrap(),
//!     "/ipfs/ping/1.0.0"
//! );
//!
//! // A key of another peer is refused.
//! let stranger = Keypair::generate_ed25519().public();
//! assert!(matches!(
//!     store.add_public_key(&peer, stranger),
//!     Err(PeerstoreError::PublicKeyMismatch { .. })
//! ));
//!
//! // Disconnected: the address stays dialable for a while.
//! store.update_addrs(&peer, CONNECTED_ADDR_TTL, RECENTLY_CONNECTED_ADDR_TTL);
//! assert!(!store.is_connected(&peer));
//! let info = store.peer_info(&peer);
//! assert_eq!(info.addrs.len(), 1);
//! assert_eq!(info.agent_version.as_deref(), Some("lp2p/0.1.0"));
//! assert_eq!(info.public_key, Some(key));
//! # Ok(())
//! # }
//! ```

mod addr_book;
mod config;
mod error;
mod metadata;
mod peerstore;
mod protocol_book;
pub mod record;
mod store;

#[cfg(test)]
mod tests;

pub use addr_book::{
    CONNECTED_ADDR_TTL, PERMANENT_ADDR_TTL, RECENTLY_CONNECTED_ADDR_TTL, TEMP_ADDR_TTL,
};
pub use config::{
    MAX_ADDR_LEN, MAX_ADDRS_PER_PEER, MAX_METADATA_BYTES_PER_PEER, MAX_METADATA_ENTRIES_PER_PEER,
    MAX_PEERS, MAX_PROTOCOL_LEN, MAX_PROTOCOLS_PER_PEER, PeerstoreConfig,
};
pub use error::PeerstoreError;
pub use metadata::{AGENT_VERSION_KEY, PROTOCOL_VERSION_KEY};
pub use peerstore::{PeerInfo, Peerstore, public_key_from_peer_id};
pub use store::GcStats;
