//! The `/noise` security channel for lp2p: `Noise_XX_25519_ChaChaPoly_SHA256` with the
//! libp2p handshake payload (libp2p/specs `noise/README.md`).
//!
//! - [`Noise`] implements [`lp2p_core::SecurityUpgrader`]: the identity key, the muxers to
//!   offer in the `stream_muxers` extension and the runtime for the handshake timeout come
//!   from the [`UpgradeContext`](lp2p_core::UpgradeContext). When both sides list muxers and
//!   the lists overlap, the agreed one is in
//!   [`SecureConnection::early_muxer`](lp2p_core::SecureConnection::early_muxer).
//! - The sans-IO core is usable on its own: [`Handshake`] runs the three XX messages (symmetric
//!   state, MixHash/MixKey with HKDF-SHA256, Split) and checks the remote's identity;
//!   [`FrameEncoder`] and [`FrameDecoder`] are the transport codec (2-byte big-endian length
//!   frames, in-place ChaCha20-Poly1305, no allocation per frame).
//! - [`NoiseOutput`] is the async shell over any `futures::io` stream.
//!
//! Failures are [`NoiseError`]s naming the [`Stage`] they happened in; at the trait boundary
//! they become `lp2p_core::Error::Security { protocol: "/noise", .. }`, except a wrong remote
//! identity when dialing, which is `lp2p_core::Error::PeerIdMismatch`.
//!
//! # Example
//!
//! ```
//! use futures::{AsyncReadExt, AsyncWriteExt};
//! use lp2p_core::{Keypair, Role, RuntimeHandle, UpgradeContext};
//! use lp2p_memory::MemoryConnection;
//! use lp2p_noise::Noise;
//!
//! # lp2p_core::runtime::block_on(async {
//! let (a, b) = MemoryConnection::pair(64 * 1024, "/memory/1".parse()?, "/memory/2".parse()?);
//! let alice = UpgradeContext::new(Keypair::generate_ed25519(), RuntimeHandle::default());
//! let bob = UpgradeContext::new(Keypair::generate_ed25519(), RuntimeHandle::default());
//! let noise = Noise::new();
//!
//! let (dialer, listener) = futures::join!(
//!     noise.secure(a, Role::Initiator, &alice, Some(bob.local_peer_id())),
//!     noise.secure(b, Role::Responder, &bob, None),
//! );
//! let ((mut a, a_session), (mut b, b_session)) = (dialer?, listener?);
//! assert_eq!(a_session.remote_peer, bob.local_peer_id());
//! assert_eq!(b_session.remote_peer, alice.local_peer_id());
//!
//! a.write_all(b"hello").await?;
//! a.flush().await?; // small writes are coalesced into one frame until a flush
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

mod aead;
mod codec;
mod config;
mod crypto;
mod ephemeral;
mod error;
mod handshake;
mod io;
mod payload;
mod remembered;
mod statics;
mod upgrade;
mod xx;

pub use codec::{
    DECODE_BUFFER_LEN, FrameDecoder, FrameEncoder, INITIAL_DECODE_BUFFER_LEN,
    INITIAL_ENCODE_BUFFER_LEN, LEN_PREFIX,
};
pub use config::{
    DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_MAX_HANDSHAKE_MESSAGE_SIZE, DEFAULT_MAX_STREAM_MUXERS,
    MAX_FRAME_LEN, MAX_FRAME_PLAINTEXT, NoiseConfig,
};
pub use crypto::{CipherState, TAG_LEN};
pub use ephemeral::EPHEMERAL_KEYS_AHEAD;
pub use error::{NoiseError, Stage};
pub use handshake::{Handshake, HandshakeConfig, HandshakeOutcome, Step};
pub use io::{MAX_EMPTY_FRAMES_PER_READ, NoiseOutput};
pub use payload::STATIC_KEY_DOMAIN;
pub use remembered::{DEFAULT_REMOTE_STATICS, MAX_REMEMBERED_TRIPLE_LEN, RemoteStatics};
pub use statics::LocalStatic;
pub use upgrade::{Noise, NoiseSession};
pub use xx::{MESSAGE1_MIN_LEN, MESSAGE2_MIN_LEN, MESSAGE3_MIN_LEN, PROTOCOL_NAME};

/// The protocol id negotiated with multistream-select.
pub const PROTOCOL_ID: &str = "/noise";
