//! The lp2p host: stream handlers, new_stream, connect, and a plain builder.
//!
//! Work in progress: see the issue that builds this crate.
