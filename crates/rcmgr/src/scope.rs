//! The scopes a reservation passes through, as denials, stats and metrics name them.
//!
//! A stream has no scope of its own: its memory is its receive window, reserved in its
//! connection's account (decision D33), and its count is its place in the transient (then
//! protocol), peer and system scopes.

use std::fmt;

/// The scope a reservation was refused by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// One connection.
    Connection,
    /// One peer, all its connections.
    Peer,
    /// The whole node.
    System,
    /// Allowlisted peers and addresses together.
    AllowlistedSystem,
    /// One service (pubsub, identify, Kademlia, ...), all its peers.
    Service,
    /// Connections whose peer is not known yet (handshakes in progress) and streams whose
    /// protocol is not agreed yet (negotiating).
    Transient,
    /// One protocol's streams, all peers.
    Protocol,
}

impl Scope {
    /// The scope's name as metrics and logs show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Connection => "connection",
            Scope::Peer => "peer",
            Scope::System => "system",
            Scope::AllowlistedSystem => "allowlisted_system",
            Scope::Service => "service",
            Scope::Transient => "transient",
            Scope::Protocol => "protocol",
        }
    }

    pub(crate) const ALL: [Scope; 7] = [
        Scope::Connection,
        Scope::Peer,
        Scope::System,
        Scope::AllowlistedSystem,
        Scope::Service,
        Scope::Transient,
        Scope::Protocol,
    ];

    pub(crate) fn index(self) -> usize {
        match self {
            Scope::Connection => 0,
            Scope::Peer => 1,
            Scope::System => 2,
            Scope::AllowlistedSystem => 3,
            Scope::Service => 4,
            Scope::Transient => 5,
            Scope::Protocol => 6,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every scope, in the order of [`ResourceStats::denials`](crate::ResourceStats::denials).
pub const SCOPES: [Scope; 7] = Scope::ALL;
