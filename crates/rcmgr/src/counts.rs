//! Counted resources per scope (connections, streams, file descriptors): the limits, their
//! defaults, and the usage the slots update. Plain data, no locks: the manager keeps a
//! [`CountUsage`] behind its one lock.

use std::collections::{BTreeMap, HashMap};

use lp2p_core::{LimitDenied, PeerId, Resource};

use crate::limits::RESERVED_FDS;
use crate::scope::Scope;

/// How many of each counted resource a scope holds, or may hold (as a limit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Connections remotes opened to us.
    pub inbound_connections: usize,
    /// Connections we opened.
    pub outbound_connections: usize,
    /// Streams remotes opened to us.
    pub inbound_streams: usize,
    /// Streams we opened.
    pub outbound_streams: usize,
    /// File descriptors held by connections.
    pub fds: usize,
}

impl Counts {
    /// No limit on anything.
    pub const UNLIMITED: Counts = Counts {
        inbound_connections: usize::MAX,
        outbound_connections: usize::MAX,
        inbound_streams: usize::MAX,
        outbound_streams: usize::MAX,
        fds: usize::MAX,
    };

    /// The count of `resource`.
    pub fn get(&self, resource: Resource) -> usize {
        match resource {
            Resource::InboundConnections => self.inbound_connections,
            Resource::OutboundConnections => self.outbound_connections,
            Resource::InboundStreams => self.inbound_streams,
            Resource::OutboundStreams => self.outbound_streams,
            Resource::FileDescriptors => self.fds,
        }
    }

    fn slot(&mut self, resource: Resource) -> &mut usize {
        match resource {
            Resource::InboundConnections => &mut self.inbound_connections,
            Resource::OutboundConnections => &mut self.outbound_connections,
            Resource::InboundStreams => &mut self.inbound_streams,
            Resource::OutboundStreams => &mut self.outbound_streams,
            Resource::FileDescriptors => &mut self.fds,
        }
    }

    fn add(&mut self, resource: Resource) {
        let n = self.slot(resource);
        *n = n.saturating_add(1);
    }

    fn sub(&mut self, resource: Resource) {
        let n = self.slot(resource);
        *n = n.saturating_sub(1);
    }

    fn is_empty(&self) -> bool {
        *self == Counts::default()
    }
}

/// Every counted resource, in the order of
/// [`ResourceStats::count_denials`](crate::ResourceStats::count_denials).
pub const RESOURCES: [Resource; 5] = [
    Resource::InboundConnections,
    Resource::OutboundConnections,
    Resource::InboundStreams,
    Resource::OutboundStreams,
    Resource::FileDescriptors,
];

/// `resource`'s place in [`RESOURCES`].
pub(crate) fn resource_index(resource: Resource) -> usize {
    match resource {
        Resource::InboundConnections => 0,
        Resource::OutboundConnections => 1,
        Resource::InboundStreams => 2,
        Resource::OutboundStreams => 3,
        Resource::FileDescriptors => 4,
    }
}

/// Connections the system scope admits in each direction by default: 4,096, four times the
/// swarm's default of 1,024 established (`lp2p_swarm::config::DEFAULT_MAX_INBOUND`) plus its
/// pending handshakes, so the swarm's finer limits, which can evict an idle connection to
/// make room for a new one, act first; this is the node-wide backstop for swarms configured
/// higher. On most machines the descriptor limit (see [`CountLimits::for_fds`]) binds
/// before it.
pub const DEFAULT_SYSTEM_CONNECTIONS: usize = 4096;

/// Streams the system scope admits in each direction by default: 65,536. At yamux's 256 KiB
/// initial window that is 16 GiB of window credit, so on most machines the memory scopes
/// refuse first; the count bounds the per-stream bookkeeping (about 1-2 KiB each, at most
/// about 128 MiB) whatever the muxer's window is.
pub const DEFAULT_SYSTEM_STREAMS: usize = 65_536;

/// Inbound connections not yet tied to a peer (handshakes in progress): 256, twice the
/// swarm's 128 pending inbound handshakes (`DEFAULT_MAX_PENDING_INBOUND`), which it manages
/// with per-IP shares and eviction of the oldest; this bounds all transports' handshakes
/// together (QUIC's included) if the swarm is configured higher. Outbound handshakes are our
/// own dials: by default only the system scope bounds them, so a node that dials a thousand
/// peers at once gets slow handshakes, not refusals.
pub const DEFAULT_TRANSIENT_CONNECTIONS: usize = 256;

