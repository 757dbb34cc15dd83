//! Who opened a connection, and what that makes us on it.

use std::fmt;

use lp2p_core::Role;

/// Who opened a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The remote dialed us.
    Inbound,
    /// We dialed the remote.
    Outbound,
}

impl Direction {
    /// Our role on the connection: initiator when we dialed.
    pub fn role(self) -> Role {
        match self {
            Direction::Inbound => Role::Responder,
            Direction::Outbound => Role::Initiator,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Inbound => "in",
            Direction::Outbound => "out",
        })
    }
}
