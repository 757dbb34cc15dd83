//! The /mplex/6.7.0 stream muxer for lp2p: a sans-IO core and an async shell.
//!
//! Work in progress: see the issue that builds this crate.