/// Inbound streams not yet tied to a protocol (negotiating): 1,024, twice the host's 512
/// negotiating-stream slots, which it shares fairly between peers; the backstop for hosts
/// configured higher. Outbound negotiations are our own streams (identify opens one per new
/// connection, so a burst of a few thousand connections opens as many at once): by default
/// only the peer and system scopes bound them.
pub const DEFAULT_TRANSIENT_STREAMS: usize = 1024;

/// Connections of one peer in each direction: 16, twice the swarm's default of 8 per peer
/// (`DEFAULT_MAX_PER_PEER`), which refuses first with its own error.
pub const DEFAULT_PEER_CONNECTIONS: usize = 16;

/// Streams of one peer in each direction, over all its connections: 2,048. Four yamux
/// connections' worth of its 512-stream cap, and twice the host's 1,024 slots per
/// protocol, so one protocol's full share leaves room for the others; it stops a peer with
/// many connections from holding connections × 512 streams.
pub const DEFAULT_PEER_STREAMS: usize = 2048;

/// Streams of one protocol in each direction, over all peers: 4,096, four times the host's
/// 1,024 handler slots per protocol (which share fairly between peers and act first);
/// configure tighter limits per protocol with
/// [`ResourceManagerBuilder::protocol_counts`](crate::ResourceManagerBuilder::protocol_counts).
pub const DEFAULT_PROTOCOL_STREAMS: usize = 4096;

/// Count limits of every scope: system (the allowlisted system scope has the same ones),
/// transient (connections before their peer is known, streams before their protocol is),
/// peer, and protocol (the default for protocols without their own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CountLimits {
    /// The whole node.
    pub system: Counts,
    /// Handshakes and negotiations in progress.
    pub transient: Counts,
    /// One peer, all its connections.
    pub peer: Counts,
    /// One protocol, all its peers (streams only).
    pub protocol: Counts,
}

impl CountLimits {
    /// The defaults, with connections holding at most the descriptor limit `fds` (the soft
    /// `ulimit -n`; `None` when unknown or unlimited) less [`RESERVED_FDS`], which stay for
    /// listeners, DNS and mDNS sockets and the application.
    pub fn for_fds(fds: Option<u64>) -> CountLimits {
        let usable = fds.map_or(usize::MAX, |n| {
            usize::try_from(n.saturating_sub(RESERVED_FDS))
                .unwrap_or(usize::MAX)
                .max(1)
        });
        let both = |connections: usize, streams: usize| Counts {
            inbound_connections: connections,
            outbound_connections: connections,
            inbound_streams: streams,
            outbound_streams: streams,
            fds: usize::MAX,
        };
        CountLimits {
            system: Counts {
                fds: usable,
                ..both(DEFAULT_SYSTEM_CONNECTIONS, DEFAULT_SYSTEM_STREAMS)
            },
            transient: Counts {
                inbound_connections: DEFAULT_TRANSIENT_CONNECTIONS,
                inbound_streams: DEFAULT_TRANSIENT_STREAMS,
                ..Counts::UNLIMITED
            },
            peer: both(DEFAULT_PEER_CONNECTIONS, DEFAULT_PEER_STREAMS),
            protocol: both(usize::MAX, DEFAULT_PROTOCOL_STREAMS),
        }
    }

    /// The defaults for this process's descriptor limit ([`fd_limit`](crate::fd_limit)).
    pub fn for_this_process() -> CountLimits {
        CountLimits::for_fds(crate::limits::fd_limit())
    }
}

impl Default for CountLimits {
    /// [`CountLimits::for_this_process`].
    fn default() -> Self {
        CountLimits::for_this_process()
    }
}

/// Where a counted connection is accounted now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConnectionPlace {
    /// In the allowlisted system scope only.
    Allowlisted,
    /// In the system and transient scopes.
    Transient,
    /// In the system scope and its peer's.
    Peer(PeerId),
}

