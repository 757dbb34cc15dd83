//! The `/plaintext/2.0.0` security channel for lp2p: for tests only, nothing is encrypted.
//!
//! Right after multistream-select agrees on `/plaintext/2.0.0`, each side sends one
//! length-prefixed `Exchange` protobuf holding its peer id and public key, without waiting
//! for the other. Each side checks that the remote's key hashes to the peer id it claims,
//! and the dialer also that it is the peer it meant to reach; then bytes flow as they are.
//! The spec is [plaintext/README.md](https://github.com/libp2p/specs/blob/master/plaintext/README.md).
//!
//! [`Plaintext`] is the [`SecurityUpgrader`](lp2p_core::SecurityUpgrader) a host plugs in;
//! [`Handshake`] is the sans-IO state machine under it.
//!
//! Limits: the remote's exchange may be at most [`MAX_EXCHANGE_LEN`] bytes (RSA-4096 keys
//! fit) and the handshake must finish within [`HANDSHAKE_TIMEOUT`]; both are in [`Config`].
//!
//! # Example
//!
//! ```
//! use lp2p_core::{Keypair, RuntimeHandle, SecurityUpgrader, UpgradeContext};
//! use lp2p_memory::MemoryConnection;
//! use lp2p_plaintext::Plaintext;
//!
//! # lp2p_core::runtime::block_on(async {
//! let (alice, bob) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
//! let bob_id = bob.public().to_peer_id();
//! let (a, b) = MemoryConnection::pair(1024, "/memory/1".parse()?, "/memory/2".parse()?);
//!
//! let alice_ctx = UpgradeContext::new(alice.clone(), RuntimeHandle::default());
//! let bob_ctx = UpgradeContext::new(bob, RuntimeHandle::default());
//! let plaintext = Plaintext::new();
//! let (dialed, accepted) = futures::try_join!(
//!     plaintext.secure_outbound(Box::new(a), &alice_ctx, Some(bob_id)),
//!     plaintext.secure_inbound(Box::new(b), &bob_ctx),
//! )?;
//! assert_eq!(dialed.remote_peer(), bob_id);
//! assert_eq!(accepted.remote_peer(), alice.public().to_peer_id());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod error;
mod handshake;
mod upgrader;

/// The generated protobuf types (`proto/plaintext.proto`).
mod proto {
    #![allow(
        missing_docs,
        unreachable_pub,
        clippy::pedantic,
        clippy::derive_partial_eq_without_eq
    )]
    include!(concat!(env!("OUT_DIR"), "/plaintext.rs"));
}

pub use error::PlaintextError;
pub use handshake::{Handshake, MAX_EXCHANGE_LEN, decode_exchange};
pub use upgrader::{Config, HANDSHAKE_TIMEOUT, Plaintext, handshake};

/// The protocol id negotiated with multistream-select.
pub const PROTOCOL_ID: &str = "/plaintext/2.0.0";
