//! The /plaintext/2.0.0 security channel for lp2p (tests only; no encryption).
//!
//! Work in progress: see the issue that builds this crate.