/// Where a counted stream is accounted now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StreamPlace {
    /// In the allowlisted system scope only.
    Allowlisted,
    /// In the system, transient and peer scopes.
    Transient,
    /// In the system scope, its peer's and its protocol's.
    Protocol(String),
}

/// What the counted scopes hold now.
#[derive(Debug, Default)]
pub(crate) struct CountUsage {
    pub(crate) system: Counts,
    pub(crate) allowlisted: Counts,
    pub(crate) transient: Counts,
    pub(crate) peers: HashMap<PeerId, Counts>,
    pub(crate) protocols: BTreeMap<String, Counts>,
}

/// A refusal before it is counted and turned into a [`LimitDenied`].
pub(crate) struct Refusal {
    pub(crate) scope: Scope,
    pub(crate) name: String,
    pub(crate) resource: Resource,
    pub(crate) used: usize,
    pub(crate) limit: usize,
}

impl Refusal {
    pub(crate) fn into_denied(self) -> LimitDenied {
        LimitDenied {
            scope: self.name,
            resource: self.resource,
            used: self.used,
            limit: self.limit,
        }
    }
}

fn check(
    scope: Scope,
    name: impl FnOnce() -> String,
    held: &Counts,
    limits: &Counts,
    resource: Resource,
) -> Result<(), Refusal> {
    let used = held.get(resource);
    let limit = limits.get(resource);
    if used < limit {
        return Ok(());
    }
    Err(Refusal {
        scope,
        name: name(),
        resource,
        used,
        limit,
    })
}

/// [`check`] of `resource`, then of a descriptor when `fd`.
fn check_with_fd(
    scope: Scope,
    name: impl Fn() -> String,
    held: &Counts,
    limits: &Counts,
    (resource, fd): (Resource, bool),
) -> Result<(), Refusal> {
    check(scope, &name, held, limits, resource)?;
    if fd {
        check(scope, &name, held, limits, Resource::FileDescriptors)?;
    }
    Ok(())
}

impl CountUsage {
    /// Checks the transient scope for one more `resource`.
    fn check_transient(&self, limits: &CountLimits, resource: Resource) -> Result<(), Refusal> {
        check(
            Scope::Transient,
            || "transient".into(),
            &self.transient,
            &limits.transient,
            resource,
        )
    }

    /// Checks a new connection (holding a descriptor if `fd`): the transient and system
    /// scopes, or the allowlisted one.
    pub(crate) fn check_connection(
        &self,
        limits: &CountLimits,
        resource: Resource,
        fd: bool,
        allowlisted: bool,
    ) -> Result<(), Refusal> {
        let (scope, held) = if allowlisted {
            (Scope::AllowlistedSystem, &self.allowlisted)
        } else {
            self.check_transient(limits, resource)?;
            (Scope::System, &self.system)
        };
        check_with_fd(
            scope,
            || scope.to_string(),
            held,
            &limits.system,
            (resource, fd),
        )
    }

    /// Counts a new connection at `place` (allowlisted or transient).
    pub(crate) fn add_connection(&mut self, place: ConnectionPlace, resource: Resource, fd: bool) {
        let scope = if place == ConnectionPlace::Allowlisted {
            &mut self.allowlisted
        } else {
            self.transient.add(resource);
            &mut self.system
        };
        scope.add(resource);
        if fd {
            scope.add(Resource::FileDescriptors);
        }
    }

    /// Checks that `peer` can take one more `resource` (and a descriptor, if `fd`).
    pub(crate) fn check_peer(
        &self,
        limits: &CountLimits,
        peer: &PeerId,
        resource: Resource,
        fd: bool,
    ) -> Result<(), Refusal> {
        let held = self.peers.get(peer).copied().unwrap_or_default();
        check_with_fd(
            Scope::Peer,
            || format!("peer ({peer})"),
            &held,
            &limits.peer,
            (resource, fd),
        )
    }

    /// Moves a transient connection to `peer`'s scope (its descriptor too, which the
    /// system scope keeps counting).
    pub(crate) fn connection_to_peer(&mut self, peer: PeerId, resource: Resource, fd: bool) {
        self.transient.sub(resource);
        let held = self.peers.entry(peer).or_default();
        held.add(resource);
        if fd {
            held.add(Resource::FileDescriptors);
        }
    }

