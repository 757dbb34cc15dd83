//! Counted places for connections and streams: RAII guards that hold one connection (and
//! its descriptor) or one stream in the scopes' counts, move it from the transient scope to
//! its peer's or protocol's once that is known, and return it when dropped.

use std::fmt;
use std::sync::Arc;

use lp2p_core::{
    ConnectionLimiter, ConnectionSlot, LimitDenied, Multiaddr, PeerId, Resource, Role,
};

use crate::counts::{ConnectionPlace, StreamPlace};
use crate::manager::{Inner, ResourceManager};

impl ResourceManager {
    /// A place for a new connection in `role` (the dialer is the initiator) with `remote`,
    /// holding a file descriptor when `uses_fd`: counted in the transient and system scopes
    /// (the allowlisted system scope for an allowlisted address) until
    /// [`CountedConnection::attach_peer`]. What [`ConnectionLimiter::open_connection`]
    /// returns, typed.
    pub fn open_connection(
        &self,
        role: Role,
        remote: &Multiaddr,
        uses_fd: bool,
    ) -> Result<CountedConnection, LimitDenied> {
        let inner = &self.inner;
        let resource = Resource::connections(role);
        let place = if inner.is_allowlisted_addr(remote) {
            ConnectionPlace::Allowlisted
        } else {
            ConnectionPlace::Transient
        };
        let mut usage = inner.usage();
        let allowlisted = place == ConnectionPlace::Allowlisted;
        if let Err(refusal) =
            usage
                .counts
                .check_connection(&inner.counts, resource, uses_fd, allowlisted)
            && let Some(denied) = inner.refuse(&mut usage, refusal)
        {
            return Err(denied);
        }
        usage.counts.add_connection(place, resource, uses_fd);
        drop(usage);
        Ok(CountedConnection {
            inner: Arc::clone(inner),
            resource,
            fd: uses_fd,
            place,
        })
    }

    /// A place for a new stream with `peer` in `role` (the opener is the initiator): counted
    /// in the transient, peer and system scopes (the allowlisted system scope for an
    /// allowlisted peer) until [`CountedStream::set_protocol`].
    pub fn open_stream(&self, peer: &PeerId, role: Role) -> Result<CountedStream, LimitDenied> {
        let inner = &self.inner;
        let resource = Resource::streams(role);
        let place = if inner.is_allowlisted_peer(peer) {
            StreamPlace::Allowlisted
        } else {
            StreamPlace::Transient
        };
        let mut usage = inner.usage();
        let checked = if place == StreamPlace::Allowlisted {
            usage
                .counts
                .check_allowlisted_stream(&inner.counts, resource)
        } else {
            usage.counts.check_stream(&inner.counts, peer, resource)
        };
        if let Err(refusal) = checked
            && let Some(denied) = inner.refuse(&mut usage, refusal)
        {
            return Err(denied);
        }
        usage.counts.add_stream(&place, *peer, resource);
        drop(usage);
        Ok(CountedStream {
            inner: Arc::clone(inner),
            peer: *peer,
            resource,
            place,
        })
    }
}

impl ConnectionLimiter for ResourceManager {
    fn open_connection(
        &self,
        role: Role,
        remote: &Multiaddr,
        uses_fd: bool,
    ) -> Result<Box<dyn ConnectionSlot>, LimitDenied> {
        ResourceManager::open_connection(self, role, remote, uses_fd)
            .map(|slot| Box::new(slot) as Box<dyn ConnectionSlot>)
    }
}

/// One connection's place in the counts (see [`ResourceManager::open_connection`]);
/// dropping it returns the place, its descriptor included.
pub struct CountedConnection {
    inner: Arc<Inner>,
    resource: Resource,
    fd: bool,
    place: ConnectionPlace,
}

