//! The scopes a reservation passes through, as denials, stats and metrics name them.

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
        }
    }

    pub(crate) const ALL: [Scope; 5] = [
        Scope::Connection,
        Scope::Peer,
        Scope::System,
        Scope::AllowlistedSystem,
        Scope::Service,
    ];

    pub(crate) fn index(self) -> usize {
        match self {
            Scope::Connection => 0,
            Scope::Peer => 1,
            Scope::System => 2,
            Scope::AllowlistedSystem => 3,
            Scope::Service => 4,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every scope, in the order of [`ResourceStats::denials`](crate::ResourceStats::denials).
pub const SCOPES: [Scope; 5] = Scope::ALL;
