//! multistream-select 1.0.0 for lp2p: a sans-IO core and an async shell.
//!
//! Work in progress: see the issue that builds this crate.
