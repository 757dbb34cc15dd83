//! The /noise security channel for lp2p: Noise_XX_25519_ChaChaPoly_SHA256 with the libp2p handshake payload.
//!
//! Work in progress: see the issue that builds this crate.
