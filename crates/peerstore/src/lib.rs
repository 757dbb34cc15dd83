//! Peerstore for lp2p: addresses with TTLs, keys, protocols and metadata, bounded.
//!
//! Work in progress: see the issue that builds this crate.