impl CountedConnection {
    /// Moves the connection from the transient scope to `peer`'s (or, for an allowlisted
    /// peer, to the allowlisted system scope). Refused when the peer holds its limit of
    /// connections in this direction; the connection then stays transient until dropped.
    /// Attaching again is a no-op.
    pub fn attach_peer(&mut self, peer: &PeerId) -> Result<(), LimitDenied> {
        if self.place != ConnectionPlace::Transient {
            return Ok(());
        }
        let inner = &self.inner;
        let mut usage = inner.usage();
        if inner.is_allowlisted_peer(peer) {
            usage
                .counts
                .connection_to_allowlisted(self.resource, self.fd);
            self.place = ConnectionPlace::Allowlisted;
            return Ok(());
        }
        if let Err(refusal) = usage
            .counts
            .check_peer(&inner.counts, peer, self.resource, self.fd)
            && let Some(denied) = inner.refuse(&mut usage, refusal)
        {
            return Err(denied);
        }
        usage
            .counts
            .connection_to_peer(*peer, self.resource, self.fd);
        self.place = ConnectionPlace::Peer(*peer);
        Ok(())
    }

    /// The peer the connection is counted for, once attached (`None` while transient or
    /// allowlisted).
    pub fn peer(&self) -> Option<PeerId> {
        match self.place {
            ConnectionPlace::Peer(peer) => Some(peer),
            ConnectionPlace::Transient | ConnectionPlace::Allowlisted => None,
        }
    }
}

impl ConnectionSlot for CountedConnection {
    fn attach_peer(&mut self, peer: &PeerId) -> Result<(), LimitDenied> {
        CountedConnection::attach_peer(self, peer)
    }
}

impl fmt::Debug for CountedConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CountedConnection")
            .field("resource", &self.resource)
            .field("fd", &self.fd)
            .field("place", &self.place)
            .finish_non_exhaustive()
    }
}

impl Drop for CountedConnection {
    fn drop(&mut self) {
        self.inner
            .usage()
            .counts
            .remove_connection(self.place, self.resource, self.fd);
    }
}

/// One stream's place in the counts (see [`ResourceManager::open_stream`]); dropping it
/// returns the place.
pub struct CountedStream {
    inner: Arc<Inner>,
    peer: PeerId,
    resource: Resource,
    place: StreamPlace,
}

impl CountedStream {
    /// Moves the stream from the transient scope to `protocol`'s, once negotiated. Refused
    /// when the protocol holds its limit of streams in this direction; the stream then
    /// stays transient until dropped. Streams of allowlisted peers stay in the allowlisted
    /// system scope. Setting a protocol a second time is a no-op.
    pub fn set_protocol(&mut self, protocol: &str) -> Result<(), LimitDenied> {
        if self.place != StreamPlace::Transient {
            return Ok(());
        }
        let inner = &self.inner;
        let limit = inner.protocol_limits(protocol);
        let mut usage = inner.usage();
        if let Err(refusal) = usage.counts.check_protocol(protocol, &limit, self.resource)
            && let Some(denied) = inner.refuse(&mut usage, refusal)
        {
            return Err(denied);
        }
        usage.counts.stream_to_protocol(protocol, self.resource);
        self.place = StreamPlace::Protocol(protocol.to_owned());
        Ok(())
    }

    /// The remote peer.
    pub fn peer(&self) -> PeerId {
        self.peer
    }

    /// The protocol the stream is counted under, once set.
    pub fn protocol(&self) -> Option<&str> {
        match &self.place {
            StreamPlace::Protocol(protocol) => Some(protocol),
            StreamPlace::Transient | StreamPlace::Allowlisted => None,
        }
    }
}

impl fmt::Debug for CountedStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CountedStream")
            .field("peer", &self.peer)
            .field("resource", &self.resource)
            .field("place", &self.place)
            .finish_non_exhaustive()
    }
}

impl Drop for CountedStream {
    fn drop(&mut self) {
        self.inner
            .usage()
            .counts
            .remove_stream(&self.place, &self.peer, self.resource);
    }
}

#[cfg(test)]
mod tests;
