//! The `/tls/1.0.0` security channel for lp2p: TLS 1.3 with the libp2p certificate
//! extension (libp2p/specs `tls/tls.md`), and the building blocks lp2p-quic reuses.
//!
//! - [`Tls`] implements [`lp2p_core::SecurityUpgrader`] for byte-stream transports, over
//!   futures-rustls. The identity key, the muxers to offer over ALPN and the runtime for the
//!   handshake timeout come from the [`UpgradeContext`](lp2p_core::UpgradeContext). The
//!   muxers are offered as ALPN protocols followed by `libp2p`
//!   (`connections/inlined-muxer-negotiation.md`); when both sides agree on one it is in
//!   [`SecureConnection::early_muxer`](lp2p_core::SecureConnection::early_muxer).
//! - [`certificate`] is the sans-IO core: [`certificate::generate`] makes a self-signed
//!   certificate for a host key, [`certificate::verify`] checks a remote's against every
//!   rule of the spec at a given time and returns its peer id and host key. Ed25519 host keys
//!   always; secp256k1, ECDSA and RSA with the crate features of the same names.
//! - [`Libp2pCertVerifier`] plugs those checks into rustls (as the server and the client
//!   verifier), and [`client_config`] / [`server_config`] build rustls configurations: TLS
//!   1.3 only, ring provider, mutual authentication, no SNI, no resumption, no early data,
//!   with the ALPN list the caller gives (QUIC gives `["libp2p"]`).
//!
//! Failures are [`TlsError`]s, one variant per rule a certificate can break; at the trait
//! boundary they become `lp2p_core::Error::Security { protocol: "/tls/1.0.0", .. }`, except a
//! wrong remote identity when dialing, which is `lp2p_core::Error::PeerIdMismatch`.
//!
//! # Example
//!
//! ```
//! use futures::{AsyncReadExt, AsyncWriteExt};
//! use lp2p_core::{Keypair, ProtocolId, Role, RuntimeHandle, UpgradeContext};
//! use lp2p_memory::MemoryConnection;
//! use lp2p_tls::Tls;
//!
//! # lp2p_core::runtime::block_on(async {
//! let (a, b) = MemoryConnection::pair(64 * 1024, "/memory/1".parse()?, "/memory/2".parse()?);
//! let yamux = ProtocolId::from_static("/yamux/1.0.0");
//! let alice = UpgradeContext::new(Keypair::generate_ed25519(), RuntimeHandle::default())
//!     .with_muxers([yamux.clone()]);
//! let bob = UpgradeContext::new(Keypair::generate_ed25519(), RuntimeHandle::default())
//!     .with_muxers([yamux.clone()]);
//! let (tls_a, tls_b) = (Tls::new(), Tls::new());
//!
//! let (dialer, listener) = futures::join!(
//!     tls_a.secure(a, Role::Initiator, &alice, Some(bob.local_peer_id())),
//!     tls_b.secure(b, Role::Responder, &bob, None),
//! );
//! let ((mut a, a_session), (mut b, b_session)) = (dialer?, listener?);
//! assert_eq!(a_session.remote_peer, bob.local_peer_id());
//! assert_eq!(b_session.remote_peer, alice.local_peer_id());
//! assert_eq!(a_session.early_muxer, Some(yamux)); // agreed over ALPN
//!
//! a.write_all(b"hello").await?;
//! a.flush().await?;
//! let mut buf = [0u8; 5];
//! b.read_exact(&mut buf).await?;
//! assert_eq!(&buf, b"hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

#![cfg_attr(
    not(test),
    warn(clippy::indexing_slicing, clippy::arithmetic_side_effects)
)]

pub mod certificate;
mod config;
mod der;
mod ed25519;
mod error;
mod keyshare;
mod upgrade;
mod verified;
mod verifier;

pub use config::{
    ALPN_LIBP2P, CIPHER_SUITE_PREFERENCE, DEFAULT_HANDSHAKE_TIMEOUT, LocalCertificate, TlsConfig,
    client_config, crypto_provider, server_config,
};
pub use der::SignedKey;
pub use error::TlsError;
pub use keyshare::{KEY_SHARE_THREAD_NICE, KEY_SHARES_AHEAD, X25519_AHEAD};
pub use upgrade::{Tls, TlsOutput, TlsSession};
pub use verified::{
    DEFAULT_VERIFIED_CERTIFICATES, MAX_REMEMBERED_CERTIFICATE_LEN, VerifiedCertificates,
};
pub use verifier::{FailureHook, Libp2pCertVerifier};

/// The protocol id negotiated with multistream-select.
pub const PROTOCOL_ID: &str = "/tls/1.0.0";

/// rustls, re-exported so users of the configuration builders name the same version.
pub use rustls;
