//! The lp2p swarm: connection upgrade, dialing, listeners, the connection table, limits and events.
//!
//! Work in progress: see the issue that builds this crate.
