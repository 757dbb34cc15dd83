//! The /yamux/1.0.0 stream muxer for lp2p: flow control with window auto-tuning, a sans-IO core and an async shell.
//!
//! Work in progress: see the issue that builds this crate.
