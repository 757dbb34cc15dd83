//! The /ipfs/ping/1.0.0 protocol for lp2p, with an optional keep-alive service.
//!
//! Work in progress: see the issue that builds this crate.
