//! The /ipfs/id/1.0.0 and /ipfs/id/push/1.0.0 protocols for lp2p, with signed peer records.
//!
//! Work in progress: see the issue that builds this crate.