    /// Moves a transient connection of an allowlisted peer to the allowlisted scope.
    pub(crate) fn connection_to_allowlisted(&mut self, resource: Resource, fd: bool) {
        self.remove_connection(ConnectionPlace::Transient, resource, fd);
        self.add_connection(ConnectionPlace::Allowlisted, resource, fd);
    }

    /// Returns what a connection at `place` counted.
    pub(crate) fn remove_connection(
        &mut self,
        place: ConnectionPlace,
        resource: Resource,
        fd: bool,
    ) {
        let scope = match place {
            ConnectionPlace::Allowlisted => &mut self.allowlisted,
            ConnectionPlace::Transient => {
                self.transient.sub(resource);
                &mut self.system
            }
            ConnectionPlace::Peer(peer) => {
                if fd {
                    self.sub_peer(&peer, Resource::FileDescriptors);
                }
                self.sub_peer(&peer, resource);
                &mut self.system
            }
        };
        scope.sub(resource);
        if fd {
            scope.sub(Resource::FileDescriptors);
        }
    }

    /// Checks a new stream of `peer` (not allowlisted): the transient, peer and system
    /// scopes.
    pub(crate) fn check_stream(
        &self,
        limits: &CountLimits,
        peer: &PeerId,
        resource: Resource,
    ) -> Result<(), Refusal> {
        self.check_transient(limits, resource)?;
        self.check_peer(limits, peer, resource, false)?;
        check(
            Scope::System,
            || "system".into(),
            &self.system,
            &limits.system,
            resource,
        )
    }

    /// Checks a new stream of an allowlisted peer: the allowlisted system scope.
    pub(crate) fn check_allowlisted_stream(
        &self,
        limits: &CountLimits,
        resource: Resource,
    ) -> Result<(), Refusal> {
        check(
            Scope::AllowlistedSystem,
            || Scope::AllowlistedSystem.to_string(),
            &self.allowlisted,
            &limits.system,
            resource,
        )
    }

    /// Counts a new stream of `peer` at `place` (allowlisted or transient).
    pub(crate) fn add_stream(&mut self, place: &StreamPlace, peer: PeerId, resource: Resource) {
        if *place == StreamPlace::Allowlisted {
            self.allowlisted.add(resource);
            return;
        }
        self.transient.add(resource);
        self.peers.entry(peer).or_default().add(resource);
        self.system.add(resource);
    }

    /// Checks that `protocol` can take one more stream, under `limit`.
    pub(crate) fn check_protocol(
        &self,
        protocol: &str,
        limit: &Counts,
        resource: Resource,
    ) -> Result<(), Refusal> {
        let held = self.protocols.get(protocol).copied().unwrap_or_default();
        check(
            Scope::Protocol,
            || format!("protocol {protocol}"),
            &held,
            limit,
            resource,
        )
    }

    /// Moves a transient stream to `protocol`'s scope.
    pub(crate) fn stream_to_protocol(&mut self, protocol: &str, resource: Resource) {
        self.transient.sub(resource);
        if let Some(held) = self.protocols.get_mut(protocol) {
            held.add(resource);
        } else {
            let mut held = Counts::default();
            held.add(resource);
            self.protocols.insert(protocol.to_owned(), held);
        }
    }

    /// Returns what a stream of `peer` at `place` counted.
    pub(crate) fn remove_stream(&mut self, place: &StreamPlace, peer: &PeerId, resource: Resource) {
        match place {
            StreamPlace::Allowlisted => {
                self.allowlisted.sub(resource);
                return;
            }
            StreamPlace::Transient => self.transient.sub(resource),
            StreamPlace::Protocol(protocol) => {
                if let Some(held) = self.protocols.get_mut(protocol) {
                    held.sub(resource);
                    if held.is_empty() {
                        self.protocols.remove(protocol);
                    }
                }
            }
        }
        self.sub_peer(peer, resource);
        self.system.sub(resource);
    }

    fn sub_peer(&mut self, peer: &PeerId, resource: Resource) {
        if let Some(held) = self.peers.get_mut(peer) {
            held.sub(resource);
            if held.is_empty() {
                self.peers.remove(peer);
            }
        }
    }
}
