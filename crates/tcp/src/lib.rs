//! TCP transport for lp2p on async-io sockets (serves async-std and smol).
//!
//! Work in progress: see the issue that builds this crate.
