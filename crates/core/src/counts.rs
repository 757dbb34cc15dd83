//! Counted resources between the swarm and a resource manager: connections (and the file
//! descriptors they hold) reserved before any work is done on them.
//!
//! The swarm asks its [`ConnectionLimiter`] for a [`ConnectionSlot`] when it accepts an
//! inbound attempt (before the upgrade) and before it dials; the slot is first counted in a
//! *transient* scope (the remote is not known yet), then moved to its peer's scope with
//! [`ConnectionSlot::attach_peer`] once the handshake has proven who the remote is. The slot
//! is an RAII guard: dropping it, with the connection or the failed attempt, returns what it
//! counted, so a connection can never be released twice or leak its place.
//!
//! `lp2p-rcmgr` implements it with system, transient and peer limits (and streams, which the
//! host counts directly through the manager). Without a limiter, only the swarm's own limits
//! apply.

use std::fmt;

use libp2p_identity::PeerId;
use multiaddr::Multiaddr;

use crate::Role;

/// A counted resource, as denials name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resource {
    /// Connections a remote opened to us.
    InboundConnections,
    /// Connections we opened.
    OutboundConnections,
    /// Streams a remote opened to us.
    InboundStreams,
    /// Streams we opened.
    OutboundStreams,
    /// File descriptors held by connections (one per TCP or WebSocket connection; QUIC
    /// connections share their endpoint's socket).
    FileDescriptors,
}

impl Resource {
    /// The connection resource of a connection in `role` (the dialer is the initiator).
    pub fn connections(role: Role) -> Resource {
        match role {
            Role::Initiator => Resource::OutboundConnections,
            Role::Responder => Resource::InboundConnections,
        }
    }

    /// The stream resource of a stream in `role` (the opener is the initiator).
    pub fn streams(role: Role) -> Resource {
        match role {
            Role::Initiator => Resource::OutboundStreams,
            Role::Responder => Resource::InboundStreams,
        }
    }

    /// The resource's name as logs and metrics show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::InboundConnections => "inbound connections",
            Resource::OutboundConnections => "outbound connections",
            Resource::InboundStreams => "inbound streams",
            Resource::OutboundStreams => "outbound streams",
            Resource::FileDescriptors => "file descriptors",
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a counted reservation (a connection, a stream, a descriptor) was refused: the scope
/// whose limit it would cross, which resource, what the scope held and its limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitDenied {
    /// The scope that refused, e.g. `"system"`, `"transient"`, `"peer 12D3KooW…"`,
    /// `"protocol /ipfs/ping/1.0.0"`.
    pub scope: String,
    /// The resource whose limit was reached.
    pub resource: Resource,
    /// How many the scope held when asked.
    pub used: usize,
    /// The scope's limit.
    pub limit: usize,
}

impl fmt::Display for LimitDenied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "limit of {} {} in the {} scope reached ({} in use)",
            self.limit, self.resource, self.scope, self.used
        )
    }
}

impl std::error::Error for LimitDenied {}

/// One connection's place in the resource manager's counts, held for the connection's life
/// (or the attempt's, if it fails). Dropping it returns the place.
pub trait ConnectionSlot: Send + Sync + fmt::Debug + 'static {
    /// Moves the connection from the transient scope to `peer`'s, once the handshake has
    /// proven the remote's identity; refused when the peer's scope is full (the slot then
    /// stays transient until dropped).
    fn attach_peer(&mut self, peer: &PeerId) -> Result<(), LimitDenied>;
}

/// Hands out [`ConnectionSlot`]s: implemented by `lp2p-rcmgr`'s resource manager, set on the
/// swarm builder.
pub trait ConnectionLimiter: Send + Sync + 'static {
    /// A place for a new connection in `role` (the dialer is the initiator) with `remote`,
    /// counted in the transient and system scopes, and holding a file descriptor when
    /// `uses_fd`. Refused when a scope is at its limit.
    fn open_connection(
        &self,
        role: Role,
        remote: &Multiaddr,
        uses_fd: bool,
    ) -> Result<Box<dyn ConnectionSlot>, LimitDenied>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_denial_names_the_scope_the_resource_and_the_numbers() {
        let denied = LimitDenied {
            scope: "transient".into(),
            resource: Resource::connections(Role::Responder),
            used: 256,
            limit: 256,
        };
        assert_eq!(
            denied.to_string(),
            "limit of 256 inbound connections in the transient scope reached (256 in use)"
        );
        assert_eq!(
            Resource::streams(Role::Initiator),
            Resource::OutboundStreams
        );
    }
}
